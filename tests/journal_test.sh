#!/usr/bin/env bash
# log.c against a real systemd-journald: the fields, PRIORITY and MESSAGE_ID
# of log_probe's entries as journalctl reads them, the AUTO target on a
# journal stream, and journalctl's own parse of postern.catalog.
#
# journald runs alone in a private mount namespace with a tmpfs on /run, so
# its sockets and its (volatile) journal vanish with the namespace and nothing
# reaches the host's journal.
#
# Usage: journal_test.sh LOG_PROBE [CATALOG]. Exits 77 (skip) when not root or
# when unshare, journald or journalctl is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "journal_test: SKIP: $*"; exit 77; }
fail() { echo "journal_test: FAIL: $*" >&2; exit 1; }

# Wait up to $1 tenths of a second for the command after it to succeed.
wait_for() {
	local tries=$1
	shift
	while ! "$@"; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.1
	done
}

# --- inside the namespace ---------------------------------------------------

jpid=""

inside() {
	local tmp=$1 probe=$2 journald=$3 dir=/run/log/journal
	local id entry have_catalog=""
	local -a jc=(timeout 20 journalctl -D "$dir" --no-pager)

	journald_gone() { ! kill -0 "$jpid" 2>/dev/null; }
	stop_journald() {
		[ -n "$jpid" ] || return 0
		kill -TERM "$jpid" 2>/dev/null || true
		wait_for 50 journald_gone ||
			kill -KILL "$jpid" 2>/dev/null || true
		wait "$jpid" 2>/dev/null || true
		jpid=""
	}
	trap stop_journald EXIT

	# Mounted before /run is covered, in case TMPDIR lies under /run.
	if [ -f "$tmp/root/var/lib/systemd/catalog/database" ] &&
	   [ -f /var/lib/systemd/catalog/database ]; then
		mount --bind "$tmp/root/var/lib/systemd/catalog/database" \
			/var/lib/systemd/catalog/database
		have_catalog=1
	fi
	exec 3>>"$tmp/journald.log"

	mount -t tmpfs -o mode=0755,size=64m postern-journal-test /run
	mkdir -p /run/systemd/journald.conf.d /run/log
	# Drop-ins win over /etc/systemd/journald.conf; "zz" sorts after the
	# host's. Audit= empty leaves the kernel's audit setting alone.
	cat >/run/systemd/journald.conf.d/zz-postern-test.conf <<-EOF
	[Journal]
	Storage=volatile
	ReadKMsg=no
	Audit=
	ForwardToSyslog=no
	ForwardToKMsg=no
	ForwardToConsole=no
	ForwardToWall=no
	RateLimitBurst=0
	EOF

	SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=info \
		"$journald" </dev/null >&3 2>&3 &
	jpid=$!
	wait_for 100 test -S /run/systemd/journal/socket ||
		fail "journald did not create its socket within 10 s"
	kill -0 "$jpid" 2>/dev/null || fail "journald exited"

	# 1. LOG_TARGET_JOURNAL: native fields, MESSAGE_ID from the table.
	id=$("$probe" journal native) || fail "log_probe journal failed"
	[[ $id =~ ^MESSAGE_ID=[0-9a-f]{32}$ ]] || fail "log_probe printed '$id'"

	# 2. AUTO on a journal stream: systemd-cat gives the stream;
	# JOURNAL_STREAM is set to its device:inode exactly as systemd does
	# for a service.
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 20 systemd-cat -t log_probe-stream bash -c \
		'JOURNAL_STREAM=$(stat -L -c %d:%i /dev/stderr) exec "$0" auto stream' \
		"$probe" >/dev/null || fail "log_probe auto under systemd-cat failed"

	# 3. AUTO without a journal stream: stderr, and nothing in the journal.
	"$probe" auto plain 2>/run/plain.err >/dev/null ||
		fail "log_probe auto failed"

	timeout 20 journalctl --sync || true	# harmless if unsupported
	query() { "${jc[@]}" -o export POSTERN_EVENT="$1" POSTERN_PROBE="$2"; }
	logged() { [ -n "$(query "$@")" ]; }
	wait_for 100 logged knock_accepted native ||
		fail "no knock_accepted entry within 10 s"
	wait_for 100 logged knock_accepted stream ||
		fail "AUTO on a journal stream did not pick the journal"

	entry=$(query knock_accepted native)
	for f in "$id" POSTERN_EVENT=knock_accepted POSTERN_CLIENT=alice \
		 POSTERN_SRC=192.0.2.7 POSTERN_TARGET=192.0.2.7 \
		 "POSTERN_PORTS=22 8443" PRIORITY=5 SYSLOG_IDENTIFIER=log_probe \
		 "MESSAGE=knock accepted from 192.0.2.7"; do
		grep -qxF -- "$f" <<<"$entry" ||
			fail "knock_accepted entry lacks $f:"$'\n'"$entry"
	done
	! grep -q '^CODE_FILE=' <<<"$entry" ||
		fail "entry names log.c as its CODE_FILE"

	entry=$(query probe_unknown native)
	[ -n "$entry" ] || fail "no probe_unknown entry"
	grep -qxF PRIORITY=5 <<<"$entry" || fail "probe_unknown: no PRIORITY=5"
	! grep -q '^MESSAGE_ID=' <<<"$entry" ||
		fail "an unknown event has a MESSAGE_ID"
	[ -z "$(query probe_debug native)" ] ||
		fail "a message below max_priority reached the journal"

	entry=$(query knock_accepted stream)
	grep -qxF -- "$id" <<<"$entry" || fail "stream entry lacks $id"
	[ -z "$("${jc[@]}" -o export POSTERN_PROBE=plain)" ] ||
		fail "AUTO without a journal stream wrote to the journal"
	grep -qxF 'log_probe: knock accepted from 192.0.2.7 (POSTERN_CLIENT=alice POSTERN_SRC=192.0.2.7 POSTERN_TARGET=192.0.2.7 POSTERN_PORTS=22 8443 POSTERN_PROBE=plain)' \
		/run/plain.err || fail "stderr line: $(cat /run/plain.err)"

	# 4. The catalog explains the entry (journalctl -x).
	if [ -n "$have_catalog" ]; then
		"${jc[@]}" -x POSTERN_EVENT=knock_accepted POSTERN_PROBE=native |
			grep -q 'Knock accepted from alice' ||
			fail "journalctl -x shows no catalog text for $id"
	else
		echo "journal_test: no /var/lib/systemd/catalog/database; -x not checked"
	fi

	stop_journald
	echo "journal_test: journald $(basename "$journald"): all checks passed"
}

