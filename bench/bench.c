/* The benchmark program: every workload, run through Google Benchmark.
 *
 *   build/bench/bench [options] [--benchmark_* flags]
 *     --quick            short runs, small heaps (what bench-quick uses)
 *     --threads=1,2      thread counts (default: 1 and the hwloc core count)
 *     --no-pin           do not pin worker threads to cores
 *     --tlb-model[=CFG]  feed the TLB model (CFG like l1_4k=64:4,l1_2m=32:4,l2=1536:12);
 *                        throughput of such a run is not comparable
 *     --trace-dir=DIR    malloc-lab traces to replay (default bench/traces)
 *     --tlb-mib=N        heap of the TLB-bound workload (default 256, quick 32)
 *     --trace-mib=N      peak payload trace replay aims for (default 32, quick 8)
 *     --replay=FILE[:K]  replay one trace K times interleaved, verify every
 *                        block's contents, print a summary and exit
 *     --describe         print the machine description as JSON and exit
 *
 * The allocator is whatever malloc the process gets: run under LD_PRELOAD to
 * measure another one. The JSON context records which library that is.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "harness.h"
#include "replay.h"
#include "topo.h"
#include "trace.h"
#include "workloads.h"

static void usage(void) {
  fprintf(stderr, "usage: bench [--quick] [--threads=1,2] [--no-pin] [--tlb-model[=CFG]] [--trace-dir=DIR]\n"
                  "             [--tlb-mib=N] [--trace-mib=N] [--replay=FILE[:K]] [--describe]\n"
                  "             [--benchmark_filter=RE --benchmark_out=FILE ...]\n");
}

/* Name of the shared object that provides malloc to this process. */
static const char *malloc_library(void) {
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "malloc");
  if (sym && dladdr(sym, &info) && info.dli_fname) return info.dli_fname;
  return "unknown";
}

