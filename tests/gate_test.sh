#!/usr/bin/env bash
# postern gate on a server: init's files and printed lines, allow and
# revoke as clients.d/ drop-ins applied by a reload, ls with the last
# accepted knock, and status with each refusal's reason, time and source,
# against posternd and postern-tunneld running in a server namespace.
#
# usage: gate_test.sh BUILD_DIR  (KEEP_LOGS=DIR keeps the run's files)
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
TUNNELD=$BUILD/daemon/postern-tunneld ECHO=$BUILD/tests/echo_server
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
[ -x "$TUNNELD" ] || skip "postern-tunneld is not built"
netns_setup gate

KPORT=62201 TPORT=8443
umask 077
cd "$TMP"
P() { "$POSTERN" "$@"; }
G() { POSTERN_HOME=$TMP/etc "$POSTERN" gate "$@"; }
mode() { stat -c %a "$1"; }

# --- init -------------------------------------------------------------------
G init --egress 22,7000 > init.out 2>&1; rc=$?
cat init.out
SPUB=$(P pubkey < etc/server.key 2>/dev/null)
check "gate init succeeds" test $rc -eq 0
check "  ...server.key and psk, 0600, keys" bash -c "
	[ \$(stat -c %a etc/server.key) = 600 ] && [ \$(stat -c %a etc/psk) = 600 ] &&
	grep -qE '^[A-Za-z0-9+/]{43}=\$' etc/server.key &&
	grep -qE '^[A-Za-z0-9+/]{43}=\$' etc/psk"
check "  ...postern.conf takes the secrets as the units' credentials" bash -c "
	grep -qx 'private_key_credential = \"server.key\"' etc/postern.conf &&
	grep -qx 'psk_credential = \"psk\"' etc/postern.conf &&
	grep -qxF '	egress = {22, 7000}' etc/postern.conf"
check "  ...and clients.d/" test -d etc/clients.d
check "  ...prints the public key" grep -qxF "Server public key: $SPUB" init.out
check "  ...and the exact add-server line" bash -c "
	grep -qE '^  postern add-server [A-Za-z0-9_-]+ [0-9.A-Z]+ ${SPUB//+/\\+} --knock-port 62201 --tunnel-port 8443\$' init.out"
cp etc/server.key key.before
G init > init2.out 2>&1; rc=$?
check "a second init refuses, changing nothing" bash -c "
	[ $rc -eq 1 ] && grep -q 'server.key exists: not overwritten' init2.out &&
	cmp -s key.before etc/server.key"
check "gate init --egress with a bad port: usage" bash -c "
	POSTERN_HOME=$TMP/etc2 '$POSTERN' gate init --egress 22,70000 2>&1 |
	grep -q 'not a list of ports' && [ ! -e $TMP/etc2 ]"

# The config as the tests run it: by hand (no systemd credentials: the
# files of those names beside it), as nobody, on the test's addresses.
sed -i -e "s|^\tport = 62201|&\n\tstatus_file = \"$TMP/run/knock.status\"|" \
	-e "s|^\tlisten = .*|\tlisten = {\"$SERVER4:$TPORT\"}\n\tstatus_file = \"$TMP/run/tunnel.status\"|" \
	etc/postern.conf
echo 'user = "nobody"' >> etc/postern.conf
mkdir -m 777 run
chmod 755 etc etc/clients.d
nobody_reads etc/postern.conf
nobody_owns etc/server.key etc/psk

# --- allow ------------------------------------------------------------------
gen_keys alice bob mallory
cp etc/psk psk
chmod 600 psk
printf '%s\n' "$SPUB" > server.pub
client_conf alice.conf alice.key server.pub psk
client_conf bob.conf bob.key server.pub psk
client_conf mallory.conf mallory.key server.pub psk
client_conf wrongpsk.conf alice.key server.pub otherpsk

