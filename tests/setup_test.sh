#!/usr/bin/env bash
# postern init and add-server: the files they write, their modes, that
# they never overwrite and keep the admin's own lines, that bad input is
# refused with nothing changed, and that the result loads.
#
# usage: setup_test.sh POSTERN SOURCE_DIR
set -u
POSTERN=$1 SRC=$(realpath "$2")
. "$SRC/tests/netns_lib.sh"
TMP=$(mktemp -d /tmp/postern-setup-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export POSTERN_HOME=$TMP/home/postern	# does not exist yet
umask 077
P() { "$POSTERN" "$@"; }
mode() { stat -c %a "$1"; }

P init > "$TMP/init.out" 2>&1; rc=$?
cat "$TMP/init.out"
check "init succeeds" test $rc -eq 0
check "  ...makes the directory, private" test "$(mode "$POSTERN_HOME")" = 700
check "  ...admin.key, 0600, a key" bash -c "
	[ \"\$(stat -c %a '$POSTERN_HOME/admin.key')\" = 600 ] &&
	grep -qE '^[A-Za-z0-9+/]{43}=\$' '$POSTERN_HOME/admin.key'"
check "  ...postern.conf, 0600, naming admin.key and psk beside it" bash -c "
	[ \"\$(stat -c %a '$POSTERN_HOME/postern.conf')\" = 600 ] &&
	grep -qx 'private_key_file = \"admin.key\"' '$POSTERN_HOME/postern.conf' &&
	grep -qx 'psk_file = \"psk\"' '$POSTERN_HOME/postern.conf'"
PUB=$(P pubkey < "$POSTERN_HOME/admin.key")
check "  ...prints the public key and the exact gate allow line" bash -c "
	grep -qxF 'Public key: $PUB' '$TMP/init.out' &&
	awk -v k='$PUB' '\$1 == \"postern\" && \$2 == \"gate\" && \$3 == \"allow\" &&
		\$4 ~ /^[A-Za-z0-9_-]+\$/ && \$5 == k && NF == 5' '$TMP/init.out' | grep -q ."

cp "$POSTERN_HOME/admin.key" "$TMP/key.before"
P init > "$TMP/init2.out" 2>&1; rc=$?
check "a second init refuses, naming the file" bash -c "
	[ $rc -eq 1 ] && grep -q 'exists: not overwritten' '$TMP/init2.out'"
check "  ...and the key is the same" cmp -s "$TMP/key.before" "$POSTERN_HOME/admin.key"

# The admin's own lines stay, wherever they are.
printf '# my notes\nconnect_timeout = 20  # slow links\n' >> "$POSTERN_HOME/postern.conf"
SPUB=$(P genkey | P pubkey)
check "add-server succeeds" P add-server web1 203.0.113.10 "$SPUB" --tunnel-port 9443
check "  ...appends the block, the admin's lines kept" bash -c "
	grep -qx '# my notes' '$POSTERN_HOME/postern.conf' &&
	grep -qx 'connect_timeout = 20  # slow links' '$POSTERN_HOME/postern.conf' &&
	grep -qx 'server \"web1\" {' '$POSTERN_HOME/postern.conf' &&
	grep -qx '	tunnel_port = 9443' '$POSTERN_HOME/postern.conf' &&
	grep -qx '	knock_port = 62201' '$POSTERN_HOME/postern.conf' &&
	grep -qx '	public_key = \"$SPUB\"' '$POSTERN_HOME/postern.conf'"
check "  ...and keeps the file private" test "$(mode "$POSTERN_HOME/postern.conf")" = 600
cp "$POSTERN_HOME/postern.conf" "$TMP/conf.before"
refused() {	# refused STATUS MESSAGE ARGS...: that status and message, file unchanged
	local want=$1 msg=$2 out rc
	shift 2
	out=$(P add-server "$@" 2>&1); rc=$?
	[ $rc -eq "$want" ] && echo "$out" | grep -qF "$msg" &&
		cmp -s "$TMP/conf.before" "$POSTERN_HOME/postern.conf" ||
		{ echo "  status $rc: $out"; return 1; }
}
check "a second web1 is refused" refused 1 'already has a server "web1"' web1 198.51.100.1 "$SPUB"
check "a bad public key is refused" refused 2 "is not a public key" web2 198.51.100.1 "notakey"
check "a host with a port in it points to --tunnel-port" \
	refused 2 "without a port (that is --tunnel-port)" web2 '198.51.100.1"x' "$SPUB"
check "a name with a quote is refused" refused 2 "bad name" 'we"b' 198.51.100.1 "$SPUB"
check "a bad port is refused" refused 2 "bad port '70000'" web2 198.51.100.1 "$SPUB" --knock-port 70000
check "missing arguments: usage" refused 2 "Usage:" web2 198.51.100.1
check "add-server without a configuration says to run init" bash -c "
	out=\$(POSTERN_HOME='$TMP/none' '$POSTERN' add-server w 192.0.2.1 '$SPUB' 2>&1)
	[ \$? -eq 1 ] && echo \"\$out\" | grep -q 'run postern init first'"

# What they wrote loads: once the PSK is in place, web1 is known.
P genpsk > "$POSTERN_HOME/psk"
chmod 600 "$POSTERN_HOME/psk"
check "the result loads and lists web1" bash -c "
	out=\$('$POSTERN' forward web1 2>&1); [ \$? -eq 1 ] &&
	echo \"\$out\" | grep -q 'has no forward blocks for web1'"
check "  ...and no other" bash -c "
	out=\$('$POSTERN' forward web9 2>&1); echo \"\$out\" | grep -q \"no server 'web9'\""

# ls: what is configured (nothing sent).
P ls > "$TMP/ls.out" 2>&1
check "ls lists web1 with its address and ports" bash -c "
	awk '\$1 == \"web1\" && \$2 == \"203.0.113.10\" && \$3 == 9443 && \$4 == 62201' '$TMP/ls.out' | grep -q ." ||
	cat "$TMP/ls.out"

# rm-server: exactly the block, braces in comments and strings aside.
cp "$POSTERN_HOME/postern.conf" "$TMP/conf.one"
P add-server web2 198.51.100.7 "$SPUB" > /dev/null
cat >> "$POSTERN_HOME/postern.conf" <<'CONF'
# the end of the file, after web2 { not a block }
CONF
cp "$POSTERN_HOME/postern.conf" "$TMP/conf.two"
# web2's block with a comment and a string that hold braces
sed -i 's|^\taddress = "198.51.100.7"$|\taddress = "198.51.100.7"  # } a brace in a comment|' "$POSTERN_HOME/postern.conf"
check "rm-server web2 succeeds" P rm-server web2
check "  ...and takes out exactly its block" bash -c "
	diff <(cat '$TMP/conf.one'; echo '# the end of the file, after web2 { not a block }') \
	     '$POSTERN_HOME/postern.conf'"
printf 'forward { listen = "127.0.0.1:2201"  server = "web1"  port = 22 }\n' >> "$POSTERN_HOME/postern.conf"
cp "$POSTERN_HOME/postern.conf" "$TMP/conf.before"
check "rm-server of a server a forward names is refused, with the line" bash -c "
	out=\$('$POSTERN' rm-server web1 2>&1); [ \$? -eq 1 ] &&
	echo \"\$out\" | grep -qE 'postern.conf:[0-9]+: a forward block still names web1' &&
	cmp -s '$TMP/conf.before' '$POSTERN_HOME/postern.conf'"
check "rm-server of no such server says so" bash -c "
	out=\$('$POSTERN' rm-server web7 2>&1); [ \$? -eq 1 ] && echo \"\$out\" | grep -q 'no server \"web7\"'"
finish
