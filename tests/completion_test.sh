#!/usr/bin/env bash
# bash completion (client/postern.bash): subcommands, options and server
# names, and a subcommand list that matches postern --help.
#
# usage: completion_test.sh POSTERN SOURCE_DIR
set -u
POSTERN=$1 SRC=$(realpath "$2")
. "$SRC/tests/netns_lib.sh"
TMP=$(mktemp -d /tmp/postern-completion-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/postern.conf" <<'CONF'
private_key_file = "admin.key"
server "web1" { address = "192.0.2.1"  public_key = "x" }
  server "db-2" {
	address = "192.0.2.2"
}
# server "commented" { }
CONF

# complete WORDS...: what completing the last word offers, sorted, one line
complete_words() {
	env -i HOME="$TMP/home" POSTERN_HOME="${PH:-}" bash -c '
		. "$0"
		COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
		_postern
		[ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
		"$SRC/client/postern.bash" "$@"
}
is() {	# is "EXPECTED" WORDS...
	local want=$1 got
	shift
	got=$(complete_words "$@")
	[ "$got" = "$want" ] || { echo "  offered: '$got', wanted '$want'"; return 1; }
}

C=$TMP/postern.conf
check "subcommands" is "add-server doctor forward gate genkey genpsk init knock ls pipe pubkey rm-server socks " postern ""
check "rm-server: a server name" is "db-2 " postern -c "$C" rm-server d
check "a subcommand from its start" is "knock " postern kn
check "  ...after -c FILE" is "pipe " postern -c "$C" pi
check "top-level options" is "--help --version " postern --
check "knock: the config's server names (not a commented one)" \
	is "db-2 web1 " postern -c "$C" knock ""
check "knock: its options" is "--all --target --wait " postern -c "$C" knock --
check "knock --target: no server names" is "" postern -c "$C" knock --target ""
check "doctor: the config's server names, each word" is "db-2 web1 " postern -c "$C" doctor web1 ""
check "pipe: a name first" is "web1 " postern -c "$C" pipe w
check "pipe: no name for the port" is "" postern -c "$C" pipe web1 ""
check "forward: -L" is "-L " postern -c "$C" forward -
check "forward: a server name" is "web1 " postern -c "$C" forward we
check "add-server: its options" is "--knock-port --tunnel-port " postern add-server web9 --
check "gate: its subcommands" is "allow apply-nft init ls revoke status " postern gate ""
check "gate init: --egress" is "--egress " postern gate init --
check "gate allow: its options" is "--expires --open " postern gate allow bob KEY --
mkdir -p "$TMP/srv/clients.d"
printf 'client "alice" {\n}\n' > "$TMP/srv/postern.conf"
printf 'client "bob" { }\nclient "bert" { }\n' > "$TMP/srv/clients.d/b.conf"
check "gate revoke: the server's clients, drop-ins too" \
	is "bert bob " postern -c "$TMP/srv/postern.conf" gate revoke b
PH=$TMP/srv check "  ...from \$POSTERN_HOME without -c" is "alice " postern gate revoke a
check "gate apply-nft: --confirm-within" is "--confirm-within " postern gate apply-nft --
mkdir -p "$TMP/ph"; cp "$C" "$TMP/ph/postern.conf"
PH=$TMP/ph check "without -c: \$POSTERN_HOME/postern.conf" is "db-2 web1 " postern knock ""
check "no configuration: no names, no error" is "" postern knock ""

# Every subcommand postern --help lists is offered, and no other.
want=$("$POSTERN" --help 2>&1 | awk '/^  [a-z]/ { print $1 }' | sort | tr '\n' ' ')
check "the subcommands are those of postern --help ($want)" is "$want" postern ""
finish
