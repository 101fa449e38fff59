#!/usr/bin/env bash
# postern-tunneld's limits and its handling of clients that prove nothing,
# one by one: pending-handshake caps per source and in total, a replayed
# message 1, expiry on live tunnels, SIGHUP reloading key and PSK, and
# the session, stream and timeout limits of tunnel {}. Each check first
# shows the input was processed, then what the daemon did about it.
#
# No firewall and no posternd: the tunnel port is open, as it is to an
# address that knocked. The client namespace has extra addresses, so that
# "another source" is a real one.
#
# usage: tunnel_limits_test.sh BUILD_DIR
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern TUNNELD=$BUILD/daemon/postern-tunneld
ECHO=$BUILD/tests/echo_server PEER=$BUILD/tests/tunnel_peer
NOTIFY=$BUILD/tests/notify_sink
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v python3 >/dev/null || skip "python3 is not installed"
[ -x "$TUNNELD" ] || skip "postern-tunneld is not built"
netns_setup tlim
SRC3=198.51.100.3 SRC4=198.51.100.4 SRC5=198.51.100.5
for a in $SRC3 $SRC4 $SRC5; do ip -n "$NS_C" addr add "$a/24" dev veth-c; done

TPORT=8443 EPORT=7777
umask 077
cd "$TMP"
gen_keys server alice bob carol dave
cp psk oldpsk

server_conf() {	# server_conf CAROL_EXPIRES BOB_EXPIRES
	cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
tunnel {
	listen = {"$SERVER4:$TPORT", "[$SERVER6]:$TPORT"}
	egress = {$EPORT}
	handshake_timeout = 4
	max_handshakes = 12
	max_handshakes_per_source = ${MAX_PER_SOURCE:-4}
	max_sessions = ${MAX_SESSIONS:-3}
	max_sessions_per_client = ${MAX_PER_CLIENT:-2}
	max_streams = 5
	stream_open_timeout = 2
	stream_buffer = 262144
}
client "alice" { public_key = "$(cat alice.pub)" }
client "bob" {
	public_key = "$(cat bob.pub)"
	${2:+expires = "$2"}
}
client "carol" {
	public_key = "$(cat carol.pub)"
	expires = "$1"
}
client "dave" { public_key = "$(cat dave.pub)" }
CONF
}
CAROL_EXPIRES=$(date -u -d "@$(( $(date +%s) + 600 ))" +%Y-%m-%dT%H:%M:%SZ)
server_conf "$CAROL_EXPIRES" ""
client_conf client.conf

# hold.py SRC N SECONDS: N connections from SRC that say nothing. Prints
# "closed K" once all are closed or SECONDS have passed.
cat > hold.py <<'PY'
import socket, sys, time
src, host, port, n, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET6 if ":" in src else socket.AF_INET)
    s.bind((src, 0)); s.connect((host, port)); s.setblocking(False)
    socks.append(s)
    time.sleep(0.05)	# arrival order is age order
print("connected", n, flush=True)
closed, end = set(), time.time() + secs
while time.time() < end and len(closed) < n:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            if s.recv(1) == b"":
                closed.add(i)
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.05)
print("closed", len(closed), flush=True)
PY
hold() { in_client python3 hold.py "$1" "$SERVER4" "$TPORT" "$2" "$3"; }
hold6() { in_client python3 hold.py "$1" "$SERVER6" "$TPORT" "$2" "$3"; }

start_bg "$NS_S" "$NOTIFY" "$TMP/notify" 170 > notify.log
wait_for 5 test -S "$TMP/notify"
start_bg "$NS_S" env NOTIFY_SOCKET="$TMP/notify" "$TUNNELD" --allow-root -c server.conf 2> tunneld.log
TUNNELD_PID=$LAST_PID
wait_for 10 bash -c "ip netns exec $NS_S ss -ltn | grep -q ':$TPORT '"
start_bg "$NS_S" "$ECHO" $EPORT 170

peer() {	# peer KEY PSK MODE ARGS...: tunnel_peer from the client namespace
	local key=$1 psk=$2
	shift 2
	in_client "$PEER" -k "$key" -s "$(cat server.pub)" -p "$psk" "$SERVER4" "$TPORT" "$@"
}
pipe_ok() {	# a real client from the main address: a line there and back
	local out
	out=$(echo "pipe-ok" | in_client "$POSTERN" -c client.conf pipe web1 $EPORT 2>&1)
	echo "$out"
	[ "$out" = pipe-ok ]
}
log_count() { grep -c -- "$1" tunneld.log; }
export -f status status_has wait_for
export TMP

check "a pipe works before any limit is hit" pipe_ok

