#!/usr/bin/env bash
# posternd against the real kernel: two network namespaces on a veth pair,
# real nftables sets, the queue rule installed with iptables-nft (this
# kernel lacks nft's queue statement). Each refused knock must open nothing:
# a valid knock sent after it from another address opens (the queue is
# FIFO, so the bad one was read first), the bad one's address has nothing,
# and the counter of the expected refusal reason went up.
#
# usage: knockd_test.sh POSTERN POSTERND KNOCK_CRAFT NOTIFY_SINK
set -u
POSTERN=$(realpath "$1") POSTERND=$(realpath "$2") CRAFT=$(realpath "$3")
SINK=$(realpath "$4")
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
netns_setup knock

QUEUE=3 KPORT=62201
# Extra client addresses: each case knocks from its own, so the per-source
# rate limit never interferes with what a case tests.
for i in $(seq 10 99); do
	ip -n "$NS_C" addr add "198.51.100.$i/24" dev veth-c
done
# IPv6 ones each in a /64 of its own (the rate limit's unit), deprecated
# at once so that none is ever picked as a default source.
for i in a b c; do
	ip -n "$NS_C" addr add "2001:db8:$i::1/64" dev veth-c nodad preferred_lft 0
done

umask 077
cd "$TMP"
gen_keys server other alice bob carol dave

write_server_conf() {	# extra text for the knock section; KEY_FILE, PSK_FILE
	cat > server.conf <<CONF
private_key_file = "${KEY_FILE:-server.key}"
psk_file = "${PSK_FILE:-psk}"
user = "nobody"
knock {
	port = $KPORT
	queue = $QUEUE
	window = 30
	open_seconds = 30
	max_open_seconds = 120
	state_file = "state/knock.state"
	$1
}
tunnel {
	listen = {"$SERVER4:8443"}
	egress = {22}
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {8443, 2222}
}
client "bob" {
	public_key = "$(cat bob.pub)"
	open = {8443}
	expires = "2020-01-31"
}
client "dave" {
	public_key = "$(cat dave.pub)"
	open = {8443}
}
CONF
}
write_server_conf ""
nobody_reads server.conf	# SIGHUP re-reads it as nobody
client_conf client.conf alice.key server.pub psk "server \"web1v6\" {
	address = \"$SERVER6\"
	knock_port = $KPORT
	tunnel_port = 8443
	public_key = \"$(cat server.pub)\"
}"
# The same server by name, over each family, for --all.
cat > client-all.conf <<CONF
private_key_file = "alice.key"
psk_file = "psk"
server "byname4" {
	address = "web1-v4.test"
	knock_port = $KPORT
	public_key = "$(cat server.pub)"
}
server "byname6" {
	address = "web1-v6.test"
	knock_port = $KPORT
	public_key = "$(cat server.pub)"
}
CONF
client_hosts <<HOSTS
127.0.0.1 localhost
$SERVER4 web1-v4.test
$SERVER6 web1-v6.test
HOSTS

check "printed ruleset loads (queue statement replaced)" server_firewall server.conf

craft() {	# craft [options]: a knock from alice, sent from $SRC
	in_client "$CRAFT" -k alice.key -s "$(cat server.pub)" -p psk -b "$SRC" "$@" $SERVER4 $KPORT
}
# bad_case REASON: remember REASON's counter and take a fresh source for
# the bad knock the caller sends next.
bad_case() {
	REASON=$1 BEFORE=$(counter "$1")
	new_src
	BAD=$SRC
}
# refused: the bad knock from $BAD was read and refused for $REASON. A
# valid knock from a fresh source, sent after it, opens; then $BAD has
# nothing, nothing else was opened, and $REASON's counter went up.
refused() {
	local ok=true
	new_src
	craft && wait_for 3 set_has allow4 "$SRC" 8443 || { ok=false; echo "  $SRC did not open"; }
	$ok && { [ "$(set_count allow4)" -eq 2 ] && [ "$(set_count allow6)" -eq 0 ] &&
		! set_has allow4 "$BAD" 8443 || { ok=false; echo "  sets hold more:"
		in_server nft list set inet postern allow4 | grep -o "elements.*"; }; }
	$ok && wait_for 3 bash -c '[ "$(counter "$1")" -gt "$2" ]' _ "$REASON" "$BEFORE" || {
		ok=false; echo "  $REASON: ${BEFORE:-?} → $(counter "$REASON")"; }
	flush_sets
	$ok
}