G allow alice "$(cat alice.pub)" > allow.out 2>&1; rc=$?
cat allow.out
check "gate allow alice succeeds and says how to apply it" bash -c "
	[ $rc -eq 0 ] && grep -qF 'Allowed client \"alice\" ($TMP/etc/clients.d/alice.conf); apply with: systemctl reload posternd postern-tunneld' allow.out"
check "  ...a drop-in opening the tunnel port" bash -c "
	grep -qx 'client \"alice\" {' etc/clients.d/alice.conf &&
	grep -qxF '	public_key = \"$(cat alice.pub)\"' etc/clients.d/alice.conf &&
	grep -qxF '	open = {$TPORT}' etc/clients.d/alice.conf"
cp etc/clients.d/alice.conf alice.before
refused() {	# refused STATUS MESSAGE ARGS...: that status and message, nothing changed
	local want=$1 msg=$2 out rc
	shift 2
	out=$(G allow "$@" 2>&1); rc=$?
	[ $rc -eq "$want" ] && echo "$out" | grep -qF "$msg" &&
		cmp -s alice.before etc/clients.d/alice.conf &&
		[ "$(ls etc/clients.d)" = alice.conf ] ||
		{ echo "  status $rc: $out"; return 1; }
}
check "allow of alice's key under another name is refused" \
	refused 1 "that key is client \"alice\"'s ($TMP/etc/clients.d/alice.conf:2)" bob2 "$(cat alice.pub)"
check "allow of a bad key is refused" refused 2 "not a public key" carol notakey
check "allow of a bad name is refused" refused 2 "not a valid name" "../x" "$(cat bob.pub)"
check "allow of a bad date is refused" refused 2 "not a date" carol "$(cat bob.pub)" --expires 2027-13-45
check "allow of bad ports is refused" refused 2 "not a list of ports" carol "$(cat bob.pub)" --open 22,
check "allow of ports with a sign or a blank is refused" refused 2 "not a list of ports" carol "$(cat bob.pub)" --open +22
check "  ...or a blank" refused 2 "not a list of ports" carol "$(cat bob.pub)" --open " 22"
check "allow of a day that does not exist is refused" refused 2 "not a date" carol "$(cat bob.pub)" --expires 2027-02-30
printf 'client "tablet" { public_key = "%s" }\n' "$(cat mallory.pub)" >> etc/clients.d/alice.conf
cp etc/clients.d/alice.conf alice.before
check "allow over a drop-in that holds another client is refused, naming it" \
	refused 1 "$TMP/etc/clients.d/alice.conf also holds client \"tablet\" (line 6), which replacing it would remove" alice "$(cat alice.pub)"
sed -i '$d' etc/clients.d/alice.conf
cp etc/clients.d/alice.conf alice.before
check "allow by a relative -c path replaces alice's own drop-in" bash -c "
	cd etc && '$POSTERN' -c postern.conf gate allow alice '$(cat alice.pub)' 2>&1 |
	grep -qF 'Replaced client \"alice\"'"
check "  ...with the config's group and read bits" test "$(stat -c '%a %g' etc/clients.d/alice.conf)" = "$(stat -c '%a %g' etc/postern.conf)"
G allow dave "$(cat mallory.pub)" --expires 2020-01-01 > past.out 2>&1
check "allow of a past expiry warns" grep -qxF "postern: warning: 2020-01-01 is past: dave's knocks will be refused" past.out
G revoke dave > /dev/null
chmod 644 etc/clients.d/alice.conf

# --- the daemons --------------------------------------------------------------
server_firewall etc/postern.conf || exit 1
start_bg "$NS_S" "$POSTERND" -c etc/postern.conf 2> posternd.log
POSTERND_PID=$LAST_PID
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c etc/postern.conf 2> tunneld.log
TUNNELD_PID=$LAST_PID
wait_for 5 in_server grep -qE "^ *0 " /proc/net/netfilter/nfnetlink_queue
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/$SERVER4/$TPORT" 2>/dev/null
check "posternd runs with the credentials' files beside the config" kill -0 $POSTERND_PID
check "postern-tunneld too" kill -0 $TUNNELD_PID