# 6: per-source cap. Ten idle connections from one address: the oldest
# six are pushed out, one line is logged, a client elsewhere is not hurt.
hold $SRC3 10 7 > hold3.out &
HOLD=$!
check "ten idle connections from one source: counted as evicted" \
	wait_for 5 status_has "evicted 6 per source + 0 total"
check "  ...while they are held, a client from another address connects" pipe_ok
wait $HOLD
check "  ...six were closed at once, the last four at the handshake timeout" \
	grep -q "closed 10" hold3.out
check "  ...one log line for the per-source evictions of that source" \
	test "$(log_count "handshake from $SRC3:[0-9]* closed for a newer handshake: max_handshakes_per_source (4) reached")" -eq 1

# 6: total cap. Three sources at their per-source cap fill max_handshakes
# (12): one more handshake pushes out the oldest of all.
hold $SRC3 4 7 > h3.out & H3=$!
hold $SRC4 4 7 > h4.out & H4=$!
hold $SRC5 4 7 > h5.out & H5=$!
wait_for 5 status_has "handshakes 12,"
check "with 12 pending from three sources, a client still connects" pipe_ok
check "  ...counted as an eviction by the total cap" wait_for 3 status_has "evicted 6 per source + 1 total"
check "  ...logged once" test "$(log_count "max_handshakes (12) reached")" -eq 1
wait $H3 $H4 $H5
check "pending handshakes return to 0" wait_for 5 status_has "handshakes 0,"

# 6: the client retries a handshake the server closed unanswered. 24
# pipes at once from one address, 4 pending at most: some are pushed out.
# Session caps out of the way for this one, and one pending handshake per
# source (a reload applies them).
MAX_PER_SOURCE=1 MAX_SESSIONS=30 MAX_PER_CLIENT=30 server_conf "$CAROL_EXPIRES" ""
kill -HUP "$TUNNELD_PID"
wait_for 5 grep -q reloaded tunneld.log
MANY=()
for i in $(seq 24); do
	(echo "many-$i" | in_client "$POSTERN" -c client.conf pipe web1 $EPORT > many-$i.out 2>&1) &
	MANY+=($!)
done
wait "${MANY[@]}"
ok=0
for i in $(seq 24); do [ "$(cat many-$i.out)" = "many-$i" ] && ok=$((ok + 1)); done
check "24 concurrent pipes past the per-source cap all complete ($ok/24)" test $ok -eq 24
check "  ...some of them were pushed out and retried" \
	wait_for 3 bash -c '! status_has "evicted 6 per source + 1 total,"'
server_conf "$CAROL_EXPIRES" ""
kill -HUP "$TUNNELD_PID"
wait_for 5 bash -c "[ \$(grep -c reloaded tunneld.log) -ge 2 ]"

# 7: a replayed message 1. The server answers each copy (it cannot tell),
# but no session starts: no tunnel_open, closed at the handshake timeout.
opens=$(log_count "tunnel_open\|) open$")
check "a message 1 sent 4 times from another address: each answered, each closed" bash -c '
	out=$(ip netns exec '"$NS_C"' '"$PEER"' -k alice.key -s "$(cat server.pub)" -p psk \
		'"$SERVER4 $TPORT"' replay 4 9); echo "$out"; [ "$out" = "answered 4 closed 4" ]'
check "  ...no tunnel opened" test "$(log_count "tunnel_open\|) open$")" -eq "$opens"
check "  ...logged once, as unconfirmed, a claim and not a connection by alice" \
	test "$(log_count "handshake from $CLIENT4:[0-9]* claiming key of alice unconfirmed: no valid transport message within 4 s (replayed message 1, or a wrong PSK)")" -eq 1
check "  ...counted, and pending back to 0" wait_for 5 status_has "handshakes 0,.*unconfirmed 4,"
check "  ...and a real client still connects" pipe_ok

# 10: handshake timeout: a silent connection, closed after 2 s.
check "a silent connection is closed at handshake_timeout" bash -c '
	out=$(ip netns exec '"$NS_C"' python3 hold.py '"$CLIENT4 $SERVER4 $TPORT"' 1 9); echo "$out"
	echo "$out" | grep -q "closed 1"'
check "  ...logged with the configured timeout" grep -q "refused: no handshake within 4 s" tunneld.log

# 10: streams per session (5): the 6th and 7th are refused, one line.
check "7 streams on a tunnel that allows 5: 5 open, 2 reset" bash -c '
	out=$(ip netns exec '"$NS_C"' '"$PEER"' -k dave.key -s "$(cat server.pub)" -p psk \
		'"$SERVER4 $TPORT"' streams 7 '"$EPORT"' 2); echo "$out"
	echo "$out" | grep -q "^ok 5 reset 2 other 0"'
