#!/usr/bin/env bash
# The postern CLI's contract: keys as wg makes them, exit statuses 0/1/2.
set -u
postern=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0

check() {	# check DESCRIPTION COMMAND...: the command must succeed
	local what=$1
	shift
	checks=$((checks + 1))
	if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi
}
status() {	# status EXPECTED COMMAND...: exit status and one stderr line
	local want=$1
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	[ $? -eq "$want" ]
}

umask 077
check "genkey prints 44 characters of base64" \
	bash -c "'$postern' genkey > '$tmp/k' && grep -qxE '[A-Za-z0-9+/]{43}=' '$tmp/k'"
check "genkey clamps the key" bash -c "
	b=\$(base64 -d < '$tmp/k' | od -An -tu1 -v | tr -s ' ' '\n' | grep -v '^\$')
	first=\$(echo \"\$b\" | head -1); last=\$(echo \"\$b\" | tail -1)
	[ \$((first & 7)) -eq 0 ] && [ \$((last & 128)) -eq 0 ] && [ \$((last & 64)) -eq 64 ]"
check "two keys differ" bash -c "[ \"\$('$postern' genkey)\" != \"\$('$postern' genkey)\" ]"
check "genpsk prints 44 characters of base64" \
	bash -c "'$postern' genpsk | grep -qxE '[A-Za-z0-9+/]{43}='"
# RFC 7748 §6.1, Alice's keys in base64.
check "pubkey of a known key" bash -c "
	[ \"\$(echo dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= | '$postern' pubkey)\" = \
	  hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo= ]"
check "pubkey takes the key without a newline" bash -c "
	printf %s dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= | '$postern' pubkey >/dev/null"
if command -v wg >/dev/null; then
	for i in 1 2 3 4 5; do
		check "postern pubkey equals wg pubkey ($i)" bash -c "
			'$postern' genkey | tee '$tmp/k$i' | '$postern' pubkey > '$tmp/p$i' &&
			wg pubkey < '$tmp/k$i' | cmp -s - '$tmp/p$i'"
	done
	check "wg genkey's keys work with postern pubkey" bash -c "
		wg genkey > '$tmp/wk' && [ \"\$('$postern' pubkey < '$tmp/wk')\" = \"\$(wg pubkey < '$tmp/wk')\" ]"
else
	echo "# wg not installed: comparison with wg pubkey not run"
fi
check "pubkey refuses a short key (exit 1, one line)" bash -c "
	echo abc | '$postern' pubkey 2>'$tmp/e'; [ \$? -eq 1 ] && [ \$(wc -l < '$tmp/e') -eq 1 ] &&
	grep -q 'not the correct length or format' '$tmp/e'"
check "pubkey refuses trailing characters" bash -c "
	echo 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= x' | '$postern' pubkey 2>'$tmp/e'
	[ \$? -eq 1 ] && grep -q 'Trailing characters' '$tmp/e'"
check "genkey warns about a world-readable output file" bash -c "
	umask 022; '$postern' genkey > '$tmp/wr' 2>'$tmp/e'; grep -q 'world accessible' '$tmp/e'"
check "no command is a usage error (2)" status 2 "$postern"
check "unknown command is a usage error (2)" status 2 "$postern" frobnicate
check "unknown option is a usage error (2)" status 2 "$postern" --frobnicate
check "genkey with an argument is a usage error (2)" status 2 "$postern" genkey extra
check "--help exits 0 and lists genkey" bash -c "'$postern' --help | grep -q genkey"
check "--version prints the version" bash -c "'$postern' --version | grep -qE '^postern [0-9]+\.[0-9]+'"

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
