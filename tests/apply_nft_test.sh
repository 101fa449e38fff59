#!/usr/bin/env bash
# postern gate apply-nft, the lock-out guard, in a network namespace of its
# own (a ruleset is per namespace: the host's is never touched). On a
# kernel without nft's queue statement --print-nft's ruleset is refused
# with nothing changed; the other cases apply a variant that loads here
# (POSTERN_APPLY_NFT_FILE: the knock rule's queue statement made a drop).
# postern-tunneld's confirmation is simulated: the test writes its status
# file (the format of daemon/tunneld.c) as a session would.
#
# usage: apply_nft_test.sh BUILD_DIR
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern
. "$(dirname "$0")/netns_lib.sh"

require_root_netns
command -v script >/dev/null || skip "script (util-linux) is not installed"
NS="pst-applynft-$$"
NS2="pst-applynft2-$$"	# for the run that waits out nft_run's bound
TMP=$(mktemp -d /tmp/postern-applynft-XXXXXX)
cleanup() {
	local pid ns
	# Whatever still runs in the namespaces (a guardian, if a check
	# failed half-way) is stopped by its pid.
	for ns in "$NS" "$NS2"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	# The lock is per namespace, in /run; its holder removes it, but not
	# when a check failed half-way.
	[ -z "${NSINO:-}" ] || rm -f "/run/postern-apply-nft.$NSINO.lock"
	[ -z "${NSINO2:-}" ] || rm -f "/run/postern-apply-nft.$NSINO2.lock"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap "exit 143" TERM INT
ip netns add "$NS"
ip netns add "$NS2"
NSINO=$(ip netns exec "$NS" stat -L -c %i /proc/self/ns/net) || exit 1
NSINO2=$(ip netns exec "$NS2" stat -L -c %i /proc/self/ns/net) || exit 1
cd "$TMP"
umask 077
export TMPDIR=$TMP POSTERN_POSTERND=$BUILD/daemon/posternd
unset POSTERN_HOME POSTERN_APPLY_NFT_FILE
in_ns() { ip netns exec "$NS" "$@"; }

"$POSTERN" genkey > server.key
"$POSTERN" genkey | "$POSTERN" pubkey > alice.pub
"$POSTERN" genpsk > psk
cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
knock { port = 62201  queue = 3 }
tunnel {
	listen = {"198.51.100.1:8443"}
	egress = {22}
	status_file = "$TMP/tunneld.status"
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {8443}
}
CONF
"$POSTERN_POSTERND" --print-nft -c server.conf > printed.nft || exit 1
sed 's/queue num [0-9]*/drop/' printed.nft > variant.nft
grep -q 'queue num' variant.nft && exit 1

# --- nft_run's bound, after the tool closed its output --------------------
# A posternd that prints the ruleset, closes its output and lingers: killed
# at nft_run's bound (60 s), said as a timeout, nothing changed. It runs in
# a namespace of its own, in the background, while the other checks go on.
cat > linger-posternd <<SH
#!/bin/sh
cat "$TMP/variant.nft"
exec sleep 300 >&- 2>&-
SH
chmod 700 linger-posternd
mkdir -m 700 linger
(TMPDIR=$TMP/linger POSTERN_POSTERND=$TMP/linger-posternd exec setsid ip netns exec "$NS2" \
	"$POSTERN" -c server.conf gate apply-nft --confirm-within 5) > linger.out 2> linger.err &
LPID=$!

# The admin's ruleset before: tables of two families, a named counter, a
# set with elements, a comment; no timers and no traffic, so that its
# listing stays the same byte for byte.
cat > previous.nft <<'NFT'
table inet filter {
	counter seen { packets 5 bytes 300 }
	set admins {
		type ipv4_addr
		elements = { 192.0.2.7, 192.0.2.8 }
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr @admins tcp dport 22 counter packets 3 bytes 120 accept comment "ssh"
	}
}
table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "veth9" masquerade
	}
}
NFT
reset_previous() {
	in_ns nft -f - <<<"flush ruleset" && in_ns nft -f previous.nft &&
		in_ns nft list ruleset > before.txt
}
same_as_before() { in_ns nft list ruleset 2>/dev/null | diff before.txt - >&2; }
same_quiet() { same_as_before 2>/dev/null; }
# The listing of the variant loaded by hand, for is_new.
in_ns nft -f variant.nft && in_ns nft list ruleset > new.txt || exit 1
grep -q '^table inet postern {' new.txt || exit 1
is_new() { in_ns nft list ruleset | diff new.txt - >&2; }
no_leftovers() { ! ls "$TMP"/postern-nft-* >/dev/null 2>&1; }
# apply [ARGS...]: the command in the namespace, without a terminal;
# apply_bg: the same in the background, APID its pid (exec: the pid is the
# command's own, for kill -HUP).
apply() { setsid ip netns exec "$NS" "$POSTERN" -c server.conf gate apply-nft "$@"; }
apply_bg() {
	(exec setsid ip netns exec "$NS" "$POSTERN" -c server.conf gate apply-nft "$@") &
	APID=$!
}
# apply_closed FD: apply_bg --confirm-within 30 with FD (0 or 1) closed from
# the start (the redirection inside: bash gives a background job /dev/null
# for stdin otherwise).
apply_closed() {
	if [ "$1" = 0 ]; then
		(exec setsid ip netns exec "$NS" "$POSTERN" -c server.conf \
			gate apply-nft --confirm-within 30 <&-) &
	else
		(exec setsid ip netns exec "$NS" "$POSTERN" -c server.conf \
			gate apply-nft --confirm-within 30 >&-) &
	fi
	APID=$!
}
# guardian_pid: the guardian of the apply-nft $APID, the other postern in
# the namespace; empty unless there is exactly one.
guardian_pid() {
	local pid found=()
	for pid in $(ip netns pids "$NS"); do
		[ "$pid" != "$APID" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postern ] &&
			found+=("$pid")
	done
	[ "${#found[@]}" -eq 1 ] && echo "${found[0]}"
}
# wait_applied FILE PID: until FILE says the change is made (or PID ended).
wait_applied() {
	for _ in $(seq 100); do
		grep -q '^Ruleset applied' "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# --- (a) what this kernel cannot load ---------------------------------
reset_previous || exit 1
printf 'table inet probe {\n\tchain c {\n\t\tudp dport 9 queue num 0 bypass\n\t}\n}\n' > probe.nft
if in_ns nft -c -f probe.nft 2>/dev/null; then
	echo "# this kernel has nft's queue statement: no refusal to check"
else
	rule=$(grep 'queue num' printed.nft | head -1 | sed 's/^[[:space:]]*//')
	want="postern: gate apply-nft: this kernel cannot load the ruleset, nothing changed: the queue statement of \"$rule\" fails (nft: Could not process rule: No such file or directory); the kernel lacks nft's queue statement (nft_queue): queue the knocks with iptables-nft -j NFQUEUE instead, as docs/NFT.md says"
	printf '%s\n' "$want" > want.txt
	apply --confirm-within 5 > out.txt 2> err.txt; rc=$?
	check "--print-nft's ruleset on this kernel: refused, status 1" test $rc -eq 1
	check "  ...one line naming the queue statement, nft's error and the fix" \
		cmp -s want.txt err.txt || diff want.txt err.txt
	check "  ...and the ruleset is the same, byte for byte" same_as_before
	check "  ...and nothing left behind" no_leftovers
fi

# A ruleset nft cannot load back (a queue rule of iptables-nft's on such a
# kernel) is refused too: its rollback would fail.
if command -v iptables-nft >/dev/null && ! in_ns nft -c -f probe.nft 2>/dev/null; then
	in_ns iptables-nft -A INPUT -p udp --dport 62201 -j NFQUEUE --queue-num 3
	in_ns nft list ruleset > before.txt 2>/dev/null
	POSTERN_APPLY_NFT_FILE=variant.nft apply --confirm-within 5 2> err.txt; rc=$?
	check "a current ruleset nft cannot load back: refused, status 1" bash -c "
		[ $rc -eq 1 ] && grep -qF 'nft cannot load the current ruleset back, so a rollback would fail; nothing changed: the queue statement of \"udp dport 62201 counter packets 0 bytes 0 queue num 3\" fails' err.txt" ||
		cat err.txt
	check "  ...and the ruleset is the same, byte for byte" same_as_before
fi

# --- usage --------------------------------------------------------------
reset_previous || exit 1
for bad in 4 3601 0 -5 abc 10s "" " 7"; do
	apply --confirm-within "$bad" > out.txt 2> err.txt; rc=$?
	check "--confirm-within '$bad': usage, status 2" bash -c "
		[ $rc -eq 2 ] && grep -q 'must be a number of seconds from 5 to 3600' err.txt"
done
apply extra > /dev/null 2>&1; rc=$?
check "an extra argument: status 2" test $rc -eq 2
check "  ...and the ruleset is the same" same_as_before

# --- files another user could swap --------------------------------------
# A state directory (TMPDIR) or a test hook's file that another user owns
# or may write would let them choose the ruleset: refused, nothing done.
NOBODY=$(id -u nobody)
mkdir -m 700 nob gw && chown nobody nob && chmod 770 gw && mkdir -m 700 nob/sub
cp variant.nft nobody.nft && chown nobody nobody.nft
cp "$POSTERN_POSTERND" nobody-posternd && chown nobody nobody-posternd
refused() {	# refused WANT: status 1, stderr the line WANT, no change
	[ $rc -eq 1 ] && printf '%s\n' "$1" | cmp -s - err.txt &&
		same_as_before || { cat err.txt; return 1; }
}
for dir in nob gw nob/sub; do
	case $dir in
	nob) why="$TMP/nob is owned by uid $NOBODY" ;;
	gw) why="$TMP/gw is writable by group or others (mode 0770)" ;;
	nob/sub) why="$TMP/nob is owned by uid $NOBODY" ;;
	esac
	TMPDIR=$TMP/$dir POSTERN_APPLY_NFT_FILE=$TMP/variant.nft \
		apply --confirm-within 5 > out.txt 2> err.txt; rc=$?
	check "TMPDIR $dir ($why): refused, status 1, said, nothing changed" \
		refused "postern: gate apply-nft: not using $TMP/$dir for the rulesets: $why, so another user could swap them; nothing changed"
	check "  ...and nothing written there" test -z "$(ls -A "$TMP/$dir" | grep -v '^sub$')"