check "  ...logged once" test "$(log_count "dave .*: stream refused: max_streams (5) open")" -eq 1
check "  ...counted" wait_for 3 status_has "streams [0-9]*, refused 2,"

# 10: a stream whose open request never comes is reset after 2 s.
check "a stream with no open request is reset at stream_open_timeout" bash -c '
	out=$(ip netns exec '"$NS_C"' '"$PEER"' -k dave.key -s "$(cat server.pub)" -p psk \
		'"$SERVER4 $TPORT"' syn 8); echo "$out"; echo "$out" | grep -q "^reset"'
check "  ...logged and counted" bash -c '
	grep -q "dave .*: stream reset: no open request within 2 s" tunneld.log &&
	wait_for 3 status_has "timed out 1"'

# Stream lines a client can repeat at will: 300 streams to a port not in
# egress, one after another on one tunnel, are one line and, when the
# tunnel closes, one summary; 30 streams opened are 10 lines and a
# summary. STATUS= counts every refused one.
failed_before=$(status | grep -oE "failed [0-9]+" | grep -oE "[0-9]+")
check "300 streams to a port not allowed, one after another: all refused" bash -c '
	out=$(ip netns exec '"$NS_C"' '"$PEER"' -k dave.key -s "$(cat server.pub)" -p psk \
		'"$SERVER4 $TPORT"' seq 300 9); echo "$out"; echo "$out" | grep -qx "ok 0 failed 300 reset 0 other 0"'
check "  ...counted in STATUS=" \
	wait_for 3 status_has "failed $((failed_before + 300))\$"
check "  ...when the tunnel closes, one summary line with the other 299" \
	wait_for 3 grep -q "dave .*: 299 more streams (port not allowed) since the last such line (.*POSTERN_COUNT=299" tunneld.log
check "  ...and one line for the first, no more" \
	test "$(log_count "dave .*: stream to port 9: port not allowed; more like it on this tunnel within a minute are only counted")" -eq 1 -a \
	"$(log_count "port not allowed")" -eq 2
opened=$(log_count "dave .*: stream to port $EPORT: ok")
check "30 streams opened one after another on one tunnel" bash -c '
	out=$(ip netns exec '"$NS_C"' '"$PEER"' -k dave.key -s "$(cat server.pub)" -p psk \
		'"$SERVER4 $TPORT"' seq 30 '"$EPORT"'); echo "$out"; echo "$out" | grep -qx "ok 30 failed 0 reset 0 other 0"'
check "  ...10 lines, then one summary for the other 20" bash -c '
	wait_for 3 grep -q "dave .*: 20 more streams (ok) since the last such line" tunneld.log &&
	[ "$(grep -c "dave .*: stream to port '"$EPORT"': ok" tunneld.log)" -eq '"$((opened + 10))"' ] &&
	[ "$(grep -c "dave .*: stream to port '"$EPORT"': ok; more like it on this tunnel within a minute are only counted" tunneld.log)" -eq 1 ]'

# 10: sessions per client (2): a third tunnel of alice is refused; her
# two open ones go on.
peer alice.key psk streams 1 $EPORT 12 > a1.out & A1=$!
wait_for 5 grep -q up a1.out
peer alice.key psk streams 1 $EPORT 10 > a2.out & A2=$!
wait_for 5 grep -q up a2.out
sleep 0.5
peer alice.key psk streams 1 $EPORT 8 > a3.out & A3=$!
check "a third tunnel of alice is refused" bash -c \
	'wait_for 5 grep -q "refused: max_sessions_per_client (2) reached" tunneld.log'
check "  ...counted" wait_for 3 status_has "sessions refused 1,"

# 10: sessions in total (3): alice 2 + bob 1 = 3; dave is refused.
peer bob.key psk streams 1 $EPORT 6 > b1.out & B1=$!
wait_for 5 grep -q up b1.out
sleep 0.5
check "a 4th session past max_sessions (3) is refused" bash -c '
	out=$(ip netns exec '"$NS_C"' '"$PEER"' -k dave.key -s "$(cat server.pub)" -p psk \
		'"$SERVER4 $TPORT"' streams 1 '"$EPORT"' 3); echo "$out"; echo "$out" | grep -q "ended"'
check "  ...logged once, counted" bash -c '
	[ "$(grep -c "claiming key of dave refused: max_sessions (3) reached" tunneld.log)" -eq 1 ] &&
	wait_for 3 status_has "sessions refused 2,"'
wait $A1 $A2 $A3 $B1
check "  ...alice's third tunnel ended, the open ones were not touched" bash -c '
	grep -q "ended" a3.out && ! grep -q "ended" a1.out && ! grep -q "ended" a2.out &&
	! grep -q "ended" b1.out'

