#!/usr/bin/env bash
# Install what postern needs, build it three ways, and run every test:
#   1. a normal build (-Wall -Wextra -Werror), all of ctest;
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. clang libFuzzer targets, each run for FUZZ_SECONDS (default 20).
# Tests that need root or namespaces report themselves skipped when they
# cannot run. Usage (as root): scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
jobs=$(nproc)
export CTEST_OUTPUT_ON_FAILURE=1

echo "== normal build"
cmake -S . -B build/test -DPOSTERN_WERROR=ON >/dev/null
cmake --build build/test -j"$jobs"
ctest --test-dir build/test -j"$jobs"

echo "== ASan + UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cmake -S . -B build/sanitize -DPOSTERN_WERROR=ON -DPOSTERN_SANITIZE=ON >/dev/null
cmake --build build/sanitize -j"$jobs"
ctest --test-dir build/sanitize -j"$jobs"

echo "== libFuzzer targets"
CC=clang cmake -S . -B build/fuzz -DPOSTERN_WERROR=ON -DPOSTERN_FUZZ=ON \
	-DFUZZ_SECONDS="${FUZZ_SECONDS:-20}" >/dev/null
cmake --build build/fuzz -j"$jobs"
ctest --test-dir build/fuzz -j"$jobs"
