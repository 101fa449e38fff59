#!/usr/bin/env bash
# posternd while its wall clock is stepped (libfaketime, which changes
# CLOCK_REALTIME only: the boot clock runs on, as it does when NTP steps a
# real clock). It starts with an RTC an hour fast and no replay state, so
# the start floor applies; then NTP steps the clock back an hour, a day
# forward, and back again. At each step honest knocks (stamped with the
# server's clock of the moment) open at once, and no knock opens twice.
#
# usage: knock_clock_test.sh BUILD_DIR
set -u
BUILD=$(realpath "$1")
POSTERN=$BUILD/client/postern POSTERND=$BUILD/daemon/posternd
CRAFT=$BUILD/tests/knock_craft SINK=$BUILD/tests/notify_sink
. "$(dirname "$0")/netns_lib.sh"

FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
require_root_netns
command -v iptables-nft >/dev/null || skip "iptables-nft is not installed"
[ -n "$FAKETIME_LIB" ] || skip "libfaketime is not installed (scripts/deps.sh)"
netns_setup clock

QUEUE=9 KPORT=62201 HOUR=3600000 DAY=86400000
for i in $(seq 10 40); do
	ip -n "$NS_C" addr add "198.51.100.$i/24" dev veth-c
done
umask 077
cd "$TMP"
gen_keys server alice
cat > server.conf <<CONF
private_key_file = "server.key"
psk_file = "psk"
user = "nobody"
knock { port = $KPORT  queue = $QUEUE  window = 30  state_file = "state/knock.state" }
client "alice" { public_key = "$(cat alice.pub)"  open = {8443} }
CONF
nobody_reads server.conf
check "the printed ruleset loads" server_firewall server.conf

# The offset of posternd's wall clock, read again at every clock_gettime.
set_clock() { echo "$1" > clock; chmod 644 clock; }
set_clock "+3600"
start_bg "$NS_S" "$SINK" "$TMP/notify" 120 > notify.log
wait_for 5 test -S "$TMP/notify"
start_bg "$NS_S" env NOTIFY_SOCKET="$TMP/notify" LD_PRELOAD="$FAKETIME_LIB" \
	FAKETIME_TIMESTAMP_FILE="$TMP/clock" FAKETIME_NO_CACHE=1 \
	FAKETIME_DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	"$POSTERND" -c server.conf 2> posternd.log
POSTERND_PID=$LAST_PID
check "posternd starts with its clock an hour fast" wait_for 5 bash -c \
	"grep -q STATUS= notify.log && grep -q 'no replay state' posternd.log"

export -f set_has counter status in_server wait_for
export NS_S TMP
next=10
# knock OFFSET_MS [FILE]: a knock stamped now + OFFSET_MS from a fresh
# address; true if it opened. FILE keeps it for a replay.
knock() {
	local src=198.51.100.$next
	next=$((next + 1))
	in_client "$CRAFT" -k alice.key -s "$(cat server.pub)" -p psk -b $src \
		-o "$1" ${2:+-w "$2"} $SERVER4 $KPORT
	wait_for 3 set_has allow4 $src 8443
}
# replay FILE: send it from a fresh address, then prove it was read (a
# fresh knock sent after it opens); true if the replay opened nothing.
replay() {
	local src=198.51.100.$next
	next=$((next + 1))
	in_client "$CRAFT" -r "$1" -b $src $SERVER4 $KPORT
	knock "$2" && ! set_has allow4 $src 8443
}

check "a knock stamped with the server's (fast) clock opens" knock $HOUR fast.knock
set_clock "+0"		# NTP steps the clock back an hour
check "after the clock is stepped back an hour, an honest knock opens at once" \
	knock 0 now.knock
REPLAY0=$(counter replay)
check "  ...its replay opens nothing" replay now.knock 0
check "  ...nor the replay of the knock made before the step" replay fast.knock 0
check "  ...both refused as replays" wait_for 3 bash -c \
	"[ \"\$(counter replay)\" -ge $((REPLAY0 + 2)) ]"
set_clock "+86400"	# a day forward
check "a day forward, an honest knock opens" knock $DAY day.knock
set_clock "+0"		# and back
check "back again, an honest knock opens" knock 0
check "  ...and none of the knocks accepted before opens again" replay now.knock 0
check "  ...(the one a day ahead)" replay day.knock 0
check "  ...(the one an hour ahead)" replay fast.knock 0
check "posternd counted no nft or state error" bash -c \
	"grep STATUS= notify.log | tail -1 | grep -q 'nft errors 0, state errors 0'"
finish
