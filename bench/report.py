"""Writes the readable report of a suite run: <run>/report.md with tables of
every metric as ratios to glibc and to the best baseline, gnuplot plots in
<run>/plots/, and results/README.md (the same report, for the latest run)."""
import math
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINES = ["glibc", "jemalloc", "mimalloc", "tcmalloc"]

# metric, title, higher is better, how to show an absolute value
METRICS = [
    ("throughput", "Throughput (ops/s, median of repeats)", True, lambda v: f"{v / 1e6:.3g} M"),
    ("utilization", "Peak utilization (max live payload / heap high-water)", True, lambda v: f"{v:.3f}"),
    ("rss", "Peak RSS (VmHWM)", False, lambda v: f"{v / 2**20:.1f} MiB"),
    ("tlb", "TLB misses per 1,000 ops", False, lambda v: f"{v:.3g}"),
    ("model_walks_per_kacc", "Modeled page walks per 1,000 accesses of the workload", False,
     lambda v: f"{v:.3g}"),
]
# Below this live payload, utilization mostly measures memory that was already
# resident when the run started (freed during set-up); it is shown but marked.
SMALL_PAYLOAD = 4 << 20


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def grouped(rows):
    """{(workload, benchmark, threads): {allocator: row}} in row order."""
    out = {}
    for r in rows:
        out.setdefault((r["workload"], r["benchmark"], r["threads"]), {})[r["allocator"]] = r
    return out


def best_baseline(cells, metric, higher):
    vals = [(num(cells[a].get(metric)), a) for a in BASELINES if a in cells and num(cells[a].get(metric))]
    if not vals:
        return None, None
    v, a = max(vals) if higher else min(vals)
    return v, a


def ratio(a, b):
    return None if a is None or not b else a / b


def table(rows, allocs, metric, title, higher, show):
    g = grouped(rows)
    lines = [f"### {title}", "",
             f"Cells: value relative to glibc · relative to the best baseline "
             f"({'higher' if higher else 'lower'} is better).", ""]
    head = ["benchmark", "thr", "glibc value", "best baseline value"] + allocs
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for (wl, bench, thr), cells in g.items():
        base = num(cells.get("glibc", {}).get(metric))
        bv, ba = best_baseline(cells, metric, higher)
        row = [bench, str(thr), show(base) if base is not None else "n/a",
               f"{ba} {show(bv)}" if ba else "n/a"]
        for a in allocs:
            c = cells.get(a)
            if not c:
                row.append("")
                continue
            v = c.get(metric)
            if num(v) is None:
                row.append(str(v) if v else "n/a")
                continue
            rg, rb = ratio(v, base), ratio(v, bv)
            txt = f"{rg:.2f}×" if rg is not None else show(v)
            if rb is not None:
                txt += f" · {rb:.2f}×"
            if metric == "tlb" and c.get("tlb_source") == "modeled":
                txt += " (m)"
            if metric == "utilization" and (num(c.get("live_peak_bytes")) or 0) < SMALL_PAYLOAD:
                txt += " †"
            row.append(txt)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if metric == "utilization":
        lines += ["† live payload below 4 MiB: the ratio mostly reflects memory that was resident "
                  "before the run started; read it with care.", ""]
    return lines


def tlb_walk_table(rows):
    """The TLB-bound workload in its own units: time per access, TLB misses
    with their source, and huge-page coverage."""
    walk = [r for r in rows if r["workload"] == "tlb"]
    if not walk:
        return []
    out = ["### TLB-bound walk", "",
           "ns per access = 1e9 / throughput; TLB misses per 1,000 accesses (source in brackets); "
           "modeled walks and L1 misses per 1,000 accesses; huge-page coverage of the heap "
           "(AnonHugePages / RssAnon) and of the accesses (from pagemap).", "",
           "| benchmark | allocator | ns/access | TLB /1k | modeled walks /1k | modeled L1 misses /1k "
           "| THP heap | THP accesses |", "|---|---|---|---|---|---|---|---|"]

    def f(v, spec):
        return format(v, spec) if num(v) is not None else (str(v) if v else "n/a")

    for r in walk:
        out.append(f"| {r['benchmark']} | {r['allocator']} | {f(r.get('ns_per_op'), '.1f')} | "
                   f"{f(r.get('tlb'), '.3g')} ({r.get('tlb_source')}) | {f(r.get('model_walks_per_kacc'), '.3g')} | "
                   f"{f(r.get('model_l1_misses_per_kacc'), '.3g')} | {f(r.get('thp_heap'), '.0%')} | "
                   f"{f(r.get('thp_touched'), '.0%')} |")
    return out + [""]


