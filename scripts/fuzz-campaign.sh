#!/usr/bin/env bash
# A longer fuzzing campaign (docs/FUZZING.md): each libFuzzer target of the
# fuzz build in turn, one process at a time (one core), with the options
# ctest gives it, on a corpus kept in build/fuzz-campaign/corpus/<target>
# and seeded from tests/fuzz/corpus/<target>. A second run goes on from the
# corpus the first left.
#
#   scripts/fuzz-campaign.sh [SECONDS] [TARGET[=SECONDS]...]
#
# SECONDS (default 600) is each target's time unless TARGET=SECONDS says
# otherwise; no TARGET: all of them. Needs the fuzz build (build/fuzz).
# Writes each target's log and crash inputs under build/fuzz-campaign, and
# prints a Markdown table: seconds taken, executions, exec/s, and from
# libFuzzer's last status line cov, ft and the corpus (inputs/bytes), then
# the crash inputs written.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${FUZZ_BUILD:-build/fuzz}
out=${FUZZ_CAMPAIGN:-build/fuzz-campaign}
list=$build/tests/fuzz/targets.txt
secs=600
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
	secs=$1
	shift
fi
[[ -f $list ]] || { echo "no $list: build the fuzz targets first" >&2; exit 1; }

declare -A want=()
for a in "$@"; do
	want[${a%%=*}]=$([[ $a == *=* ]] && echo "${a#*=}" || echo "$secs")
done

mkdir -p "$out"
echo "| target | seconds | executions | exec/s | cov | ft | corpus | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
while read -r name opts; do
	[[ $# -eq 0 || -n ${want[$name]:-} ]] || continue
	t=${want[$name]:-$secs}
	mkdir -p "$out/corpus/$name" "$out/crashes/$name"
	log=$out/$name.log
	start=$(date +%s)
	# shellcheck disable=SC2086 # opts is a list of options
	"$build/tests/fuzz/$name" -max_total_time="$t" $opts \
		-artifact_prefix="$out/crashes/$name/" \
		"$out/corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1 || true
	took=$(($(date +%s) - start))
	# the final status line (DONE, or the last before a crash)
	done_line=$(grep -E '^#[0-9]+[[:space:]].* cov: ' "$log" | tail -1 || true)
	runs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -1)
	rate=$([[ -n $runs && $took -gt 0 ]] && echo $((runs / took)) || echo '?')
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
	corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$done_line")
	crashes=$(find "$out/crashes/$name" -type f | wc -l)
	echo "| $name | $took | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |"
done <"$list"
