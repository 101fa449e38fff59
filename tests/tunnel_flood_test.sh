#!/usr/bin/env bash
# postern-tunneld under abuse from addresses the firewall admits, with the
# real firewall, posternd and sshd:
#   1. a flood of half-open and slow handshakes from one admitted address,
#      while a real ssh through postern pipe from another completes;
#   2. a client that opens streams and never reads, and one that writes
#      to a service that never reads: the daemon's memory stays within a
#      bound derived from the configured limits;
#   3. postern-tunneld killed (-9) under a connected postern forward, with
#      the gate closed meanwhile: the pool knocks again and reconnects.
# Prints the daemon's RSS and CPU for docs/HARDENING.md. No timing
# is asserted; every loop is bounded.
#
# usage: tunnel_flood_test.sh BUILD_DIR
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld PEER=$BUILD/tests/tunnel_peer
ECHO=$BUILD/tests/echo_server
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
[ -x /usr/sbin/sshd ] || skip "openssh-server is not installed"
[ -x "$TUNNELD" ] || skip "postern-tunneld is not built"
netns_setup tflood
FLOOD4=198.51.100.3
ip -n "$NS_C" addr add "$FLOOD4/24" dev veth-c

KPORT=62201 TPORT=8443 EPORT=7777 CPORT=7778 SPORT=7779
FLOOD_SECONDS=${FLOOD_SECONDS:-15} FLOOD_CONNS=${FLOOD_CONNS:-2000}
STREAMS=200 MAX_STREAMS=256 STREAM_BUFFER=1048576
umask 077
cd "$TMP"
gen_keys server alice

cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock { port = $KPORT  open_seconds = 120  state_file = "state/knock.state" }
tunnel {
	listen = {"$SERVER4:$TPORT"}
	egress = {22, $EPORT, $CPORT, $SPORT}
	max_streams = $MAX_STREAMS
	stream_buffer = $STREAM_BUFFER
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {$TPORT}
}
CONF
client_conf client.conf
server_firewall server.conf || exit 1

# chargen: writes to every connection until it goes; sink: accepts and
# never reads.
cat > services.py <<'PY'
import socket, sys, threading, time
def chargen(c):
    data = b"x" * 65536
    try:
        while True:
            c.sendall(data)
    except OSError:
        pass
def sink(c):
    time.sleep(3600)
def serve(port, fn):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(1024)
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(int(sys.argv[1]), chargen), daemon=True).start()
serve(int(sys.argv[2]), sink)
PY
# flood.py SRC HOST PORT CONNS SECONDS: keep CONNS connections open from
# SRC (opening new ones as the server closes old ones); a tenth of them
# send a message-1-sized frame one byte a second, the rest nothing.
# Prints the connections made and the bytes sent.
cat > flood.py <<'PY'
import os, resource, socket, sys, time
src, host, port, conns, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
resource.setrlimit(resource.RLIMIT_NOFILE, (conns + 256, conns + 256))
msg1 = bytes([0, 100]) + os.urandom(100)
live, made, sent, end, tick = {}, 0, 0, time.time() + secs, 0
while time.time() < end:
    while len(live) < conns and time.time() < end:
        s = socket.socket(); s.setblocking(False); s.bind((src, 0))
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        live[s] = [made % 10 == 0, 0]
        if made % 10 == 0:	# the first byte at once, then one a second
            try:
                s.send(msg1[:1]); live[s][1] = 1; sent += 1
            except OSError:
                pass
        made += 1
        if made % 200 == 0:
            break
    for s in list(live):
        try:
            if s.recv(1) == b"":
                raise OSError
        except BlockingIOError:
            pass
        except OSError:
            s.close(); del live[s]
    if time.time() >= tick:
        tick = time.time() + 1
        for s, st in list(live.items()):
            if st[0] and st[1] < len(msg1):
                try:
                    s.send(msg1[st[1]:st[1] + 1]); st[1] += 1; sent += 1
                except OSError:
                    pass
    time.sleep(0.01)
print("made", made, "sent", sent, flush=True)
PY

nobody_reads server.conf	# posternd drops to nobody once its queue is bound
start_bg "$NS_S" "$POSTERND" -c server.conf 2> posternd.log
start_bg "$NS_S" "$TUNNELD" --allow-root -c server.conf 2> tunneld.log
TUNNELD_PID=$LAST_PID
wait_for 10 bash -c "ip netns exec $NS_S ss -ltn | grep -q ':$TPORT '"
start_sshd 127.0.0.1:22
start_bg "$NS_S" "$ECHO" $EPORT 85
start_bg "$NS_S" python3 services.py $CPORT $SPORT
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/127.0.0.1/22" 2>/dev/null
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/127.0.0.1/$SPORT" 2>/dev/null
wait_for 5 in_server grep -qE "^ *0 " /proc/net/netfilter/nfnetlink_queue

SSH=(ssh -i user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=20
     -o "ProxyCommand=$POSTERN -c $TMP/client.conf pipe %n 22" root@web1)
ssh_ok() {
	local out
	out=$(in_client "${SSH[@]}" echo "$1" 2>&1)
	echo "$out"
	[ "$out" = "$1" ]
}
# Under AddressSanitizer, RSS is mostly its quarantine and shadow: the
# memory bounds are checked in the normal build only.
if ldd "$TUNNELD" | grep -q libasan; then SANITIZED=1; else SANITIZED=0; fi
rss_within() {	# rss_within RSS BOUND
	[ "$SANITIZED" = 1 ] && { echo "(sanitizer build: bound not checked)"; return 0; }
	[ "$1" -le "$2" ]
}
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$TUNNELD_PID/status"; }
HZ=$(getconf CLK_TCK)

