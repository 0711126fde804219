/* Workload 7, large blocks: each op replaces one of LIVE blocks of size S
 * (64 KiB to 32 MiB) with a new one and writes every page of it. Sizes this
 * big sit at or above most allocators' mmap thresholds, so this measures
 * whether freed memory is cached and reused or returned to the kernel and
 * faulted in again (page faults dominate), and how much RSS is kept. */
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

#define LIVE 4

static void large(shim_state *st, void *arg) {
  (void)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  size_t size = (size_t)shim_range(st, 0);
  bt.sample_every = 1; /* every op moves megabytes: sample each one */
  /* The LIVE blocks exist before the timed loop, so that every op replaces
   * one: their first touch is a warm-up, not part of the run. Google
   * Benchmark sizes its runs from a first, short one; when first touches
   * were slow (on this VM, memory the host had reclaimed: 1.7 ms per 2 MiB
   * page), the timed run of 32 MiB blocks was 4-10 ops, most of them
   * faulting in fresh blocks, and read 300x slower than the steady state. */
  void *live[LIVE];
  for (int i = 0; i < LIVE; i++) {
    live[i] = malloc(size);
    bt_touch(&bt, live[i], size);
    bt_live(&bt, (int64_t)size);
  }
  uint64_t ops = 0;
  while (bt_keep_running(&bt)) {
    unsigned i = (unsigned)(bt_rand(&bt) % LIVE);
    free(live[i]);
    bt_live(&bt, -(int64_t)size);
    live[i] = malloc(size);
    bt_touch(&bt, live[i], size);
    bt_live(&bt, (int64_t)size);
    bt_tick(&bt);
    ops++;
  }
  bt_end(&bt, (double)ops);
  for (int i = 0; i < LIVE; i++) {
    free(live[i]);
    bt_live(&bt, -(int64_t)size);
  }
}

void wl_large_register(void) {
  static const int64_t full[] = {64 << 10, 256 << 10, 1 << 20, 4 << 20, 32 << 20};
  static const int64_t quick[] = {64 << 10, 1 << 20, 32 << 20};
  struct shim_spec s = {0};
  s.name = "large";
  s.fn = large;
  s.nargs = 1;
  s.args[0].name = "size";
  s.args[0].list = bench_cfg.quick ? quick : full;
  s.args[0].nlist = bench_cfg.quick ? 3 : 5;
  wl_set_threads(&s, 1, 0);
  shim_register(&s);
}
