#!/usr/bin/env bash
# valgrind memcheck over programs linked with -larena (make test-valgrind; also
# run by make test). libarena describes its blocks to valgrind (annotate mode);
# --soname-synonyms=somalloc=nouserintercepts keeps valgrind from replacing
# libarena's malloc with its own.
#
#   vg_clean   a few thousand mixed allocations, 4 threads: no error, no leak
#   vg_uaf     a use after free: the report must contain "Invalid read"
#   vg_leak    dropped blocks: the report must contain "definitely lost"
#   python3    a small script under LD_PRELOAD (a few seconds; VALGRIND_PYTHON=0 skips it)
#
# Usage: tests/test_valgrind.sh [BUILD_DIR]   (default build/tests)
# Prints one line per check and exits non-zero when any fails.
set -u
cd "$(dirname "$0")/.."
dir="${1:-${TEST_BUILD_DIR:-build/tests}}"
vg=(valgrind -q --soname-synonyms=somalloc=nouserintercepts --num-callers=30)
fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if ! command -v valgrind >/dev/null; then
  echo "valgrind not installed (scripts/deps.sh test installs it)"
  exit 1
fi

check() { # name status
  if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# 1. clean: any memcheck error or definite leak makes valgrind exit 99
"${vg[@]}" --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$dir/vg_clean" >"$log" 2>&1
rc=$?
[ "$rc" = 0 ] || cat "$log"
check "vg_clean runs clean under memcheck (exit $rc)" "$rc"

# 2. use after free
"${vg[@]}" --error-exitcode=99 "$dir/vg_uaf" >"$log" 2>&1
rc=$?
if [ "$rc" = 99 ] && grep -q "Invalid read" "$log" && grep -q "free'd" "$log"; then
  check "vg_uaf: use after free reported (Invalid read ... free'd)" 0
else
  cat "$log"
  check "vg_uaf: use after free reported (exit $rc)" 1
fi

# 3. leak
"${vg[@]}" --leak-check=full --error-exitcode=99 --errors-for-leak-kinds=definite "$dir/vg_leak" >"$log" 2>&1
rc=$?
if [ "$rc" = 99 ] && grep -q "definitely lost" "$log" && grep -q "vg_leak.c" "$log"; then
  check "vg_leak: leak reported (definitely lost, allocation site named)" 0
else
  cat "$log"
  check "vg_leak: leak reported (exit $rc)" 1
fi

# 4. python3 under LD_PRELOAD (VALGRIND_PYTHON=0 skips it)
if [ "${VALGRIND_PYTHON:-1}" = 1 ]; then
  so="${ARENA_TEST_SO:-$PWD/lib/libarena.so}"
  py=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself, not a wrapper
  out=$(LD_PRELOAD="$so" "${vg[@]}" --error-exitcode=99 \
        "$py" -c 'import json; d = {str(i): list(range(i % 50)) for i in range(3000)}; print(len(json.dumps(d)))' 2>"$log")
  rc=$?
  [ "$rc" = 0 ] && [ -n "$out" ] || cat "$log"
  check "python3 under LD_PRELOAD runs clean under memcheck (exit $rc)" "$rc"
fi

exit "$fail"
