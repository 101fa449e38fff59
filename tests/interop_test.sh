#!/usr/bin/env bash
# Interoperability with an independent implementation: tests/interop/peer,
# written in Go from docs/PROTOCOL.md and docs/PROTOCOL-tunnel.md alone over
# Debian's flynn/noise and hashicorp/yamux, built offline.
#
#   1. the tunnel worked example (PROTOCOL-tunnel.md §6) through flynn/noise
#   2. Go knocks    → posternd (real kernel, nft sets, NFQUEUE)
#   3. Go client    → postern-tunneld (through the knocked firewall)
#   4. Go client    → Go server (the Go peer agrees with itself)
#   5. postern pipe → Go server (when the CLI has `pipe`)
#
# usage: interop_test.sh POSTERN POSTERND POSTERN_TUNNELD
# Optional: INTEROP_GOCACHE=DIR keeps Go's build cache between runs.
set -u
POSTERN=$(realpath "$1") POSTERND=$(realpath "$2") TUNNELD=$(realpath "$3")
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/netns_lib.sh"

# --- the Go peer, built offline from Debian's packages ---------------------
GOSRC=/usr/share/gocode/src
command -v go >/dev/null || skip "Go is not installed (Debian package golang-go)"
[ -d $GOSRC/github.com/flynn/noise ] ||
	skip "flynn/noise is not installed (Debian package golang-github-flynn-noise-dev)"
[ -d $GOSRC/github.com/hashicorp/yamux ] ||
	skip "hashicorp/yamux is not installed (Debian package golang-github-hashicorp-yamux-dev)"
[ -d $GOSRC/golang.org/x/crypto/blake2s ] ||
	skip "golang.org/x/crypto is not installed (Debian package golang-golang-x-crypto-dev)"

GOTMP=$(mktemp -d /tmp/postern-interop-go-XXXXXX)
trap 'rm -rf "$GOTMP"' EXIT
PEER=$GOTMP/peer
GOCACHE_DIR=${INTEROP_GOCACHE:-}
if [ -z "$GOCACHE_DIR" ] || ! mkdir -p "$GOCACHE_DIR" 2>/dev/null || [ ! -w "$GOCACHE_DIR" ]; then
	GOCACHE_DIR=$GOTMP/cache
fi
# GOPATH mode: no modules, no network, only what Debian put in /usr/share/gocode.
if ! (cd "$HERE/interop/peer" &&
	env GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off GOENV=off \
	    GOTOOLCHAIN=local GOCACHE="$GOCACHE_DIR" go build -o "$PEER" .); then
	echo "not ok - the Go peer builds offline"
	exit 1
fi
TEST_CHECKS=1
echo "ok - the Go peer builds offline ($(go version | cut -d' ' -f3))"

check "worked example of PROTOCOL-tunnel.md §6, through flynn/noise" "$PEER" vectors

if [ "$(id -u)" -ne 0 ]; then
	[ "$TEST_FAILS" -eq 0 ] || { finish; exit 1; }
	skip "the worked example passed; the rest needs root for network namespaces and nftables"
fi
require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
netns_setup interop
trap 'netns_cleanup; rm -rf "$GOTMP"' EXIT

QUEUE=5 KPORT=62201
for i in $(seq 10 50); do
	ip -n "$NS_C" addr add "198.51.100.$i/24" dev veth-c
done

umask 077
cd "$TMP"
gen_keys server other alice carol gosrv

check "X25519 public keys: the Go peer agrees with postern pubkey" bash -c '
	for k in server other alice carol gosrv; do
		[ "$("$0" pubkey < $k.key)" = "$(cat $k.pub)" ] || exit 1
	done' "$PEER"

cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock {
	port = $KPORT
	queue = $QUEUE
	state_file = "state/knock.state"
	window = 30
	open_seconds = 30
	max_open_seconds = 300
}
tunnel {
	listen = {"$SERVER4:8443", "[$SERVER6]:8443"}
	egress = {7777, 7778, 7779, 7780}
}
client "alice" {
	public_key = "$(cat alice.pub)"
	open = {8443, 9443}
}
CONF

check "posternd's printed ruleset loads (queue statement replaced)" server_firewall server.conf
nobody_reads server.conf
nobody_owns server.key psk

