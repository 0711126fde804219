/* Workload 1, fixed-size malloc/free: the allocator's fast path.
 *   fixed_pair/size:S   malloc(S), write it, free it: the hot pair that a
 *                       thread cache should turn into a few instructions;
 *   fixed_batch/size:S  64 mallocs then the 64 frees in allocation order, so
 *                       the free list has to hold a batch and hand it back.
 * One op is one malloc+free pair. Every thread runs the same loop on its own
 * blocks, so with N threads this measures per-thread scalability. */
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

#define BATCH 64

static void fixed_pair(shim_state *st, void *arg) {
  (void)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  size_t size = (size_t)shim_range(st, 0);
  bt_warm(size, BATCH);
  uint64_t ops = 0;
  while (bt_keep_running(&bt)) {
    void *p = malloc(size);
    bt_live(&bt, (int64_t)size);
    bt_touch(&bt, p, size);
    bt_tick(&bt);
    free(p);
    bt_live(&bt, -(int64_t)size);
    ops++;
  }
  bt_end(&bt, (double)ops);
}

static void fixed_batch(shim_state *st, void *arg) {
  (void)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  size_t size = (size_t)shim_range(st, 0);
  bt_warm(size, BATCH);
  void *p[BATCH];
  uint64_t ops = 0;
  while (bt_keep_running(&bt)) {
    for (int i = 0; i < BATCH; i++) {
      p[i] = malloc(size);
      bt_touch(&bt, p[i], size);
    }
    bt_live(&bt, (int64_t)(size * BATCH));
    bt_tick(&bt); /* the batch is the peak of this thread's live set */
    for (int i = 0; i < BATCH; i++) free(p[i]);
    bt_live(&bt, -(int64_t)(size * BATCH));
    ops += BATCH;
  }
  bt_end(&bt, (double)ops);
}

void wl_fixed_register(void) {
  static const int64_t full[] = {16, 64, 256, 1024, 4096, 16384, 65536};
  static const int64_t quick[] = {16, 256, 4096, 65536};
  struct shim_spec s = {0};
  s.nargs = 1;
  s.args[0].name = "size";
  s.args[0].list = bench_cfg.quick ? quick : full;
  s.args[0].nlist = bench_cfg.quick ? 4 : 7;
  wl_set_threads(&s, 1, 0);
  s.name = "fixed_pair";
  s.fn = fixed_pair;
  shim_register(&s);
  s.name = "fixed_batch";
  s.fn = fixed_batch;
  shim_register(&s);
}
