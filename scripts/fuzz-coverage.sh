#!/usr/bin/env bash
# Source line coverage of the fuzz corpora (docs/FUZZING.md). Builds the
# fuzz targets with clang's -fprofile-instr-generate -fcoverage-mapping in
# build/fuzz-cov, runs each once over its corpus and its seeds (-runs=0:
# no fuzzing), and prints llvm-cov's report for the files each target is
# there to reach, then one for all targets together.
#
#   scripts/fuzz-coverage.sh [CORPUS_ROOT]
#
# CORPUS_ROOT holds one directory per target (default: the campaign's,
# build/fuzz-campaign/corpus); tests/fuzz/corpus is always added.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-build/fuzz-campaign/corpus}
cov=build/fuzz-cov
prof=$cov/profiles

declare -A files=(
	[fuzz_knock_packet]="common/ip_udp.c common/knock.c daemon/knock_verify.c daemon/ratelimit.c"
	[fuzz_knock_policy]="common/knock.c daemon/knock_verify.c daemon/ratelimit.c"
	[fuzz_handshake_responder]="common/tunnel.c common/noise.c"
	[fuzz_handshake_initiator]="common/tunnel.c common/noise.c"
	[fuzz_transport_yamux]="common/session.c common/tunnel.c common/yamux.c common/yamux_frame.c"
	[fuzz_stream_request]="common/tunnel.c"
	[fuzz_config]="common/config.c common/config_text.c common/addr.c"
	[fuzz_yamux]="common/yamux.c common/yamux_frame.c"
)
parsers="common/ip_udp.c common/knock.c daemon/knock_verify.c daemon/ratelimit.c
	common/noise.c common/tunnel.c common/session.c common/yamux.c
	common/yamux_frame.c common/config.c common/config_text.c common/addr.c"

# llvm-cov names sources as the compiler saw them: absolute paths.
abs() {
	for f in "$@"; do
		printf '%s\n' "$PWD/$f"
	done
}

CC=clang CFLAGS="-fprofile-instr-generate -fcoverage-mapping" \
	LDFLAGS="-fprofile-instr-generate" \
	cmake -S . -B "$cov" -DPOSTERN_FUZZ=ON -DPOSTERN_WERROR=ON >/dev/null
mapfile -t targets < <(cut -d' ' -f1 "$cov/tests/fuzz/targets.txt")
cmake --build "$cov" -j2 --target "${targets[@]}" >/dev/null
rm -rf "$prof"
mkdir -p "$prof"

objects=()
while read -r name opts; do
	bin=$cov/tests/fuzz/$name
	dirs=("tests/fuzz/corpus/$name")
	[[ -d $root/$name ]] && dirs+=("$root/$name")
	# shellcheck disable=SC2086 # opts is a list of options
	LLVM_PROFILE_FILE="$prof/$name.profraw" "$bin" -runs=0 $opts "${dirs[@]}" \
		>"$prof/$name.log" 2>&1
	llvm-profdata-14 merge -o "$prof/$name.profdata" "$prof/$name.profraw"
	echo "== $name: $(find "${dirs[@]}" -type f | wc -l) inputs"
	# shellcheck disable=SC2046,SC2086 # lists of files
	llvm-cov-14 report "$bin" -instr-profile="$prof/$name.profdata" \
		$(abs ${files[$name]})
	objects+=(-object "$bin")
done <"$cov/tests/fuzz/targets.txt"

llvm-profdata-14 merge -o "$prof/all.profdata" "$prof"/*.profraw
echo "== all targets"
# shellcheck disable=SC2046,SC2086 # lists of files
llvm-cov-14 report "${objects[@]:1}" -instr-profile="$prof/all.profdata" \
	$(abs $parsers)