go_knock() {	# go_knock SRC DST [options]: a knock from alice made by the Go peer
	local src=$1 dst=$2
	shift 2
	in_client "$PEER" knock -key alice.key -server-pub server.pub -psk psk \
		-bind "$src" "$@" "$dst" $KPORT
}
# The refused knock just sent from $SRC opened nothing: a valid Go knock
# from a fresh source, sent after it, opens (the queue is FIFO: the bad one
# was read first), and then only that one's ports are in the sets.
opens_nothing() {
	local bad=$SRC ok=true
	new_src
	go_knock "$SRC" $SERVER4 && wait_for 3 set_has allow4 "$SRC" 8443 || ok=false
	$ok && ! set_has allow4 "$bad" 8443 && [ "$(set_count allow4)" -eq 2 ] &&
		[ "$(set_count allow6)" -eq 0 ] || ok=false
	flush_sets
	$ok
}

start_bg "$NS_S" "$POSTERND" -c server.conf 2>>posternd.log
POSTERND_PID=$LAST_PID
check "posternd starts and binds queue $QUEUE" \
	wait_for 5 in_server grep -qE "^ *$QUEUE " /proc/net/netfilter/nfnetlink_queue

# --- 2. knocks --------------------------------------------------------------
export -f in_server in_client set_has set_count wait_for go_knock
export NS_S NS_C PEER KPORT SERVER4 SERVER6 CLIENT4 CLIENT6

check "a Go knock (IPv4) opens exactly alice's ports for her address" bash -c '
	go_knock $CLIENT4 $SERVER4 || exit 1
	wait_for 3 set_has allow4 $CLIENT4 8443 && set_has allow4 $CLIENT4 9443 &&
	[ "$(set_count allow4)" -eq 2 ] && [ "$(set_count allow6)" -eq 0 ]'
check "posternd logs the Go knock as alice's" \
	grep -q "knock from alice ($CLIENT4): opened $CLIENT4 port 8443,9443 for 30 s" posternd.log
flush_sets

check "a Go knock (IPv6) opens alice's ports in allow6" bash -c '
	go_knock $CLIENT6 $SERVER6 || exit 1
	wait_for 3 set_has allow6 $CLIENT6 8443 && set_has allow6 $CLIENT6 9443 &&
	[ "$(set_count allow6)" -eq 2 ] && [ "$(set_count allow4)" -eq 0 ]'
flush_sets

new_src
go_knock "$SRC" $SERVER4 -open 100
wait_for 3 set_has allow4 "$SRC" 8443
e=$(expires_ms allow4 "$SRC" 8443)
e=${e:+$((e / 1000))}
check "open_seconds = 100 in the payload gives a 100 s element (${e:-none} s left)" \
	test "${e:-0}" -ge 97 -a "${e:-0}" -le 100
flush_sets
new_src
go_knock "$SRC" $SERVER4 -open 1000
wait_for 3 set_has allow4 "$SRC" 8443
e=$(expires_ms allow4 "$SRC" 8443)
e=${e:+$((e / 1000))}
check "open_seconds = 1000 is capped at max_open_seconds = 300 (${e:-none} s left)" \
	test "${e:-0}" -ge 297 -a "${e:-0}" -le 300
flush_sets

new_src
go_knock "$SRC" $SERVER4 -write captured.knock
check "the Go knock is 145 bytes" test "$(stat -c %s captured.knock)" -eq 145
wait_for 3 set_has allow4 "$SRC" 8443
flush_sets
new_src
in_client "$PEER" knock -replay captured.knock -bind "$SRC" $SERVER4 $KPORT
check "the same Go knock replayed from another address opens nothing" opens_nothing

new_src
check "a Go knock with another PSK opens nothing" \
	go_knock "$SRC" $SERVER4 -psk otherpsk
check "  ...and the daemon still opens afterwards" opens_nothing
new_src
check "a Go knock made for another server key opens nothing" \
	go_knock "$SRC" $SERVER4 -server-pub other.pub
check "  ...and the daemon still opens afterwards" opens_nothing
new_src
check "a Go knock from an unknown key (carol) opens nothing" \
	go_knock "$SRC" $SERVER4 -key carol.key
