#!/usr/bin/env bash
# postern socks against posternd and postern-tunneld in a server namespace
# with a default-drop firewall and a real HTTP server on its loopback:
# curl and nc through the proxy by server name, by address (as a name and
# as an IPv4 or IPv6 literal), the SOCKS reply of each refusal (unknown
# host, unlisted port, nothing listening, no tunnel, bad method, another
# command), and the bounds on requests: slow ones are closed, and the cap
# on connections waiting for theirs is hit, then a request still works.
#
# usage: socks_test.sh BUILD_DIR  (KEEP_LOGS=DIR keeps the run's files)
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld
ECHO=$BUILD/tests/echo_server
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v curl >/dev/null || skip "curl is not installed"
[ -x "$TUNNELD" ] || skip "postern-tunneld is not built"
netns_setup socks

KPORT=62231 TPORT=8453 HPORT=8088 EPORT=7787 SPORT=1080 DPORT=1081
umask 077
cd "$TMP"
gen_keys server other alice

cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock { port = $KPORT  open_seconds = 120  state_file = "state/knock.state" }
tunnel {
	listen = {"$SERVER4:$TPORT", "[$SERVER6]:$TPORT"}
	egress = {22, $HPORT, $EPORT, 9}
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {$TPORT}
}
CONF
client_conf client.conf alice.key server.pub psk \
"server \"web6\" { address = \"$SERVER6\"  knock_port = $KPORT  tunnel_port = $TPORT  public_key = \"$(cat server.pub)\" }"
# A server whose key is wrong: the gate is open for our address (by
# client.conf's knocks), but the handshake is never answered.
client_conf down.conf alice.key other.pub psk

server_firewall server.conf || exit 1
nobody_reads server.conf
nobody_owns server.key psk

# The HTTP server's one file, made of bytes a text mangling would change.
mkdir www
{ printf 'postern socks test\r\n'; head -c 100000 /dev/urandom; } > www/file
chmod 755 www && chmod 644 www/file

HAVE_SSHD=
if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v nc >/dev/null; then
	start_sshd 127.0.0.1:22
	HAVE_SSHD=1
fi
start_bg "$NS_S" "$POSTERND" -c server.conf 2> posternd.log
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2> tunneld.log
start_bg "$NS_S" "$ECHO" $EPORT 280
start_bg "$NS_S" python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www" $HPORT \
	2> http.log
wait_for 5 in_server grep -qE "^ *0 " /proc/net/netfilter/nfnetlink_queue
wait_for 10 in_server bash -c "exec 3<>/dev/tcp/127.0.0.1/$HPORT" 2>/dev/null
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/127.0.0.1/$EPORT" 2>/dev/null
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/$SERVER4/$TPORT" 2>/dev/null

start_bg "$NS_C" "$POSTERN" -c client.conf socks 127.0.0.1:$SPORT > socks.out 2> socks.err
SOCKS=$LAST_PID
start_bg "$NS_C" "$POSTERN" -c down.conf socks "[::1]:$DPORT" > down.out 2> down.err
DOWN=$LAST_PID
wait_for 5 grep -q "socks5 on" socks.out
wait_for 5 grep -q "socks5 on" down.out

export TMP POSTERN NS_C SERVER4 SERVER6 HPORT EPORT SPORT DPORT
export -f in_client wait_for

# get ARGS...: curl through the proxy into get.out; its exit code.
get() { in_client curl -sS --max-time 30 -o "$TMP/get.out" "$@" 2> "$TMP/get.err"; }
# refused REPLY ARGS...: curl fails with the SOCKS5 reply REPLY (97,
# CURLE_PROXY, "Can't complete SOCKS5 connection to HOST. (REPLY)").
refused() {
	local rep=$1 rc
	shift
	get "$@"; rc=$?
	cat "$TMP/get.err"
	[ $rc -eq 97 ] && grep -qE "^curl: \(97\) Can't complete SOCKS5 connection to .*\. \($rep\)$" \
		"$TMP/get.err"
}
export -f get refused

check "socks prints its address" bash -c '[ "$(cat socks.out)" = "socks5 on 127.0.0.1:$SPORT" ]'
check "  ...and an IPv6 one" bash -c '[ "$(cat down.out)" = "socks5 on [::1]:$DPORT" ]'
check "socks knocks nothing at start" bash -c '! grep -q "opened" posternd.log'
check "curl --socks5-hostname by server name gets the file intact" bash -c '
	get --socks5-hostname 127.0.0.1:$SPORT http://web1:$HPORT/file && cmp www/file get.out'
check "  ...having knocked once, and the tunnel is up" bash -c '
	[ "$(grep -c "opened .* port" posternd.log)" -eq 1 ] && grep -q "web1: tunnel up" socks.err'
check "curl --socks5-hostname by the server's address gets the file" bash -c '
	get --socks5-hostname 127.0.0.1:$SPORT http://$SERVER4:$HPORT/file && cmp www/file get.out'
check "curl --socks5 (an IPv4 literal) gets the file" bash -c '
	get --socks5 127.0.0.1:$SPORT http://$SERVER4:$HPORT/file && cmp www/file get.out'
check "curl --socks5 (an IPv6 literal, server web6) gets the file" bash -c '
	get --socks5 127.0.0.1:$SPORT "http://[$SERVER6]:$HPORT/file" && cmp www/file get.out &&
	grep -q "web6: tunnel up" socks.err'
check "socks5h:// as a proxy URL, the same" bash -c '
	get -x socks5h://127.0.0.1:$SPORT http://web1:$HPORT/file && cmp www/file get.out'

