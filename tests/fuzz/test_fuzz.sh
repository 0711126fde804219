#!/usr/bin/env bash
# Short libFuzzer run (make test-fuzz; also run by make test): replays the
# committed seeds in tests/fuzz/corpus, then fuzzes for FUZZ_TIME seconds
# (default 20) from them. Fails on any crash, sanitizer report, heap
# corruption (pattern mismatch) or arena_check() problem.
# Usage: tests/fuzz/test_fuzz.sh [FUZZ_BUILD_DIR]   (default build/fuzz)
set -u
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${1:-$root/build/fuzz}"
cd "$dir" || exit 1
mkdir -p corpus
./fuzz_alloc -max_len=1024 -rss_limit_mb=3072 -timeout=20 -print_final_stats=1 \
  -max_total_time="${FUZZ_TIME:-20}" corpus "$root/tests/fuzz/corpus" 2>&1 | tail -40
rc=${PIPESTATUS[0]}
echo "fuzz_alloc: exit $rc"
exit "$rc"
