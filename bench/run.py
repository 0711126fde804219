#!/usr/bin/env python3
"""Runs the benchmark suite: every workload instance under every allocator,
each in its own process, repeated, and writes results/<date>-<host>/.

  python3 bench/run.py [--quick] [--allocators=libarena,glibc,...,name=/path.so]
                       [--threads=1,2] [--reps=N] [--filter=REGEX] [--no-pin]
                       [--no-model] [--min-time=S] [--out=DIR] [--list-allocators]

Runs are interleaved (repeat r of one instance runs under every allocator
before repeat r+1), so slow drifts of a shared machine hit every allocator
alike. One extra run per instance and allocator feeds the TLB model
(--tlb-model); its throughput is discarded. See docs/benchmarks.md.
"""
import argparse
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import allocators  # noqa: E402
import collect  # noqa: E402
import report  # noqa: E402

ROOT = allocators.ROOT
BENCH = os.path.join(ROOT, "build", "bench", "bench")


def log(msg):
    print(f"bench: {msg}", flush=True)


def gb_escape(name):
    """Google Benchmark filters are POSIX extended regexes: escape the
    metacharacters, leave everything else alone."""
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\" else c for c in name)


def list_instances(common, pattern):
    out = subprocess.run([BENCH, *common, "--benchmark_list_tests"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    rx = re.compile(pattern) if pattern else None
    return [n for n in out if not rx or rx.search(n)]


def fmt_time(s):
    s = int(s)
    return f"{s // 60}:{s % 60:02d}"


def machine_description(allocs, args, common):
    desc = json.loads(subprocess.run([BENCH, "--describe"], capture_output=True, text=True, check=True,
                                     cwd=ROOT).stdout)
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    desc.update({
        "host": socket.gethostname(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu,
        "suite_version": allocators.repo_version(),
        "allocators": {a["name"]: a["version"] for a in allocs},
        "mode": "quick" if args.quick else "full",
        "repetitions": args.reps,
        "bench_args": common,
    })
    return desc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs, small heaps (CI)")
    ap.add_argument("--allocators", default="all", help="comma list; name=/path/lib.so adds one")
    ap.add_argument("--threads", default="", help="thread counts, default 1 and the core count")
    ap.add_argument("--reps", type=int, default=0, help="repeats per instance (default 5, quick 3)")
    ap.add_argument("--filter", default="", help="regex on instance names")
    ap.add_argument("--no-pin", action="store_true", help="do not pin threads to cores")
    ap.add_argument("--no-model", action="store_true", help="skip the TLB-model runs")
    ap.add_argument("--min-time", type=float, default=0, help="seconds per run (default 0.3, quick 0.05)")
    ap.add_argument("--out", default="", help="output directory (default results/<date>-<host>)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds before a run is abandoned")
    ap.add_argument("--list-allocators", action="store_true", help="print name=lib lines and exit")
    args = ap.parse_args()
    args.reps = args.reps or (3 if args.quick else 5)
    min_time = args.min_time or (0.05 if args.quick else 0.3)

    if not os.path.exists(BENCH):
        sys.exit("bench: build/bench/bench is missing: run make bench-build")
    allocs = allocators.resolve(args.allocators, log=log)
    if args.list_allocators:
        for a in allocs:
            print(f"{a['name']}={a['lib'] or ''}")
        return
    if not allocs:
        sys.exit("bench: no allocator to run")

    common = []
    if args.quick:
        common.append("--quick")
    if args.threads:
        common.append(f"--threads={args.threads}")
    if args.no_pin:
        common.append("--no-pin")
    instances = list_instances(common, args.filter)
    if not instances:
        sys.exit("bench: no benchmark matches the filter")

    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    out = args.out or os.path.join(ROOT, "results", f"{stamp}-{socket.gethostname()}")
    raw = os.path.join(out, "raw")
    os.makedirs(raw, exist_ok=True)
    machine = machine_description(allocs, args, common)
    with open(os.path.join(out, "machine.json"), "w") as f:
        json.dump(machine, f, indent=2)

    plan = []
    for rep in range(args.reps):
        for i, inst in enumerate(instances):
            # Rotate the allocator order so none always runs first.
            k = (rep + i) % len(allocs)
            for a in allocs[k:] + allocs[:k]:
                plan.append(("time", rep, inst, a))
    if not args.no_model:
        for inst in instances:
            for a in allocs:
                plan.append(("model", 0, inst, a))

    log(f"{len(instances)} instances x {len(allocs)} allocators ({', '.join(a['name'] for a in allocs)})"
        f" x {args.reps} repeats{'' if args.no_model else ' + 1 TLB-model run'}: {len(plan)} runs -> {out}")
    start = time.time()
    failures = 0
    checked = set()
    for n, (kind, rep, inst, a) in enumerate(plan, 1):
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", inst)
        path = os.path.join(raw, f"{a['name']}__{safe}__{kind}{rep}.json")
        cmd = [BENCH, *common, f"--benchmark_filter=^{gb_escape(inst)}$", f"--benchmark_out={path}",
               "--benchmark_out_format=json", f"--benchmark_min_time={min_time / (4 if kind == 'model' else 1)}"]
        if kind == "model":
            cmd.append("--tlb-model")
        t0 = time.time()
        try:
            r = subprocess.run(cmd, env=allocators.environment(a), cwd=ROOT, capture_output=True, text=True,
                               timeout=args.timeout)
            ok = r.returncode == 0 and os.path.exists(path)
            err = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        except subprocess.TimeoutExpired:
            ok, err = False, f"timed out after {args.timeout:.0f} s"
        elapsed = time.time() - start
        left = elapsed / n * (len(plan) - n)
        status = ""
        if ok:
            try:
                with open(path) as f:
                    data = json.load(f)
                bm = [b for b in data.get("benchmarks", []) if b.get("run_type") == "iteration"]
                if bm and bm[0].get("error_occurred"):
                    ok, err = False, bm[0].get("error_message", "error")
                elif bm and "ops" in bm[0]:
                    status = f"{bm[0]['ops'] / 1e6:9.3f} Mops/s"
                lib = data.get("context", {}).get("malloc_library", "")
                if a["name"] not in checked:
                    checked.add(a["name"])
                    want = os.path.basename(a["lib"]) if a["lib"] else "libc.so"
                    if want.split(".so")[0] not in os.path.basename(lib):
                        log(f"WARNING: {a['name']} runs with malloc from {lib}, not {want}")
            except (OSError, ValueError) as e:
                ok, err = False, f"unreadable output: {e}"
        if not ok:
            failures += 1
            status = f"FAILED: {err}"
        print(f"[{n:4d}/{len(plan)} {fmt_time(elapsed)} ~{fmt_time(left)} left] "
              f"{kind + ' ' + str(rep + 1) if kind == 'time' else 'model '}  {inst:45s} {a['name']:10s} "
              f"{time.time() - t0:5.1f}s {status}", flush=True)

    # libarena's own idea of its version, from the JSON context of its runs.
    for a in allocs:
        for path in sorted(os.listdir(raw)):
            if path.startswith(a["name"] + "__"):
                try:
                    with open(os.path.join(raw, path)) as f:
                        v = json.load(f).get("context", {}).get("arena_version")
                except (OSError, ValueError):
                    v = None
                if v:
                    machine["allocators"][a["name"]] += f", arena_version() {v}"
                break

    rows = collect.collect(raw, allocs)
    csv_path = os.path.join(out, "results.csv")
    collect.write_csv(rows, csv_path)
    machine["duration_seconds"] = round(time.time() - start)
    machine["failed_runs"] = failures
    with open(os.path.join(out, "machine.json"), "w") as f:
        json.dump(machine, f, indent=2)
    report.write_report(out, rows, machine)
    in_results = os.path.dirname(os.path.abspath(out)) == os.path.join(ROOT, "results")
    log(f"done in {fmt_time(time.time() - start)}, {failures} failed runs; {csv_path}; report in "
        f"{os.path.join(out, 'report.md')}{' and results/README.md' if in_results else ''}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