done
POSTERN_APPLY_NFT_FILE=$TMP/nobody.nft apply --confirm-within 5 > out.txt 2> err.txt; rc=$?
check "a POSTERN_APPLY_NFT_FILE owned by nobody: refused, status 1, said, nothing changed" \
	refused "postern: gate apply-nft: not using POSTERN_APPLY_NFT_FILE=$TMP/nobody.nft: it is owned by uid $NOBODY, so another user could choose the ruleset; nothing changed"
POSTERN_POSTERND=$TMP/nobody-posternd apply --confirm-within 5 > out.txt 2> err.txt; rc=$?
check "a POSTERN_POSTERND owned by nobody: refused, status 1, said, nothing changed" \
	refused "postern: gate apply-nft: not running POSTERN_POSTERND=$TMP/nobody-posternd: it is owned by uid $NOBODY, so another user could choose the ruleset; nothing changed"
check "  ...nothing left behind" no_leftovers

# --- a signal before the guardian exists ---------------------------------
# Held until the preparation is done, then nothing changes and its files
# go: a posternd that sends SIGINT to apply-nft, as ^C would, and prints.
cat > sigint-posternd <<SH
#!/bin/sh
kill -INT \$PPID
cat "$TMP/variant.nft"
SH
chmod 700 sigint-posternd
POSTERN_POSTERND=$TMP/sigint-posternd apply --confirm-within 5 > out.txt 2> err.txt; rc=$?
check "SIGINT during the preparation: nothing changed, status 1, said" \
	refused "postern: gate apply-nft: interrupted before the change; nothing changed"
