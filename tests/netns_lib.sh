# Shared by the network-namespace tests: two hosts on a veth pair, a server
# and a client, named uniquely per test run so tests can run side by side.
# Source it, then call netns_setup. Everything is removed on exit.
#
#   server: 198.51.100.1/24, 2001:db8:51::1/64   (namespace $NS_S)
#   client: 198.51.100.2/24, 2001:db8:51::2/64   (namespace $NS_C)

SERVER4=198.51.100.1 CLIENT4=198.51.100.2
SERVER6=2001:db8:51::1 CLIENT6=2001:db8:51::2

TEST_FAILS=0 TEST_CHECKS=0
PIDS=()

skip() {
	echo "SKIP: $*"
	exit 77
}

require_root_netns() {
	[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces and nftables"
	command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
	command -v nft >/dev/null || skip "nftables (nft) is not installed"
	ip netns add "pst-probe-$$" 2>/dev/null || skip "cannot create network namespaces here"
	ip netns del "pst-probe-$$"
	id -u nobody >/dev/null 2>&1 && getent group nogroup >/dev/null ||
		skip "needs user nobody and group nogroup (the daemons run as them)"
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
}

# The daemons run unprivileged, as in production: posternd started as root
# drops to the configured user (the tests set user = "nobody"; its group is
# nogroup) once its queue is bound, and postern-tunneld runs as nobody from
# the start: "${AS_NOBODY[@]}" PROGRAM ARGS... Then they reach files by
# name only: nobody_reads FILE... makes the test directory passable and
# FILE (a configuration, which SIGHUP re-reads) readable; nobody_owns
# FILE... hands over secrets, still 0600, as a unit's credentials belong to
# the unit's user.
AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
nobody_reads() { chmod 711 "$TMP" && chmod 644 "$@"; }
nobody_owns() { chmod 711 "$TMP" && chown nobody:nogroup "$@"; }

netns_cleanup() {	# never fails: it also runs under set -e (demo.sh)
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	ip netns del "$NS_S" 2>/dev/null || true
	ip netns del "$NS_C" 2>/dev/null || true
	[ -z "${NS_M:-}" ] || ip netns del "$NS_M" 2>/dev/null || true
	rm -rf "/etc/netns/$NS_S" "/etc/netns/$NS_C"
	[ -z "${TMP:-}" ] || rm -rf "$TMP"
	return 0
}

netns_setup() {
	local tag=$1
	NS_S="pst-$tag-s-$$"
	NS_C="pst-$tag-c-$$"
	TMP=$(mktemp -d "/tmp/postern-$tag-XXXXXX")
	# The client remembers gates it opened (client/gate_memo.h): per test,
	# since every test's server has the same address.
	export XDG_RUNTIME_DIR=$TMP
	trap netns_cleanup EXIT
	trap "exit 143" TERM INT
	ip netns add "$NS_S"
	ip netns add "$NS_C"
	ip link add veth-s netns "$NS_S" type veth peer name veth-c netns "$NS_C"
	ip -n "$NS_S" addr add "$SERVER4/24" dev veth-s
	ip -n "$NS_C" addr add "$CLIENT4/24" dev veth-c
	ip -n "$NS_S" addr add "$SERVER6/64" dev veth-s nodad
	ip -n "$NS_C" addr add "$CLIENT6/64" dev veth-c nodad
	for ns in "$NS_S" "$NS_C"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$NS_S" link set veth-s up
	ip -n "$NS_C" link set veth-c up
}

# Names the client resolves: ip netns exec puts /etc/netns/NS/hosts in
# place of /etc/hosts for commands run in the namespace.
client_hosts() {
	mkdir -p "/etc/netns/$NS_C"
	cat > "/etc/netns/$NS_C/hosts"
}

in_server() { ip netns exec "$NS_S" "$@"; }

# gen_keys NAME...: NAME.key and NAME.pub for each, then psk and otherpsk,
# in the current directory ($POSTERN makes them).
gen_keys() {
	local k
	for k in "$@"; do
		"$POSTERN" genkey > "$k.key"
		"$POSTERN" pubkey < "$k.key" > "$k.pub"
	done
	"$POSTERN" genpsk > psk
	"$POSTERN" genpsk > otherpsk
}

# client_conf FILE [KEY [SERVER_PUB [PSK [EXTRA]]]]: the CLI's configuration
# with one server, "web1" at $SERVER4: knock_port $KPORT when it is set,
# tunnel_port $TPORT (8443 when unset); keys alice.key and server.pub and
# the PSK psk unless named; EXTRA (more sections) at the end.
client_conf() {
	local knock=""
	[ -z "${KPORT:-}" ] || knock="
	knock_port = $KPORT"
	cat > "$1" <<CONF
private_key_file = "${2:-alice.key}"
psk_file = "${4:-psk}"
server "web1" {
	address = "$SERVER4"$knock
	tunnel_port = ${TPORT:-8443}
	public_key = "$(cat "${3:-server.pub}")"
}
${5:-}
CONF
}

# start_sshd ADDR:PORT: a real sshd in the server namespace, key-only root
# login with user_key (made here, in the current directory), logging to
# sshd.log; SSHD_PID is its pid.
start_sshd() {
	ssh-keygen -q -t ed25519 -N '' -f host_key
	ssh-keygen -q -t ed25519 -N '' -f user_key
	cp user_key.pub authorized_keys
	cat > sshd_config <<CONF
ListenAddress $1
Subsystem sftp internal-sftp
HostKey $PWD/host_key
AuthorizedKeysFile $PWD/authorized_keys
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
CONF
	mkdir -p /run/sshd
	start_bg "$NS_S" /usr/sbin/sshd -D -e -f "$PWD/sshd_config" 2> sshd.log
	SSHD_PID=$LAST_PID
}

# server_firewall CONF: load in the server namespace the ruleset that
# posternd --print-nft prints for CONF. Test kernels lack nft's queue
# statement: it becomes a drop, iptables-nft queues the knocks instead at a
# priority that runs first, and the printed chain runs after it.
server_firewall() {
	local conf=$1 port queue
	"$POSTERND" --print-nft -c "$conf" > printed.nft || return 1
	port=$(grep -o 'udp dport [0-9]*' printed.nft | head -1 | cut -d' ' -f3)
	queue=$(grep -o 'queue num [0-9]*' printed.nft | head -1 | cut -d' ' -f3)
	sed -e 's/priority filter;/priority filter + 10;/' \
	    -e 's/queue num [0-9]*/drop/' printed.nft > ruleset.nft
	in_server nft -f ruleset.nft || return 1
	in_server iptables-nft -A INPUT -p udp --dport "$port" -j NFQUEUE --queue-num "$queue" &&
	in_server ip6tables-nft -A INPUT -p udp --dport "$port" -j NFQUEUE --queue-num "$queue"
}
in_client() { ip netns exec "$NS_C" "$@"; }

# Start a program in the background in a namespace and remember its pid
# (ip netns exec execs the program: the pid is the program's own).
start_bg() {	# start_bg NAMESPACE PROGRAM ARGS...
	local ns=$1
	shift
	ip netns exec "$ns" "$@" &
	PIDS+=($!)
	LAST_PID=$!
}

stop_pid() {
	local pid=$1
	kill "$pid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	return 1
}

# The last STATUS= line a daemon sent to notify_sink, whose output is
# notify.log in the current directory; status_has PATTERN matches it.
status() { grep -a '^STATUS=' notify.log | tail -1; }
status_has() { status | grep -q "$1"; }

# --- posternd's sets and counters ------------------------------------------
# The sets are table inet postern's allow4 and allow6; the counters are the
# refusal reasons in posternd's last STATUS= ("mac1", "unknown key", ...).

# set_has SET ADDR PORT: SET holds the element ADDR . PORT.
set_has() {
	in_server nft list set inet postern "$1" | tr -d '\n' |
		grep -qE "(^|[ {,])$2 \. $3 "
}
# set_count SET: how many elements SET holds.
set_count() {
	in_server nft list set inet postern "$1" | tr -d '\n' |
		grep -oE "[0-9a-f:.]+ \. [0-9]+ timeout" | wc -l
}
# expires_ms SET ADDR PORT: milliseconds left of ADDR . PORT in SET, from
# nft's "expires 1h2m29s870ms"; nothing when it is not there.
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
# counter NAME: the refusal counter NAME in the last STATUS= of notify.log.
counter() { status | grep -oE "(\(|, )$1 [0-9]+" | grep -oE "[0-9]+$"; }

# new_src: the next of the client's extra addresses in $SRC, from
# 198.51.100.$next_src on (the test adds them to veth-c).
next_src=10
new_src() { SRC="198.51.100.$next_src"; next_src=$((next_src + 1)); }

# cpu_ticks PID: user and system time of PID so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wait_for SECONDS COMMAND...: poll every 50 ms until it succeeds.
wait_for() {
	local limit=$(( $1 * 20 ))
	shift
	for _ in $(seq "$limit"); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

check() {
	local what=$1
	shift
	TEST_CHECKS=$((TEST_CHECKS + 1))
	if "$@"; then
		echo "ok - $what"
	else
		echo "not ok - $what"
		TEST_FAILS=$((TEST_FAILS + 1))
	fi
}

finish() {
	echo "$((TEST_CHECKS - TEST_FAILS)) passed, $TEST_FAILS failed"
	[ "$TEST_FAILS" -eq 0 ]
}

# netns_slow_link LINKEMU DELAY_MS JITTER_MS LOSS_PERMILLE [RATE_KBIT QUEUE]:
# put a third namespace ($NS_M) between server and client, with
# tests/linkemu bridging its two veth pairs: the same addresses, now over a
# link with that delay (each way), jitter, loss and rate. No segmentation
# offload on the veths, so every frame is one packet on the emulated wire.
netns_slow_link() {
	local emu=$1 ifc
	shift
	NS_M="${NS_S%-s-*}-m-$$"
	ip netns add "$NS_M"
	ip -n "$NS_S" link del veth-s
	ip link add veth-s netns "$NS_S" type veth peer name m-s netns "$NS_M"
	ip link add veth-c netns "$NS_C" type veth peer name m-c netns "$NS_M"
	ip -n "$NS_S" addr add "$SERVER4/24" dev veth-s
	ip -n "$NS_C" addr add "$CLIENT4/24" dev veth-c
	ip -n "$NS_S" addr add "$SERVER6/64" dev veth-s nodad
	ip -n "$NS_C" addr add "$CLIENT6/64" dev veth-c nodad
	for ifc in "$NS_S veth-s" "$NS_C veth-c" "$NS_M m-s" "$NS_M m-c"; do
		ip -n "${ifc% *}" link set "${ifc#* }" gso_max_segs 1 up
	done
	ip -n "$NS_M" link set lo up
	# On a real long path the neighbour is the local router, a LAN hop
	# away: no address resolution over the slow link.
	local mac_s mac_c
	mac_s=$(ip -n "$NS_S" -br link show veth-s | awk '{ print $3 }')
	mac_c=$(ip -n "$NS_C" -br link show veth-c | awk '{ print $3 }')
	ip -n "$NS_C" neigh replace "$SERVER4" lladdr "$mac_s" dev veth-c nud permanent
	ip -n "$NS_C" neigh replace "$SERVER6" lladdr "$mac_s" dev veth-c nud permanent
	ip -n "$NS_S" neigh replace "$CLIENT4" lladdr "$mac_c" dev veth-s nud permanent
	ip -n "$NS_S" neigh replace "$CLIENT6" lladdr "$mac_c" dev veth-s nud permanent
	start_bg "$NS_M" "$emu" m-c m-s "$@" > "$TMP/linkemu.out"
	LINKEMU_PID=$LAST_PID
}