static void first_line(const char *path, char *buf, size_t len) {
  buf[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (fgets(buf, (int)len, f)) buf[strcspn(buf, "\n")] = 0;
  fclose(f);
}

static void describe(void) {
  char topo[2048], thp[128], defrag[128];
  struct utsname u;
  uname(&u);
  topo_describe_json(topo, sizeof topo);
  first_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
  first_line("/sys/kernel/mm/transparent_hugepage/defrag", defrag, sizeof defrag);
  struct pagesize_resolver r;
  pagesize_open(&r);
  printf("{\"topology\":%s,\"kernel\":\"%s %s\",\"machine\":\"%s\",\"thp_enabled\":\"%s\","
         "\"thp_defrag\":\"%s\",\"page_size_source\":\"%s\"}\n",
         topo, u.sysname, u.release, u.machine, thp, defrag, pagesize_source_name(r.source));
  pagesize_close(&r);
}

static int parse_threads(const char *s) {
  bench_cfg.nthreads = 0;
  while (*s && bench_cfg.nthreads < BENCH_MAX_THREAD_COUNTS) {
    char *end;
    long t = strtol(s, &end, 10);
    if (end == s || t < 1 || t > 64) return -1;
    bench_cfg.threads[bench_cfg.nthreads++] = (int)t;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return bench_cfg.nthreads > 0 ? 0 : -1;
}

static int replay_file(const char *arg) {
  char path[4096];
  snprintf(path, sizeof path, "%s", arg);
  int copies = 1;
  char *colon = strrchr(path, ':');
  if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
    copies = atoi(colon + 1);
    *colon = 0;
  }
  struct trace t;
  char err[256];
  if (trace_load(path, &t, err, sizeof err) != 0) {
    fprintf(stderr, "replay: %s\n", err);
    return 1;
  }
  struct bench_thread bt;
  bt_begin_worker(&bt, 0);
  bt.is_sampler = 1;
  int64_t n = replay_run(&t, copies, &bt, 1);
  bt_end_worker(&bt);
  struct mem_report m;
  mem_report(&m);
  printf("replay %s: copies %d, ids %d, requests %zu, performed %lld, peak payload %llu, heap peak %llu, "
         "utilization %.3f, warnings %d, %s\n",
         path, copies, t.nids, t.nreq, (long long)n, (unsigned long long)trace_peak_live(&t, copies),
         (unsigned long long)m.heap_peak, mem_utilization(trace_peak_live(&t, copies), m.heap_peak),
         t.warnings, n < 0 ? "FAILED" : "ok");
  trace_free(&t);
  return n < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
  shim_init(&argc, argv);
  bench_cfg.pin = 1;
  bench_cfg.tlb = tlb_default_config;
  bench_cfg.trace_dir = "bench/traces";
  long tlb_mib = 0, trace_mib = 0;
  const char *replay = NULL, *threads = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--quick") == 0)
      bench_cfg.quick = 1;
    else if (strcmp(a, "--no-pin") == 0)
      bench_cfg.pin = 0;
    else if (strcmp(a, "--tlb-model") == 0)
      bench_cfg.model = 1;
    else if (strncmp(a, "--tlb-model=", 12) == 0) {
      bench_cfg.model = 1;
      if (tlb_config_parse(&bench_cfg.tlb, a + 12) != 0) {
        fprintf(stderr, "bench: bad TLB geometry %s\n", a + 12);
        return 2;
      }
    } else if (strncmp(a, "--threads=", 10) == 0)
      threads = a + 10;
    else if (strncmp(a, "--trace-dir=", 12) == 0)
      bench_cfg.trace_dir = a + 12;
    else if (strncmp(a, "--tlb-mib=", 10) == 0)
      tlb_mib = atol(a + 10);
    else if (strncmp(a, "--trace-mib=", 12) == 0)
      trace_mib = atol(a + 12);
    else if (strncmp(a, "--replay=", 9) == 0)
      replay = a + 9;
    else if (strcmp(a, "--describe") == 0) {
      describe();
      return 0;
    } else {
      usage();
      return 2;
    }
  }
  topo_init();
  if (threads) {
    if (parse_threads(threads) != 0) {
      fprintf(stderr, "bench: bad --threads=%s\n", threads);
      return 2;
    }
  } else {
    bench_cfg.threads[bench_cfg.nthreads++] = 1;
    if (topo_cores() > 1) bench_cfg.threads[bench_cfg.nthreads++] = topo_cores();
  }
  bench_cfg.tlb_bytes = (uint64_t)(tlb_mib > 0 ? tlb_mib : bench_cfg.quick ? 32 : 256) << 20;
  bench_cfg.trace_bytes = (uint64_t)(trace_mib > 0 ? trace_mib : bench_cfg.quick ? 8 : 32) << 20;
  if (replay) {
    mem_init();
    return replay_file(replay);
  }

  char topo[2048], geometry[128];
  topo_describe_json(topo, sizeof topo);
  shim_context("topology", topo);
  shim_context("malloc_library", malloc_library());
  const char *(*version)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "arena_version");
  shim_context("arena_version", version ? version() : "");
  shim_context("pinned", bench_cfg.pin ? "yes" : "no");
  shim_context("quick", bench_cfg.quick ? "yes" : "no");
  shim_context("tlb_model", bench_cfg.model ? "yes" : "no");
  snprintf(geometry, sizeof geometry, "l1_4k=%u:%u,l1_2m=%u:%u,l2=%u:%u", bench_cfg.tlb.l1_4k.entries,
           bench_cfg.tlb.l1_4k.ways, bench_cfg.tlb.l1_2m.entries, bench_cfg.tlb.l1_2m.ways,
           bench_cfg.tlb.l2.entries, bench_cfg.tlb.l2.ways);
  shim_context("tlb_geometry", geometry);
  struct pagesize_resolver r;
  pagesize_open(&r);
  shim_context("page_size_source", pagesize_source_name(r.source));
  pagesize_close(&r);

  wl_fixed_register();
  wl_churn_register();
  wl_prodcons_register();
  wl_server_register();
  wl_threadchurn_register();
  wl_realloc_register();
  wl_large_register();
  wl_falseshare_register();
  wl_trace_register();
  wl_tlb_register();
  mem_init(); /* the heap is measured from here: set-up is done */
  shim_run();
  return 0;
}