check "  ...nothing left behind" no_leftovers

export POSTERN_APPLY_NFT_FILE=$TMP/variant.nft

# --- confirmed on the terminal ------------------------------------------
rm -f in.fifo && mkfifo in.fifo
script -qec "ip netns exec $NS $POSTERN -c server.conf gate apply-nft --confirm-within 30" \
	/dev/null < in.fifo > tty.txt 2>&1 &
SPID=$!
exec 3> in.fifo
for _ in $(seq 100); do grep -q 'Type yes' tty.txt && break; sleep 0.1; done
check "the terminal is asked" grep -qF 'Ruleset applied. Can you still connect? Type yes within 30 s to keep it:' tty.txt
check "  ...and meanwhile the new ruleset is loaded" is_new
echo yes >&3
wait "$SPID"; rc=$?
exec 3>&-
check "yes on the terminal: kept, status 0" bash -c "
	[ $rc -eq 0 ] && grep -qF 'postern: gate apply-nft: confirmed on the terminal: the new ruleset is kept' tty.txt" ||
	cat tty.txt
check "  ...the new ruleset is listed, as nft -f loads it" is_new
check "  ...the saved ruleset removed" no_leftovers

# --- confirmed by a tunnel (postern-tunneld's status file) ---------------
reset_previous || exit 1
apply_bg --confirm-within 30 > out.txt 2> err.txt
wait_applied err.txt "$APID"
check "no terminal: it says it waits for a tunnel" grep -qF \
	"Ruleset applied. No terminal: waiting up to 30 s for a tunnel from a listed admin to confirm it ($TMP/tunneld.status)" err.txt
