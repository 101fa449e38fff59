#!/usr/bin/env bash
# What the daemons hold once running, as the kernel reports it
# (/proc/PID/status, /proc/PID/limits): posternd started as root becomes
# user nobody with CAP_NET_ADMIN alone and no way back, and still opens the
# gate; started unprivileged with more, it keeps CAP_NET_ADMIN alone.
# postern-tunneld refuses root and runs as nobody with nothing. No daemon,
# nor the client, can dump core.
#
# usage: privilege_test.sh BUILD_DIR  (KEEP_LOGS=DIR keeps the run's files)
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld
CRAFT=$BUILD/tests/knock_craft SINK=$BUILD/tests/notify_sink
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
netns_setup priv

QUEUE=6 KPORT=62201 TPORT=8443
NET_ADMIN_ONLY=0000000000001000	# 1 << CAP_NET_ADMIN (12)
NONE=0000000000000000
NOBODY=$(id -u nobody) NOGROUP=$(getent group nogroup | cut -d: -f3)
umask 077
cd "$TMP"
gen_keys server alice

server_conf() {	# server_conf FILE USER
	cat > "$1" <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "$2"
knock { port = $KPORT  queue = $QUEUE }
tunnel {
	listen = {"$SERVER4:$TPORT"}
	egress = {22}
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {$TPORT}
}
CONF
}
server_conf server.conf nobody
server_conf nosuch.conf "nosuch-$$"
server_conf root.conf root
client_conf client.conf
nobody_reads server.conf client.conf
server_firewall server.conf || exit 1

# field PID NAME: the values of NAME: in /proc/PID/status, space-separated.
field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }
is() {	# is PID NAME VALUE
	local got
	got=$(field "$1" "$2")
	[ "$got" = "$3" ] || { echo "$2: $got, not $3"; return 1; }
}
no_core() {	# RLIMIT_CORE 0, soft and hard
	local got
	got=$(awk '/^Max core file size/ { print $5, $6 }' "/proc/$1/limits")
	[ "$got" = "0 0" ] || { echo "core limit: $got"; return 1; }
}
# The kernel hands /proc/PID of a process that is not dumpable to root,
# whatever the process's own user.
not_dumpable() {
	local owner
	owner=$(stat -c %u:%g "/proc/$1/status")
	[ "$owner" = 0:0 ] || { echo "/proc/$1 owned by $owner"; return 1; }
}
flush() { in_server nft flush set inet postern allow4; }
bound() { in_server grep -qE "^ *$QUEUE " /proc/net/netfilter/nfnetlink_queue; }
export -f in_server in_client set_has wait_for field is no_core not_dumpable bound
export NS_S NS_C CLIENT4 QUEUE

# --- refusals --------------------------------------------------------------
check "posternd: a user that does not exist is an error naming the option" bash -c '
	out=$(in_server "$0" -t -c nosuch.conf 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] &&
	[ "$out" = "posternd: nosuch.conf: user: no such user \"nosuch-$1\"" ]' "$POSTERND" $$
check "posternd: a user with uid 0 is refused" bash -c '
	out=$(in_server "$0" -t -c root.conf 2>&1); rc=$?
	echo "$out"; [ $rc -eq 1 ] && echo "$out" | grep -q "user: \"root\" has uid 0"' "$POSTERND"
check "postern-tunneld refuses to run as root (exit 1, one clear line)" bash -c '
	out=$(in_server timeout 5 "$0" -c server.conf 2>&1); rc=$?
	echo "$out (exit $rc)"; [ $rc -eq 1 ] &&
	[ "$out" = "postern-tunneld: refusing to run as root: it needs no privilege; run it as user postern (the unit does), or pass --allow-root" ]' "$TUNNELD"
check "postern-tunneld -t still checks as root (it only reads)" \
	in_server "$TUNNELD" -t -c server.conf

# --- posternd started as root ----------------------------------------------
start_bg "$NS_S" "$SINK" "$TMP/notify" 100 > notify.log
wait_for 5 test -S "$TMP/notify"
start_bg "$NS_S" env NOTIFY_SOCKET="$TMP/notify" "$POSTERND" -c server.conf 2> posternd.log
PD=$LAST_PID
check "posternd started as root binds queue $QUEUE" wait_for 5 bound
check "  ...and tells systemd READY=1 after the drop" wait_for 5 grep -q READY=1 notify.log
check "  ...runs as nobody, uid and gid, no other group" bash -c "
	is $PD Uid '$NOBODY $NOBODY $NOBODY $NOBODY' &&
	is $PD Gid '$NOGROUP $NOGROUP $NOGROUP $NOGROUP' && is $PD Groups ''"
check "  ...CapEff = CapPrm = CapBnd = CAP_NET_ADMIN only" bash -c "
	is $PD CapEff $NET_ADMIN_ONLY && is $PD CapPrm $NET_ADMIN_ONLY &&
	is $PD CapBnd $NET_ADMIN_ONLY"
check "  ...nothing inheritable, nothing ambient" bash -c "
	is $PD CapInh $NONE && is $PD CapAmb $NONE"
