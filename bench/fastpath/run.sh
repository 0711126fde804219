#!/usr/bin/env bash
# Instructions per malloc+free pair, counted by callgrind for each allocator,
# sizes 16, 256 and 4096, hot pair and 64-batch loops. Writes a Markdown table
# to stdout. Usage: bench/fastpath/run.sh BINARY [name=lib.so ...]
set -euo pipefail
bin=$1
shift
libs=("$@")
n1=200000
n2=400000

count() { # preload mode size n -> total instructions
  local out
  out=$(mktemp)
  env ${1:+LD_PRELOAD=$1} valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$2" "$3" "$4" 2>"$out" >/dev/null || true
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out"
  rm -f "$out"
}

printf '| allocator | pair 16 | pair 256 | pair 4096 | batch 16 | batch 256 | batch 4096 |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for entry in "${libs[@]}"; do
  name=${entry%%=*}
  lib=${entry#*=}
  [ "$lib" = "-" ] && lib=""
  row="| $name |"
  for mode in pair batch; do
    for size in 16 256 4096; do
      a=$(count "$lib" $mode $size $n1)
      b=$(count "$lib" $mode $size $n2)
      row="$row $(awk -v a="$a" -v b="$b" -v n=$((n2 - n1)) 'BEGIN { printf "%.1f", (b - a) / n }') |"
    done
  done
  echo "$row"
done
