/* Workload 2, random-size churn: every thread owns a table of live blocks and
 * replaces a random one per op with a block of a size drawn from the skewed
 * mix (bench_skewed_size). This keeps a steady, fragmenting live set of
 * mixed sizes: size-class selection, free-list reuse and fragmentation.
 * One op is one free + one malloc. */
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

struct slot {
  void *p;
  size_t size;
};

static void churn(shim_state *st, void *arg) {
  (void)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  size_t nslots = bench_cfg.quick ? 2048 : 8192;
  struct slot *slots = calloc(nslots, sizeof(*slots));
  if (!slots) {
    shim_skip_with_error(st, "out of memory");
    bt_end(&bt, 0);
    return;
  }
  /* Filling the table is this thread's warm-up. */
  for (size_t i = 0; i < nslots; i++) {
    slots[i].size = bench_skewed_size(&bt);
    slots[i].p = malloc(slots[i].size);
    bt_touch(&bt, slots[i].p, slots[i].size);
    bt_live(&bt, (int64_t)slots[i].size);
  }
  uint64_t ops = 0;
  while (bt_keep_running(&bt)) {
    struct slot *s = &slots[bt_rand(&bt) % nslots];
    free(s->p);
    bt_live(&bt, -(int64_t)s->size);
    s->size = bench_skewed_size(&bt);
    s->p = malloc(s->size);
    bt_touch(&bt, s->p, s->size);
    bt_live(&bt, (int64_t)s->size);
    bt_tick(&bt);
    ops++;
  }
  bt_end(&bt, (double)ops);
  for (size_t i = 0; i < nslots; i++) {
    free(slots[i].p);
    bt_live(&bt, -(int64_t)slots[i].size);
  }
  free(slots);
}

void wl_churn_register(void) {
  struct shim_spec s = {0};
  s.name = "churn";
  s.fn = churn;
  wl_set_threads(&s, 1, 0);
  shim_register(&s);
}