apply --confirm-within 5 > out2.txt 2> err2.txt; rc=$?
check "a second apply-nft meanwhile: refused, status 1" bash -c "
	[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: another apply-nft is waiting for its confirmation; let it end first' err2.txt"
now=$(date +%s%3N)
printf 'daemon postern-tunneld\npid 1\nupdated %s\nsessions 1\nlast_session_at %s\nlast_session_at_ms %s\nlast_session_client alice\nlast_session_src 198.51.100.2\n' \
	"$((now / 1000))" "$((now / 1000))" "$now" > tunneld.status.tmp
mv tunneld.status.tmp tunneld.status
wait "$APID"; rc=$?
check "a session after the change: kept, status 0" bash -c "
	[ $rc -eq 0 ] && grep -qxF 'postern: gate apply-nft: confirmed by a tunnel from alice (198.51.100.2): the new ruleset is kept' err.txt" ||
	cat err.txt
check "  ...the new ruleset is listed" is_new
check "  ...the saved ruleset removed" no_leftovers

# --- stdin or stdout closed at the start ---------------------------------
# The lock must not land on fd 0 or 1, which the guardian points at
# /dev/null: a second run is refused all the same.
for fd in 0 1; do
	reset_previous || exit 1
	apply_closed $fd 2> err.txt
	wait_applied err.txt "$APID"
	apply --confirm-within 5 > out2.txt 2> err2.txt; rc=$?
	check "fd $fd closed at the start: a second apply-nft meanwhile is refused, status 1" bash -c "
		[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: another apply-nft is waiting for its confirmation; let it end first' err2.txt" ||
		cat err2.txt
	kill -HUP "$APID"
	wait "$APID"; rc=$?
	check "  ...and the first rolls back on SIGHUP, status 1" bash -c "
		[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: interrupted: rolled back; nft list ruleset is the same as before, byte for byte' err.txt" ||
		cat err.txt
	check "  ...the previous ruleset is back, byte for byte" same_as_before
done
check "the lock is removed by its last holder" test ! -e "/run/postern-apply-nft.$NSINO.lock"

# --- not confirmed ------------------------------------------------------
# The status file names a session from before the change: no confirmation.
reset_previous || exit 1
printf 'last_session_at_ms %s\nlast_session_client alice\n' "$(( $(date +%s%3N) - 100000 ))" > tunneld.status
apply_bg --confirm-within 5 > out.txt 2> err.txt
wait_applied err.txt "$APID"
check "unconfirmed: the new ruleset loaded meanwhile" is_new
wait "$APID"; rc=$?
check "after 5 s: rolled back, status 1, said so" bash -c "
	[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: not confirmed in time: rolled back; nft list ruleset is the same as before, byte for byte' err.txt" ||
	cat err.txt
check "  ...the previous ruleset is back, byte for byte" same_as_before
check "  ...nothing left behind" no_leftovers

# A session time from the future (the clock stepped back since, or a
# forged file) was there before the change: no confirmation, as it is the
# same value; a session begun after the change still confirms.
future=$(( $(date +%s%3N) + 3600000 ))
reset_previous || exit 1
printf 'last_session_at_ms %s\nlast_session_client alice\n' "$future" > tunneld.status
apply --confirm-within 5 > out.txt 2> err.txt; rc=$?
check "a session time an hour ahead, from before the change: rolled back after 5 s, status 1" bash -c "
	[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: not confirmed in time: rolled back; nft list ruleset is the same as before, byte for byte' err.txt" ||
	cat err.txt
check "  ...the previous ruleset is back, byte for byte" same_as_before
apply_bg --confirm-within 30 > out.txt 2> err.txt
wait_applied err.txt "$APID"
printf 'last_session_at_ms %s\nlast_session_client alice\n' "$(date +%s%3N)" > tunneld.status.tmp
mv tunneld.status.tmp tunneld.status
wait "$APID"; rc=$?
check "  ...then a session after the change (earlier than that time): kept, status 0" bash -c "
	[ $rc -eq 0 ] && grep -qxF 'postern: gate apply-nft: confirmed by a tunnel from alice: the new ruleset is kept' err.txt" ||
	cat err.txt
check "  ...the new ruleset is listed" is_new
rm -f tunneld.status

# --- a hang-up during the wait ------------------------------------------
reset_previous || exit 1
apply_bg --confirm-within 60 > out.txt 2> err.txt
wait_applied err.txt "$APID"
check "before the hang-up: the new ruleset" is_new
kill -HUP "$APID"
wait "$APID"; rc=$?
check "SIGHUP: rolled back at once, status 1, said so" bash -c "
	[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: interrupted: rolled back; nft list ruleset is the same as before, byte for byte' err.txt" ||
	cat err.txt
check "  ...the previous ruleset is back, byte for byte" same_as_before

# --- other signals to the guardian ---------------------------------------
# Any signal that would end it (but SIGKILL and SIGSTOP) rolls back.
for sig in USR1 QUIT ALRM; do
	reset_previous || exit 1
	apply_bg --confirm-within 60 > out.txt 2> err.txt
	wait_applied err.txt "$APID"
	gpid=$(guardian_pid)
	check "SIG$sig: the guardian found, the new ruleset loaded" bash -c "
		[ -n '$gpid' ] && ip netns exec '$NS' nft list ruleset | diff -q new.txt - >/dev/null"
	[ -z "$gpid" ] || kill -"$sig" "$gpid"
	wait "$APID"; rc=$?
	check "  ...SIG$sig to the guardian: rolled back at once, status 1, said so" bash -c "
		[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: interrupted: rolled back; nft list ruleset is the same as before, byte for byte' err.txt" ||
		cat err.txt
	check "  ...the previous ruleset is back, byte for byte" same_as_before
	check "  ...nothing left behind" no_leftovers
done

# --- a saved ruleset left behind (the guardian killed) --------------------
# SIGKILL of the guardian leaves the trial ruleset and the saved one; the
# next run refuses until the admin has dealt with it.
reset_previous || exit 1
apply_bg --confirm-within 60 > out.txt 2> err.txt
wait_applied err.txt "$APID"
gpid=$(guardian_pid)
[ -z "$gpid" ] || kill -KILL "$gpid"
wait "$APID"; rc=$?
saved=$(ls "$TMP"/postern-nft-saved.* 2>/dev/null)
check "SIGKILL of the guardian: status 1, the saved ruleset named and left" bash -c "
	[ $rc -eq 1 ] && [ -n '$saved' ] && grep -qxF 'postern: gate apply-nft: the guardian ended without a word: check the ruleset (nft list ruleset); the saved one is $saved (nft -f restores it)' err.txt" ||
	cat err.txt
apply --confirm-within 5 > out.txt 2> err.txt; rc=$?
check "  ...the next run: refused, status 1, naming the file and what to do" bash -c "
	[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: $saved was left by a run whose guardian is gone: nft -f $saved restores the ruleset from before that run; remove the file once the ruleset is as it should be; nothing changed' err.txt" ||
	cat err.txt
check "  ...and changed nothing: the trial ruleset is still loaded" is_new
in_ns nft -f "$saved"
check "  ...nft -f of the file restores the previous ruleset, byte for byte" same_as_before
rm -f "$saved"

# --- the terminal dies (the admin's ssh session drops) -------------------
reset_previous || exit 1
rm -f in.fifo && mkfifo in.fifo
script -qec "ip netns exec $NS $POSTERN -c server.conf gate apply-nft --confirm-within 60" \
	/dev/null < in.fifo > tty.txt 2>&1 &
SPID=$!
exec 3> in.fifo
for _ in $(seq 100); do grep -q 'Type yes' tty.txt && break; sleep 0.1; done
check "before the terminal dies: asked, the new ruleset loaded" bash -c "
	grep -q 'Type yes' tty.txt && ip netns exec '$NS' nft list ruleset | diff -q new.txt - >/dev/null"
kill -9 "$SPID"	# its pty's master closes: the session hangs up
wait "$SPID" 2>/dev/null
exec 3>&-
check "  ...after: the previous ruleset is back, byte for byte (bounded wait)" \
	wait_for 10 same_quiet
# The guardian compares and reports after the ruleset is back: the next
# run would find its lock still held.
nothing_in_ns() { [ -z "$(ip netns pids "$NS")" ]; }
check "  ...and the guardian ends (bounded wait)" wait_for 10 nothing_in_ns

# --- timed set elements -------------------------------------------------
# Elements with a timeout come back with the time they had left at the
# change less the trial, not given the trial's time again.
reset_previous || exit 1
in_ns nft add set inet filter knocked '{ type ipv4_addr; flags timeout; }'
in_ns nft add element inet filter knocked '{ 192.0.2.9 timeout 1h }'
ms_left() {	# the remaining time of 192.0.2.9, in ms
	in_ns nft list set inet filter knocked | grep -oE 'expires [0-9hms]+' |
		sed 's/expires //' | awk '{ t = 0; s = $0
			if (match(s, /[0-9]+h/)) t += substr(s, RSTART, RLENGTH - 1) * 3600000
			if (match(s, /[0-9]+m[^s]/)) t += substr(s, RSTART, RLENGTH - 2) * 60000
			if (match(s, /[0-9]+s/)) t += substr(s, RSTART, RLENGTH - 1) * 1000
			if (match(s, /[0-9]+ms/)) t += substr(s, RSTART, RLENGTH - 2)
			print t }'
}
left_before=$(ms_left)
apply --confirm-within 5 > out.txt 2> err.txt; rc=$?
left_after=$(ms_left)
check "timed elements: rolled back, status 1, the timers said" bash -c "
	[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: not confirmed in time: rolled back; nft list ruleset is the same as before but for the timers of set elements and counter values, which ran on' err.txt" ||
	cat err.txt
check "  ...the element is back with at least the trial's 5 s less" \
	test "${left_after:-0}" -gt 0 -a "${left_after:-0}" -le $((left_before - 5000))

# --- the lingering tool, started at the beginning --------------------------
lingered() { grep -q . linger.err; }
wait_for 80 lingered || kill "$LPID"
wait "$LPID"; rc=$?
check "a posternd that closes its output and lingers: killed at the bound, said as a timeout, status 1" bash -c "
	[ $rc -eq 1 ] && grep -qxF 'postern: gate apply-nft: $TMP/linger-posternd --print-nft -c server.conf failed: $TMP/linger-posternd: no end within 60 s: killed' linger.err" ||
	cat linger.err
check "  ...and its namespace's ruleset is unchanged (empty)" \
	test -z "$(ip netns exec "$NS2" nft list ruleset)"

finish