check "  ...and the daemon still opens afterwards" opens_nothing
new_src
check "a Go knock with flags = 1 opens nothing" go_knock "$SRC" $SERVER4 -flags 1
check "  ...and the daemon still opens afterwards" opens_nothing
new_src
check "a Go knock 60 s old opens nothing" go_knock "$SRC" $SERVER4 -offset-ms -60000
check "  ...and the daemon still opens afterwards" opens_nothing
new_src
check "a Go knock for another target opens nothing (allow_target = false)" \
	go_knock "$SRC" $SERVER4 -target 203.0.113.5
check "  ...and the daemon still opens afterwards" opens_nothing
check "posternd logs the authenticated refusals with their reasons" bash -c '
	grep -q "POSTERN_REASON=clock_skew" posternd.log &&
	grep -q "POSTERN_REASON=target_refused" posternd.log'

# --- 3. Go client → postern-tunneld ----------------------------------------
start_bg "$NS_S" "$PEER" echo -listen 127.0.0.1:7777 2>/dev/null
start_bg "$NS_S" "$PEER" source -listen 127.0.0.1:7779 -bytes 16777216 2>/dev/null
start_bg "$NS_S" "$PEER" sink -listen 127.0.0.1:7780 > sink.log 2>/dev/null
# 7778 is in egress with nothing listening.
start_bg "$NS_S" "${AS_NOBODY[@]}" "$TUNNELD" -c server.conf 2>>tunneld.log
TUNNELD_PID=$LAST_PID
listening() { in_server ss -Hltn "sport = :$1" | grep -q .; }
export -f listening
check "postern-tunneld and the loopback services listen" bash -c '
	for p in 8443 7777 7779 7780; do wait_for 5 listening $p || exit 1; done'

client() {	# client [peer client options] MODE ARGS: alice, to tunneld over IPv4
	in_client timeout 120 "$PEER" client -key alice.key -server-pub server.pub -psk psk \
		-addr $SERVER4:8443 "$@"
}
flush_sets
check "before a knock the tunnel port is silent (dropped)" bash -c '
	in_client timeout 2 "$PEER" client -key alice.key -server-pub server.pub \
		-psk psk -addr $SERVER4:8443 hello 2>/dev/null
	[ $? -eq 124 ]'
go_knock $CLIENT4 $SERVER4 -open 300
go_knock $CLIENT6 $SERVER6 -open 300
wait_for 3 set_has allow4 $CLIENT4 8443
wait_for 3 set_has allow6 $CLIENT6 8443

out=$(client hello 2>&1)
echo "# $out"
check "handshake, server hello and a yamux ping: ports are egress {7777,7778,7779,7780}" \
	grep -q "^version=1 flags=0 ports=7777,7778,7779,7780 .*ping=ok" <<<"$out"
skew=$(sed -nE 's/.*skew_ms=(-?[0-9]+).*/\1/p' <<<"$out")
check "server_time_ms is the server's clock (skew ${skew:-?} ms)" \
	test "${skew#-}" -lt 5000 -a -n "$skew"
check "echo round trips on one stream" client echo 7777
check "echo with 1-byte transport messages, each after an empty one" \
	client -chunk 1 -empty echo 7777
check "16 MiB each way on one stream, sha256 equal" client bulk 7777 16777216 1
check "8 concurrent streams, 2 MiB each way each" client bulk 7777 2097152 8
check "3 streams with 13-byte transport messages (frames span messages)" \
	client -chunk 13 bulk 7777 300000 3
sent=$(client send 7780 16777216)
echo "# client: $sent"
check "16 MiB client → service, then FIN: the service reads all of it up to EOF" \
	wait_for 5 grep -q "^${sent/sent/received} (<nil>)" sink.log
got=$(client recv 7779)
echo "# client: $got"
check "16 MiB service → client, then FIN: the client reads all of it up to EOF" \
	test -n "$sent" -a "${sent/sent/received}" = "$got"
check "a port outside egress (22) gets status 0x01" \
	grep -qx "status=0x01" <<<"$(client status 22)"
check "an egress port nobody listens on (7778) gets status 0x02" \
	grep -qx "status=0x02" <<<"$(client status 7778)"
check "cmd 0x02 gets status 0xff" grep -qx "status=0xff" <<<"$(client status 7777 2)"
check "a client hello of version 2 with 50 more bytes is answered in v1" \
	client -hello-version 2 -hello-extra 50 echo 7777
