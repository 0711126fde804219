/* Per-thread benchmark scaffolding; see harness.h. */
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topo.h"

struct bench_config bench_cfg;

/* Model statistics of threads the workload created itself, added up when
 * they finish and reported by the Google Benchmark thread 0. */
static _Atomic uint64_t worker_model[4];

static void common_begin(struct bench_thread *bt, int index) {
  memset(bt, 0, sizeof(*bt));
  bt->index = index;
  bt->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(index + 1) + 12345;
  bt->sample_every = 8192;
  bt->next_sample = 1;
  if (bench_cfg.pin) topo_pin(index);
  if (bench_cfg.model) {
    bt->model = malloc(sizeof(*bt->model));
    if (bt->model) {
      if (tlb_model_init(&bt->model->tlb, &bench_cfg.tlb) != 0) {
        free(bt->model);
        bt->model = NULL;
      } else {
        pagesize_open(&bt->model->pages);
        bt->model->n = 0;
      }
    }
  }
}

void bt_begin(struct bench_thread *bt, shim_state *st) {
  int index = shim_thread_index(st);
  common_begin(bt, index);
  bt->st = st;
  bt->is_sampler = index == 0;
  perfctr_open(&bt->perf);
}

void bt_begin_worker(struct bench_thread *bt, int index) {
  common_begin(bt, index);
  for (int e = 0; e < PERFCTR_N; e++) bt->perf.fd[e] = -1;
}

bool bt_keep_running(struct bench_thread *bt) {
  if (!bt->started) {
    bt->started = 1;
    if (bt->is_sampler) mem_sample();
    if (bt->model) { /* set-up and warm-up accesses are not part of the run */
      bt->model->n = 0;
      tlb_model_reset(&bt->model->tlb);
    }
    perfctr_start(&bt->perf);
  }
  if (shim_keep_running(bt->st)) return true;
  perfctr_stop(&bt->perf);
  return false;
}

void bt_model_flush(struct bench_thread *bt) {
  struct model_state *m = bt->model;
  if (!m) return;
  /* A new epoch per flush: page sizes are looked up again, close to the time
   * of the accesses, because memory is unmapped and (re)collapsed. */
  pagesize_new_epoch(&m->pages);
  for (size_t i = 0; i < m->n; i++) {
    uint64_t a = m->addr[i];
    size_t run = 1;
    unsigned shift = pagesize_shift(&m->pages, a);
    while (i + run < m->n && m->addr[i + run] >> shift == a >> shift) run++;
    tlb_model_access(&m->tlb, a, shift, run);
    i += run - 1;
  }
  m->n = 0;
}

static void report_model(struct bench_thread *bt) {
  if (!bt->model) return;
  bt_model_flush(bt);
  struct tlb_model *t = &bt->model->tlb;
  uint64_t v[4] = {t->accesses, t->l1_misses, t->walks, t->huge_accesses};
  if (bt->is_sampler)
    for (int i = 0; i < 4; i++) v[i] += atomic_exchange(&worker_model[i], 0);
  shim_counter(bt->st, "model_accesses", (double)v[0], SHIM_SUM);
  shim_counter(bt->st, "model_l1_misses", (double)v[1], SHIM_SUM);
  shim_counter(bt->st, "model_walks", (double)v[2], SHIM_SUM);
  shim_counter(bt->st, "model_huge_accesses", (double)v[3], SHIM_SUM);
}

static void report_memory(struct bench_thread *bt) {
  struct mem_report r;
  mem_report(&r);
  shim_counter(bt->st, "live_peak_bytes", (double)r.live_peak, SHIM_SUM);
  shim_counter(bt->st, "heap_peak_bytes", (double)r.heap_peak, SHIM_SUM);
  shim_counter(bt->st, "mapped_peak_bytes", (double)r.mapped_peak, SHIM_SUM);
  shim_counter(bt->st, "rss_peak_bytes", (double)r.rss_peak, SHIM_SUM);
  shim_counter(bt->st, "mem_samples", (double)r.samples, SHIM_SUM);
  double u = mem_utilization(r.live_peak, r.heap_peak);
  if (u >= 0) shim_counter(bt->st, "utilization", u, SHIM_SUM);
  double um = mem_utilization(r.live_peak, r.mapped_peak);
  if (um >= 0) shim_counter(bt->st, "utilization_mapped", um, SHIM_SUM);
  if (r.rss_anon > 0) shim_counter(bt->st, "thp_heap", (double)r.anon_huge / (double)r.rss_anon, SHIM_SUM);
}

