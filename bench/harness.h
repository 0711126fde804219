/* What every workload thread does around its timed loop: pinning, perf
 * counters, memory sampling, the TLB model, and the counters it reports.
 *
 *   struct bench_thread bt;
 *   bt_begin(&bt, st);            pin, seed, open counters
 *   ... warm up, set up ...       untimed
 *   while (bt_keep_running(&bt)) { ... bt_touch(), bt_tick() ... }
 *   bt_end(&bt, ops);             stop counters, report
 *   ... clean up ...              untimed
 */
#ifndef BENCH_HARNESS_H
#define BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memstat.h"
#include "pagesize.h"
#include "perfctr.h"
#include "shim.h"
#include "tlbmodel.h"

#define BENCH_MAX_THREAD_COUNTS 8

/* Options of the bench program (bench.c parses them). */
struct bench_config {
  int quick; /* short runs and small heaps */
  int pin;   /* pin worker threads one per core */
  int model; /* feed the TLB model (slow: throughput is not comparable) */
  struct tlb_config tlb;
  int nthreads;
  int threads[BENCH_MAX_THREAD_COUNTS]; /* thread counts to run */
  const char *trace_dir;
  uint64_t tlb_bytes;   /* heap size of the TLB-bound workload */
  uint64_t trace_bytes; /* target peak payload of trace replay */
};
extern struct bench_config bench_cfg;

#define MODEL_BUF 65536

struct model_state {
  struct tlb_model tlb;
  struct pagesize_resolver pages;
  size_t n;
  uint64_t addr[MODEL_BUF];
};

struct bench_thread {
  shim_state *st;
  int index;      /* thread index: memory slot and pinning core */
  int is_sampler; /* samples memory (thread 0) */
  int started;
  uint64_t rng;
  uint64_t ticks, next_sample, sample_every;
  int64_t live;         /* payload this thread holds (what it allocated minus freed) */
  int64_t live_sampled; /* live at the last peak-driven sample */
  struct perfctr perf;
  struct model_state *model; /* NULL unless bench_cfg.model */
};

void bt_begin(struct bench_thread *bt, shim_state *st);
/* Same, for a thread the workload created itself (not a Google Benchmark
 * thread): no shim state, no perf counters of its own (the creator's counters
 * inherit into it). */
void bt_begin_worker(struct bench_thread *bt, int index);
bool bt_keep_running(struct bench_thread *bt);
/* ops: work units this thread completed; reported as a rate (ops/s). */
void bt_end(struct bench_thread *bt, double ops);
void bt_end_worker(struct bench_thread *bt);

/* Flush the model buffer (called when it is full and at the end). */
void bt_model_flush(struct bench_thread *bt);

static inline void bt_model_note(struct bench_thread *bt, const void *p) {
  struct model_state *m = bt->model;
  m->addr[m->n++] = (uint64_t)(uintptr_t)p;
  if (m->n == MODEL_BUF) bt_model_flush(bt);
}

/* Hide p from the optimiser so that stores to it and the malloc/free around
 * them are kept. */
static inline void bench_escape(const void *p) { __asm__ volatile("" : : "g"(p) : "memory"); }

/* Write the block the way a program initialising it would reach every page:
 * its first byte, one byte per further page, and its last byte. Each write is
 * one access for the TLB model. */
static inline void bt_touch(struct bench_thread *bt, void *p, size_t n) {
  unsigned char *c = p;
  if (n == 0) return;
  c[0] = (unsigned char)n;
  if (bt->model) bt_model_note(bt, c);
  for (size_t off = 4096 - ((uintptr_t)c & 4095); off < n; off += 4096) {
    c[off] = 1;
    if (bt->model) bt_model_note(bt, c + off);
  }
  c[n - 1] = 2;
  if (bt->model) bt_model_note(bt, c + n - 1);
  bench_escape(p);
}

/* A read of one word of p (the TLB-bound walk). */
static inline void bt_read_note(struct bench_thread *bt, const void *p) {
  if (bt->model) bt_model_note(bt, p);
}

/* Count one operation; the sampler thread samples memory every sample_every. */
static inline void bt_tick(struct bench_thread *bt) {
  if (++bt->ticks >= bt->next_sample && bt->is_sampler) {
    bt->next_sample = bt->ticks + bt->sample_every;
    mem_sample();
  }
}

/* Account for payload allocated (delta > 0) or freed by this thread. When the
 * sampler thread's payload grows past its last peak sample by 1/64 (at least
 * 4 KiB), memory is sampled at once: peaks that last less than sample_every
 * ops (a trace's high point, a batch) are caught, at a cost of a few hundred
 * samples per run. */
static inline void bt_live(struct bench_thread *bt, int64_t delta) {
  mem_live_add((unsigned)bt->index, delta);
  bt->live += delta;
  if (delta > 0 && bt->is_sampler) {
    int64_t step = bt->live_sampled / 64 > 4096 ? bt->live_sampled / 64 : 4096;
    if (bt->live >= bt->live_sampled + step) {
      bt->live_sampled = bt->live;
      mem_sample();
    }
  }
}

/* xorshift64*: fast, good enough for picking sizes and slots. */
static inline uint64_t bt_rand(struct bench_thread *bt) {
  uint64_t x = bt->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  bt->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* A size from the skewed mix of small-object heavy programs (see
 * docs/benchmarks.md): half of the requests 8-64 B, few above 4 KiB. */
size_t bench_skewed_size(struct bench_thread *bt);

/* Allocate and free count blocks of size in this thread so that its
 * allocator caches exist before timing starts. */
void bt_warm(size_t size, int count);

#endif /* BENCH_HARNESS_H */