check "alice's knock opens the gate" in_client "$POSTERN" -c alice.conf knock --wait web1
check "gate ls shows alice's last knock, from her address" wait_for 3 bash -c "
	POSTERN_HOME=$TMP/etc '$POSTERN' gate ls | awk '\$1 == \"alice\" && \$2 == $TPORT && \$3 == \"never\" && \$7 == \"$CLIENT4\"' | grep -q ."
G ls

# A wrong PSK and an unlisted key: each refusal findable on the server.
in_client "$POSTERN" -c wrongpsk.conf knock web1 2>/dev/null
in_client "$POSTERN" -c bob.conf knock web1 2>/dev/null
check "bob's key is logged with the key, for gate allow" \
	wait_for 3 grep -qF "knock from unlisted key $(cat bob.pub) ($CLIENT4) refused: unknown_key" posternd.log
# The status file follows the counters within a second.
wait_for 3 bash -c "POSTERN_HOME=$TMP/etc '$POSTERN' gate status | grep -q '^    unknown_key '"
G status > status.out 2>&1; rc=$?
cat status.out
check "gate status: both running" bash -c "
	[ $rc -eq 0 ] && grep -qE '^posternd: running, pid $POSTERND_PID,' status.out &&
	grep -qE '^postern-tunneld: running, pid $TUNNELD_PID,' status.out"
check "  ...the wrong PSK as bad_mac1, when and from where" \
	grep -qE "^    bad_mac1 +1, last [0-9-]+ [0-9:]+ UTC from $CLIENT4\$" status.out
check "  ...with what it means" grep -qF "not a knock for this server: a wrong PSK or server key" status.out
check "  ...the unlisted key as unknown_key" \
	grep -qE "^    unknown_key +1, last [0-9-]+ [0-9:]+ UTC from $CLIENT4\$" status.out
check "  ...accepted 1" grep -qE "^  received [0-9]+, accepted 1," status.out

# allow + reload: bob gets in; revoke + reload: alice no longer does.
G allow bob "$(cat bob.pub)" --expires 2099-12-31 > /dev/null
chmod 644 etc/clients.d/bob.conf
G revoke alice > revoke.out 2>&1; rc=$?
check "gate revoke alice removes her drop-in and says how to apply it" bash -c "
	[ $rc -eq 0 ] && [ ! -e etc/clients.d/alice.conf ] &&
	grep -qF 'Revoked client \"alice\" (removed $TMP/etc/clients.d/alice.conf); apply with: systemctl reload' revoke.out"
G revoke alice > revoke2.out 2>&1; rc=$?
check "a second revoke says there is no such client" bash -c "
	[ $rc -eq 1 ] && grep -qF 'no client \"alice\"' revoke2.out"
kill -HUP $POSTERND_PID $TUNNELD_PID
check "both daemons reload the drop-ins" wait_for 5 bash -c "
	grep -q 'reloaded.*: 1 clients' posternd.log && grep -q 'reloaded.*: 1 clients' tunneld.log"
flush_sets
check "after the reload bob's knock opens the gate" in_client "$POSTERN" -c bob.conf knock --wait web1
check "  ...gate ls shows bob, his expiry and knock, and not alice" wait_for 3 bash -c "
	out=\$(POSTERN_HOME=$TMP/etc '$POSTERN' gate ls)
	echo \"\$out\" | awk '\$1 == \"bob\" && \$3 == \"2099-12-31\" && \$7 == \"$CLIENT4\"' | grep -q . &&
	! echo \"\$out\" | grep -q '^alice '"
flush_sets
in_client "$POSTERN" -c alice.conf knock web1 2>/dev/null
check "alice's knock is refused as unknown_key" \
	wait_for 3 grep -qF "knock from unlisted key $(cat alice.pub) ($CLIENT4) refused: unknown_key" posternd.log