static void report_perf(struct bench_thread *bt) {
  char label[256] = "";
  size_t n = 0;
  for (int e = 0; e < PERFCTR_N; e++) {
    char name[64];
    snprintf(name, sizeof name, "perf_%s", perfctr_names[e]);
    if (bt->perf.counted[e]) {
      shim_counter(bt->st, name, bt->perf.value[e], SHIM_SUM);
    } else if (n + strlen(perfctr_names[e]) + 2 < sizeof label) {
      /* Absent from the counters and named here: "unsupported", never 0. */
      n += (size_t)snprintf(label + n, sizeof label - n, "%s%s", n ? "," : "unsupported:", perfctr_names[e]);
    }
  }
  if (bt->perf.user_only && n + 16 < sizeof label)
    n += (size_t)snprintf(label + n, sizeof label - n, "%sperf:user-only", n ? " " : "");
  if (bt->is_sampler && n) shim_label(bt->st, label);
}

void bt_end(struct bench_thread *bt, double ops) {
  shim_counter(bt->st, "ops", ops, SHIM_RATE);
  shim_counter(bt->st, "ops_total", ops, SHIM_SUM);
  report_perf(bt);
  report_model(bt);
  if (bt->is_sampler) report_memory(bt);
  perfctr_close(&bt->perf);
  if (bt->model) {
    tlb_model_free(&bt->model->tlb);
    pagesize_close(&bt->model->pages);
    free(bt->model);
    bt->model = NULL;
  }
}

void bt_end_worker(struct bench_thread *bt) {
  if (bt->model) {
    bt_model_flush(bt);
    struct tlb_model *t = &bt->model->tlb;
    atomic_fetch_add(&worker_model[0], t->accesses);
    atomic_fetch_add(&worker_model[1], t->l1_misses);
    atomic_fetch_add(&worker_model[2], t->walks);
    atomic_fetch_add(&worker_model[3], t->huge_accesses);
    tlb_model_free(&bt->model->tlb);
    pagesize_close(&bt->model->pages);
    free(bt->model);
    bt->model = NULL;
  }
}

size_t bench_skewed_size(struct bench_thread *bt) {
  /* Bins (cumulative per-mille, low, high), uniform inside a bin. */
  static const struct {
    unsigned cum;
    size_t lo, hi;
  } bins[] = {
      {500, 8, 64},      {750, 65, 256},     {900, 257, 1024},
      {970, 1025, 4096}, {995, 4097, 32768}, {1000, 32769, 262144},
  };
  uint64_t r = bt_rand(bt);
  unsigned p = (unsigned)(r % 1000);
  for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++)
    if (p < bins[i].cum) return bins[i].lo + (size_t)((r >> 20) % (bins[i].hi - bins[i].lo + 1));
  return 64;
}

void bt_warm(size_t size, int count) {
  void *p[256];
  if (count > 256) count = 256;
  for (int i = 0; i < count; i++) {
    p[i] = malloc(size);
    if (p[i]) ((volatile char *)p[i])[0] = 1;
  }
  for (int i = 0; i < count; i++) free(p[i]);
}

#include "workloads.h"

void wl_set_threads(struct shim_spec *spec, int min_threads, int even) {
  spec->nthreads = 0;
  for (int i = 0; i < bench_cfg.nthreads && spec->nthreads < SHIM_MAX_THREAD_COUNTS; i++) {
    int t = bench_cfg.threads[i];
    if (t >= min_threads && (!even || t % 2 == 0)) spec->threads[spec->nthreads++] = t;
  }
  if (spec->nthreads == 0) spec->threads[spec->nthreads++] = min_threads;
}