def geomean_summary(rows, allocs):
    g = grouped(rows)
    lines = ["| allocator | throughput vs glibc (geomean) | vs best baseline (geomean) | instances |",
             "|---|---|---|---|"]
    for a in allocs:
        rg, rb = [], []
        for cells in g.values():
            if a not in cells or num(cells[a].get("throughput")) is None:
                continue
            v = cells[a]["throughput"]
            base = num(cells.get("glibc", {}).get("throughput"))
            bv, _ = best_baseline(cells, "throughput", True)
            if base:
                rg.append(math.log(v / base))
            if bv:
                rb.append(math.log(v / bv))
        gm = lambda xs: f"{math.exp(sum(xs) / len(xs)):.2f}×" if xs else "n/a"  # noqa: E731
        lines.append(f"| {a} | {gm(rg)} | {gm(rb)} | {len(rg)} |")
    return lines + [""]


def gnuplot_terminal():
    for term, ext in (("pngcairo size 1000,420 font ',9'", "png"), ("png size 1000,420", "png"),
                      ("svg size 1000,420", "svg")):
        r = subprocess.run(["gnuplot", "-e", f"set terminal {term}"], capture_output=True)
        if r.returncode == 0 and not r.stderr:
            return term, ext
    return None, None


def plots(out, rows, allocs):
    """One clustered bar chart per workload and metric. Returns
    {workload: [(metric title, relative path)]}."""
    if not shutil.which("gnuplot"):
        return {}
    term, ext = gnuplot_terminal()
    if not term:
        return {}
    pdir = os.path.join(out, "plots")
    os.makedirs(pdir, exist_ok=True)
    made = {}
    g = grouped(rows)
    workloads = []
    for (wl, _, _) in g:
        if wl not in workloads:
            workloads.append(wl)
    for wl in workloads:
        keys = [k for k in g if k[0] == wl]
        for metric, title, higher, _ in METRICS:
            relative = metric == "throughput" and any("glibc" in g[k] for k in keys)
            data = []
            any_value = False
            for k in keys:
                cells = g[k]
                base = num(cells.get("glibc", {}).get(metric))
                vals = []
                for a in allocs:
                    v = num(cells.get(a, {}).get(metric))
                    if v is not None and metric == "rss":
                        v /= 2**20
                    if v is not None and relative:
                        v = v / base if base else None
                    any_value = any_value or v is not None
                    vals.append("?" if v is None else f"{v:.6g}")
                data.append(f'"{k[1].replace(wl + "_", "").replace(wl + "/", "")} t{k[2]}" ' + " ".join(vals))
            if not any_value:
                continue
            dat = os.path.join(pdir, f"{wl}-{metric}.dat")
            with open(dat, "w") as f:
                f.write("\n".join(data) + "\n")
            ylabel = {"throughput": "ops/s relative to glibc" if relative else "ops/s",
                      "utilization": "peak utilization", "rss": "peak RSS (MiB)",
                      "tlb": "TLB misses / 1000 ops",
                      "model_walks_per_kacc": "modeled walks / 1000 accesses"}[metric]
            img = f"{wl}-{metric}.{ext}"
            series = ", ".join(f"'{dat}' using {i + 2}{':xtic(1)' if i == 0 else ''} title '{a}'"
                               for i, a in enumerate(allocs))
            script = "\n".join([
                f"set terminal {term}", f"set output '{os.path.join(pdir, img)}'",
                'set datafile missing "?"', "set style data histograms",
                "set style histogram clustered gap 1", "set style fill solid 0.85 border -1",
                "set key outside right top", "set xtics rotate by -25 noenhanced", "set grid ytics",
                "set logscale y" if relative else "set yrange [0:*]",
                f"set ylabel '{ylabel}{' (log scale)' if relative else ''}'", "set title noenhanced",
                f"set title '{wl}: {title} ({'higher' if higher else 'lower'} is better)'",
                f"plot {series}", ""])
            r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
            os.remove(dat)
            if r.returncode == 0:
                made.setdefault(wl, []).append((title, f"plots/{img}"))
    return made


