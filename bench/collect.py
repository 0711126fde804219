"""Turns the raw Google Benchmark JSON of one suite run into one row per
workload instance x allocator (x thread count, part of the instance) with
medians over the repeats. Definitions: docs/benchmarks.md, "Metrics"."""
import csv
import glob
import json
import os
import re
import statistics

WORKLOADS = [  # (name prefix, workload)
    ("fixed_", "fixed"), ("churn", "churn"), ("prodcons", "prodcons"), ("server", "server"),
    ("thread_churn", "thread_churn"), ("realloc_", "realloc"), ("large", "large"),
    ("falseshare_", "falseshare"), ("trace_", "trace"), ("tlb_", "tlb"),
]
PERF = ["dtlb_load_misses", "dtlb_store_misses", "itlb_misses", "page_faults", "cycles", "instructions"]

COLUMNS = [
    "workload", "benchmark", "threads", "allocator", "reps",
    "throughput", "throughput_min", "throughput_max", "ns_per_op",
    "utilization", "utilization_mapped", "live_peak_bytes", "heap_peak_bytes", "mapped_peak_bytes",
    "rss", "tlb", "tlb_source", "tlb_events",
    "dtlb_load_misses_per_kop", "dtlb_store_misses_per_kop", "itlb_misses_per_kop", "page_faults_per_kop",
    "cycles_per_op", "ipc",
    "model_walks_per_kacc", "model_l1_misses_per_kacc", "model_walks_per_kop",
    "thp_heap", "thp_touched", "page_size_source",
]


def workload_of(name):
    for prefix, w in WORKLOADS:
        if name.startswith(prefix):
            return w
    return name.split("/")[0]


def variant_of(name):
    """Instance name without the parts every instance has."""
    return re.sub(r"/(real_time|threads:\d+)", "", name)


def threads_of(name):
    m = re.search(r"threads:(\d+)", name)
    return int(m.group(1)) if m else 1


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def load(raw_dir):
    """{(instance, allocator): {"time": [bench...], "model": [bench...], "context": {...}}}"""
    runs = {}
    for path in sorted(glob.glob(os.path.join(raw_dir, "*.json"))):
        m = re.match(r"(.+?)__(.+)__(time|model)(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        for b in data.get("benchmarks", []):
            if b.get("run_type") != "iteration" or b.get("error_occurred"):
                continue
            entry = runs.setdefault((b["name"], m.group(1)), {"time": [], "model": [], "context": {}})
            entry[m.group(3)].append(b)
            entry["context"] = data.get("context", {})
    return runs


def per_k(count, ops):
    return None if count is None or not ops else count / ops * 1000


def row_for(inst, alloc, entry):
    t, md = entry["time"], entry["model"]
    ops = [b.get("ops") for b in t if b.get("ops")]
    unsupported = set()
    user_only = False
    for b in t:
        for token in b.get("label", "").split():
            if token.startswith("unsupported:"):
                unsupported.update(token[len("unsupported:"):].split(","))
            user_only = user_only or token == "perf:user-only"
    r = {"workload": workload_of(inst), "benchmark": variant_of(inst), "threads": threads_of(inst),
         "allocator": alloc, "reps": len(t)}
    r["throughput"] = median(ops)
    r["throughput_min"] = min(ops) if ops else None
    r["throughput_max"] = max(ops) if ops else None
    r["ns_per_op"] = 1e9 / r["throughput"] if r["throughput"] else None
    for k, src in [("utilization", "utilization"), ("utilization_mapped", "utilization_mapped"),
                   ("live_peak_bytes", "live_peak_bytes"), ("heap_peak_bytes", "heap_peak_bytes"),
                   ("mapped_peak_bytes", "mapped_peak_bytes"), ("rss", "rss_peak_bytes"),
                   ("thp_heap", "thp_heap")]:
        r[k] = median([b.get(src) for b in t])
    # Measured counters, per 1000 ops of each run, then the median.
    for ev in PERF[:4]:
        vals = [per_k(b.get("perf_" + ev), b.get("ops_total")) for b in t if ("perf_" + ev) in b]
        r[ev + "_per_kop"] = median(vals) if vals else ("unsupported" if ev in unsupported or t else None)
    cyc = [b["perf_cycles"] / b["ops_total"] for b in t if "perf_cycles" in b and b.get("ops_total")]
    r["cycles_per_op"] = median(cyc) if cyc else "unsupported"
    ipc = [b["perf_instructions"] / b["perf_cycles"] for b in t
           if "perf_instructions" in b and b.get("perf_cycles")]
    r["ipc"] = median(ipc) if ipc else "unsupported"
    # Modeled counters from the model run.
    m = md[0] if md else None
    if m and m.get("model_accesses"):
        r["model_walks_per_kacc"] = per_k(m["model_walks"], m["model_accesses"])
        r["model_l1_misses_per_kacc"] = per_k(m["model_l1_misses"], m["model_accesses"])
        r["model_walks_per_kop"] = per_k(m["model_walks"], m.get("ops_total"))
        r["thp_touched"] = m.get("model_huge_accesses", 0) / m["model_accesses"]
    r["page_size_source"] = entry["context"].get("page_size_source", "")
    # The headline TLB number: measured when the machine counts dTLB misses,
    # else modeled, else unsupported - never a zero that was not counted.
    load_k, store_k = r["dtlb_load_misses_per_kop"], r["dtlb_store_misses_per_kop"]
    if isinstance(load_k, float):
        events = ["dTLB-load-misses"]
        tlb = load_k
        if isinstance(store_k, float):
            tlb += store_k
            events.append("dTLB-store-misses")
        r["tlb"], r["tlb_source"] = tlb, "measured"
        r["tlb_events"] = "+".join(events) + (" (user space only)" if user_only else "")
    elif r.get("model_walks_per_kop") is not None:
        r["tlb"], r["tlb_source"], r["tlb_events"] = r["model_walks_per_kop"], "modeled", "model page walks"
    else:
        r["tlb"], r["tlb_source"], r["tlb_events"] = "unsupported", "unsupported", ""
    return r


def collect(raw_dir, allocs):
    runs = load(raw_dir)
    order = {a["name"]: i for i, a in enumerate(allocs)}
    instances = []
    for inst, _ in runs:
        if inst not in instances:
            instances.append(inst)
    rows = [row_for(inst, alloc, runs[(inst, alloc)])
            for inst in instances for alloc in sorted({a for i, a in runs if i == inst},
                                                      key=lambda a: order.get(a, 99))
            if runs[(inst, alloc)]["time"]]
    wl_order = {w: i for i, (_, w) in enumerate(WORKLOADS)}
    rows.sort(key=lambda r: (wl_order.get(r["workload"], 99), r["benchmark"], r["threads"],
                             order.get(r["allocator"], 99)))
    return rows


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([fmt(r.get(c)) for c in COLUMNS])
