#!/usr/bin/env bash
# make bench-small: what a small program pays for an allocator. Runs a few
# everyday programs (ls, sort, awk, python3, gcc) under each allocator with
# LD_PRELOAD, REPS times each, interleaved, and prints their median peak RSS
# (VmHWM, from GNU time's %M) and the ratio to glibc as a Markdown table.
#
#   bench/small-programs.sh [--reps=N] [--allocators=name=lib.so,...]
#
# The default allocators are libarena (lib/libarena.so) and the four baselines
# from Debian's packages, where installed.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=5
allocs="libarena=$PWD/lib/libarena.so,glibc=-"
for name in jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
  f=/usr/lib/x86_64-linux-gnu/${name#*:}
  [ -e "$f" ] && allocs="$allocs,${name%%:*}=$f"
done
for arg in "$@"; do
  case "$arg" in
    --reps=*) reps="${arg#*=}" ;;
    --allocators=*) allocs="${arg#*=}" ;;
    *) echo "usage: $0 [--reps=N] [--allocators=name=lib.so,...]" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "small-programs: GNU time (/usr/bin/time, package time) is missing" >&2; exit 1; }
[ -e lib/libarena.so ] || { echo "small-programs: lib/libarena.so is missing: run make" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seq 1 20000 | awk '{ print ($1 * 7919) % 10007, "line", $1 }' > "$work/lines"
printf 'int f(int x) { return x * 3 + 1; }\n' > "$work/f.c"

programs=(
  "ls -l /usr/bin"
  "sort $work/lines"
  "awk {n[\$1]++}END{print(length(n))} $work/lines"
  "python3 -c pass"
  "gcc -c -o $work/f.o $work/f.c"
)

IFS=, read -ra alloc_list <<< "$allocs"
declare -A samples
for ((r = 0; r < reps; r++)); do
  for prog in "${programs[@]}"; do
    for a in "${alloc_list[@]}"; do
      name=${a%%=*} lib=${a#*=}
      read -ra argv <<< "$prog"
      if [ "$lib" = "-" ]; then
        kb=$(/usr/bin/time -f %M "${argv[@]}" 2>&1 >/dev/null | tail -1)
      else
        kb=$(LD_PRELOAD=$lib /usr/bin/time -f %M "${argv[@]}" 2>&1 >/dev/null | tail -1)
      fi
      samples["$prog|$name"]+="$kb "
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

header="| program |" rule="|---|"
for a in "${alloc_list[@]}"; do header+=" ${a%%=*} |"; rule+="---|"; done
echo "Peak RSS (VmHWM, median of $reps runs); in brackets, relative to glibc."
echo
echo "$header"
echo "$rule"
for prog in "${programs[@]}"; do
  base=$(echo "${samples["$prog|glibc"]:-}" | median)
  row="| \`${prog//$work\//}\` |"
  for a in "${alloc_list[@]}"; do
    m=$(echo "${samples["$prog|${a%%=*}"]}" | median)
    if [ -n "$base" ]; then
      row+=" $m KiB ($(awk -v m="$m" -v b="$base" 'BEGIN { printf "%.3f", m / b }')) |"
    else
      row+=" $m KiB |"
    fi
  done
  echo "$row"
done
