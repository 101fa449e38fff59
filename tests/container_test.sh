#!/usr/bin/env bash
# The .deb under a real systemd: a Debian 12 container booted with
# systemd-nspawn, the package installed offline, README's deployment
# steps followed inside it (gate init, gate allow, gate apply-nft
# confirmed by the admin's tunnel, systemctl enable --now), then both
# units checked as systemd runs them (notify, STATUS=, reload of a
# clients.d/ drop-in, watchdog, users, capabilities, credentials, the
# journal catalog, systemd-analyze) and the gate used from a client
# network namespace on the container's veth: nothing answers, a knock
# opens, ssh through the tunnel reaches the container's loopback sshd.
# Then an upgrade: posternd restarts, postern-tunneld does not and says
# why, and an ssh session through the tunnel lives on across it.
# Last, the user unit postern-forward@ under a lingering account's
# systemd --user.
#
# The container's root file system is made once by debootstrap and kept
# in /var/cache/postern-test (CONTAINER_CACHE); --volatile=overlay leaves
# it untouched by every run. Making it needs Debian's archive
# (DEBIAN_MIRROR) and takes two or three minutes.
#
# usage: container_test.sh BUILD_DIR SOURCE_DIR  (KEEP_LOGS=DIR keeps the run's files)
set -u
BUILD=$(realpath "$1") SRC=$(realpath "$2")
. "$SRC/tests/netns_lib.sh"
POSTERN=$BUILD/client/postern

[ "${POSTERN_SANITIZE:-OFF}" = OFF ] ||
	skip "a sanitizer build: its .deb is not the one that ships; the normal build runs this test"
[ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn, debootstrap, cgroups, network namespaces)"
for tool in systemd-nspawn:systemd-container debootstrap:debootstrap nsenter:util-linux \
	    ip:iproute2 ssh:openssh-client ssh-keygen:openssh-client dpkg-deb:dpkg \
	    dpkg-shlibdeps:dpkg-dev flock:util-linux; do
	command -v "${tool%%:*}" >/dev/null || skip "${tool%%:*} is not installed (package ${tool#*:})"
done
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] ||
	skip "debian-archive-keyring is not installed (debootstrap checks the archive with it)"
ip netns add "pst-probe-$$" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "pst-probe-$$"

