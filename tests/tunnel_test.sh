#!/usr/bin/env bash
# postern-tunneld and the postern client with real peers: a server
# namespace with a default-drop firewall, posternd, postern-tunneld and a
# real sshd on the server's loopback; an admin namespace with postern.
#
# usage: tunnel_test.sh BUILD_DIR
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld
ECHO=$BUILD/tests/echo_server LOAD=$BUILD/tests/echo_load
PEER=$BUILD/tests/tunnel_peer
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
[ -x /usr/sbin/sshd ] || skip "openssh-server is not installed"
[ -x "$TUNNELD" ] || skip "postern-tunneld is not built"
netns_setup tunnel

KPORT=62201 TPORT=8443 EPORT=7777
umask 077
cd "$TMP"
gen_keys server other alice carol

cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock { port = $KPORT  open_seconds = 120  state_file = "state/knock.state" }
tunnel {
	listen = {"$SERVER4:$TPORT", "[$SERVER6]:$TPORT"}
	egress = {22, $EPORT, 9}
	max_handshakes_per_source = 8	# the cap the test below hits
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {$TPORT}
}
CONF
client_conf client.conf alice.key server.pub psk
client_conf wrong-server.conf alice.key other.pub psk
client_conf wrong-psk.conf alice.key server.pub otherpsk
client_conf unknown.conf carol.key server.pub psk

server_firewall server.conf || exit 1
nobody_reads server.conf
nobody_owns server.key psk

# sshd on the server's loopback only: the tunnel is the only way in.

start_bg "$NS_S" "$POSTERND" -c server.conf 2> posternd.log
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2> tunneld.log
TUNNELD_PID=$LAST_PID
wait_for 10 bash -c "ip netns exec $NS_S ss -ltn | grep -q ':$TPORT '"
start_sshd 127.0.0.1:22
start_bg "$NS_S" "$ECHO" $EPORT 280
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/127.0.0.1/22" 2>/dev/null
wait_for 5 in_server grep -qE "^ *0 " /proc/net/netfilter/nfnetlink_queue

check "postern-tunneld -t passes" in_server "$TUNNELD" -t -c server.conf

SSH=(ssh -i user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=10
     -o "ProxyCommand=$POSTERN -c $TMP/client.conf pipe %n 22" root@web1)
export TMP POSTERN NS_S NS_C SERVER4
export -f in_server in_client wait_for

check "the tunnel port is closed before a knock" bash -c '
	in_client timeout 2 bash -c "exec 3<>/dev/tcp/$SERVER4/8443" 2>/dev/null; [ $? -eq 124 ]'
check "ssh through postern pipe runs a command (knocking first)" bash -c '
	out=$(in_client "$@" echo tunnel-ok 2>&1); echo "$out"; [ "$out" = tunnel-ok ]' _ "${SSH[@]}"
check "the server logged tunnel_open for alice" \
	wait_for 3 grep -q "tunnel from alice (.*) open" tunneld.log

head -c $((64 << 20)) /dev/urandom > big
sum=$(sha256sum < big | cut -d' ' -f1)
check "64 MiB through ssh arrive intact (sha256)" bash -c '
	got=$(in_client "$@" sha256sum < big | cut -d" " -f1); [ "$got" = "'$sum'" ]' _ "${SSH[@]}"
check "64 MiB through scp arrive intact (sha256)" bash -c '
	in_client scp -q -i user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR -o BatchMode=yes \
		-o "ProxyCommand=$POSTERN -c $TMP/client.conf pipe %n 22" big root@web1:$TMP/big.copy &&
	[ "$(sha256sum < $TMP/big.copy | cut -d" " -f1)" = "'$sum'" ]'
rm -f big.copy

