#!/usr/bin/env bash
# postern doctor against posternd and postern-tunneld in a server
# namespace with a default-drop firewall: its whole output, word for word
# (measured times masked), for a healthy server and for each fault it
# names, alone and next to a healthy one; and forward -L to a port the
# server does not offer, said at tunnel set-up.
#
# The firewall is the printed one as production loads it, with the one
# emulation every test uses (server_firewall in netns_lib.sh): this kernel
# has no nft queue statement, so iptables-nft queues the knocks. With
# posternd stopped the knocks are dropped, as the printed rule does. Last,
# a ruleset whose queue rule has bypass: a knock then reaches the UDP
# stack, and its port unreachable tells that case apart.
#
# usage: doctor_test.sh BUILD_DIR  (KEEP_LOGS=DIR keeps the run's files)
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld
ECHO=$BUILD/tests/echo_server
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
[ -x "$TUNNELD" ] || skip "postern-tunneld is not built"
netns_setup doc

KPORT=62231 TPORT=8453 EPORT=7787
umask 077
cd "$TMP"
gen_keys server other alice bob

cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock { port = $KPORT  open_seconds = 120  state_file = "state/knock.state" }
tunnel {
	listen = {"$SERVER4:$TPORT"}
	egress = {22, $EPORT}
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {$TPORT}
}
CONF
T2="connect_timeout = 2"
client_conf good.conf alice.key server.pub psk "$T2"
client_conf wrong-psk.conf alice.key server.pub otherpsk "$T2"
client_conf wrong-key.conf alice.key other.pub psk "$T2"
client_conf unlisted.conf bob.key server.pub psk "$T2"
KPORT=62232 client_conf wrong-kport.conf alice.key server.pub psk "$T2"
client_conf two.conf alice.key server.pub psk "$T2
server \"web2\" { address = \"$SERVER6\"  knock_port = $KPORT  tunnel_port = $TPORT
	public_key = \"$(cat other.pub)\" }"
client_conf same.conf alice.key server.pub psk "$T2
server \"web3\" { address = \"$SERVER4\"  knock_port = $KPORT  tunnel_port = $TPORT
	public_key = \"$(cat other.pub)\" }"

server_firewall server.conf || exit 1
nobody_reads server.conf
nobody_owns server.key psk

start_bg "$NS_S" "$POSTERND" -c server.conf 2> posternd.log
POSTERND_PID=$LAST_PID
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2> tunneld.log
TUNNELD_PID=$LAST_PID
start_bg "$NS_S" "$ECHO" $EPORT 280
wait_for 5 in_server grep -qE "^ *0 " /proc/net/netfilter/nfnetlink_queue
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/$SERVER4/$TPORT" 2>/dev/null

# Measured numbers vary: times become N, the skew's sign ±.
mask() { sed -E -e 's/[0-9]+\.[0-9]+ (ms|s)\b/N \1/g' -e 's/skew [-+]N/skew ±N/'; }
# doctor CONF [NAME...]: its masked output (both streams), then its exit.
doctor() {
	local conf=$1 out rc
	shift
	out=$(in_client "$POSTERN" -c "$conf" doctor "$@" 2>&1); rc=$?
	printf '%s\nexit %d\n' "$out" "$rc" | mask
}
# expect WHAT WANT CONF [NAME...]: doctor's output is exactly WANT.
expect() {
	local what=$1 want=$2 got
	shift 2
	got=$(doctor "$@")
	TEST_CHECKS=$((TEST_CHECKS + 1))
	if [ "$got" = "$want" ]; then
		echo "ok - $what"
	else
		echo "not ok - $what"
		diff <(echo "$want") <(echo "$got") | sed 's/^/#   /'
		TEST_FAILS=$((TEST_FAILS + 1))
	fi
}
knocks() { grep -c "opened .* port $TPORT" posternd.log; }

OK="web1: resolve $SERVER4 (N ms)
web1: knock port $KPORT: tunnel port $TPORT open after N ms (1 knock)
web1: handshake ok (N ms)
web1: ports 22, $EPORT
web1: clock skew ±N s
web1: ok"
UNANSWERED="web1: fail: the knocks were not accepted: the server key, the PSK or knock_port may be wrong, this device's key may not be allowed (on the server: postern gate allow), the clocks may be further apart than the knock window, the knocks may not open tunnel_port, posternd may not be running, or the link lost them; on the server, postern gate status says which"

