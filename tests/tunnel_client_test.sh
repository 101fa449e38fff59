#!/usr/bin/env bash
# The client side of the tunnel: postern pipe and postern forward against
# posternd and postern-tunneld in a server namespace with a default-drop
# firewall. What this checks is the client's own behaviour: knocking only
# when the gate is closed, every kind of standard input and output, half-
# close both ways, the errors it prints, forward's listeners and config
# blocks, and a forward that outlives its tunnel.
#
# usage: tunnel_client_test.sh BUILD_DIR  (KEEP_LOGS=DIR keeps the run's files)
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld
ECHO=$BUILD/tests/echo_server LOAD=$BUILD/tests/echo_load
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
[ -x "$TUNNELD" ] || skip "postern-tunneld is not built"
netns_setup tcli

KPORT=62201 TPORT=8443 EPORT=7777 GPORT=7778
umask 077
cd "$TMP"
gen_keys server other alice

cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock { port = $KPORT  open_seconds = 120  state_file = "state/knock.state" }
tunnel {
	listen = {"$SERVER4:$TPORT"}
	egress = {22, $EPORT, $GPORT, 9}
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {$TPORT}
}
CONF
client_conf client.conf alice.key server.pub psk
client_conf wrong-server.conf alice.key other.pub psk
client_conf wrong-server-2s.conf alice.key other.pub psk "connect_timeout = 2"
client_conf wrong-psk.conf alice.key server.pub otherpsk
client_conf forwards.conf alice.key server.pub psk "forward { listen = \"127.0.0.1:7101\"  server = \"web1\"  port = $EPORT }
forward { listen = \"127.0.0.1:7102\"  server = \"web1\"  port = $GPORT }
server \"web2\" { address = \"$SERVER4\"  knock_port = $KPORT  public_key = \"$(cat server.pub)\" }
server \"web3\" { address = \"$SERVER4\"  knock_port = $KPORT  public_key = \"$(cat server.pub)\" }
forward { listen = \"127.0.0.1:7103\"  server = \"web2\"  port = $EPORT }"

server_firewall server.conf || exit 1
nobody_reads server.conf
nobody_owns server.key psk

# A service that says hello, half-closes, and notes when the client's
# FIN arrives: the server's FIN must reach postern's reader while
# postern's standard input is still open.
cat > greet.py <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    try:	# a probe that hung up at once must not end the service
        c.sendall(b"hello\n")
        c.shutdown(socket.SHUT_WR)
        c.settimeout(30)
        while c.recv(65536):
            pass
        open(sys.argv[2], "a").write("client-fin\n")
    except OSError:
        pass
    c.close()
PY

# sshd on the server's loopback, for ProxyCommand.
HAVE_SSHD=
if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null; then
	start_sshd 127.0.0.1:22
	HAVE_SSHD=1
fi

start_bg "$NS_S" "$POSTERND" -c server.conf 2> posternd.log
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2> tunneld.log
TUNNELD_PID=$LAST_PID
start_bg "$NS_S" "$ECHO" $EPORT 280
start_bg "$NS_S" python3 greet.py $GPORT "$TMP/greet.log"
wait_for 5 in_server grep -qE "^ *0 " /proc/net/netfilter/nfnetlink_queue
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/127.0.0.1/$GPORT" 2>/dev/null
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/$SERVER4/$TPORT" 2>/dev/null

export TMP POSTERN NS_C SERVER4 TPORT EPORT GPORT
export -f in_client wait_for
knocks() { grep -c "opened .* port $TPORT" "$TMP/posternd.log"; }
export -f knocks

check "the tunnel port is closed before a knock" bash -c '
	in_client timeout 2 bash -c "exec 3<>/dev/tcp/$SERVER4/$TPORT" 2>/dev/null; [ $? -eq 124 ]'
check "pipe knocks, then carries a line to the echo service and back" bash -c '
	out=$(echo hello-pipe | in_client "$POSTERN" -c client.conf pipe web1 $EPORT); rc=$?
	echo "$out"; [ $rc -eq 0 ] && [ "$out" = hello-pipe ] && [ "$(knocks)" -eq 1 ]'
check "a second pipe finds the gate open and does not knock" bash -c '
	out=$(echo again | in_client "$POSTERN" -c client.conf pipe web1 $EPORT); rc=$?
	[ $rc -eq 0 ] && [ "$out" = again ] && [ "$(knocks)" -eq 1 ]'
# The memo of that knock outlives the gate: the next pipe tries the
# port first, hears nothing, knocks and gets through.
in_server nft flush set inet postern allow4
check "a pipe that remembers an open gate, now shut, knocks and gets through" bash -c '
	[ -s "$TMP/postern/gate-web1" ] || { echo "no memo"; exit 1; }
	out=$(echo shut | in_client "$POSTERN" -c client.conf pipe web1 $EPORT); rc=$?
	echo "$out"; [ $rc -eq 0 ] && [ "$out" = shut ] && [ "$(knocks)" -eq 2 ]'
# A memo that is garbage, names another address, or is stamped in the
# future is a hint at worst: each pipe still knocks and gets through.
in_server nft flush set inet postern allow4
check "a garbage, foreign or future memo: each pipe knocks and gets through" bash -c '
	for memo in "garbage" "203.0.113.9 $TPORT $(date +%s)000 1" \
		    "$SERVER4 $TPORT 99999999999999 1"; do
		echo "$memo" > "$TMP/postern/gate-web1"
		out=$(echo forged | in_client "$POSTERN" -c client.conf pipe web1 $EPORT) || exit 1
		[ "$out" = forged ] || exit 1
		in_server nft flush set inet postern allow4
	done
	[ "$(knocks)" -eq 5 ]'

head -c $((8 << 20)) /dev/urandom > big
check "8 MiB from a regular file to a regular file (bridged) arrive intact" bash -c '
	in_client "$POSTERN" -c client.conf pipe web1 $EPORT < big > big.out && cmp big big.out'
check "8 MiB between pipes arrive intact" bash -c '
	cat big | in_client "$POSTERN" -c client.conf pipe web1 $EPORT | cat > big.out2 &&
	cmp big big.out2'
check "stdin from /dev/null: the stream ends at once, exit 0" bash -c '
	out=$(in_client "$POSTERN" -c client.conf pipe web1 $EPORT < /dev/null); rc=$?
	[ $rc -eq 0 ] && [ -z "$out" ]'
check "standard input and output on one socket (inetd style)" bash -c '
	in_client python3 -c "
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen([sys.argv[1], \"-c\", \"client.conf\", \"pipe\", \"web1\", sys.argv[2]],
                     stdin=b, stdout=b)
b.close()
a.sendall(b\"over-one-socket\")
a.shutdown(socket.SHUT_WR)
got = b\"\"
while True:
    d = a.recv(4096)
    if not d: break
    got += d
sys.exit(0 if got == b\"over-one-socket\" and p.wait() == 0 else 1)" "$POSTERN" $EPORT'

# The server's FIN closes postern's standard output while its standard
# input stays open; then the end of standard input sends our FIN.
check "half-close: the server's FIN closes stdout before stdin ends; exit 0" \
	timeout 20 bash -c '
	: > greet.log			# the start-up probe may have left a line
	coproc P { exec ip netns exec $NS_C "$POSTERN" -c client.conf pipe web1 $GPORT; }
	pid=$P_PID
	exec {out}<&"${P[0]}"		# coproc descriptors skip subshells
	got=$(cat <&$out)		# returns only once postern closed stdout
	[ "$got" = hello ] || { echo "got: $got"; exit 1; }
	[ ! -s greet.log ] || { echo early-fin; exit 1; }	# and we have not sent our FIN yet
	exec {P[1]}>&-
	wait $pid || { echo "rc: $?"; exit 1; }
	for _ in $(seq 50); do grep -q client-fin greet.log && exit 0; sleep 0.1; done
	exit 1'

check "standard input from a tty" bash -c '
	in_client python3 -c "
import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.Popen([sys.argv[1], \"-c\", \"client.conf\", \"pipe\", \"web1\", sys.argv[2]],
                     stdin=s, stdout=subprocess.PIPE)
os.close(s)
os.write(m, b\"from-a-tty\\n\\x04\")	# a line, then end-of-file
out = p.communicate(timeout=15)[0]
sys.exit(0 if out == b\"from-a-tty\\n\" and p.returncode == 0 else 1)" "$POSTERN" $EPORT'
if [ -n "$HAVE_SSHD" ]; then
	check "ssh -o ProxyCommand=\"postern pipe %n 22\" runs a command" bash -c '
	out=$(in_client ssh -i user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=10 \
		-o "ProxyCommand=$POSTERN -c $TMP/client.conf pipe %n 22" root@web1 echo via-ssh 2>&1)
	echo "$out"; [ "$out" = via-ssh ]'
fi

check "a port outside the hello's list fails fast, naming the allowed ones" bash -c '
	out=$(in_client "$POSTERN" -c client.conf pipe web1 5432 < /dev/null 2>&1); rc=$?
	echo "$out"
	[ $rc -eq 1 ] && [ "$out" = "postern: web1: port 5432 not allowed (server allows: 22, $EPORT, $GPORT, 9)" ]'
check "an allowed port with nothing listening: connection refused" bash -c '
	out=$(in_client "$POSTERN" -c client.conf pipe web1 9 < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && [ "$out" = "postern: web1: port 9: connection refused" ]'
check "an unknown server name is an error" bash -c '
	out=$(in_client "$POSTERN" -c client.conf pipe nosuch 22 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "no server .nosuch."'
check "bad usage exits 2" bash -c '
	in_client "$POSTERN" -c client.conf pipe web1 2>/dev/null; [ $? -eq 2 ] &&
	{ in_client "$POSTERN" -c client.conf pipe web1 0 2>/dev/null; [ $? -eq 2 ]; } &&
	{ in_client "$POSTERN" -c client.conf forward -L 2201:web1 2>/dev/null; [ $? -eq 2 ]; }'

# The gate is open for our address now: the handshake is what fails.
refused="handshake refused: wrong server key or PSK, or this device.s key is not allowed"
closed="the server closed the connection before answering the handshake (5 tries). Possible causes, most likely first: the server is busy"
export refused closed
check "a wrong server key: closed before an answer, retried, causes listed" bash -c '
	out=$(in_client "$POSTERN" -c wrong-server.conf pipe web1 $EPORT < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -qF "postern: web1: $closed" &&
	echo "$out" | grep -q "server.s journal says which"'
check "a wrong PSK: the answer does not authenticate" bash -c '
	out=$(in_client "$POSTERN" -c wrong-psk.conf pipe web1 $EPORT < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "^postern: web1: $refused"'

# forward: -L listeners, then the config's blocks.
start_bg "$NS_C" "$POSTERN" -c client.conf forward -L 7001:web1:$EPORT \
	-L 127.0.0.1:7002:web1:$GPORT -L 7003:web1:9 -L "[::1]:7004:web1:$EPORT" \
	> fwd.out 2> fwd.err
FWD=$LAST_PID
wait_for 5 grep -q 7004 fwd.out
check "forward prints one line per listener" bash -c '
	[ "$(cat fwd.out)" = "forwarding 127.0.0.1:7001 to web1 port $EPORT
forwarding 127.0.0.1:7002 to web1 port $GPORT
forwarding 127.0.0.1:7003 to web1 port 9
forwarding [::1]:7004 to web1 port $EPORT" ]'
check "forward warms its tunnel at start" wait_for 5 grep -q "web1: tunnel up" fwd.err
check "a forwarded connection reaches the echo service" bash -c '
	[ "$(in_client python3 -c "
import socket
s = socket.create_connection((\"127.0.0.1\", 7001)); s.sendall(b\"fwd-ok\"); s.shutdown(socket.SHUT_WR)
print(s.makefile().read())")" = fwd-ok ]'
check "an IPv6 listener works too" bash -c '
	[ "$(in_client python3 -c "
import socket
s = socket.create_connection((\"::1\", 7004)); s.sendall(b\"v6\"); s.shutdown(socket.SHUT_WR)
print(s.makefile().read())")" = v6 ]'
check "a refused service closes that one connection, with a log line" bash -c '
	in_client python3 -c "
import socket
s = socket.create_connection((\"127.0.0.1\", 7003)); assert s.recv(10) == b\"\"" &&
	wait_for 3 grep -q "postern: 127.0.0.1:7003: web1: port 9: connection refused" fwd.err'
check "40 concurrent connections through one forward" \
	in_client "$LOAD" 127.0.0.1 7001 40 262144 60
check "  ...spread over a second tunnel (pool of 2)" bash -c '
	[ "$(grep -c "web1: tunnel up" fwd.err)" -eq 2 ]'

# The tunnel daemon dies and comes back: forward stays up, and the next
# connection gets a new tunnel.
kill -9 "$TUNNELD_PID"
check "forward notices the tunnel went" wait_for 5 grep -q "web1: tunnel closed" fwd.err
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2>> tunneld.log
TUNNELD_PID=$LAST_PID
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/$SERVER4/$TPORT" 2>/dev/null
check "forward outlives its tunnel: the next connection reconnects" bash -c '
	[ "$(in_client python3 -c "
import socket
s = socket.create_connection((\"127.0.0.1\", 7001)); s.sendall(b\"back\"); s.shutdown(socket.SHUT_WR)
print(s.makefile().read())")" = back ]'

# A dead path: the server goes silent on the tunnel in use (its packets
# dropped both ways; TCP on our side still believes it alive). The next
# connection's open goes unanswered, the tunnel is given up, and the
# request goes again on a fresh one, which gets through.
echo_via() {	# echo_via PORT WORD: the echo through the forward, in 30 s
	[ "$(in_client timeout 30 python3 -c "
import socket
s = socket.create_connection((\"127.0.0.1\", $1)); s.sendall(b\"$2\"); s.shutdown(socket.SHUT_WR)
print(s.makefile().read())")" = "$2" ]
}
export -f echo_via
tunnel_ports() {
	in_client ss -Htn state established "dst $SERVER4:$TPORT" |
		awk '{ n = split($3, a, ":"); print a[n] }'
}
OLD_PORTS=$(tunnel_ports)
for p in $OLD_PORTS; do
	in_server iptables-nft -I INPUT -p tcp --sport "$p" -j DROP
	in_server iptables-nft -I OUTPUT -p tcp --dport "$p" -j DROP
done
check "a silent tunnel: the dropped one was in use" test -n "$OLD_PORTS"
check "a silent tunnel: the next connection goes through a fresh one" \
	echo_via 7001 silent
check "  ...the silent one was given up for its unanswered open" \
	grep -q "web1: tunnel closed: no answer from the peer to a new stream" fwd.err
check "  ...and the request was not failed to the caller" bash -c '
	! grep -q "7001: web1: port $EPORT: tunnel lost" fwd.err'

# The laptop's address changes: the tunnel from the old one is ended at
# once, and the next connection knocks from the new address.
in_client sysctl -qw net.ipv4.conf.veth-c.promote_secondaries=1
in_client ip addr add 198.51.100.42/24 dev veth-c
export KNOCKS_BEFORE=$(grep -c "opened 198.51.100.42" "$TMP/posternd.log")
in_client ip addr del "$CLIENT4/24" dev veth-c
check "an address that went away ends its tunnel at once" \
	wait_for 3 grep -q "web1: tunnel closed: local address $CLIENT4 went away" fwd.err
check "  ...and the next connection knocks from the new address" bash -c '
	echo_via 7001 moved &&
	[ "$(grep -c "opened 198.51.100.42" "$TMP/posternd.log")" -gt "$KNOCKS_BEFORE" ]'
in_client ip addr add "$CLIENT4/24" dev veth-c
in_client ip addr del 198.51.100.42/24 dev veth-c
for p in $OLD_PORTS; do
	in_server iptables-nft -D INPUT -p tcp --sport "$p" -j DROP
	in_server iptables-nft -D OUTPUT -p tcp --dport "$p" -j DROP
done
kill -TERM "$FWD"
wait "$FWD"
check "forward exits 0 on SIGTERM" test $? -eq 0

start_bg "$NS_C" "$POSTERN" -c forwards.conf forward > fwd2.out 2> fwd2.err
FWD=$LAST_PID
wait_for 5 grep -q 7102 fwd2.out
check "forward without -L uses the config's forward blocks" bash -c '
	grep -q "forwarding 127.0.0.1:7101 to web1 port $EPORT" fwd2.out &&
	[ "$(in_client python3 -c "
import socket
s = socket.create_connection((\"127.0.0.1\", 7101)); s.sendall(b\"cfg\"); s.shutdown(socket.SHUT_WR)
print(s.makefile().read())")" = cfg ]'
kill -INT "$FWD"
wait "$FWD"
check "forward exits 0 on SIGINT" test $? -eq 0

# forward NAME: that server's blocks only (postern-forward@NAME.service).
start_bg "$NS_C" "$POSTERN" -c forwards.conf forward web1 > fwd3.out 2> fwd3.err
FWD=$LAST_PID
wait_for 5 grep -q 7102 fwd3.out
check "forward web1 listens on web1's blocks only" bash -c '
	[ "$(cat fwd3.out)" = "forwarding 127.0.0.1:7101 to web1 port $EPORT
forwarding 127.0.0.1:7102 to web1 port $GPORT" ]'
check "  ...and they reach the service" bash -c '
	[ "$(in_client python3 -c "
import socket
s = socket.create_connection((\"127.0.0.1\", 7101)); s.sendall(b\"one\"); s.shutdown(socket.SHUT_WR)
print(s.makefile().read())")" = one ]'
stop_pid "$FWD"
check "forward NAME without blocks for it says so" bash -c '
	out=$(in_client "$POSTERN" -c forwards.conf forward web3 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "has no forward blocks for web3"'
check "forward NAME of no server says so" bash -c '
	out=$(in_client "$POSTERN" -c forwards.conf forward nosuch 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "no server .nosuch."'
check "forward NAME with -L is a usage error" bash -c '
	in_client "$POSTERN" -c forwards.conf forward -L 7001:web1:22 web1 2>/dev/null; [ $? -eq 2 ]' 
check "forward with nothing to forward says so" bash -c '
	out=$(in_client "$POSTERN" -c client.conf forward 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "nothing to forward"'

# The gate closes: nothing listens once tunneld is gone, but a knock
# still opens the firewall, and the refusal is named.
kill -TERM "$TUNNELD_PID"
wait "$TUNNELD_PID" 2>/dev/null
check "the gate opens but nothing listens: says so" bash -c '
	out=$(in_client "$POSTERN" -c client.conf pipe web1 $EPORT < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "refused the connection: is postern-tunneld running?"'
in_server nft flush set inet postern allow4
in_server conntrack -F 2>/dev/null
check "a knock the server ignores: knock unanswered after 5 s" bash -c '
	out=$(in_client "$POSTERN" -c wrong-server.conf pipe web1 $EPORT < /dev/null 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "^postern: web1: knock unanswered"'
check "connect_timeout = 2: unanswered after 2 s, having knocked twice" bash -c '
	out=$(in_client "$POSTERN" -c wrong-server-2s.conf knock --wait web1 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "still closed after 2 s and 2 knocks"'

[ -n "${KEEP_LOGS:-}" ] && cp -r "$TMP" "$KEEP_LOGS"
finish