check "a port the server does not allow gives a clear error" bash -c '
	out=$(in_client "$POSTERN" -c client.conf pipe web1 5432 < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "5432" && echo "$out" | grep -qi "not allowed"'
check "an allowed port with nothing listening says the service refused" bash -c '
	out=$(in_client "$POSTERN" -c client.conf pipe web1 9 < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -qi "refused"'

start_bg "$NS_C" "$POSTERN" -c client.conf forward -L 127.0.0.1:2222:web1:22 \
	-L 127.0.0.1:7000:web1:$EPORT
FORWARD_PID=$LAST_PID
wait_for 10 in_client bash -c "exec 3<>/dev/tcp/127.0.0.1/7000" 2>/dev/null
check "a local forward carries ssh" bash -c '
	out=$(in_client ssh -p 2222 -i user_key -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \
		root@127.0.0.1 echo forward-ok 2>&1); echo "$out"; [ "$out" = forward-ok ]'
check "200 concurrent streams through the forward all complete" \
	in_client "$LOAD" 127.0.0.1 7000 200 65536 60
stop_pid "$FORWARD_PID"

# The gate is open for alice's address now, so the handshake is what fails.
check "a wrong server key fails the handshake with a clear message" bash -c '
	out=$(in_client "$POSTERN" -c wrong-server.conf pipe web1 22 < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -qi "handshake"'
check "  ...and the server logged it" \
	wait_for 3 grep -q "refused: message 1 did not authenticate" tunneld.log
check "a wrong PSK fails the handshake with a clear message" bash -c '
	out=$(in_client "$POSTERN" -c wrong-psk.conf pipe web1 22 < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -qi "handshake"'
check "  ...and the server logged it" \
	wait_for 7 grep -q "claiming key of alice unconfirmed: closed before any valid transport message" tunneld.log
check "an unknown client key fails the handshake with a clear message" bash -c '
	out=$(in_client "$POSTERN" -c unknown.conf pipe web1 22 < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -qi "handshake"'
check "  ...and the server logged the key" \
	wait_for 3 grep -q "refused: unknown client key $(cat carol.pub)" tunneld.log

# A long session stays up while another connection breaks the protocol.
start_bg "$NS_C" "${SSH[@]}" "sleep 20; echo survivor-ok" > survivor.out 2>&1
SURVIVOR=$LAST_PID
sleep 2
check "garbage after the handshake (not Noise) is dropped" \
	in_client "$PEER" -k alice.key -s "$(cat server.pub)" -p psk $SERVER4 $TPORT garbage noise
check "a malformed yamux frame after the handshake is dropped" \
	in_client "$PEER" -k alice.key -s "$(cat server.pub)" -p psk $SERVER4 $TPORT garbage yamux
check "  ...and the server logged the protocol error" \
	wait_for 3 grep -q "closed: .*bad yamux version" tunneld.log
wait "$SURVIVOR"
check "  ...while another session carried on" grep -q survivor-ok survivor.out

# Killing the tunnel daemon mid-transfer, then restarting it.
# A transfer that lasts: a megabyte, then ten seconds more of nothing.
(head -c 1M /dev/zero; sleep 10) | in_client "${SSH[@]}" "cat > /dev/null" &
TRANSFER=$!
sleep 2
kill -9 "$TUNNELD_PID"
wait "$TRANSFER"
check "a transfer in flight fails when postern-tunneld dies" test $? -ne 0
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2>> tunneld.log
TUNNELD_PID=$LAST_PID
wait_for 10 bash -c "ip netns exec $NS_S ss -ltn | grep -q ':$TPORT '"
check "after a restart, the next ssh command works" bash -c '
	out=$(in_client "$@" echo again-ok 2>&1); echo "$out"; [ "$out" = again-ok ]' _ "${SSH[@]}"

# A connection that never says a word is dropped after 5 s.
check "a silent connection is closed after the 5 s handshake timeout" bash -c '
	start=$(date +%s)
	in_client timeout 9 bash -c "exec 3<>/dev/tcp/$SERVER4/8443; cat <&3" >/dev/null 2>&1
	rc=$? elapsed=$(( $(date +%s) - start ))
	echo "closed after ${elapsed} s (exit $rc)"
	[ $rc -ne 124 ] && [ $elapsed -ge 4 ] && [ $elapsed -le 7 ]'
check "  ...and the server logged it" grep -q "refused: no handshake within 5 s" tunneld.log

# At most 8 pending handshakes per source: the 9th pushes out the oldest.
HOLDERS=()
for i in $(seq 12); do
	in_client timeout 20 bash -c "exec 3<>/dev/tcp/$SERVER4/8443; sleep 15" 2>/dev/null &
	HOLDERS+=($!)
done
check "more than 8 pending handshakes from one source evict the oldest" \
	wait_for 10 grep -q "closed for a newer handshake: max_handshakes_per_source (8) reached" tunneld.log
kill "${HOLDERS[@]}" 2>/dev/null
wait "${HOLDERS[@]}" 2>/dev/null
# Their sleeps still hold the sockets: the handshake timeout frees them.
sleep 6

# SIGHUP with alice removed closes her open session.
lines=$(wc -l < tunneld.log)
start_bg "$NS_C" "${SSH[@]}" "sleep 20; echo should-not-finish" > removed.out 2>&1
REMOVED=$LAST_PID
check "alice has a session open before the reload" wait_for 10 bash -c \
	"tail -n +$((lines + 1)) tunneld.log | grep -q 'stream to port 22: ok'"
sed -i '/^client "alice"/,/^}/d' server.conf
kill -HUP "$TUNNELD_PID"
check "SIGHUP without alice closes her tunnel" bash -c '
	wait_for 5 grep -q "tunnel from alice .* closing: client removed" tunneld.log ||
	{ tail -n 4 tunneld.log; false; }'
wait "$REMOVED"
check "  ...and her ssh session ends" bash -c '! grep -q should-not-finish removed.out'

kill -TERM "$TUNNELD_PID"
wait "$TUNNELD_PID"
check "postern-tunneld exits 0 on SIGTERM" test $? -eq 0
finish
