#!/usr/bin/env bash
# Real programs under LD_PRELOAD=libarena.so: stdout must be identical to the
# run without it, the exit status must be 0 both times, and with
# LIBARENA_SHOW_STATS=1 the stats report ("libarena stats" line) must appear on
# stderr, proving libarena served the program. Exits non-zero if any case fails.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SO=${ARENA_TEST_SO:-$ROOT/lib/libarena.so}
TB=${TEST_BUILD_DIR:-$ROOT/build/tests}
CASE_TIMEOUT=${CASE_TIMEOUT:-120}
export LC_ALL=C PYTHONHASHSEED=0

if [ ! -e "$SO" ]; then
  echo "FAIL: $SO not found (run make first)"
  exit 1
fi
SO=$(readlink -f "$SO")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
cases=0

# run_case NAME CMD...: runs CMD (through bash -c) with and without preload.
run_case() {
  local name="$1" cmd="$2" rc_ref rc_pre rc_stats
  cases=$((cases + 1))
  timeout "$CASE_TIMEOUT" bash -c "$cmd" >"$work/ref.out" 2>"$work/ref.err"
  rc_ref=$?
  LD_PRELOAD="$SO" timeout "$CASE_TIMEOUT" bash -c "$cmd" >"$work/pre.out" 2>"$work/pre.err"
  rc_pre=$?
  LIBARENA_SHOW_STATS=1 LD_PRELOAD="$SO" timeout "$CASE_TIMEOUT" bash -c "$cmd" \
    >"$work/stats.out" 2>"$work/stats.err"
  rc_stats=$?
  local ok=1 why=""
  if [ "$rc_ref" != 0 ]; then
    ok=0
    why="$why; reference run (no preload) exited $rc_ref"
  fi
  if [ "$rc_pre" != 0 ]; then
    ok=0
    why="$why; preloaded run exited $rc_pre: $(head -c 600 "$work/pre.err")"
  fi
  if [ ! -s "$work/ref.out" ]; then
    ok=0
    why="$why; reference run produced no output"
  fi
  if ! cmp -s "$work/ref.out" "$work/pre.out"; then
    ok=0
    why="$why; stdout differs under LD_PRELOAD: $(diff "$work/ref.out" "$work/pre.out" | head -5 | tr '\n' ' ')"
  fi
  if [ "$rc_stats" != 0 ] || ! cmp -s "$work/ref.out" "$work/stats.out"; then
    ok=0
    why="$why; run with LIBARENA_SHOW_STATS=1 exited $rc_stats or its stdout differs"
  fi
  if ! grep -q '^libarena stats' "$work/stats.err"; then
    ok=0
    why="$why; no 'libarena stats' report on stderr with LIBARENA_SHOW_STATS=1 (stderr: $(head -c 300 "$work/stats.err"))"
  fi
  if grep -q '^libarena stats' "$work/pre.err"; then
    ok=0
    why="$why; stats report printed without LIBARENA_SHOW_STATS"
  fi
  if [ "$ok" = 1 ]; then
    echo "ok   $name ($(wc -l <"$work/ref.out") lines of identical output)"
  else
    echo "FAIL $name${why}"
    failures=$((failures + 1))
  fi
}

# 1. python3: dicts, lists, strings, digest
cat >"$work/churn.py" <<'EOF'
import hashlib
d = {}
lst = []
h = hashlib.sha256()
x = 12345
for i in range(300000):
    x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    k = "key%d" % (x % 40000)
    op = x % 7
    if op == 0:
        d.pop(k, None)
    elif op < 4:
        d[k] = [k * (x % 5), i, str(x)]
    elif op < 6:
        lst.append(("s" * (x % 300)) + k)
        if len(lst) > 20000:
            del lst[: len(lst) // 2]
    else:
        d.setdefault(k, []).append({"n": i, "t": (x, k)})
for k in sorted(d):
    h.update(repr((k, d[k])).encode())
for s in lst:
    h.update(s.encode())
big = " ".join(str(i) for i in range(200000))
h.update(big.upper().encode())
print(len(d), len(lst), len(big))
print(h.hexdigest())
EOF
run_case "python3 dict/list/str churn" "python3 '$work/churn.py'"

# 2. sort of a generated 500k-line file (sort runs threads)
awk 'BEGIN { x = 1; for (i = 0; i < 500000; i++) { x = (x * 1103515245 + 12345) % 2147483648;
      printf "%d %s%d line-%d\n", x % 100000, substr("abcdefghijklmnopqrstuvwxyz", x % 26 + 1, 3), x % 977, i } }' \
  >"$work/lines.txt"
run_case "sort 500k lines" "sort '$work/lines.txt'"
run_case "sort -k2,2 -k1,1n 500k lines" "sort -k2,2 -k1,1n --parallel=2 '$work/lines.txt'"
run_case "awk word count" "awk '{ c[\$2]++ } END { n = 0; for (k in c) n++; print n }' '$work/lines.txt'"

# 3. the C++ std::map/std::string program
if [ -x "$TB/cxx_map_prog" ]; then
  run_case "C++ std::map/std::string churn" "'$TB/cxx_map_prog'"
else
  echo "FAIL C++ program: $TB/cxx_map_prog not built"
  failures=$((failures + 1))
fi

# 4. the compiler (cc1 is a heavy malloc user): identical assembly
if command -v gcc >/dev/null; then
  run_case "gcc -S -O2 of test_conformance.c" \
    "gcc -S -O2 -D_GNU_SOURCE -I'$ROOT/include' -o - '$ROOT/tests/test_conformance.c'"
fi

# 5. perl hashes
if command -v perl >/dev/null; then
  run_case "perl hash churn" "perl -e 'my %h; for my \$i (1..300000) { \$h{\$i % 50000} .= chr(65 + \$i % 26); delete \$h{(\$i * 7) % 50000} if \$i % 3 == 0 } my \$n = 0; \$n += length(\$h{\$_}) for sort keys %h; print scalar(keys %h), \" \$n\\n\"'"
fi

echo "real programs: $((cases - failures)) of $cases cases passed"
[ "$failures" = 0 ]