# 8: expiry while connected (a timer at the instant), and by a reload.
soon=$(date -u -d "@$(( $(date +%s) + 4 ))" +%Y-%m-%dT%H:%M:%SZ)
server_conf "$soon" ""
kill -HUP "$TUNNELD_PID"
wait_for 5 bash -c "[ \$(grep -c 'reloaded' tunneld.log) -ge 3 ]"
check "carol, expiring in 4 s, connects" bash -c '
	ip netns exec '"$NS_C"' '"$PEER"' -k carol.key -s "$(cat server.pub)" -p psk \
		'"$SERVER4 $TPORT"' streams 1 '"$EPORT"' 10 > c1.out &
	wait_for 3 grep -q up c1.out'
check "  ...her tunnel is closed when her key expires" \
	wait_for 9 grep -q "tunnel from carol (.*) closing: the client's key expired" tunneld.log
check "  ...and her client saw the end" wait_for 8 grep -q ended c1.out
check "  ...a new handshake of hers is refused" bash -c '
	! ip netns exec '"$NS_C"' '"$PEER"' -k carol.key -s "$(cat server.pub)" -p psk \
		'"$SERVER4 $TPORT"' streams 1 '"$EPORT"' 1 &&
	grep -q "claiming key of carol refused: client expired" tunneld.log'
peer bob.key psk streams 1 $EPORT 8 > b2.out & B2=$!
wait_for 5 grep -q up b2.out
server_conf "$soon" "2020-01-01"
kill -HUP "$TUNNELD_PID"
check "a reload that sets bob's expiry in the past closes his tunnel" \
	wait_for 5 grep -q "tunnel from bob (.*) closing: the client's key expired" tunneld.log
wait $B2
check "  ...and his client saw the end" grep -q ended b2.out

# 9: SIGHUP reloads the PSK and the key, all or nothing.
server_conf "$soon" ""
"$POSTERN" genpsk > newpsk
cp newpsk psk
reloads=$(log_count "reloaded")
kill -HUP "$TUNNELD_PID"
wait_for 5 bash -c "[ \$(grep -c 'reloaded' tunneld.log) -gt $reloads ]"
check "after a PSK change and SIGHUP, the old PSK is refused" bash -c '
	! ip netns exec '"$NS_C"' '"$PEER"' -k alice.key -s "$(cat server.pub)" -p oldpsk \
		'"$SERVER4 $TPORT"' streams 1 '"$EPORT"' 1'
check "  ...and the new one accepted" bash -c '
	out=$(ip netns exec '"$NS_C"' '"$PEER"' -k alice.key -s "$(cat server.pub)" -p newpsk \
		'"$SERVER4 $TPORT"' streams 1 '"$EPORT"' 1); echo "$out"; echo "$out" | grep -q "^ok 1"'
cp server.key server.key.good
echo "not a key" > server.key
kill -HUP "$TUNNELD_PID"
check "a broken key file on SIGHUP: the reload fails, saying which file" \
	wait_for 5 grep -q "reload failed, keeping the running configuration, key and PSK: $TMP/server.key" tunneld.log
check "  ...and the old key and PSK still work" bash -c '
	out=$(ip netns exec '"$NS_C"' '"$PEER"' -k alice.key -s "$(cat server.pub)" -p newpsk \
		'"$SERVER4 $TPORT"' streams 1 '"$EPORT"' 1); echo "$out"; echo "$out" | grep -q "^ok 1"'
cp server.key.good server.key

# The per-source cap counts an IPv6 /64 as one source: 3 + 3 idle
# connections from two addresses of one /64 and 3 from another /64, with
# a cap of 4: exactly 2 pushed out (per address it would be none, all
# together 5).
for a in 2001:db8:51::a 2001:db8:51::b 2001:db8:77::1; do
	ip -n "$NS_C" addr add "$a/64" dev veth-c nodad preferred_lft 0
done
ip -n "$NS_S" route add 2001:db8:77::/64 dev veth-s
per_source() { status | grep -oE "evicted [0-9]+ per source" | grep -oE "[0-9]+"; }
export -f per_source
before=$(per_source)
hold6 2001:db8:51::a 3 6 > v6a.out & V1=$!
hold6 2001:db8:51::b 3 6 > v6b.out & V2=$!
hold6 2001:db8:77::1 3 6 > v6c.out & V3=$!
wait_for 5 grep -q connected v6c.out
check "9 pending from two IPv6 /64s, cap 4: a /64 is one source (2 pushed out)" \
	wait_for 5 bash -c "[ \"\$(per_source)\" -eq $((before + 2)) ]"
wait $V1 $V2 $V3

kill -TERM "$TUNNELD_PID"
wait "$TUNNELD_PID"
check "postern-tunneld exits 0 on SIGTERM" test $? -eq 0
finish