check "  ...NoNewPrivs 1" is $PD NoNewPrivs 1
check "  ...core limit 0" no_core $PD
check "  ...not dumpable" not_dumpable $PD
check "  ...and a knock still opens the gate (nft after the drop)" bash -c '
	in_client "$0" -c client.conf knock web1 && wait_for 3 set_has allow4 $CLIENT4 8443' "$POSTERN"
flush

# Stopped, it lets the queue overflow; resumed, its STATUS= shows the
# kernel's drop counters, read from /proc as nobody, not dumpable.
kill -STOP $PD
for _ in $(seq 10); do	# in rounds: the veth's backlog is short
	in_client "$CRAFT" -g 5000 $SERVER4 $KPORT
	sleep 0.05
done
kill -CONT $PD
check "  ...and reads the kernel's drop counters for STATUS=" wait_for 8 bash -c \
	"grep STATUS= notify.log | tail -1 | grep -qE 'kernel drops [1-9][0-9]* '"
grep STATUS= notify.log | tail -1
server_conf server.conf nobody	# the same file, rewritten in place
kill -HUP $PD
check "  ...and re-reads its configuration on SIGHUP as nobody" \
	wait_for 3 grep -q "reloaded server.conf: 1 clients" posternd.log
stop_pid $PD
wait_for 5 bash -c '! bound'

# --- posternd started unprivileged, as systemd starts it, with extras ------
# The unit's credentials belong to its user: so do the secrets here.
nobody_owns server.key psk
start_bg "$NS_S" env NOTIFY_SOCKET="$TMP/notify" "${AS_NOBODY[@]}" \
	--inh-caps=+net_admin,+net_raw --ambient-caps=+net_admin,+net_raw \
	"$POSTERND" -c server.conf 2>> posternd.log
PD=$LAST_PID
check "posternd started as nobody with CAP_NET_ADMIN and CAP_NET_RAW binds" wait_for 5 bound
check "  ...drops CAP_NET_RAW: CapEff = CapPrm = CAP_NET_ADMIN, nothing ambient" bash -c "
	is $PD Uid '$NOBODY $NOBODY $NOBODY $NOBODY' &&
	is $PD CapEff $NET_ADMIN_ONLY && is $PD CapPrm $NET_ADMIN_ONLY &&
	is $PD CapInh $NONE && is $PD CapAmb $NONE"
check "  ...NoNewPrivs 1, core limit 0, not dumpable" bash -c "
	is $PD NoNewPrivs 1 && no_core $PD && not_dumpable $PD"
check "  ...and a knock opens the gate" bash -c '
	in_client "$0" -c client.conf knock web1 && wait_for 3 set_has allow4 $CLIENT4 8443' "$POSTERN"
# /proc's queue counters are root's: as under systemd, the socket's own
# drop count (SO_MEMINFO) stands in for them.
kill -STOP $PD
for _ in $(seq 10); do
	in_client "$CRAFT" -g 5000 $SERVER4 $KPORT
	sleep 0.05
done
kill -CONT $PD
check "  ...and counts a queue overrun without /proc: socket drops, queue unknown" \
	wait_for 8 bash -c "grep STATUS= notify.log | tail -1 |
		grep -qE 'kernel drops [1-9][0-9]* \(queue full unknown, socket [1-9]'"
stop_pid $PD

# --- postern-tunneld as nobody ---------------------------------------------
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2> tunneld.log
TD=$LAST_PID
check "postern-tunneld runs as nobody" wait_for 5 bash -c \
	"ip netns exec $NS_S ss -ltn | grep -q ':$TPORT '"
check "  ...with no capability: CapEff, CapPrm, CapInh, CapAmb 0" bash -c "
	is $TD Uid '$NOBODY $NOBODY $NOBODY $NOBODY' &&
	is $TD CapEff $NONE && is $TD CapPrm $NONE && is $TD CapInh $NONE &&
	is $TD CapAmb $NONE"
check "  ...CapBnd as it was given" is $TD CapBnd "$(field $$ CapBnd)"
check "  ...NoNewPrivs 1 (set by itself)" is $TD NoNewPrivs 1
check "  ...core limit 0" no_core $TD
check "  ...not dumpable" not_dumpable $TD
check "  ...and its key and PSK still make tunnels" bash -c '
	in_client "$0" -c client.conf pipe web1 22 < /dev/null > /dev/null 2>&1
	wait_for 3 grep -q "tunnel from alice (.*) open" tunneld.log' "$POSTERN"

# --- the client ------------------------------------------------------------
nobody_owns alice.key
start_bg "$NS_C" "${AS_NOBODY[@]}" "$POSTERN" -c client.conf forward \
	-L 127.0.0.1:2201:web1:22 2> forward.log
FW=$LAST_PID
check "postern forward as nobody listens" wait_for 5 bash -c \
	"ip netns exec $NS_C ss -ltn | grep -q ':2201 '"
check "  ...core limit 0, not dumpable" bash -c "no_core $FW && not_dumpable $FW"
[ -n "${KEEP_LOGS:-}" ] && cp -r "$TMP" "$KEEP_LOGS"
finish
