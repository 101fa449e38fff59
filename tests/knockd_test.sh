#!/usr/bin/env bash
# posternd against the real kernel: two network namespaces on a veth pair,
# real nftables sets, the queue rule installed with iptables-nft (this
# kernel lacks nft's queue statement). Each refused knock must open nothing,
# and the daemon must keep opening for valid knocks afterwards.
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
for i in $(seq 10 40); do
	ip -n "$NS_C" addr add "198.51.100.$i/24" dev veth-c
done
next_src=10
new_src() { SRC="198.51.100.$next_src"; next_src=$((next_src + 1)); }

umask 077
cd "$TMP"
gen_keys server other alice bob carol

write_server_conf() {	# extra text for the knock section
	cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock {
	port = $KPORT
	queue = $QUEUE
	window = 30
	open_seconds = 30
	max_open_seconds = 120
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
CONF
}
write_server_conf ""
nobody_reads server.conf	# SIGHUP re-reads it as nobody
cat > client.conf <<CONF
private_key_file = "alice.key"
psk_file = "psk"
server "web1" {
	address = "$SERVER4"
	knock_port = $KPORT
	tunnel_port = 8443
	public_key = "$(cat server.pub)"
}
server "web1v6" {
	address = "$SERVER6"
	knock_port = $KPORT
	tunnel_port = 8443
	public_key = "$(cat server.pub)"
}
CONF
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

set_has() {	# set_has SET ADDR PORT
	in_server nft list set inet postern "$1" | tr -d '\n' |
		grep -qE "(^|[ {,])$2 \. $3 "
}
set_count() {
	in_server nft list set inet postern "$1" | tr -d '\n' |
		grep -oE "[0-9a-f:.]+ \. [0-9]+ timeout" | wc -l
}
# Seconds left of ADDR . PORT in SET, from "expires 1m29s870ms".
expires_ms() {
	in_server nft list set inet postern "$1" | tr -d '\n' |
		grep -oE "$2 \. $3 timeout [^,}]* expires [0-9hms]+" |
		sed -E 's/.*expires //' |
		awk '{ t=0; s=$0
		       if (match(s, /[0-9]+h/)) t += substr(s, RSTART, RLENGTH-1) * 3600000
		       if (match(s, /[0-9]+m[^s]/)) t += substr(s, RSTART, RLENGTH-2) * 60000
		       if (match(s, /[0-9]+m$/)) t += substr(s, RSTART, RLENGTH-1) * 60000
		       if (match(s, /[0-9]+s/)) t += substr(s, RSTART, RLENGTH-1) * 1000
		       if (match(s, /[0-9]+ms/)) t += substr(s, RSTART, RLENGTH-2)
		       print t }'
}
flush_sets() {
	in_server nft flush set inet postern allow4
	in_server nft flush set inet postern allow6
}
craft() {	# craft [options]: a knock from alice, sent from $SRC
	in_client "$CRAFT" -k alice.key -s "$(cat server.pub)" -p psk -b "$SRC" "$@" $SERVER4 $KPORT
}
# A refused knock opens nothing at all; then a valid knock from the same
# source still opens, so "nothing" was not a dead daemon.
opens_nothing() {
	sleep 0.3
	[ "$(set_count allow4)" -eq 0 ] && [ "$(set_count allow6)" -eq 0 ] || return 1
	craft || return 1
	wait_for 3 set_has allow4 "$SRC" 8443 || return 1
	flush_sets
}

