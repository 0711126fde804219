#!/usr/bin/env bash
# Re-records the shipped traces with librecord.so (make bench-build first).
# The programs' allocation patterns depend on their versions, so traces
# recorded elsewhere differ in detail from the shipped ones.
#   bench/traces/record.sh [output-dir]     (default: bench/traces)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here}
mkdir -p "$out"
rec=$root/build/bench/librecord.so
[ -f "$rec" ] || { echo "record.sh: $rec is missing: run make bench-build" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 200,000 random lines for awk and sort, the same every time.
python3 -c '
import random
random.seed(1)
with open("'"$tmp"'/lines.txt", "w") as f:
    for i in range(200000):
        f.write("".join(random.choice("abcdefghijklmnop") for _ in range(random.randint(3, 40))) + "\n")'

record() { # name max-requests command...
  local name=$1 max=$2
  shift 2
  ARENA_TRACE_MAX=$max ARENA_TRACE_FILE="$tmp/$name-%p.rep" LD_PRELOAD="$rec" "$@" >/dev/null
}

# PYTHONMALLOC=malloc: every Python object goes through malloc, not pymalloc.
PYTHONMALLOC=malloc record python3-json 120000 /usr/bin/python3 "$here/python3-json.py"
record gcc 100000 gcc -O2 -c -I"$root/bench" "$root/bench/trace.c" -o "$tmp/trace.o"
record awk-wordcount 120000 awk '{c[$1]++; s[substr($1,1,4)] = s[substr($1,1,4)] $1} END {print length(c), length(s)}' "$tmp/lines.txt"
record sort 120000 sort -S 16M "$tmp/lines.txt"

# One file per process (%p); keep the largest of each program (gcc: cc1).
for name in python3-json gcc awk-wordcount sort; do
  best=$(ls -S "$tmp/$name"-*.rep | head -1)
  target=$name
  [ "$name" = gcc ] && target=gcc-cc1
  cp "$best" "$out/$target.rep"
  echo "$out/$target.rep: $(sed -n 3p "$best" | tr -d ' ') requests"
done
