#!/usr/bin/env bash
# Reaching a server over a long, lossy link, as from hotel Wi-Fi on
# another continent: tests/linkemu between the namespaces, 500 ms each way
# (a second of round trip) and 10 % of the frames lost in each direction.
# postern knock --wait and postern pipe must get through, with no timing
# asserted: only that they do, and that the link really lost frames.
#
# usage: slow_link_test.sh BUILD_DIR
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld
ECHO=$BUILD/tests/echo_server LINKEMU=$BUILD/tests/linkemu
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
[ -x "$TUNNELD" ] && [ -x "$LINKEMU" ] || skip "postern-tunneld or linkemu is not built"
netns_setup slow
DELAY_MS=${SLOW_DELAY_MS:-500} LOSS_PERMILLE=${SLOW_LOSS_PERMILLE:-100}
netns_slow_link "$LINKEMU" $DELAY_MS 0 $LOSS_PERMILLE 0 1000 7
[ -n "${LINKEMU_PID:-}" ] || exit 1

KPORT=62207 TPORT=8443 EPORT=7777
umask 077
cd "$TMP"
gen_keys server alice
cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock { port = $KPORT  open_seconds = 120 }
tunnel {
	listen = {"$SERVER4:$TPORT"}
	egress = {$EPORT}
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {$TPORT}
}
CONF
client_conf client.conf alice.key server.pub psk
server_firewall server.conf || exit 1
nobody_reads server.conf
nobody_owns server.key psk

start_bg "$NS_S" "$POSTERND" -c server.conf 2> posternd.log
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2> tunneld.log
start_bg "$NS_S" "$ECHO" $EPORT 280
wait_for 5 in_server grep -qE "^ *0 " /proc/net/netfilter/nfnetlink_queue
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/$SERVER4/$TPORT" 2>/dev/null

# Each try starts from a shut gate that the client does not remember.
shut() {
	in_server nft flush set inet postern allow4
	in_server conntrack -F 2>/dev/null
	rm -f "$TMP/postern/gate-web1"
}
knock_wait() {
	shut
	in_client timeout 60 "$POSTERN" -c client.conf knock --wait web1
}
pipe_line() {
	local out
	shut
	out=$(echo "slow-$1" | in_client timeout 90 "$POSTERN" -c client.conf pipe web1 $EPORT)
	echo "$out"
	[ "$out" = "slow-$1" ]
}

for i in 1 2 3; do
	check "knock --wait opens over 1 s of round trip and 10 % loss ($i of 3)" knock_wait
done
for i in 1 2; do
	check "pipe carries a line over the same link ($i of 2)" pipe_line "$i"
done

stop_pid "$LINKEMU_PID"
cat linkemu.out
lost=$(awk '{ n += $5 } END { print n + 0 }' linkemu.out)
check "the link lost frames on the way (lost $lost)" test "$lost" -gt 0
finish