if [ "${1:-}" = --inside ]; then
	shift
	inside "$@"
	exit 0
fi

# --- outside ----------------------------------------------------------------

probe=${1:?usage: journal_test.sh LOG_PROBE [CATALOG]}
catalog=${2:-$here/../systemd/postern.catalog}
[ -x "$probe" ] || fail "$probe: not executable"
[ -f "$catalog" ] || fail "$catalog: not found"

[ "$(id -u)" -eq 0 ] || skip "needs root for a private mount namespace"
command -v unshare >/dev/null || skip "unshare not installed"
command -v journalctl >/dev/null || skip "journalctl not installed"
command -v systemd-cat >/dev/null || skip "systemd-cat not installed"
journald=""
for j in /usr/lib/systemd/systemd-journald /lib/systemd/systemd-journald; do
	[ -x "$j" ] && { journald=$j; break; }
done
[ -n "$journald" ] || skip "systemd-journald not installed"
[ -s /etc/machine-id ] || skip "/etc/machine-id is empty; journald needs it"
unshare -m true 2>/dev/null || skip "unshare -m not permitted here"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/postern-journal.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# journalctl parses the catalog into a database of its own, under $tmp.
mkdir -p "$tmp/root/usr/lib/systemd/catalog"
cp "$catalog" "$tmp/root/usr/lib/systemd/catalog/postern.catalog"
journalctl --root="$tmp/root" --update-catalog ||
	fail "journalctl could not parse $catalog"
ids=$(grep -Eo '^-- [0-9a-f]{32}' "$catalog" | cut -c4-)
listed=$(journalctl --root="$tmp/root" --list-catalog)
for i in $ids; do
	grep -q "^$i postern: " <<<"$listed" ||
		fail "catalog entry $i is not in journalctl's database"
done

rc=0
unshare -m --propagation private \
	bash "$0" --inside "$tmp" "$(realpath "$probe")" "$journald" || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "journal_test: journald's log:" >&2
	cat "$tmp/journald.log" >&2 2>/dev/null || true
fi
exit "$rc"