# Names of this run. The host side of the container's veth is
# ve-MACHINE, which must fit in 15 characters.
MACHINE=pstc-$$ NS_C=pst-ctr-c-$$ CG=postern-ctr-$$
HOSTIF=ve-$MACHINE
CLIENT4=10.251.0.1 SERVER4=10.251.0.2
CACHE=${CONTAINER_CACHE:-/var/cache/postern-test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT=$CACHE/bookworm
NSPAWN_PID= APPLY_PID= CGROUPS=()

cleanup() {
	local pid dir
	[ -z "$APPLY_PID" ] || kill "$APPLY_PID" 2>/dev/null
	if [ -n "$NSPAWN_PID" ]; then
		# SIGTERM: nspawn asks the container's systemd to power off.
		kill "$NSPAWN_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$NSPAWN_PID" 2>/dev/null
	fi
	# What is left of the container: every process of our cgroup.
	for dir in "${CGROUPS[@]}"; do
		for pid in $(cat $(find "$dir" -name cgroup.procs) 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
	done
	for dir in "${CGROUPS[@]}"; do
		for _ in $(seq 50); do
			find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$dir" ] || break
			sleep 0.1
		done
	done
	ip netns del "$NS_C" 2>/dev/null
	if [ -n "${KEEP_LOGS:-}" ]; then
		mkdir -p "$KEEP_LOGS" && cp -r "$TMP"/. "$KEEP_LOGS"/
	fi
	rm -rf "$TMP"
	return 0
}
TMP=$(mktemp -d /tmp/postern-ctr-XXXXXX)
trap cleanup EXIT
trap "exit 143" TERM INT
umask 077
cd "$TMP"
mkdir in
chmod 755 "$TMP" in

# --- the package --------------------------------------------------------------
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
DEB=postern_${VERSION}_$(dpkg --print-architecture).deb
timeout 600 cmake --build "$BUILD" --target package > cpack.log 2>&1 &&
	[ -f "$BUILD/$DEB" ] || { cat cpack.log; echo "not ok - the package target makes $DEB"; exit 1; }
cp "$BUILD/$DEB" in/ && chmod 644 "in/$DEB"

# --- the root file system, made once ----------------------------------------
# The packages the test runs inside, and the .deb's Depends (alternatives:
# the first), so that the package installs offline. A change of the list
# makes a new root file system; so does one whose making was interrupted
# (no stamp).
depends=$(dpkg-deb -f "in/$DEB" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/ //g' | grep .)
INCLUDE=$(printf '%s\n' systemd dbus libpam-systemd man-db nftables iptables iproute2 \
	openssh-server $depends | sort -u | paste -sd,)
mkdir -p "$CACHE"
exec 9> "$CACHE/lock"
flock -w 900 9 || skip "$CACHE is locked by another run for 15 minutes"
if [ "$(cat "$ROOT.stamp" 2>/dev/null)" != "$INCLUDE" ] || [ ! -x "$ROOT/usr/lib/systemd/systemd" ]; then
	echo "# making the container's root file system in $ROOT (debootstrap bookworm from $MIRROR)"
	rm -rf "$ROOT" "$ROOT.new" "$ROOT.stamp"
	started=$(date +%s)
	if ! (umask 022; timeout 1200 debootstrap --variant=minbase --include="$INCLUDE" bookworm \
		"$ROOT.new" "$MIRROR") > debootstrap.log 2>&1; then
		tail -5 debootstrap.log
		rm -rf "$ROOT.new"
		skip "cannot make the container's root file system: debootstrap of bookworm from $MIRROR failed (above)"
	fi
	mv "$ROOT.new" "$ROOT"
	echo "$INCLUDE" > "$ROOT.stamp"
	echo "# made in $(( $(date +%s) - started )) s"
fi
exec 9>&-

# --- boot -------------------------------------------------------------------
# This host's PID 1 is not systemd: nspawn gets a cgroup of its own, made
# here, in every hierarchy systemd uses (a hybrid host has both).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	CGROUPS=("/sys/fs/cgroup/$CG")
elif [ -d /sys/fs/cgroup/unified ] && [ -d /sys/fs/cgroup/systemd ]; then
	CGROUPS=("/sys/fs/cgroup/unified/$CG" "/sys/fs/cgroup/systemd/$CG")
else
	skip "no cgroup hierarchy systemd can use (/sys/fs/cgroup/unified and /systemd, or cgroup2)"
fi
for dir in "${CGROUPS[@]}"; do
	mkdir "$dir" || skip "cannot make the cgroup $dir"
done
# --private-network (--network-veth) keeps CAP_NET_ADMIN in the
# container; --register=no and --keep-unit keep machined out. nspawn's
# own seccomp filter refuses mlock (it ties it to CAP_IPC_LOCK): allow
# it, as a host does, so that the units' own filter decides.
bash -c 'for f in "${@:4}"; do echo $$ > "$f/cgroup.procs" || exit 1; done
	exec systemd-nspawn -D "$1" --boot --register=no --keep-unit --network-veth \
		--machine="$2" --volatile=overlay --system-call-filter=@memlock \
		--bind-ro="$3:/mnt/postern-test"' \
	nspawn "$ROOT" "$MACHINE" "$TMP/in" "${CGROUPS[@]}" < /dev/null > console.log 2>&1 &
NSPAWN_PID=$!
CPID=
for _ in $(seq 300); do
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	CPID=$(pgrep -P "$NSPAWN_PID" -x systemd | head -1)
	[ -n "$CPID" ] && break
	sleep 0.1
done
if [ -z "$CPID" ]; then
	tail -5 console.log
	skip "systemd-nspawn cannot boot the container here (above)"
fi
# Commands in the container, with its environment rather than ours.
in_ct() {
	nsenter -t "$CPID" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
# Until systemd's socket is there, systemctl cannot connect: poll.
booted() {
	state=$(in_ct systemctl is-system-running 2>/dev/null)
	[ "$state" = running ] || [ "$state" = degraded ]
}
state=
wait_for 60 booted
check "the container boots systemd to running ($state)" [ "$state" = running ]
[ "$state" = running ] || in_ct systemctl --failed --no-pager

# --- the package -------------------------------------------------------------
# run_logged LOG COMMAND...: in the container; its output shown only on failure.
run_logged() {
	local log=$1
	shift
	in_ct "$@" > "$log" 2>&1 || { cat "$log"; return 1; }
}
installed_idle() {
	in_ct sh -c 'id -u postern && id -u postern-knock && test -d /etc/postern' > /dev/null &&
	[ "$(in_ct systemctl is-enabled posternd postern-tunneld | paste -sd' ')" = "disabled disabled" ] &&
	[ "$(in_ct systemctl is-active posternd postern-tunneld | paste -sd' ')" = "inactive inactive" ]
}
check "apt-get installs the .deb offline" run_logged install.log \
	sh -c "cd /mnt/postern-test && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./$DEB"
check "  ...made the users and /etc/postern, enabled and started nothing" installed_idle

# --- the network: a client namespace on the container's veth ------------------
ip netns add "$NS_C"
ip link set "$HOSTIF" netns "$NS_C"
ip -n "$NS_C" addr add "$CLIENT4/30" dev "$HOSTIF"
ip -n "$NS_C" link set lo up
ip -n "$NS_C" link set "$HOSTIF" up
in_ct ip addr add "$SERVER4/30" dev host0
in_ct ip link set host0 up
in_client() { ip netns exec "$NS_C" "$@"; }
links_up() {
	[ "$(in_ct cat /sys/class/net/host0/operstate)" = up ] &&
	[ "$(in_client cat "/sys/class/net/$HOSTIF/operstate")" = up ]
}
wait_for 10 links_up || in_client ip link show "$HOSTIF"
# sshd on the container's loopback only, root by key.
ssh-keygen -q -t ed25519 -N '' -f user_key
cp user_key.pub in/ && chmod 644 in/user_key.pub
in_ct sh -c 'mkdir -p -m 700 /root/.ssh && cp /mnt/postern-test/user_key.pub /root/.ssh/authorized_keys &&
	echo "ListenAddress 127.0.0.1" > /etc/ssh/sshd_config.d/loopback.conf &&
	systemctl restart ssh'

# --- README's "A real server, step by step" -------------------------------------
# Two admin devices on the host: laptop (alice) and, later, bob.
export XDG_RUNTIME_DIR=$TMP	# the client's gate memo
device_init() {	# device_init DIR: postern init there; its public key in DIR.pub
	POSTERN_HOME=$TMP/$1 "$POSTERN" init > "$1.init" 2>&1 || { cat "$1.init"; return 1; }
	sed -nE 's/^ *postern gate allow [^ ]+ ([A-Za-z0-9+\/=]{44})$/\1/p' "$1.init" > "$1.pub"
	[ -s "$1.pub" ] || { cat "$1.init"; return 1; }
}
check "postern init on the admin's device prints the gate allow line" device_init alice
device_init bob || exit 1

check "postern gate init --egress 22 on the server" run_logged gate-init.log postern gate init --egress 22
# Its add-server line, with the name and address the device uses.
add_line=$(sed -nE 's/^ *postern (add-server) [^ ]+ [^ ]+ (.*)$/\1 web1 '"$SERVER4"' \2/p' gate-init.log)
KPORT=$(echo "$add_line" | sed -nE 's/.*--knock-port ([0-9]+).*/\1/p')
TPORT=$(echo "$add_line" | sed -nE 's/.*--tunnel-port ([0-9]+).*/\1/p')
init_printed() {
	[ -n "$KPORT" ] && [ -n "$TPORT" ] &&
	grep -qE '^Server public key: [A-Za-z0-9+/]{43}=$' gate-init.log || { cat gate-init.log; return 1; }
}
check "  ...which prints the server's key and an add-server line with both ports" init_printed
check "  ...and makes server.key, psk, postern.conf and clients.d/ in /etc/postern" in_ct sh -c '
	cd /etc/postern && test -s server.key && test -s psk && test -s postern.conf && test -d clients.d &&
	[ "$(stat -c %a server.key psk | paste -sd" ")" = "600 600" ]'
check "postern gate allow laptop KEY on the server" run_logged allow.log \
	postern gate allow laptop "$(cat alice.pub)"
# The device: the fleet's PSK beside its postern.conf, then the server.
in_ct cat /etc/postern/psk > psk
install -m 600 psk alice/psk && install -m 600 psk bob/psk
add_server() {	# add_server DEVICE: gate init's add-server line there
	POSTERN_HOME=$TMP/$1 "$POSTERN" $add_line > "$1.add" 2>&1 || { cat "$1.add"; return 1; }
}
check "the device runs gate init's add-server line (web1 at $SERVER4, ports $KPORT and $TPORT)" \
	add_server alice
add_server bob || exit 1

# postern gate apply-nft, as README says, while the daemons are started
# from "a second shell": the admin's tunnel confirms it. A kernel without
# nft's queue statement refuses --print-nft's ruleset (apply-nft says so
# and changes nothing); then apply-nft loads a variant with the queue
# statement made a drop (POSTERN_APPLY_NFT_FILE, as apply_nft_test does),
# and iptables-nft queues the knocks ahead of it (netns_lib.sh).
in_ct sh -c 'posternd --print-nft > /root/printed.nft'
if ! in_ct nft -c -f /root/printed.nft 2>/dev/null; then
	in_ct nft list ruleset > ruleset-before.txt
	refuses() {
		! in_ct setsid -w postern gate apply-nft --confirm-within 300 < /dev/null > refused.log 2>&1 &&
		grep -q 'this kernel cannot load the ruleset, nothing changed' refused.log &&
		in_ct nft list ruleset | cmp -s - ruleset-before.txt || { cat refused.log; return 1; }
	}
	check "this kernel lacks nft's queue statement: gate apply-nft says so and changes nothing" refuses
	in_ct cat /root/printed.nft |
		sed -E -e 's/priority filter;/priority filter + 10;/' -e 's/queue num [0-9]+( bypass)?/drop/' |
		in_ct sh -c 'cat > /root/variant.nft'
	VARIANT=/root/variant.nft
fi
nsenter -t "$CPID" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	POSTERN_APPLY_NFT_FILE="${VARIANT:-}" setsid -w postern gate apply-nft --confirm-within 300 \
	< /dev/null > apply.log 2>&1 &
APPLY_PID=$!
ruleset_loaded() { in_ct nft list table inet postern > /dev/null 2>&1; }
check "gate apply-nft loads the ruleset and waits for a tunnel to confirm it" wait_for 30 ruleset_loaded
if [ -n "${VARIANT:-}" ]; then
	queue=$(grep -o 'queue num [0-9]*' < <(in_ct cat /root/printed.nft) | head -1 | cut -d' ' -f3)
	in_ct iptables-nft -A INPUT -p udp --dport "$KPORT" -j NFQUEUE --queue-num "$queue"
	in_ct ip6tables-nft -A INPUT -p udp --dport "$KPORT" -j NFQUEUE --queue-num "$queue"
fi
check "posternd -t && postern-tunneld -t accept the configuration and the ruleset" run_logged t.log \
	sh -c 'posternd -t && postern-tunneld -t'

both_active() {
	[ "$(in_ct systemctl is-active posternd postern-tunneld | paste -sd' ')" = "active active" ]
}
check "systemctl enable --now: both units start (Type=notify)" run_logged enable.log \
	timeout 60 systemctl enable --now posternd postern-tunneld
check "  ...and are active" both_active
status_shows() {	# status_shows UNIT PATTERN: systemctl status has the Status: line
	in_ct systemctl status --no-pager "$1" > "status-$1.txt" 2>&1
	grep -qE "^ *Status: \"$2" "status-$1.txt"
}
check "systemctl status posternd shows its STATUS= counters" \
	wait_for 10 status_shows posternd 'received 0, accepted 0, refused 0 \('
check "systemctl status postern-tunneld shows its STATUS= counters" \
	wait_for 10 status_shows postern-tunneld 'sessions 0, streams open 0, handshakes 0'

# --- what systemd gave each daemon -------------------------------------------
main_pid() { in_ct systemctl show -p MainPID --value "$1"; }
proc_field() { in_ct awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
runs_as() {	# runs_as UNIT USER CAPS: uids (real, effective, saved, fs), capabilities
	local pid uid
	pid=$(main_pid "$1") uid=$(in_ct id -u "$2")
	[ "$(in_ct awk '$1 == "Uid:" { print $2 $3 $4 $5 }' "/proc/$pid/status")" = "$uid$uid$uid$uid" ] &&
	[ "$(proc_field "$pid" CapEff)" = "$3" ] && [ "$(proc_field "$pid" CapPrm)" = "$3" ] &&
	[ "$(proc_field "$pid" CapBnd)" = "$3" ] &&
	[ "$(proc_field "$pid" CapAmb)" = 0000000000000000 ] ||
	{ in_ct grep -E '^(Uid|Cap)' "/proc/$pid/status"; return 1; }
}
check "posternd runs as postern-knock with CAP_NET_ADMIN only (CapEff 0000000000001000)" \
	runs_as posternd postern-knock 0000000000001000
check "postern-tunneld runs as postern with no capability (CapEff 0000000000000000)" \
	runs_as postern-tunneld postern 0000000000000000
creds() {	# creds UNIT USER: the secrets arrive as LoadCredential= copies, for USER only
	local pid dir
	pid=$(main_pid "$1")
	dir=$(in_ct sh -c "tr '\0' '\n' < /proc/$pid/environ" | sed -n 's/^CREDENTIALS_DIRECTORY=//p')
	[ "$dir" = "/run/credentials/$1.service" ] &&
	[ "$(in_ct stat -c '%n %U %a' "$dir/server.key" "$dir/psk" | paste -sd' ')" = \
	  "$dir/server.key $2 400 $dir/psk $2 400" ] &&
	in_ct systemctl cat "$1" | grep -qx 'LoadCredential=server.key:/etc/postern/server.key' &&
	in_ct systemctl cat "$1" | grep -qx 'LoadCredential=psk:/etc/postern/psk' &&
	! in_ct setpriv --reuid="$2" --regid=postern --clear-groups cat /etc/postern/server.key 2>/dev/null ||
	{ echo "CREDENTIALS_DIRECTORY=$dir"; in_ct ls -l "$dir"; return 1; }
}
check "posternd's key and PSK arrive through LoadCredential= (its user cannot read /etc/postern's)" \
	creds posternd postern-knock
check "postern-tunneld's key and PSK arrive through LoadCredential=" creds postern-tunneld postern
no_lock_warning() { ! in_ct journalctl -q -u posternd -u postern-tunneld | grep 'cannot lock secrets'; }
check "neither daemon warns that it cannot lock its secrets in memory" no_lock_warning

in_ct systemd-analyze security posternd.service > security-posternd.txt 2>&1
in_ct systemd-analyze security postern-tunneld.service > security-tunneld.txt 2>&1
score() { sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p' "$1"; }
SCORE_D=$(score security-posternd.txt) SCORE_T=$(score security-tunneld.txt)
echo "# systemd-analyze security: posternd.service ${SCORE_D:-?}, postern-tunneld.service ${SCORE_T:-?}"
at_most_2() { awk -v s="$1" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }'; }
check "systemd-analyze security scores posternd.service <= 2.0 (${SCORE_D:-no score})" at_most_2 "$SCORE_D"
check "systemd-analyze security scores postern-tunneld.service <= 2.0 (${SCORE_T:-no score})" \
	at_most_2 "$SCORE_T"
verify_clean() {
	in_ct systemd-analyze verify posternd.service postern-tunneld.service > verify.log 2>&1 &&
	! grep -q . verify.log || { cat verify.log; return 1; }
}
check "systemd-analyze verify of both units says nothing" verify_clean

# --- the gate, from the client namespace ---------------------------------------
unanswered() {	# unanswered PORT: a TCP connect from the client hears nothing in 3 s
	in_client timeout 3 bash -c "exec 3<>/dev/tcp/$SERVER4/$1" 2>/dev/null
	[ $? -eq 124 ]
}
check "before a knock nothing answers on the tunnel port $TPORT" unanswered "$TPORT"
check "  ...nor on port 22" unanswered 22
knock_opens() {
	in_client timeout 30 "$POSTERN" -c alice/postern.conf knock --wait web1 &&
	in_client timeout 5 bash -c "exec 3<>/dev/tcp/$SERVER4/$TPORT"
}
check "postern knock --wait opens the tunnel port" knock_opens
journal_has() {	# journal_has UNIT TEXT: journalctl -x -u UNIT has TEXT, within 10 s
	local i
	for i in $(seq 50); do
		in_ct journalctl -x -q --no-pager -u "$1" | grep -qF -- "$2" && return 0
		sleep 0.2
	done
	in_ct journalctl -x -q --no-pager -u "$1" | tail -20
	return 1
}
check "journalctl -x -u posternd explains the knock with the catalog's text" \
	journal_has posternd "Client laptop sent a valid knock from $CLIENT4. posternd"
check "  ...to its end" journal_has posternd "If the client did not knock, its private key is in someone else's hands:"
ssh_through() {
	local out
	out=$(in_client timeout 60 ssh -i user_key -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \
		-o "ProxyCommand=$POSTERN -c $TMP/alice/postern.conf pipe %n 22" root@web1 \
		'echo "via postern from ${SSH_CONNECTION%% *} as $(id -un)"' 2>&1)
	[ "$out" = "via postern from 127.0.0.1 as root" ] || { echo "$out"; return 1; }
}
check "ssh through the tunnel runs a command, seen by the container's loopback sshd" ssh_through
apply_ended() { ! kill -0 "$APPLY_PID" 2>/dev/null; }
apply_kept() {
	wait_for 30 apply_ended && wait "$APPLY_PID" &&
	grep -qxE "postern: gate apply-nft: confirmed by a tunnel from laptop \\($CLIENT4(:[0-9]+)?\\): the new ruleset is kept" \
		apply.log || { cat apply.log; return 1; }
}
check "  ...and that tunnel confirmed gate apply-nft: the ruleset is kept" apply_kept

# --- reload -------------------------------------------------------------------
# bob knocks before he is a client (refused: an unknown key, counted), is
# allowed (a file in clients.d/), both daemons are reloaded, and his knock
# opens.
status_of() { in_ct systemctl show -p StatusText --value "$1"; }
refused_unknown() { status_of posternd | grep -qE '[(, ]unknown key 1[,)]'; }
accepted() {	# accepted NAME: the journal has a knock of NAME accepted
	[ -n "$(in_ct journalctl -q -o cat -u posternd MESSAGE_ID=ecfe32b1de1e4e8aa3ef8abe79abd27c \
		POSTERN_CLIENT="$1")" ]
}
in_client "$POSTERN" -c bob/postern.conf knock web1
check "a knock by bob, not yet a client, is refused as an unknown key" wait_for 10 refused_unknown
check "  ...and not accepted" eval '! accepted bob'
check "postern gate allow bob KEY writes clients.d/bob.conf" run_logged allow-bob.log sh -c "
	postern gate allow bob '$(cat bob.pub)' && test -s /etc/postern/clients.d/bob.conf"
check "systemctl reload posternd postern-tunneld" run_logged reload.log \
	timeout 30 systemctl reload posternd postern-tunneld
check "  ...posternd read the new configuration" \
	journal_has posternd "reloaded /etc/postern/postern.conf: 2 clients"
check "  ...postern-tunneld too" journal_has postern-tunneld "reloaded"
in_client "$POSTERN" -c bob/postern.conf knock web1
check "  ...and bob's knock is accepted now" wait_for 10 accepted bob

# --- the watchdog -------------------------------------------------------------
# WatchdogSec=30 in the unit; a drop-in here shortens it to 3 s for the
# test. posternd stopped (SIGSTOP) pings no more: systemd aborts it and
# Restart= starts a new one.
in_ct sh -c 'mkdir -p /etc/systemd/system/posternd.service.d &&
	printf "[Service]\nWatchdogSec=3s\n" > /etc/systemd/system/posternd.service.d/test-watchdog.conf &&
	systemctl daemon-reload && systemctl restart posternd'
OLD_PID=$(main_pid posternd)
OLD_RESTARTS=$(in_ct systemctl show -p NRestarts --value posternd)
restarted() {
	local pid
	pid=$(main_pid posternd)
	[ "$(in_ct systemctl show -p NRestarts --value posternd)" -eq $((OLD_RESTARTS + 1)) ] &&
	[ "$(in_ct systemctl is-active posternd)" = active ] && [ "$pid" != 0 ] && [ "$pid" != "$OLD_PID" ]
}
watchdog_env() { in_ct sh -c "tr '\0' '\n' < /proc/$OLD_PID/environ" | grep -qx WATCHDOG_USEC=3000000; }
check "posternd runs with the 3 s watchdog (pid $OLD_PID)" watchdog_env
in_ct sh -c "kill -STOP $OLD_PID"
check "SIGSTOPped, posternd is restarted by the watchdog (NRestarts +1, a new MainPID)" wait_for 60 restarted
check "  ...and the journal says why" journal_has posternd "posternd.service: Watchdog timeout"
fresh_status() { status_of posternd | grep -q '^received 0, '; }
check "  ...the new posternd is ready (STATUS= again)" wait_for 10 fresh_status

# --- an upgrade ---------------------------------------------------------------
# The same package again is an upgrade to dpkg (postinst configure OLD):
# posternd restarts, postern-tunneld does not, and says why, and a session
# through the tunnel lives on across it.
in_ct rm -rf /etc/systemd/system/posternd.service.d
in_ct systemctl daemon-reload
in_ct systemctl restart posternd
wait_for 10 fresh_status
KNOCK_PID=$(main_pid posternd) TUNNEL_PID=$(main_pid postern-tunneld)
in_client timeout 60 ssh -i user_key -o StrictHostKeyChecking=no \
	-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \
	-o "ProxyCommand=$POSTERN -c $TMP/alice/postern.conf pipe %n 22" root@web1 \
	'echo started; sleep 8; echo survived' > across.out 2>&1 &
SSH_PID=$!
PIDS+=($SSH_PID)
check "a session through the tunnel before the upgrade" wait_for 20 grep -qx started across.out
check "the package again: an upgrade" run_logged upgrade.log \
	sh -c "cd /mnt/postern-test && DEBIAN_FRONTEND=noninteractive dpkg -i ./$DEB"
check "  ...restarts posternd (a new MainPID)" bash -c "
	[ \"\$(nsenter -t $CPID -a systemctl show -p MainPID --value posternd)\" != $KNOCK_PID ] &&
	[ \"\$(nsenter -t $CPID -a systemctl is-active posternd)\" = active ]"
check "  ...not postern-tunneld (the same MainPID)" \
	test "$(main_pid postern-tunneld)" = "$TUNNEL_PID"
check "  ...and says why" grep -qF "postern: postern-tunneld was not restarted: a restart ends every tunnel through it." upgrade.log
wait "$SSH_PID"
check "  ...the session through the tunnel lived on" bash -c "[ \"\$(cat across.out | paste -sd' ')\" = 'started survived' ]" ||
	cat across.out

# --- the user unit: postern-forward@web1 -------------------------------------
# An admin account in the container with lingering, so its systemd user
# manager runs without a login; its device configuration names the server
# by its loopback address (the gate only matters from outside; over lo the
# ruleset accepts everything) with a forward block to sshd.
as_fwd() { in_ct runuser -u fwd -- env XDG_RUNTIME_DIR="/run/user/$FWD_UID" "$@"; }
in_ct useradd -m -s /bin/sh fwd
FWD_UID=$(in_ct id -u fwd)
user_manager() { in_ct systemctl is-active "user@$FWD_UID.service" > /dev/null; }
linger() { in_ct loginctl enable-linger fwd && wait_for 30 user_manager; }
check "loginctl enable-linger fwd starts its user manager" linger
fwd_setup() {
	as_fwd postern init > fwd-init.log 2>&1 &&
	sed -nE 's/^ *postern gate allow [^ ]+ ([A-Za-z0-9+\/=]{44})$/\1/p' fwd-init.log > fwd.pub &&
	[ -s fwd.pub ] &&
	in_ct sh -c 'install -o fwd -m 600 /etc/postern/psk ~fwd/.config/postern/psk' &&
	as_fwd postern $(echo "$add_line" | sed "s/ $SERVER4 / 127.0.0.1 /") > fwd-add.log 2>&1 &&
	echo 'forward { listen = "127.0.0.1:2201"  server = "web1"  port = 22 }' |
		as_fwd sh -c 'cat >> ~/.config/postern/postern.conf' &&
	in_ct postern gate allow fwd "$(cat fwd.pub)" > /dev/null &&
	in_ct systemctl reload posternd postern-tunneld ||
	{ cat fwd-init.log fwd-add.log 2>/dev/null; return 1; }
}
check "the account's device: postern init, add-server web1 127.0.0.1, a forward block; gate allow" fwd_setup
check "systemctl --user enable --now postern-forward@web1" run_logged fwd-enable.log \
	runuser -u fwd -- env XDG_RUNTIME_DIR="/run/user/$FWD_UID" \
	timeout 30 systemctl --user enable --now postern-forward@web1
banner() {	# the forward's port answers with sshd's banner, through the tunnel
	[ "$(in_ct timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2201 && head -c 8 <&3')" = SSH-2.0- ]
}
check "  ...its forward reaches sshd through the tunnel (127.0.0.1:2201 -> web1:22)" wait_for 15 banner
fwd_session() {
	in_ct journalctl -q -o cat -u postern-tunneld MESSAGE_ID=e83b585e6d73481fb7b71fff961ff8b5 \
		POSTERN_CLIENT=fwd | grep -q .
}
check "  ...the tunnel is the account's (postern-tunneld logged a session of fwd)" fwd_session

finish