# posternd runs as under systemd: a notification socket (notify_sink
# stands in for systemd), a watchdog, and its log on stderr in a file.
start_posternd() {
	local lines
	lines=$(wc -l < "$TMP/notify.log")
	start_bg "$NS_S" env NOTIFY_SOCKET="$TMP/notify" WATCHDOG_USEC=2000000 \
		"$POSTERND" -c server.conf 2>>"$TMP/posternd.log"
	POSTERND_PID=$LAST_PID
	# ready once the queue is bound in the server's namespace, and its
	# first STATUS= (so that counters read afterwards are its own)
	wait_for 5 in_server grep -qE "^ *$QUEUE " /proc/net/netfilter/nfnetlink_queue &&
	wait_for 5 bash -c "tail -n +$((lines + 1)) '$TMP/notify.log' | grep -q STATUS="
}

check "posternd -t passes" in_server "$POSTERND" -t -c server.conf
start_bg "$NS_S" "$SINK" "$TMP/notify" 120 > "$TMP/notify.log"
SINK_PID=$LAST_PID
wait_for 5 test -S "$TMP/notify"
check "posternd starts and binds queue $QUEUE" start_posternd
check "posternd tells systemd READY=1" wait_for 5 grep -q "READY=1" "$TMP/notify.log"

export -f in_server in_client set_has set_count wait_for expires_ms
export NS_S NS_C CLIENT4 CLIENT6 SERVER4
check "postern knock opens exactly alice's ports for her address" bash -c '
	in_client "$0" -c client.conf knock web1 || exit 1
	wait_for 3 set_has allow4 $CLIENT4 8443 && set_has allow4 $CLIENT4 2222 &&
	[ "$(set_count allow4)" -eq 2 ] && [ "$(set_count allow6)" -eq 0 ]' "$POSTERN"
e=$(expires_ms allow4 $CLIENT4 8443)
check "the element's timeout is open_seconds (30 s): ${e:-none} ms left" \
	test "${e:-0}" -gt 27000 -a "${e:-0}" -le 30000
sleep 2
in_client "$POSTERN" -c client.conf knock web1
# the element's time left jumps back up once the re-knock is read
wait_for 3 bash -c "[ \"\$(expires_ms allow4 $CLIENT4 8443)\" -gt $(( ${e:-0} - 500 )) ]"
e2=$(expires_ms allow4 $CLIENT4 8443)
check "a re-knock extends the timeout (${e:-?} ms → ${e2:-?} ms, 2 s later)" \
	test "${e2:-0}" -gt $(( ${e:-0} - 500 ))
flush_sets

check "IPv6: a knock opens alice's ports in allow6" bash -c '
	in_client "$0" -c client.conf knock web1v6 || exit 1
	wait_for 3 set_has allow6 $CLIENT6 8443 && set_has allow6 $CLIENT6 2222 &&
	[ "$(set_count allow6)" -eq 2 ] && [ "$(set_count allow4)" -eq 0 ]' "$POSTERN"
flush_sets

check "knock --all knocks every server, found by host name, v4 and v6" bash -c '
	in_client "$0" -c client-all.conf knock --all || exit 1
	wait_for 3 set_has allow4 $CLIENT4 8443 && wait_for 3 set_has allow6 $CLIENT6 8443' "$POSTERN"