# posternd runs as under systemd: a notification socket (notify_sink
# stands in for systemd), a watchdog, and its log on stderr in a file.
start_posternd() {
	start_bg "$NS_S" env NOTIFY_SOCKET="$TMP/notify" WATCHDOG_USEC=2000000 \
		"$POSTERND" -c server.conf 2>>"$TMP/posternd.log"
	POSTERND_PID=$LAST_PID
	# ready once the queue is bound in the server's namespace
	wait_for 5 in_server grep -qE "^ *$QUEUE " /proc/net/netfilter/nfnetlink_queue
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
sleep 0.3
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

new_src; craft -w captured.knock
wait_for 3 set_has allow4 "$SRC" 8443
flush_sets
new_src
check "the same packet replayed opens nothing" bash -c '
	in_client "$0" -r captured.knock -b "$1" $2 $3; sleep 0.3
	[ "$(set_count allow4)" -eq 0 ]' "$CRAFT" "$SRC" $SERVER4 $KPORT

new_src
check "a knock made for another server opens nothing" bash -c '
	in_client "$0" -k alice.key -s "$(cat other.pub)" -p psk -b "$1" $2 $3' \
	"$CRAFT" "$SRC" $SERVER4 $KPORT
check "  ...and the daemon still opens afterwards" opens_nothing

new_src
check "an unknown key (carol) opens nothing" \
	in_client "$CRAFT" -k carol.key -s "$(cat server.pub)" -p psk -b "$SRC" $SERVER4 $KPORT
check "  ...and the daemon still opens afterwards" opens_nothing

new_src
check "an expired client (bob) opens nothing" \
	in_client "$CRAFT" -k bob.key -s "$(cat server.pub)" -p psk -b "$SRC" $SERVER4 $KPORT
check "  ...and the daemon still opens afterwards" opens_nothing

new_src
check "a wrong PSK opens nothing" \
	in_client "$CRAFT" -k alice.key -s "$(cat server.pub)" -p otherpsk -b "$SRC" $SERVER4 $KPORT
check "  ...and the daemon still opens afterwards" opens_nothing

new_src
check "a timestamp 60 s in the past opens nothing" craft -o -60000
check "  ...and the daemon still opens afterwards" opens_nothing
new_src
check "a timestamp 60 s in the future opens nothing" craft -o 60000
check "  ...and the daemon still opens afterwards" opens_nothing

for byte in 0 1 40 100 128 129 144; do
	new_src
	check "a flipped bit in byte $byte opens nothing" craft -f $byte
	check "  ...and the daemon still opens afterwards" opens_nothing
done

new_src
check "a truncated knock (144 bytes) opens nothing" craft -l 144
check "  ...and the daemon still opens afterwards" opens_nothing
new_src
check "an extended knock (146 bytes) opens nothing" craft -l 146
check "  ...and the daemon still opens afterwards" opens_nothing

new_src
check "a target override opens nothing when allow_target = false" craft -t 203.0.113.5
check "  ...and nothing was opened for the target" bash -c '
	! in_server nft list set inet postern allow4 | grep -q 203.0.113.5'
check "  ...and the daemon still opens afterwards" opens_nothing

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
	grep -q "knock from bob (198.51.100.[0-9]*) refused: expired (POSTERN_CLIENT=bob .*POSTERN_REASON=expired)" "$TMP/posternd.log"
check "posternd sends WATCHDOG=1 when asked" grep -q "WATCHDOG=1" "$TMP/notify.log"
check "STATUS= shows the counters (thousands dropped at mac1)" wait_for 7 bash -c \
	"grep STATUS= '$TMP/notify.log' | tail -1 | grep -qE 'received [0-9]+, accepted [0-9]+, refused [0-9]+ \\(length [0-9]+, mac1 [0-9]{4,},'"

# After a restart, a knock captured before it opens nothing.
new_src; craft -w before-restart.knock
wait_for 3 set_has allow4 "$SRC" 8443
flush_sets
stop_pid "$POSTERND_PID"
check "posternd restarts" start_posternd
check "a knock captured before the restart opens nothing after it" bash -c '
	in_client "$0" -r before-restart.knock -b "$1" $2 $3; sleep 0.3
	[ "$(set_count allow4)" -eq 0 ]' "$CRAFT" "$SRC" $SERVER4 $KPORT

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
