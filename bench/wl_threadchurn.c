/* Workload 5, thread churn: each iteration is a generation of T short-lived
 * threads (T = threads:N in the name). Thread i inherits the live blocks left
 * by thread (i+1) % T of the previous generation, frees half of them, does a
 * burst of malloc/free of skewed sizes, and leaves BLOCKS live blocks for the
 * next generation. Stresses per-thread heap creation and teardown, adoption
 * of blocks owned by dead threads, and memory that stays with exited threads.
 * One op is one malloc or one free. */
#include <pthread.h>
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

#define BLOCKS 256
#define BURST 1024
#define MAX_T 64

struct handoff {
  void *p[BLOCKS];
  size_t size[BLOCKS];
  int n;
};

struct worker {
  pthread_t tid;
  int index;
  struct handoff *in, *out;
  uint64_t seed, ops;
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct bench_thread bt;
  bt_begin_worker(&bt, w->index);
  bt.rng ^= w->seed;
  uint64_t ops = 0;
  /* Free every other inherited block (blocks of a dead thread), keep the rest. */
  struct handoff keep = {.n = 0};
  for (int i = 0; i < w->in->n; i++) {
    if (i % 2 == 0) {
      free(w->in->p[i]);
      bt_live(&bt, -(int64_t)w->in->size[i]);
      ops++;
    } else {
      keep.p[keep.n] = w->in->p[i];
      keep.size[keep.n++] = w->in->size[i];
    }
  }
  void *burst[64];
  for (int i = 0; i < BURST; i++) {
    size_t s = bench_skewed_size(&bt);
    burst[i % 64] = malloc(s);
    bt_touch(&bt, burst[i % 64], s);
    free(burst[i % 64]);
    ops += 2;
  }
  /* Hand over the kept blocks plus new ones, up to BLOCKS. */
  w->out->n = 0;
  for (int i = 0; i < keep.n; i++) {
    w->out->p[w->out->n] = keep.p[i];
    w->out->size[w->out->n++] = keep.size[i];
  }
  while (w->out->n < BLOCKS) {
    size_t s = bench_skewed_size(&bt);
    void *p = malloc(s);
    bt_touch(&bt, p, s);
    bt_live(&bt, (int64_t)s);
    w->out->p[w->out->n] = p;
    w->out->size[w->out->n++] = s;
    ops++;
  }
  bt_end_worker(&bt);
  w->ops = ops;
  return NULL;
}

static void threadchurn(shim_state *st, void *arg) {
  (void)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  int t = (int)shim_range(st, 0);
  if (t > MAX_T) t = MAX_T;
  /* Two handoff sets, swapped each generation; slots 1..t for the workers'
   * live-byte accounting (slot 0 is this thread's). */
  struct handoff *a = calloc((size_t)t, sizeof(*a)), *b = calloc((size_t)t, sizeof(*b));
  struct worker w[MAX_T];
  uint64_t ops = 0, gen = 0;
  while (bt_keep_running(&bt)) {
    for (int i = 0; i < t; i++) {
      w[i] = (struct worker){.index = 1 + i, .in = &a[(i + 1) % t], .out = &b[i], .seed = ++gen};
      pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < t; i++) {
      pthread_join(w[i].tid, NULL);
      ops += w[i].ops;
    }
    mem_sample(); /* between generations the most blocks are live */
    struct handoff *x = a;
    a = b, b = x;
  }
  bt_end(&bt, (double)ops);
  for (int i = 0; i < t; i++) {
    for (int j = 0; j < a[i].n; j++) {
      free(a[i].p[j]);
      mem_live_add(0, -(int64_t)a[i].size[j]);
    }
  }
  free(a);
  free(b);
}

void wl_threadchurn_register(void) {
  struct shim_spec s = {0};
  static int64_t counts[BENCH_MAX_THREAD_COUNTS];
  for (int i = 0; i < bench_cfg.nthreads; i++) counts[i] = bench_cfg.threads[i];
  s.name = "thread_churn";
  s.fn = threadchurn;
  s.nargs = 1;
  s.args[0].name = "threads";
  s.args[0].list = counts;
  s.args[0].nlist = bench_cfg.nthreads;
  shim_register(&s);
}