def write_report(out, rows, machine):
    allocs = []
    for r in rows:
        if r["allocator"] not in allocs:
            allocs.append(r["allocator"])
    topo = machine.get("topology", {})
    name = os.path.basename(out.rstrip("/"))
    lines = [f"# Allocator benchmark: {name}", "",
             "Generated by `make bench` (bench/run.py); definitions in docs/benchmarks.md. "
             "Raw Google Benchmark JSON is in `raw/`, one row per workload x allocator x threads in "
             "`results.csv`, the machine in `machine.json`.", "",
             "## Machine", "",
             f"- CPU: {machine.get('cpu') or topo.get('cpu_model', '?')}; {topo.get('packages')} package(s), "
             f"{topo.get('cores')} cores, {topo.get('pus')} PUs, {topo.get('numa_nodes')} NUMA node(s)",
             f"- caches: L1d {topo.get('l1d_bytes', 0) // 1024} KiB x{topo.get('l1d_count')}, "
             f"L2 {topo.get('l2_bytes', 0) // 1024} KiB x{topo.get('l2_count')}, "
             f"L3 {topo.get('l3_bytes', 0) // 2**20} MiB x{topo.get('l3_count')}",
             f"- kernel {machine.get('kernel')}; THP enabled: `{machine.get('thp_enabled')}`, "
             f"defrag: `{machine.get('thp_defrag')}`; page sizes from {machine.get('page_size_source')}",
             f"- run: {machine.get('mode')} mode, {machine.get('repetitions')} repeats per instance, "
             f"{machine.get('date')}, {machine.get('duration_seconds', '?')} s, "
             f"{machine.get('failed_runs', 0)} failed runs, suite {machine.get('suite_version')}",
             "", "Allocators:", ""]
    for a, v in machine.get("allocators", {}).items():
        lines.append(f"- **{a}**: {v}")
    lines += ["", "## Summary", ""] + geomean_summary(rows, allocs)
    lines += ["TLB cells marked (m) are modeled (no hardware counter); `unsupported` means neither "
              "a counter nor a model run was available. Throughput min/max, RSS, mapped growth, "
              "page faults, cycles and huge-page coverage are in results.csv.", "", "## Tables", ""]
    for metric, title, higher, show in METRICS:
        lines += table(rows, allocs, metric, title, higher, show)
    lines += tlb_walk_table(rows)
    made = plots(out, rows, allocs)
    if made:
        lines += ["## Plots", ""]
        for wl, imgs in made.items():
            lines += [f"### {wl}", ""] + [f"![{wl} {t}]({p})" for t, p in imgs] + [""]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)
    # results/README.md: the latest report, links pointing into its run directory.
    results = os.path.join(ROOT, "results")
    if os.path.dirname(os.path.abspath(out)) == results:
        text = text.replace("](plots/", f"]({name}/plots/")
        text = text.replace("`raw/`", f"`{name}/raw/`").replace("`results.csv`", f"`{name}/results.csv`")
        text = text.replace("`machine.json`", f"`{name}/machine.json`")
        with open(os.path.join(results, "README.md"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    import csv
    import json
    import sys
    run = sys.argv[1]
    with open(os.path.join(run, "machine.json")) as f:
        m = json.load(f)
    rows = []
    with open(os.path.join(run, "results.csv")) as f:
        for r in csv.DictReader(f):
            for k, v in r.items():
                try:
                    r[k] = int(v) if k in ("threads", "reps") else float(v)
                except ValueError:
                    pass
            rows.append(r)
    write_report(run, rows, m)