check "a 1024-byte message 1 is accepted" client -hello-extra 924 echo 7777
check "a 1025-byte message 1 is refused (closed during handshake)" bash -c '
	out=$("$@" 2>&1); echo "$out"; echo "$out" | grep -q "closed during handshake"' \
	_ in_client timeout 60 "$PEER" client -key alice.key -server-pub server.pub -psk psk \
	-addr $SERVER4:8443 -hello-extra 925 hello
refused() {	# refused EXPECTED-TEXT [peer client options]: the handshake fails so
	local want=$1
	shift
	local out
	out=$(in_client timeout 60 "$PEER" client -key alice.key -server-pub server.pub \
		-psk psk -addr $SERVER4:8443 "$@" hello 2>&1)
	echo "$out"
	grep -q "$want" <<<"$out"
}
check "a client hello of version 0 is refused (closed during handshake)" \
	refused "closed during handshake" -hello-version 0
check "an unknown client key (carol) is refused (closed during handshake)" \
	refused "closed during handshake" -key carol.key
check "another server's key in message 1 is refused (closed during handshake)" \
	refused "closed during handshake" -server-pub other.pub
check "a wrong PSK: the client cannot authenticate message 2" \
	refused "server reply did not authenticate" -psk otherpsk
check "IPv6: echo and 1 MiB each way over [$SERVER6]:8443" bash -c '
	in_client timeout 60 "$PEER" client -key alice.key -server-pub server.pub -psk psk \
		-addr "[$SERVER6]:8443" bulk 7777 1048576 2'
out=$(client overrun 7777 2>&1)
echo "# $out"
check "a stream overrun by one byte ends the session with GoAway(protocol error)" \
	grep -qx "goaway code=1 stream=0" <<<"$out"
check "postern-tunneld logs the overrun" grep -q "peer overran the receive window" tunneld.log
check "postern-tunneld is still running" kill -0 "$TUNNELD_PID"
check "postern-tunneld logged the Go client's tunnels and streams" bash -c '
	grep -q "tunnel from alice ($CLIENT4:[0-9]*) open" tunneld.log &&
	grep -q "stream to port 22: port not allowed" tunneld.log'

# SIGTERM: go-away on every session; open streams go on, new ones are refused.
start_bg "$NS_C" timeout 60 "$PEER" client -key alice.key -server-pub server.pub -psk psk \
	-addr $SERVER4:8443 goaway 7777 "$TMP/goaway.go" > goaway.out 2>&1
GOAWAY_PID=$LAST_PID
if wait_for 10 grep -q ready goaway.out; then
	kill -TERM "$TUNNELD_PID"
	sleep 1
fi
touch goaway.go
wait "$GOAWAY_PID"
check "SIGTERM: the Go client sees go-away; its open stream still echoes" \
	grep -qx "goaway=ok" goaway.out
sed 's/^/# /' goaway.out
for _ in $(seq 100); do kill -0 "$TUNNELD_PID" 2>/dev/null || break; sleep 0.1; done
wait "$TUNNELD_PID"
check "postern-tunneld exits with status 0 once the stream has ended" test $? -eq 0

# --- 4. Go client → Go server ----------------------------------------------
GOSERVER_ARGS=(-key gosrv.key -psk psk -client-pub alice.pub \
	-listen $SERVER4:9443 -allow 7777,7778,7779,7780 \
	-hello-ports 7777,7778,7779,7780,7781,7782,7783 -force-status 7782:0x03,7783:0x42)
start_bg "$NS_S" "$PEER" server "${GOSERVER_ARGS[@]}" 2>>goserver.log
GOSERVER_PID=$LAST_PID
check "the Go server listens" wait_for 5 listening 9443
goclient() {
	in_client timeout 120 "$PEER" client -key alice.key -server-pub gosrv.pub -psk psk \
		-addr $SERVER4:9443 "$@"
}
check "Go client → Go server: echo" goclient echo 7777
check "Go client → Go server: 4 streams, 1 MiB each way" goclient bulk 7777 1048576 4
check "Go client → Go server: status 0x01 for port 22" \
	grep -qx "status=0x01" <<<"$(goclient status 22)"
check "Go client → Go server: status 0x01 for port 7781 (listed in the hello only)" \
	grep -qx "status=0x01" <<<"$(goclient status 7781)"

# --- 5. postern pipe → Go server -------------------------------------------
if "$POSTERN" --help 2>/dev/null | grep -qE '^ +pipe '; then
	cat > cli.conf <<CONF
