#!/usr/bin/env bash
# Runs test programs and scripts and prints a summary.
#
#   tests/run.sh [--cmocka PROG...] [--plain PROG...] [--script SCRIPT...]
#
# cmocka programs contribute the counts of their "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s)" lines (a program that dies or exits non-zero without
# reporting a failure counts one extra failure). Plain programs and scripts
# count as one test each, passed when they exit 0. Every program runs under a
# timeout (TEST_TIMEOUT seconds, default 300). The last line printed is
# "N passed, M failed"; the exit status is non-zero when M > 0.
set -u

timeout_s="${TEST_TIMEOUT:-300}"
passed=0
failed=0
failures=()
mode=plain

# cmocka prints to stdout in its default format only.
unset CMOCKA_MESSAGE_OUTPUT CMOCKA_TEST_ABORT CMOCKA_XML_FILE

run_one() {
  local kind="$1" prog="$2" out rc start end
  echo "=== $prog"
  start=$(date +%s)
  out=$(mktemp)
  if [ ! -x "$prog" ] && [ "$kind" != script ]; then
    echo "not found or not executable: $prog"
    failed=$((failed + 1))
    failures+=("$prog (missing)")
    rm -f "$out"
    return
  fi
  if [ "$kind" = script ] && [ ! -x "$prog" ]; then
    timeout -k 10 "$timeout_s" bash "$prog" 2>&1 | tee "$out"
  else
    timeout -k 10 "$timeout_s" "$prog" 2>&1 | tee "$out"
  fi
  rc=${PIPESTATUS[0]}
  end=$(date +%s)
  local note=""
  [ "$rc" = 124 ] && note=" (timed out after ${timeout_s}s)"
  [ "$rc" -gt 128 ] && [ "$rc" != 124 ] && note=" (killed by signal $((rc - 128)))"
  if [ "$kind" = cmocka ]; then
    local p f names
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
      # the names follow the "[  FAILED  ] N test(s), listed below:" line
      names=$(awk '/^\[  FAILED  \] [0-9]+ test\(s\)/ {on=1; next}
                   on && /^\[  FAILED  \] / {sub(/^\[  FAILED  \] /, ""); print}' "$out")
      while IFS= read -r n; do
        [ -n "$n" ] && failures+=("$prog: $n")
      done <<<"$names"
    fi
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
      failed=$((failed + 1))
      failures+=("$prog exited with status $rc$note without a cmocka failure report")
    elif [ "$rc" != 0 ] && [ -n "$note" ]; then
      failed=$((failed + 1))
      failures+=("$prog$note")
    fi
    echo "--- $prog: $p passed, $f failed, exit $rc$note, $((end - start))s"
  else
    if [ "$rc" = 0 ]; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      failures+=("$prog (exit $rc$note)")
    fi
    echo "--- $prog: exit $rc$note, $((end - start))s"
  fi
  rm -f "$out"
}

for arg in "$@"; do
  case "$arg" in
    --cmocka) mode=cmocka ;;
    --plain) mode=plain ;;
    --script) mode=script ;;
    *) run_one "$mode" "$arg" ;;
  esac
done

echo
if [ "${#failures[@]}" -gt 0 ]; then
  echo "FAILED:"
  for f in "${failures[@]}"; do echo "  $f"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
