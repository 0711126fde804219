/* Workload 9, trace replay: every .rep trace in the trace directory
 * (bench/traces by default: traces recorded from real programs with
 * librecord.so) becomes trace_<name>. Single-threaded, as malloc-lab traces
 * are. K copies are interleaved so the peak live payload reaches
 * bench_cfg.trace_bytes (tens of MiB; less with --quick), which puts the
 * allocator's behaviour on a heap of realistic size, not on a toy one. One op
 * is one request. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "replay.h"
#include "workloads.h"

#define MAX_TRACES 32

struct loaded {
  char name[96];
  struct trace t;
  int copies;
};
static struct loaded traces[MAX_TRACES];
static int ntraces;

static void replay_bench(shim_state *st, void *arg) {
  struct loaded *l = arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  bt.sample_every = 4096;
  bt_warm(64, 64);
  int64_t ops = 0;
  while (bt_keep_running(&bt)) {
    int64_t n = replay_run(&l->t, l->copies, &bt, 0);
    if (n < 0) {
      shim_skip_with_error(st, "replay failed");
      break;
    }
    ops += n;
  }
  bt_end(&bt, (double)ops);
  shim_counter(st, "copies", l->copies, SHIM_SUM);
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const struct loaded *)a)->name, ((const struct loaded *)b)->name);
}

void wl_trace_register(void) {
  const char *dir = bench_cfg.trace_dir;
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d) {
    fprintf(stderr, "bench: no trace directory %s: trace replay skipped\n", dir ? dir : "(none)");
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) && ntraces < MAX_TRACES) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".rep") != 0) continue;
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct loaded *l = &traces[ntraces];
    if (trace_load(path, &l->t, err, sizeof err) != 0) {
      fprintf(stderr, "bench: %s: %s (skipped)\n", path, err);
      continue;
    }
    snprintf(l->name, sizeof l->name, "trace_%.*s", (int)(len - 4), e->d_name);
    uint64_t peak = trace_peak_live(&l->t, 1);
    uint64_t k = peak ? (bench_cfg.trace_bytes + peak - 1) / peak : 1;
    l->copies = k < 1 ? 1 : k > 64 ? 64 : (int)k;
    ntraces++;
  }
  closedir(d);
  qsort(traces, (size_t)ntraces, sizeof traces[0], by_name);
  for (int i = 0; i < ntraces; i++) {
    struct shim_spec s = {0};
    s.name = traces[i].name;
    s.fn = replay_bench;
    s.arg = &traces[i];
    shim_register(&s);
  }
}
