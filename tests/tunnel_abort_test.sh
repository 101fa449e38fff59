#!/usr/bin/env bash
# postern-tunneld when a tunnel ends while its streams still have writes
# to the local service in flight (the service reads slowly, or not at
# all): the client is killed (-9) or simply goes (EOF). The daemon must
# close those local sockets at once (the service sees a reset), free the
# streams with their session, and go on serving; a write that fails
# after the session is gone must not touch it (the sanitizer build
# aborts on a use after free, and "still running" fails).
#
# No firewall and no posternd: the tunnel port is open, as it is to an
# address that knocked.
#
# usage: tunnel_abort_test.sh BUILD_DIR
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern TUNNELD=$BUILD/daemon/postern-tunneld
ECHO=$BUILD/tests/echo_server PEER=$BUILD/tests/tunnel_peer
NOTIFY=$BUILD/tests/notify_sink
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v python3 >/dev/null || skip "python3 is not installed"
command -v ss >/dev/null || skip "ss (iproute2) is not installed"
[ -x "$TUNNELD" ] || skip "postern-tunneld is not built"
netns_setup tabort
# Small socket send buffers on the server (loopback would grow them to
# megabytes): the daemon's writes to a service that does not read are
# soon waiting in the daemon, not in the kernel.
in_server sysctl -qw net.ipv4.tcp_wmem="4096 16384 65536" ||
	skip "cannot set net.ipv4.tcp_wmem in a namespace"

TPORT=8443 SPORT=7777 EPORT=7778
umask 077
cd "$TMP"
gen_keys server alice

cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
tunnel {
	listen = {"$SERVER4:$TPORT"}
	egress = {$SPORT, $EPORT}
	max_streams = 16
}
client "alice" { public_key = "$(cat alice.pub)" }
CONF
client_conf client.conf

# sink.py PORT DIR: a service that accepts, with a 4 KiB receive buffer,
# and never reads. It watches each connection for a hangup (a reset or a
# FIN from the daemon) without reading, and writes the counts to
# DIR/accepted and DIR/hangup. Once DIR/close exists it closes every
# connection (unread data: a reset towards the daemon) and writes
# DIR/closed.
cat > sink.py <<'PY'
import os, select, socket, sys, time
port, d = int(sys.argv[1]), sys.argv[2]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("127.0.0.1", port)); s.listen(64); s.setblocking(False)
conns, hung = [], set()
def put(name, n):
    with open(os.path.join(d, name + ".tmp"), "w") as f:
        f.write("%d\n" % n)
    os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name))
put("accepted", 0); put("hangup", 0)
p = select.poll(); p.register(s, select.POLLIN)
while True:
    for fd, ev in p.poll(50):
        if fd == s.fileno():
            c, _ = s.accept(); conns.append(c)
            p.register(c, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
            put("accepted", len(conns))
        elif ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
            hung.add(fd); p.unregister(fd); put("hangup", len(hung))
    if os.path.exists(os.path.join(d, "close")):
        for c in conns:
            c.close()
        put("closed", len(conns))
        conns, hung = [], set()
        put("accepted", 0); put("hangup", 0)
        os.unlink(os.path.join(d, "close"))
PY

start_bg "$NS_S" "$NOTIFY" "$TMP/notify" 110 > notify.log
wait_for 5 test -S "$TMP/notify"
start_bg "$NS_S" env NOTIFY_SOCKET="$TMP/notify" "$TUNNELD" --allow-root -c server.conf 2> tunneld.log
TUNNELD_PID=$LAST_PID
wait_for 10 bash -c "ip netns exec $NS_S ss -ltn | grep -q ':$TPORT '"
start_bg "$NS_S" "$ECHO" $EPORT 110
mkdir sink
start_bg "$NS_S" python3 sink.py $SPORT "$TMP/sink"
wait_for 5 test -f sink/hangup

count() { cat "sink/$1" 2>/dev/null; }
count_is() { [ "$(count "$1")" = "$2" ]; }
# Bytes the daemon has written to the sink and the kernel not yet sent:
# the sink's window is shut, the daemon's own writes queue behind them.
stuck() {
	in_server ss -tnH state established "( dport = :$SPORT )" |
		awk '$2 > 0 { n++ } END { exit !(n >= '"$1"') }'
}
alive() { kill -0 "$TUNNELD_PID" 2>/dev/null; }
pipe_ok() {
	local out
	out=$(echo "$1" | in_client "$POSTERN" -c client.conf pipe web1 $EPORT 2>&1)
	echo "$out"
	[ "$out" = "$1" ]
}
export -f status status_has wait_for
export TMP

check "a pipe works" pipe_ok before

# 1. postern pipe, fed 4 MB, into the sink; killed -9 once the daemon's
# writes to the sink are stuck.
head -c 4000000 /dev/zero > zeros
# (Not start_bg: a command started with & in a function reads /dev/null.)
ip netns exec "$NS_C" "$POSTERN" -c client.conf pipe web1 $SPORT < zeros > /dev/null 2> pipe.err &
PIPE=$!
PIDS+=($PIPE)
check "a pipe into a service that never reads: the daemon's writes back up" \
	wait_for 10 stuck 1
sleep 1	# the stream's window fills: a local write is in flight
kill -9 "$PIPE"
wait "$PIPE" 2>/dev/null
check "  ...the client is killed: the service sees its connection reset" \
	wait_for 5 count_is hangup 1
check "  ...the session and its stream are gone (STATUS=)" \
	wait_for 5 status_has "^STATUS=sessions 0, streams open 0,"
check "  ...postern-tunneld still runs" alive
touch sink/close
wait_for 5 test -f sink/closed
sleep 0.5	# had the stream outlived its session, its write would fail now
check "  ...and still runs once the service closes (a write failing there touches nothing)" alive
check "  ...and serves" pipe_ok after-kill

# 2. Eight streams of one tunnel pushing into the sink; the client ends
# the tunnel (EOF) with all eight backed up.
rm -f sink/closed
in_client "$PEER" -k alice.key -s "$(cat server.pub)" -p psk "$SERVER4" "$TPORT" \
	push 8 $SPORT 6 > push.out &
PUSH=$!
check "eight streams pushing into the sink: all eight back up" wait_for 10 stuck 8
check "  ...counted open in STATUS=" wait_for 3 status_has "^STATUS=sessions 1, streams open 8,"
wait $PUSH
cat push.out
check "  ...the tunnel ends: the service sees all eight reset" \
	wait_for 5 count_is hangup 8
check "  ...no stream is left open" \
	wait_for 5 status_has "^STATUS=sessions 0, streams open 0,"
touch sink/close
wait_for 5 test -f sink/closed
sleep 0.5
check "  ...postern-tunneld still runs" alive
check "  ...and serves" pipe_ok after-eof

kill -TERM "$TUNNELD_PID"
wait "$TUNNELD_PID"
check "postern-tunneld exits 0 on SIGTERM" test $? -eq 0
if grep -q "ERROR: AddressSanitizer\|runtime error:" tunneld.log; then
	check "no sanitizer report from postern-tunneld" false
	grep -A30 "ERROR: AddressSanitizer\|runtime error:" tunneld.log | head -40
fi
finish