private_key_file = "alice.key"
psk_file = "psk"
server "gosrv" {
	address = "$SERVER4"
	tunnel_port = 9443
	knock_port = $KPORT
	public_key = "$(cat gosrv.pub)"
}
CONF
	sed -e 's/alice.key/carol.key/' cli.conf > cli-carol.conf
	pipe() { in_client timeout 120 "$POSTERN" -c cli.conf pipe gosrv "$@"; }
	export -f pipe
	export POSTERN
	go_knock $CLIENT4 $SERVER4 -open 300
	check "postern pipe → Go server: a line echoed, then EOF both ways (exit 0)" bash -c '
		[ "$(printf "hello over pipe\n" | pipe 7777)" = "hello over pipe" ]'
	head -c 16777216 /dev/urandom > big
	pipe 7777 < big > big.out
	check "postern pipe → Go server: 16 MiB echoed (exit $?), sha256 equal" bash -c '
		[ $0 -eq 0 ] && [ "$(sha256sum < big.out)" = "$(sha256sum < big)" ]' $?
	# The source sends the bytes the Go client's "send" hashed above.
	got=$(pipe 7779 < /dev/null | sha256sum | cut -d' ' -f1)
	check "postern pipe → Go server: 16 MiB from a service that then closes" \
		test -n "$sent" -a "$sent" = "sent 16777216 sha256 $got"
	pipe_fails() {	# pipe_fails PORT TEXT: exit 1 with TEXT in the message
		local out rc
		out=$(pipe "$1" < /dev/null 2>&1)
		rc=$?
		echo "$out (exit $rc)"
		[ $rc -eq 1 ] && grep -q "$2" <<<"$out"
	}
	check "postern pipe → Go server: port 22, not in the hello, fails at once" \
		pipe_fails 22 "port 22 not allowed"
	check "postern pipe → Go server: status 0x01 (port 7781) is 'port not allowed'" \
		pipe_fails 7781 "port 7781: port not allowed"
	check "postern pipe → Go server: status 0x02 (port 7778) is 'connection refused'" \
		pipe_fails 7778 "port 7778: connection refused"
	check "postern pipe → Go server: status 0x03 is 'unreachable or timed out'" \
		pipe_fails 7782 "port 7782: unreachable or timed out"
	check "postern pipe → Go server: status 0x42 is 'unknown status'" \
		pipe_fails 7783 "port 7783: unknown status"
	out=$(in_client timeout 60 "$POSTERN" -c cli-carol.conf pipe gosrv 7777 < /dev/null 2>&1)
	rc=$?
	echo "# $out (exit $rc)"
	check "postern pipe with a key the Go server does not allow fails (exit 1)" test $rc -eq 1
	check "the Go server saw alice's streams" \
		grep -q "stream [0-9]*: cmd 1 port 7777: status 0x00" goserver.log

	restart_goserver() {	# restart_goserver EXTRA-OPTIONS...
		stop_pid "$GOSERVER_PID"
		start_bg "$NS_S" "$PEER" server "${GOSERVER_ARGS[@]}" "$@" 2>>goserver.log
		GOSERVER_PID=$LAST_PID
		wait_for 5 listening 9443
	}
	restart_goserver -chunk 7 -empty
	head -c 1048576 /dev/urandom > mid
	pipe 7777 < mid > mid.out
	check "postern pipe → Go server sending 7-byte messages, each after an empty one: 1 MiB (exit $?)" \
		cmp mid mid.out
	pipe_echoes() { [ "$(echo hi | pipe 7777)" = hi ]; }
	restart_goserver -hello-flags 255 -hello-extra 100
	check "postern pipe ignores the hello's flags, reserved and trailing bytes" pipe_echoes
	restart_goserver -hello-extra 948	# 62 + 2 × 7 ports + 948 = 1024
	check "postern pipe accepts a 1024-byte message 2" pipe_echoes
	restart_goserver -hello-extra 949
	check "postern pipe refuses a 1025-byte message 2" pipe_fails 7777 "handshake"
	restart_goserver -hello-version 2
	check "postern pipe refuses a server hello of version 2" pipe_fails 7777 "version"
else
	echo "# postern has no 'pipe' command in this build: postern → Go server not tested"
fi

check "posternd is still running" kill -0 "$POSTERND_PID"
finish