flush_sets
check "an unknown host name is a clear error (exit 1)" bash -c '
	sed "s/web1-v4.test/nosuch.test/" client-all.conf > client-bad.conf
	out=$(in_client "$0" -c client-bad.conf knock byname4 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "byname4: cannot resolve nosuch.test"' "$POSTERN"

# Nothing listens on the tunnel port yet: a TCP reset proves the firewall
# let us through, and --wait says exactly that.
check "postern knock --wait sees the gate open (tunnel port answers)" bash -c '
	out=$(in_client "$0" -c client.conf knock --wait web1 2>&1); rc=$?
	echo "$out"
	[ $rc -eq 1 ] && echo "$out" | grep -q "the gate opened but the tunnel port 8443 refused"' "$POSTERN"
check "without a knock, the tunnel port is silent (dropped, not refused)" bash -c '
	in_server nft flush set inet postern allow4
	in_client timeout 2 bash -c "exec 3<>/dev/tcp/$SERVER4/8443" 2>/dev/null
	[ $? -eq 124 ]'
flush_sets

export -f counter status
export TMP
new_src; craft -w captured.knock
wait_for 3 set_has allow4 "$SRC" 8443
flush_sets
bad_case replay
in_client "$CRAFT" -r captured.knock -b "$BAD" $SERVER4 $KPORT
check "the same packet replayed opens nothing (counted: replay)" refused

bad_case mac1
in_client "$CRAFT" -k alice.key -s "$(cat other.pub)" -p psk -b "$BAD" $SERVER4 $KPORT
check "a knock made for another server opens nothing (mac1)" refused
bad_case "unknown key"
in_client "$CRAFT" -k carol.key -s "$(cat server.pub)" -p psk -b "$BAD" $SERVER4 $KPORT
check "an unknown key (carol) opens nothing (unknown key)" refused
bad_case expired
in_client "$CRAFT" -k bob.key -s "$(cat server.pub)" -p psk -b "$BAD" $SERVER4 $KPORT
check "an expired client (bob) opens nothing (expired)" refused
bad_case mac1
in_client "$CRAFT" -k alice.key -s "$(cat server.pub)" -p otherpsk -b "$BAD" $SERVER4 $KPORT
check "a wrong PSK opens nothing (mac1: the PSK keys it)" refused
bad_case skew
craft_from() { in_client "$CRAFT" -k alice.key -s "$(cat server.pub)" -p psk -b "$BAD" "$@" $SERVER4 $KPORT; }
craft_from -o -60000
check "a timestamp 60 s in the past opens nothing (skew)" refused
bad_case skew
craft_from -o 60000
check "a timestamp 60 s in the future opens nothing (skew)" refused

for byte in 0 1 40 100 128 129 144; do
	bad_case "$([ $byte -eq 0 ] && echo length || echo mac1)"
	craft_from -f $byte
	check "a flipped bit in byte $byte opens nothing ($REASON)" refused
done

bad_case length
craft_from -l 144
check "a truncated knock (144 bytes) opens nothing (length)" refused
bad_case length
craft_from -l 146
check "an extended knock (146 bytes) opens nothing (length)" refused

bad_case target
craft_from -t 203.0.113.5
check "a target override opens nothing when allow_target = false (target)" refused
check "  ...and nothing was opened for the target" bash -c '
	! in_server nft list set inet postern allow4 | grep -q 203.0.113.5'

# The review's chain (finding 1): drain a victim's token bucket with
# mac1-valid junk from the victim's address, have the victim's real knock
# rate-limited (its bytes stay in the burst slot it was read into), then
# send from the attacker's address IPv6 datagrams the queue cuts short:
# behind 160 bytes of destination options (cut by the old 256-byte copy
# range) and behind 400 (cut by today's 512). The gate must not open for
# the attacker: a cut datagram is refused as truncated.
VICTIM=2001:db8:a::1 ATTACKER=2001:db8:b::1 PROBE6=2001:db8:c::1
REASON=truncated BEFORE=$(counter truncated) RATE_BEFORE=$(counter rate)
craft6() { in_client "$CRAFT" -k alice.key -s "$(cat server.pub)" -p psk "$@" $SERVER6 $KPORT; }
craft6 -j 12 -b $VICTIM
sleep 0.2
craft6 -b $VICTIM
sleep 0.2
in_client "$CRAFT" -g 1 -x 160 -b $ATTACKER $SERVER6 $KPORT
sleep 0.2
in_client "$CRAFT" -g 1 -x 400 -b $ATTACKER $SERVER6 $KPORT
sleep 0.2
check "the victim's knock was rate-limited (the chain's set-up)" \
	wait_for 3 bash -c '[ "$(counter rate)" -ge $(( ${0:-0} + 3 )) ]' "$RATE_BEFORE"
craft6 -b $PROBE6
check "a later valid knock opens (the cut datagram was read)" wait_for 3 set_has allow6 $PROBE6 8443
check "  ...the attacker's cut datagram opened nothing" bash -c "! set_has allow6 $ATTACKER 8443"
check "  ...nor anything for the victim" bash -c "! set_has allow6 $VICTIM 8443"
check "  ...and it was counted as truncated" \
	wait_for 3 bash -c '[ "$(counter truncated)" -gt "$0" ]' "$BEFORE"
flush_sets

# Finding 3: sources no host knocks from. A valid knock from a spoofed
# IPv6 source opens that source (so the spoofing works); from the
# unspecified address or an IPv4-compatible one (::a.b.c.d) it opens
# nothing and is counted as a bad source. (IPv4-mapped, loopback and
# multicast sources never reach a queue in INPUT: the kernel's IPv6 input
# drops them first. A queue placed before it, in an ingress hook, would
# see them; test_knock's odd_sources_refused shows the parser refuses
# them too.)
craft6 -S 2001:db8:99::1
check "a valid knock from a spoofed IPv6 source opens that source" \
	wait_for 3 set_has allow6 2001:db8:99::1 8443
flush_sets
BEFORE=$(counter source)
craft6 -S ::
craft6 -S ::198.51.100.77
craft6 -b $PROBE6
check "the unspecified or an IPv4-compatible IPv6 source opens nothing" bash -c "
	wait_for 3 set_has allow6 $PROBE6 8443 && [ \$(set_count allow6) -eq 2 ] &&
	[ \$(set_count allow4) -eq 0 ]"
check "  ...and both were counted as bad sources" \
	wait_for 3 bash -c '[ "$(counter source)" -ge $(( $0 + 2 )) ]' "$BEFORE"
flush_sets

# Finding 4: one captured knock sent 100 times from 20 sources writes one
# line, not 100; the counter has them all.
new_src
in_client "$CRAFT" -k dave.key -s "$(cat server.pub)" -p psk -b "$SRC" -w loud.knock $SERVER4 $KPORT
wait_for 3 set_has allow4 "$SRC" 8443
flush_sets
BEFORE=$(counter replay)
for i in $(seq 60 79); do
	for _ in 1 2 3 4 5; do
		in_client "$CRAFT" -r loud.knock -b 198.51.100.$i $SERVER4 $KPORT
	done
done
check "100 replays of one knock from 20 sources are all counted" \
	wait_for 5 bash -c '[ "$(counter replay)" -ge $(( $0 + 100 )) ]' "$BEFORE"
check "  ...and written to the log once" \
	test "$(grep -c "knock from dave (.*) refused: replay" "$TMP/posternd.log")" -eq 1

lines_before=$(wc -l < "$TMP/posternd.log")
new_src
# A valid knock right behind the flood may meet a full queue and be
# dropped, as any packet would: like postern knock --wait, send it again.
check "a flood of 20000 garbage knocks does not stop a valid one" bash -c '
	in_client "$0" -g 20000 -b "$1" $2 $3 || exit 1
	for try in 1 2 3; do
		in_client "$0" -k alice.key -s "$(cat server.pub)" -p psk -b "$1" $2 $3 &&
		wait_for 1 set_has allow4 "$1" 8443 && exit 0
	done
	exit 1' "$CRAFT" "$SRC" $SERVER4 $KPORT
flush_sets

check "posternd is still running after all of that" kill -0 "$POSTERND_PID"
check "the flood was counted, not logged: one line, the valid knock's" \
	test $(( $(wc -l < "$TMP/posternd.log") - lines_before )) -eq 1
check "an accepted knock is logged once with its fields" \
	grep -q "knock from alice ($SRC): opened $SRC port 8443,2222 for 30 s (POSTERN_CLIENT=alice POSTERN_SRC=$SRC POSTERN_TARGET=$SRC POSTERN_PORTS=8443,2222 POSTERN_REASON=ok)" "$TMP/posternd.log"
check "an authenticated refusal is logged with its reason" \
	grep -q "knock from bob (198.51.100.[0-9]*) refused: expired (POSTERN_CLIENT=bob .*POSTERN_REASON=expired POSTERN_COUNT=1)" "$TMP/posternd.log"
check "a knock from an unlisted key is logged with the key" \
	grep -q "knock from unlisted key $(cat carol.pub) (198.51.100.[0-9]*) refused: unknown_key (POSTERN_KEY=$(cat carol.pub) " "$TMP/posternd.log"
check "posternd sends WATCHDOG=1 when asked" grep -q "WATCHDOG=1" "$TMP/notify.log"
check "STATUS= shows the counters (thousands dropped at mac1)" wait_for 7 bash -c \
	"grep STATUS= '$TMP/notify.log' | tail -1 | grep -qE 'received [0-9]+, accepted [0-9]+, refused [0-9]+ \\(length [0-9]+, mac1 [0-9]{4,},'"

# After a restart, a knock captured before it opens nothing: also one
# stamped 20 s ahead of the server's clock, which the start floor alone
# would let in again (finding 5); the replay state file remembers it.
new_src; craft -w before-restart.knock
wait_for 3 set_has allow4 "$SRC" 8443
new_src; craft -o 20000 -w ahead.knock
wait_for 3 set_has allow4 "$SRC" 8443
flush_sets
check "the replay state file is written, mode 0600" bash -c '
	[ "$(stat -c %a state/knock.state)" = 600 ] && grep -q "$(cat alice.pub) " state/knock.state'
stop_pid "$POSTERND_PID"
check "posternd restarts" start_posternd
check "  ...and says it loaded the replay state" grep -q "replay state loaded from" "$TMP/posternd.log"
bad_case replay
in_client "$CRAFT" -r before-restart.knock -b "$BAD" $SERVER4 $KPORT
check "a knock captured before the restart opens nothing after it" refused
bad_case replay
in_client "$CRAFT" -r ahead.knock -b "$BAD" $SERVER4 $KPORT
check "nor one stamped 20 s ahead of the server's clock" refused

# A corrupt state file is a clear warning; posternd falls back to the
# start floor and serves.
stop_pid "$POSTERND_PID"
echo garbage > state/knock.state
check "posternd starts with a corrupt state file" start_posternd
check "  ...and warns, naming the file and the line" \
	grep -q "ignoring the replay state: $TMP/state/knock.state:1: not a postern knock state file" "$TMP/posternd.log"
bad_case replay
in_client "$CRAFT" -r before-restart.knock -b "$BAD" $SERVER4 $KPORT
check "  ...and still refuses a knock made before its start" refused

# A state directory posternd cannot write (a file system gone read-only,
# a directory re-owned by root): the file it finds may be stale, so it
# also refuses knocks made before its start. A knock accepted while the
# file could not be kept up to date stays refused after another restart.
stop_pid "$POSTERND_PID"
chown root:root state
chmod 755 state
check "posternd starts with a state directory it cannot write" start_posternd
check "  ...and warns that the state will not survive a restart" \
	grep -q "state/knock.state: Permission denied: replay state will not survive a restart" "$TMP/posternd.log"
new_src; craft -w unrecorded.knock
check "  ...it still opens for a valid knock" wait_for 3 set_has allow4 "$SRC" 8443
flush_sets
stop_pid "$POSTERND_PID"
check "posternd restarts, the directory still not writable" start_posternd
bad_case replay
in_client "$CRAFT" -r unrecorded.knock -b "$BAD" $SERVER4 $KPORT
check "  ...the knock it accepted but could not record opens nothing" refused
chown nobody:nogroup state
chmod 700 state

check "a queue already bound gives a clear error" bash -c '
	out=$(in_server "$0" -c server.conf 2>&1); rc=$?
	echo "$out (exit $rc)"
	[ $rc -eq 1 ] && echo "$out" | grep -q "queue 3 is already bound by another process"' "$POSTERND"

# allow_target = true honours the target, after a SIGHUP reload.
write_server_conf "allow_target = true"
kill -HUP "$POSTERND_PID"
sleep 0.5
new_src
check "after SIGHUP with allow_target = true, the target is opened" bash -c '
	in_client "$0" -k alice.key -s "$(cat server.pub)" -p psk -b "$1" -t 203.0.113.5 $2 $3 &&
	wait_for 3 set_has allow4 203.0.113.5 8443' "$CRAFT" "$SRC" $SERVER4 $KPORT
flush_sets
# --wait cannot see a gate opened for another address, so it knocks again
# after a second: for the same target (finding 11), never for our own.
check "knock --wait --target re-knocks for the target, not for us" bash -c '
	in_client "$0" -c client.conf knock --wait --target 203.0.113.7 web1 2>/dev/null
	[ $? -eq 1 ] && set_has allow4 203.0.113.7 8443 && ! set_has allow4 $CLIENT4 8443 &&
	[ "$(set_count allow4)" -eq 2 ]' "$POSTERN"
check "  ...it did knock twice" bash -c '[ "$(grep -c "opened 203.0.113.7 port" "$0")" -ge 2 ]' "$TMP/posternd.log"
flush_sets

# SIGHUP reloads the key and the PSK too (finding 9). The new PSK's file
# is nobody's (posternd runs as nobody now); server.key is root's, so the
# running key is kept, and the log says so.
"$POSTERN" genpsk > psk2
nobody_owns psk2
PSK_FILE=psk2 write_server_conf ""
kill -HUP "$POSTERND_PID"
check "SIGHUP with a new PSK file reloads it, keeping the key it cannot read" \
	wait_for 3 grep -q "reloaded server.conf: 3 clients; key kept (it cannot be read again), PSK read again" "$TMP/posternd.log"
bad_case mac1
craft_from
check "  ...a knock with the old PSK opens nothing (mac1)" bash -c '
	new_src() { :; }; SRC=$1
	in_client "$2" -k alice.key -s "$(cat server.pub)" -p psk2 -b "$SRC" $3 $4 &&
	wait_for 3 set_has allow4 "$SRC" 8443 && ! set_has allow4 "$5" 8443 &&
	wait_for 3 bash -c "[ \$(counter mac1) -gt $6 ]"' _ 198.51.100.98 "$CRAFT" $SERVER4 $KPORT "$BAD" "$BEFORE"
flush_sets
# A bad new key file: the reload is refused as a whole and says why.
echo "not a key" > bad.key
nobody_owns bad.key
KEY_FILE=bad.key PSK_FILE=psk2 write_server_conf ""
kill -HUP "$POSTERND_PID"
check "SIGHUP with a broken key file keeps everything running, and says why" \
	wait_for 3 grep -q "reload failed, keeping the running configuration, key and PSK: .*bad.key" "$TMP/posternd.log"
check "  ...the running PSK still opens" bash -c '
	in_client "$0" -k alice.key -s "$(cat server.pub)" -p psk2 -b 198.51.100.97 $1 $2 &&
	wait_for 3 set_has allow4 198.51.100.97 8443' "$CRAFT" $SERVER4 $KPORT
flush_sets

write_server_conf 'nft_set6 = "nosuch6"'
check "posternd -t fails naming a missing set and the command to create it" bash -c '
	out=$(in_server "$0" -t -c server.conf 2>&1); rc=$?
	echo "$out"
	[ $rc -eq 1 ] && [ $(echo "$out" | wc -l) -eq 1 ] &&
	echo "$out" | grep -q "nft add set inet postern nosuch6 .{ type ipv6_addr . inet_service; flags timeout; }."' "$POSTERND"

kill -TERM "$POSTERND_PID"
wait "$POSTERND_PID"
check "posternd exits with status 0 on SIGTERM" test $? -eq 0
check "and its queue is unbound" bash -c '! in_server grep -qE "^ *3 " /proc/net/netfilter/nfnetlink_queue'
finish
