#!/usr/bin/env bash
# make bench-tlb: runs one workload under `perf stat` for each allocator and
# prints the counters side by side. Events the machine cannot count are shown
# as "unsupported" (perf's <not supported>) or "not counted", never as 0.
#
#   bench/perf-tlb.sh [--allocators=LIST] [--workload=REGEX] [--quick] [--threads=N,..]
#
# The default workload is the TLB-bound random walk; the counts cover the
# whole process (building the structure and walking it) under each allocator.
set -euo pipefail
cd "$(dirname "$0")/.."

allocators=all
workload='^tlb_random_order/'
bench_opts=()
for arg in "$@"; do
  case "$arg" in
    --allocators=*) allocators="${arg#*=}" ;;
    --workload=*) workload="${arg#*=}" ;;
    --quick | --threads=* | --no-pin | --tlb-mib=*) bench_opts+=("$arg") ;;
    *) echo "usage: $0 [--allocators=LIST] [--workload=REGEX] [--quick] [--threads=N,..] [--tlb-mib=N]" >&2
       exit 2 ;;
  esac
done

events=dTLB-load-misses,dTLB-store-misses,iTLB-load-misses,page-faults,cycles,instructions
bench=build/bench/bench
[ -x "$bench" ] || { echo "perf-tlb: $bench is missing: run make bench-build" >&2; exit 1; }

if ! command -v perf >/dev/null || ! perf stat -e page-faults true >/dev/null 2>&1; then
  echo "perf-tlb: perf is not usable here (not installed, or perf_event_paranoid forbids it):"
  echo "every counter is unsupported; the suite's modeled TLB numbers are in results/."
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names=()
while IFS='=' read -r name lib; do
  [ -n "$name" ] || continue
  names+=("$name")
  echo "perf-tlb: $name: $bench --benchmark_filter=$workload ${bench_opts[*]:-}" >&2
  perf stat -x, -o "$tmp/$name.csv" -e "$events" -- env -u LD_PRELOAD ${lib:+LD_PRELOAD="$lib"} \
    "$bench" "${bench_opts[@]}" --benchmark_filter="$workload" --benchmark_min_time=0.5 \
    --benchmark_format=json >"$tmp/$name.json" 2>"$tmp/$name.err" ||
    echo "perf-tlb: $name failed: $(tail -1 "$tmp/$name.err")" >&2
done < <(python3 bench/run.py --list-allocators --allocators="$allocators")

[ ${#names[@]} -gt 0 ] || { echo "perf-tlb: no allocator to run" >&2; exit 1; }

python3 - "$tmp" "$events" "${names[@]}" <<'PY'
import json, os, sys
tmp, events, names = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
table = {}
ops = {}
for n in names:
    vals = {}
    try:
        for line in open(os.path.join(tmp, n + ".csv")):
            f = line.strip().split(",")
            if len(f) < 3 or line.startswith("#"):
                continue
            ev = f[2].split(":")[0]
            v = f[0]
            vals[ev] = ("unsupported" if v == "<not supported>" else "not counted" if v == "<not counted>"
                        else f"{float(v):,.0f}")
    except OSError:
        pass
    table[n] = vals
    try:
        bm = [b for b in json.load(open(os.path.join(tmp, n + ".json")))["benchmarks"]
              if b.get("run_type") == "iteration"]
        ops[n] = f"{bm[0]['ops'] / 1e6:,.2f} M" if bm and "ops" in bm[0] else "n/a"
    except (OSError, ValueError, KeyError):
        ops[n] = "failed"
w = max(14, *(len(n) + 2 for n in names))
print("event".ljust(20) + "".join(n.rjust(w) for n in names))
for ev in events:
    print(ev.ljust(20) + "".join(table[n].get(ev, "unsupported").rjust(w) for n in names))
print("ops/s (walk)".ljust(20) + "".join(ops[n].rjust(w) for n in names))
print("\nCounts cover the whole process (build and walk); ops/s is the timed walk only.")
PY