check "ssh through postern pipe works (knocking first)" ssh_ok before-ok
# The flood's address is admitted as if it had knocked.
in_server nft add element inet postern allow4 "{ $FLOOD4 . $TPORT timeout 300s }"

# 1. The flood.
rss0=$(rss_kib) cpu0=$(cpu_ticks "$TUNNELD_PID") t0=$(date +%s%N)
in_client python3 flood.py $FLOOD4 $SERVER4 $TPORT $FLOOD_CONNS $FLOOD_SECONDS > flood.out &
FLOOD=$!
wait_for 5 bash -c "ip netns exec $NS_S ss -tn state established '( sport = :$TPORT )' | grep -q $FLOOD4"
sleep 2
ok=0 peak=$rss0
for i in 1 2 3; do
	ssh_ok "during-$i" && ok=$((ok + 1))
	r=$(rss_kib); [ "$r" -gt "$peak" ] && peak=$r
done
wait $FLOOD
cpu1=$(cpu_ticks "$TUNNELD_PID") t1=$(date +%s%N)
cat flood.out
check "during the flood, ssh through postern pipe completes ($ok/3)" test $ok -eq 3
check "  ...the flood was processed: its handshakes were pushed out, per source" \
	grep -q "handshake from $FLOOD4:[0-9]* closed for a newer handshake: max_handshakes_per_source" tunneld.log
cpu_pct=$(( (cpu1 - cpu0) * 100 * 1000000000 / HZ / (t1 - t0) ))
echo "FIGURE flood: $(cat flood.out); tunneld RSS ${rss0} KiB before, ${peak} KiB peak; CPU ${cpu_pct}% of one core over the flood"

# 2a. Streams never read: chargen writes, the client never hands back
# credit. Per stream the daemon holds one 64 KiB read; per session about
# 1.5 MiB of queued output. The bound adds 2 MiB of allocator slack.
rss0=$(rss_kib)
peer() { in_client "$PEER" -k alice.key -s "$(cat server.pub)" -p psk "$SERVER4" "$TPORT" "$@"; }
peer streams $STREAMS $CPORT 6 noread > noread.out &
NOREAD=$!
wait_for 5 grep -q up noread.out
sleep 4
rss1=$(rss_kib)
wait $NOREAD
cat noread.out
bound=$(( rss0 + STREAMS * (64 + 4) + 1536 + 2048 ))
echo "FIGURE noread: $STREAMS streams, never read: RSS ${rss0} -> ${rss1} KiB (bound $bound KiB)"
check "$STREAMS streams opened and never read: all opened" grep -q "^ok $STREAMS reset 0" noread.out
check "  ...RSS ${rss1} KiB stays within ${bound} KiB" rss_within "$rss1" "$bound"

# 2b. Writes to a service that never reads: each stream's receive window
# (at most stream_buffer) is what the daemon may hold for it.
sleep 1	# the previous session's memory is freed once it closed
rss0=$(rss_kib)
peer push 64 $SPORT 6 > push.out &
PUSH=$!
wait_for 5 grep -q up push.out
sleep 4
rss2=$(rss_kib)
wait $PUSH
cat push.out
bound=$(( rss0 + 64 * (STREAM_BUFFER / 1024 + 4) + 1536 + 2048 ))
echo "FIGURE push: 64 streams into a service that never reads: RSS ${rss0} -> ${rss2} KiB (bound $bound KiB); $(grep pushed push.out)"
check "64 streams written into a service that never reads: RSS ${rss2} KiB within ${bound} KiB" \
	rss_within "$rss2" "$bound"

# 3. kill -9 under a connected forward; the gate closes meanwhile.
start_bg "$NS_C" "$POSTERN" -c client.conf forward -L 127.0.0.1:7000:web1:$EPORT 2> fwd.err
FWD=$LAST_PID
wait_for 10 grep -q "web1: tunnel up" fwd.err
echo_ok() {
	[ "$(echo "$1" | in_client timeout 20 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 7000)); s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR)
print(s.makefile().read().strip())')" = "$1" ]
}
check "a connection through the forward works" echo_ok fwd-before
knocks=$(grep -c "tunnel up (knocked" fwd.err)
kill -9 "$TUNNELD_PID"
check "forward notices the tunnel went" wait_for 10 grep -q "web1: tunnel closed" fwd.err
in_server nft flush set inet postern allow4
start_bg "$NS_S" "$TUNNELD" --allow-root -c server.conf 2>> tunneld.log
TUNNELD_PID=$LAST_PID
wait_for 10 bash -c "ip netns exec $NS_S ss -ltn | grep -q ':$TPORT '"
check "after the restart, the forward reconnects" echo_ok fwd-after
check "  ...knocking again, since the gate had closed" \
	test "$(grep -c "tunnel up (knocked" fwd.err)" -gt "$knocks"
stop_pid "$FWD"

kill -TERM "$TUNNELD_PID"
wait "$TUNNELD_PID"
check "postern-tunneld exits 0 on SIGTERM" test $? -eq 0
finish
