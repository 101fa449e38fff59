#!/usr/bin/env bash
# postern end to end, on one machine: a server whose firewall drops every
# inbound packet, an administrator's device, one knock, and ssh through the
# tunnel to an sshd that listens on the server's loopback only.
#
# Two network namespaces on a veth pair play the two hosts. Everything is
# removed on exit, also after Ctrl-C or a failure. Run as root:
#     scripts/demo.sh       (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: run as root (network namespaces, nftables)" >&2
	[ -n "${POSTERN_BUILD:-}" ] && exit 77	# skipped, under ctest
	exit 1
fi

# POSTERN_BUILD=DIR uses an existing build (the test suite runs the demo so).
BUILD=${POSTERN_BUILD:-}
if [ -z "$BUILD" ]; then
	step "Installing dependencies and building"
	bash scripts/deps.sh
	cmake -S . -B build/demo >/dev/null
	cmake --build build/demo -j"$(nproc)" >/dev/null
	BUILD=$ROOT/build/demo
fi
POSTERN=$BUILD/client/postern
POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld
say "built $("$POSTERN" --version)"

. tests/netns_lib.sh
step "Creating two hosts: server $SERVER4 and admin $CLIENT4 (network namespaces)"
netns_setup demo
trap 'echo; echo "== cleaning up"; netns_cleanup' EXIT
say "server namespace: $NS_S, admin namespace: $NS_C"
cd "$TMP"
umask 077

step "Keys: one for the server, one for the admin's device, one fleet PSK"
"$POSTERN" genkey > server.key
"$POSTERN" pubkey < server.key > server.pub
"$POSTERN" genkey > admin.key
"$POSTERN" pubkey < admin.key > admin.pub
"$POSTERN" genpsk > psk
say "server public key: $(cat server.pub)"
say "admin public key:  $(cat admin.pub)"

mkdir server admin
cp server.key psk server/
cp admin.key psk admin/
cat > server/postern.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"		# posternd's, after binding its queue (production: postern-knock)
knock { port = 62201  open_seconds = 60  state_file = "state/knock.state" }
tunnel {
	listen = {"$SERVER4:8443"}
	egress = {22}
}
client "alice" {
	public_key = "$(cat admin.pub)"
	open = {8443}
}
CONF
cat > admin/postern.conf <<CONF
private_key_file = "admin.key"
psk_file = "psk"
server "web1" {
	address = "$SERVER4"
	knock_port = 62201
	tunnel_port = 8443
	public_key = "$(cat server.pub)"
}
CONF

step "Server firewall: policy drop, from posternd --print-nft"
"$POSTERND" --print-nft -c server/postern.conf > ruleset.nft
if in_server nft -f ruleset.nft 2>/dev/null; then
	say "loaded the printed ruleset as it is"
else
	# Kernels without nft's queue statement still have the xtables
	# NFQUEUE target: queue there, at a priority that runs first.
	sed -e 's/priority filter;/priority filter + 10;/' \
	    -e 's/queue num \([0-9]*\)/drop/' ruleset.nft > ruleset-xt.nft
	in_server nft -f ruleset-xt.nft
	in_server iptables-nft -A INPUT -p udp --dport 62201 -j NFQUEUE --queue-num 0
	in_server ip6tables-nft -A INPUT -p udp --dport 62201 -j NFQUEUE --queue-num 0
	say "this kernel has no nft queue statement: knocks are queued by iptables-nft"
fi
in_server nft list table inet postern | sed 's/^/   | /'

step "Server daemons: posternd (knocks), postern-tunneld (tunnel), sshd (loopback only)"
in_server "$POSTERND" -t -c server/postern.conf | sed 's/^/   /'
start_bg "$NS_S" "$POSTERND" -c server/postern.conf 2> posternd.log
wait_for 5 in_server grep -qE "^ *0 " /proc/net/netfilter/nfnetlink_queue
# postern-tunneld needs no privilege and refuses root: it runs as nobody
# here (setpriv; user postern under systemd), with its secrets its own.
chmod 711 server
nobody_reads server/postern.conf
nobody_owns server/server.key server/psk
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server/postern.conf 2> tunneld.log
start_sshd 127.0.0.1:22
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/127.0.0.1/22" 2>/dev/null
say "posternd (now user nobody, CAP_NET_ADMIN only), postern-tunneld (nobody,"
say "no capabilities) and sshd are running in $NS_S"

SSH_OPTS=(-i user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	  -o LogLevel=ERROR -o ConnectTimeout=3 -o BatchMode=yes)

step "Before knocking: the server answers nothing"
if in_client ssh "${SSH_OPTS[@]}" root@$SERVER4 true 2>/dev/null; then
	echo "demo.sh: ssh got through a closed gate" >&2
	exit 1
fi
say "ssh $SERVER4: no answer after 3 s (dropped; sshd listens on loopback only anyway)"
if in_client timeout 3 bash -c "exec 3<>/dev/tcp/$SERVER4/8443" 2>/dev/null; then
	echo "demo.sh: the tunnel port answered before a knock" >&2
	exit 1
fi
say "tunnel port 8443: no answer after 3 s"

step "Knock: postern knock --wait web1"
in_client "$POSTERN" -c admin/postern.conf knock --wait web1 | sed 's/^/   /'
say "posternd logged: $(tail -1 posternd.log)"
in_server nft list set inet postern allow4 | grep -A1 elements | sed 's/^/   | /'

step "ssh through the tunnel: ssh -o ProxyCommand='postern pipe %n 22' root@web1"
in_client ssh "${SSH_OPTS[@]}" -o "ProxyCommand=$POSTERN -c $TMP/admin/postern.conf pipe %n 22" \
	root@web1 'echo "hello from $(uname -n): sshd sees the connection from ${SSH_CONNECTION%% *}"' |
	sed 's/^/   > /'
say "postern-tunneld logged:"
grep -E "tunnel from|stream to" tunneld.log | sed 's/ (POSTERN_.*//; s/^/   | /'
say "done: one knock, one encrypted tunnel, ssh to a server that shows no open port"