check "  ...and opened nothing" test "$(set_count allow4)" = 0

# A tunnel: status shows the last session.
start_bg "$NS_S" "$ECHO" 7000 60
wait_for 5 in_server bash -c "exec 3<>/dev/tcp/127.0.0.1/7000" 2>/dev/null
check "a tunnel from bob reaches the echo service" bash -c "
	[ \"\$(echo hello | ip netns exec $NS_C '$POSTERN' -c bob.conf pipe web1 7000)\" = hello ]"
# postern ls on the device: the tunnels running processes hold.
mkdir -m 700 xdg
start_bg "$NS_C" env XDG_RUNTIME_DIR=$TMP/xdg "$POSTERN" -c bob.conf forward -L 7301:web1:7000 2> fwd.err
FWD_PID=$LAST_PID
check "postern ls shows the tunnel a running forward holds" wait_for 5 bash -c "
	XDG_RUNTIME_DIR=$TMP/xdg '$POSTERN' -c bob.conf ls | grep -qE '^web1 .* 1 up \(1 process\)\$'"
stop_pid $FWD_PID
check "  ...and none once it ended" bash -c "
	XDG_RUNTIME_DIR=$TMP/xdg '$POSTERN' -c bob.conf ls | awk '\$1 == \"web1\" && \$NF == \"-\"' | grep -q . &&
	[ -z \"\$(ls $TMP/xdg/postern | grep tunnels-)\" ]"
XDG_RUNTIME_DIR=$TMP/xdg "$POSTERN" -c bob.conf ls

check "gate status shows bob's session" wait_for 3 bash -c "
	POSTERN_HOME=$TMP/etc '$POSTERN' gate status |
	grep -qE '^  last session [0-9-]+ [0-9:]+ UTC: bob from $CLIENT4'"

# -t: what loads but cannot work as meant.
G allow old "$(cat mallory.pub)" --expires 2020-01-01 --open 22 > /dev/null
sed "s|^\tlisten = .*|\tlisten = {\"$SERVER4:$TPORT\", \"$SERVER4:9443\"}|" etc/postern.conf > etc/lint.conf
in_server "$POSTERND" -t -c etc/lint.conf > lint.out 2>&1
"$TUNNELD" -t -c etc/lint.conf >> lint.out 2>&1
cat lint.out
check "-t warns of a listen port no client's knock opens (both daemons)" test "$(grep -cxF \
	"postern-tunneld: warning: tunnel.listen $SERVER4:9443: no client's open list has port 9443, so no knock opens it" lint.out)$(grep -cxF \
	"posternd: warning: tunnel.listen $SERVER4:9443: no client's open list has port 9443, so no knock opens it" lint.out)" = 11
check "  ...and of an expired client, with its file and line" grep -qxF \
	"posternd: warning: client \"old\" ($TMP/etc/clients.d/old.conf:2) expired after 2020-01-01: its knocks are refused" lint.out
check "  ...and of nothing else" test "$(grep -c warning lint.out)" = 4
rm etc/lint.conf etc/clients.d/old.conf

# A drop-in that breaks the config: the reload keeps the running one.
printf 'client "eve" { public_key = "%s" }\n' "$(cat bob.pub)" > etc/clients.d/eve.conf
chmod 644 etc/clients.d/eve.conf
check "posternd -t names the drop-in, its line and the other client" bash -c "
	'$POSTERND' -t -c etc/postern.conf 2>&1 |
	grep -qF '$TMP/etc/clients.d/eve.conf:1: client \"eve\": same key as client \"bob\" ($TMP/etc/clients.d/bob.conf:2)'"
rm etc/clients.d/eve.conf

# gate apply-nft confirmed by a real tunnel through the new ruleset. The
# iptables-nft queue rules go first (nft cannot load them back, so
# apply-nft would refuse); the new ruleset is the printed one with its
# queue rule a drop and the tunnel port open to the client, as the knock
# would have it.
in_server iptables-nft -D INPUT 1 && in_server ip6tables-nft -D INPUT 1
flush_sets	# no timed element to run out during the trial
sed -e 's/queue num [0-9]*/drop/' \
    -e "s|^\t\tct state invalid drop|&\n\t\tip saddr $CLIENT4 tcp dport $TPORT accept|" printed.nft > trial.nft
(cd "$TMP" && POSTERN_APPLY_NFT_FILE=$TMP/trial.nft TMPDIR=$TMP \
	exec ip netns exec "$NS_S" "$POSTERN" -c etc/postern.conf gate apply-nft \
	--confirm-within 30 < /dev/null > apply.out 2>&1) &
APPLY_PID=$!
PIDS+=($APPLY_PID)
check "apply-nft without a terminal waits for a tunnel" \
	wait_for 10 grep -qF "Ruleset applied. No terminal: waiting up to 30 s for a tunnel from a listed admin to confirm it ($TMP/run/tunnel.status)" apply.out
check "  ...a tunnel from bob through the new ruleset" bash -c "
	[ \"\$(echo again | ip netns exec $NS_C '$POSTERN' -c bob.conf pipe web1 7000)\" = again ]"
for _ in $(seq 100); do kill -0 $APPLY_PID 2>/dev/null || break; sleep 0.1; done
wait $APPLY_PID; rc=$?
cat apply.out
check "  ...confirms it: kept, exit 0" bash -c "
	[ $rc -eq 0 ] && grep -qE 'confirmed by a tunnel from bob \($CLIENT4:[0-9]+\): the new ruleset is kept' apply.out"
check "  ...and the ruleset is the new one" bash -c "
	in_server() { ip netns exec $NS_S \"\$@\"; }
	ip netns exec $NS_S nft list ruleset | grep -qF 'ip saddr $CLIENT4 tcp dport $TPORT accept'"

stop_pid $POSTERND_PID
check "gate status says when posternd is not running" bash -c "
	POSTERN_HOME=$TMP/etc '$POSTERN' gate status > stopped.out 2>&1; [ \$? -eq 1 ] &&
	grep -qE '^posternd: not running \\(its status file is from [0-9]+ s ago\\); systemctl status posternd' stopped.out"
stop_pid $TUNNELD_PID

# Status files are written by the daemons' users: a bad value is shown as
# such, never crashes root's gate status, and a FIFO does not hang it.
printf 'daemon posternd\npid 1\nupdated 99999999999999999\nrefused.bad_mac1 1\nlast.bad_mac1 67768036191676800 1.2.3.4\e[31m\n' > run/knock.status
timeout 5 "$POSTERN" -c etc/postern.conf gate status > bad.out 2>&1; rc=$?
check "gate status with a bad time in a status file: said, no crash" bash -c "
	[ $rc -eq 1 ] && grep -qF 'bad_mac1       1, last (a bad time) from 1.2.3.4?[31m' bad.out"
rm run/tunnel.status && mkfifo run/tunnel.status
timeout 5 "$POSTERN" -c etc/postern.conf gate status > fifo.out 2>&1; rc=$?
check "  ...a FIFO for a status file: said, no hang" bash -c "
	[ $rc -eq 1 ] && grep -q '^postern-tunneld: no status file' fifo.out"
rm -f xdg/postern/gate-web1 && mkfifo xdg/postern/gate-web1
check "postern ls with a FIFO for a memo: no hang" bash -c "
	XDG_RUNTIME_DIR=$TMP/xdg timeout 5 '$POSTERN' -c bob.conf ls | awk '\$1 == \"web1\" && \$5 == \"-\"' | grep -q ."
[ -z "${KEEP_LOGS:-}" ] || cp -r "$TMP"/. "$KEEP_LOGS"/
finish