check "an unknown host: reply 4, host unreachable" \
	refused 4 --socks5-hostname 127.0.0.1:$SPORT http://nosuch.example:$HPORT/
check "  ...with one line on stderr naming it" grep -qx \
	"postern: 127.0.0.1:$SPORT: nosuch.example:$HPORT: not a server of client.conf (by name or address): host unreachable" \
	socks.err
check "an unknown IPv4 address: reply 4" \
	refused 4 --socks5 127.0.0.1:$SPORT http://192.0.2.7:$HPORT/
check "an unlisted port: reply 2, not allowed by ruleset" \
	refused 2 --socks5-hostname 127.0.0.1:$SPORT http://web1:5432/
check "  ...with one line on stderr naming the server and the port" grep -qx \
	"postern: 127.0.0.1:$SPORT: web1: port 5432 not allowed (server allows: 22, $HPORT, $EPORT, 9)" \
	socks.err
check "a listed port with nothing listening: reply 5, refused" \
	refused 5 --socks5-hostname 127.0.0.1:$SPORT http://web1:9/
check "  ...said on stderr" grep -qx "postern: 127.0.0.1:$SPORT: web1: port 9: connection refused" socks.err
check "a tunnel that cannot be reached (wrong server key): reply 4" \
	refused 4 --socks5-hostname "[::1]:$DPORT" http://web1:$HPORT/
check "  ...with the reason on stderr" grep -q \
	"^postern: \[::1\]:$DPORT: web1: the server closed the connection before answering the handshake" \
	down.err

if command -v nc >/dev/null; then
	check "nc -X 5 by name reaches the echo service" bash -c '
		[ "$(echo via-nc | in_client timeout 30 nc -N -X 5 -x 127.0.0.1:$SPORT web1 $EPORT)" = via-nc ]'
else
	echo "# nc (netcat-openbsd) is not installed: its check is skipped"
fi
if [ -n "$HAVE_SSHD" ]; then
	check "ssh -o ProxyCommand=\"nc -X 5 -x ... %h %p\" runs a command" bash -c '
	out=$(in_client ssh -i user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=10 \
		-o "ProxyCommand=nc -X 5 -x 127.0.0.1:$SPORT %h %p" root@web1 echo via-socks 2>&1)
	echo "$out"; [ "$out" = via-socks ]'
fi

# The protocol's refusals, byte for byte, with a raw client: it sends
# ARG 1 (hex) and prints what comes back (hex) until the proxy closes.
cat > raw.py <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(30)
s.sendall(bytes.fromhex(sys.argv[2]))
got = b""
while True:
    d = s.recv(4096)
    if not d: break
    got += d
print(got.hex())
PY
raw() { in_client python3 raw.py $SPORT "$1"; }
export -f raw
check "only user/password offered: method 0xFF, then closed" bash -c '
	[ "$(raw 050102)" = 05ff ]'
check "BIND: reply 7, command not supported" bash -c '
	[ "$(raw 050100050200017f0000010050)" = 050005070001000000000000 ]'
check "address type 2: reply 8, address type not supported" bash -c '
	[ "$(raw 05010005010002)" = 050005080001000000000000 ]'
check "an empty domain name: reply 1" bash -c '
	[ "$(raw 0501000501000300"$(printf %04x $HPORT)")" = 050005010001000000000000 ]'
check "SOCKS4: closed without a word" bash -c '[ -z "$(raw 0401)" ]'
check "  ...each refusal is one line on stderr" bash -c '
	grep -qx "postern: 127.0.0.1:$SPORT: refused a request: command not supported (only CONNECT)" socks.err &&
	grep -qx "postern: 127.0.0.1:$SPORT: refused a request: not SOCKS version 5" socks.err'

# A request that never completes is closed after its few seconds.
check "half a greeting: closed by the proxy, said on stderr" bash -c '
	[ -z "$(raw 05)" ] && grep -qx "postern: 127.0.0.1:$SPORT: no request within 5 s: closed" socks.err'

# 64 connections waiting for their request: the 65th is closed at once,
# while the first is still served; once they go, a request works again.
cat > pending.py <<'PY'
import socket, sys
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(30)
if extra.recv(16) != b"":
    sys.exit("the 65th connection was not closed")
first = idle[0]
first.settimeout(30)
first.sendall(b"\x05\x01\x00")
if first.recv(16) != b"\x05\x00":
    sys.exit("the first connection was not served")
for s in idle:
    s.close()
PY
check "the 65th connection waiting for its request is closed at once" \
	in_client python3 pending.py $SPORT
check "  ...said once on stderr" bash -c '
	[ "$(grep -c "64 connections wait for their request: closing new ones" socks.err)" -eq 1 ]'
check "  ...and once they are gone a request goes through" wait_for 10 bash -c '
	get --socks5-hostname 127.0.0.1:$SPORT http://web1:$HPORT/file && cmp www/file get.out'

check "bad usage exits 2" bash -c '
	in_client "$POSTERN" -c client.conf socks 2>/dev/null; [ $? -eq 2 ] &&
	{ in_client "$POSTERN" -c client.conf socks 127.0.0.1:0 2>/dev/null; [ $? -eq 2 ]; } &&
	{ in_client "$POSTERN" -c client.conf socks 1080 1081 2>/dev/null; [ $? -eq 2 ]; }'

kill -TERM "$SOCKS"
wait "$SOCKS"
check "socks exits 0 on SIGTERM" test $? -eq 0
kill -INT "$DOWN"
wait "$DOWN"
check "socks exits 0 on SIGINT" test $? -eq 0

[ -n "${KEEP_LOGS:-}" ] && cp -r "$TMP" "$KEEP_LOGS"
finish