expect "a healthy server: each step, ok, exit 0" "$OK
exit 0" good.conf
check "that doctor's knock opened the gate" [ "$(knocks)" -eq 1 ]
expect "the gate still open: the knock is skipped and said to be untested" \
"web1: resolve $SERVER4 (N ms)
web1: knock skipped: tunnel port $TPORT open before any knock (N ms): the gate was open already, the knock is not tested
web1: handshake ok (N ms)
web1: ports 22, $EPORT
web1: clock skew ±N s
web1: ok
exit 0" good.conf web1
expect "the gate open, a wrong PSK: the server's answer does not authenticate" \
"web1: resolve $SERVER4 (N ms)
web1: knock skipped: tunnel port $TPORT open before any knock (N ms): the gate was open already, the knock is not tested
web1: handshake: the server's answer does not authenticate
web1: fail: the PSK differs from the server's (the gate was open before any knock, or the knock would have shown it), or the answer was altered on the way
exit 1" wrong-psk.conf
expect "the gate open, a wrong server key: closed before an answer" \
"web1: resolve $SERVER4 (N ms)
web1: knock skipped: tunnel port $TPORT open before any knock (N ms): the gate was open already, the knock is not tested
web1: handshake: the server closed the connection before its answer (5 tries)
web1: fail: the server key is wrong, this device's key is not allowed, or the server is busy (the gate was open before any knock); on the server: postern gate status
exit 1" wrong-key.conf

flush_sets
for conf in wrong-psk wrong-key wrong-kport unlisted; do
	expect "$conf: no answer to the knocks, every cause listed" \
"web1: resolve $SERVER4 (N ms)
web1: knock port $( [ $conf = wrong-kport ] && echo 62232 || echo $KPORT): tunnel port $TPORT no answer in 2 s (2 knocks)
$UNANSWERED
exit 1" $conf.conf
done
check "none of those knocks opened the gate" [ "$(knocks)" -eq 1 ]

expect "two servers, one good, one bad: both reported in order, exit 1" "$OK
web2: resolve $SERVER6 (N ms)
web2: knock port $KPORT: tunnel port $TPORT no answer in 2 s (2 knocks)
${UNANSWERED//web1/web2}
exit 1" two.conf
flush_sets
expect "two names for one address: checked in turn, the second finds the gate open" "$OK
web3: resolve $SERVER4 (N ms)
web3: knock skipped: tunnel port $TPORT open before any knock (N ms): the gate was open already, the knock is not tested
web3: handshake: the server closed the connection before its answer (5 tries)
web3: fail: the server key is wrong, this device's key is not allowed, or the server is busy (the gate was open before any knock); on the server: postern gate status
exit 1" same.conf

# forward -L to a port the hello does not list: one line at tunnel set-up.
flush_sets
start_bg "$NS_C" "$POSTERN" -c good.conf forward -L 7201:web1:5432 \
	-L 7202:web1:$EPORT > fwd.out 2> fwd.err
FWD_PID=$LAST_PID
wait_for 5 grep -q "tunnel up" fwd.err
check "forward -L to an unlisted port: said once, at tunnel set-up" bash -c '
	want="postern: web1: port 5432 not allowed (server allows: 22, $1): the forward from 127.0.0.1:7201 fails until the server'"'"'s tunnel.egress lists it
postern: web1: tunnel up (knocked, N ms)"
	got=$(sed -E "s/[0-9]+ ms/N ms/" fwd.err)
	[ "$got" = "$want" ] || { echo "$got"; exit 1; }' _ "$EPORT"
stop_pid "$FWD_PID"

flush_sets
stop_pid "$TUNNELD_PID"
expect "postern-tunneld stopped: the gate opens, the port refuses" \
"web1: resolve $SERVER4 (N ms)
web1: knock port $KPORT: tunnel port $TPORT refused the connection after N ms (1 knock)
web1: fail: the gate opened but nothing listens at port $TPORT: postern-tunneld is not running, or tunnel_port is not its tunnel.listen port; on the server: systemctl status postern-tunneld
exit 1" good.conf

flush_sets
stop_pid "$POSTERND_PID"
expect "posternd stopped: no answer to the knocks, every cause listed" \
"web1: resolve $SERVER4 (N ms)
web1: knock port $KPORT: tunnel port $TPORT no answer in 2 s (2 knocks)
$UNANSWERED
exit 1" good.conf

# A queue rule with bypass (not what --print-nft prints): with posternd
# stopped the knock reaches the UDP stack, which answers.
for ipt in iptables-nft ip6tables-nft; do
	in_server $ipt -R INPUT 1 -p udp --dport $KPORT -j NFQUEUE --queue-num 0 \
		--queue-bypass || exit 1
done
in_server nft insert rule inet postern input udp dport $KPORT accept || exit 1
expect "posternd stopped behind a bypass rule: the knock port answers port unreachable" \
"web1: resolve $SERVER4 (N ms)
web1: knock to port $KPORT answered: Connection refused
web1: fail: nothing takes knocks at port $KPORT: the server's firewall lets them through to a port where nothing listens (a queue rule with bypass while posternd is not running, or a knock_port that is wrong and not filtered); on the server: systemctl status posternd
exit 1" good.conf

check "bad usage exits 2" bash -c '
	ip netns exec "$0" "$1" -c "$2" doctor --all 2>/dev/null; [ $? -eq 2 ]' \
	"$NS_C" "$POSTERN" good.conf
expect "an unknown name: exit 1, nothing checked" \
"postern: no server 'nosuch' in good.conf
exit 1" good.conf web1 nosuch

[ -n "${KEEP_LOGS:-}" ] && cp -r "$TMP" "$KEEP_LOGS"
finish
