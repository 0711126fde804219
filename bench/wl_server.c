/* Workload 4, server-like: one working set of slots shared by all threads
 * (think of a cache of request objects). Each op picks a random slot, builds
 * a new block of a skewed size, swaps it in atomically and frees the block it
 * displaced, which another thread allocated whenever threads > 1. Stresses
 * remote frees mixed with local ones, and memory held per thread. */
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

/* Each block starts with its requested size so whoever frees it can account
 * for it. Requested sizes are at least 16 bytes. */
static _Atomic(size_t *) *slots;
static size_t nslots;

static size_t *new_block(struct bench_thread *bt) {
  size_t size = bench_skewed_size(bt);
  if (size < 16) size = 16;
  size_t *b = malloc(size);
  bt_touch(bt, b, size);
  b[0] = size;
  bt_live(bt, (int64_t)size);
  return b;
}

static void drop_block(struct bench_thread *bt, size_t *b) {
  if (!b) return;
  bt_live(bt, -(int64_t)b[0]);
  free(b);
}

static void server(shim_state *st, void *arg) {
  (void)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  bt_warm(128, 64);
  if (bt.index == 0) {
    /* Set up before the start barrier of the timed loop: the other threads
     * wait there until this is done. */
    nslots = bench_cfg.quick ? 8192 : 32768;
    slots = calloc(nslots, sizeof(*slots));
    for (size_t i = 0; slots && i < nslots; i++) atomic_store(&slots[i], new_block(&bt));
  }
  uint64_t ops = 0;
  while (bt_keep_running(&bt)) {
    size_t *b = new_block(&bt);
    size_t *old = atomic_exchange_explicit(&slots[bt_rand(&bt) % nslots], b, memory_order_acq_rel);
    drop_block(&bt, old);
    bt_tick(&bt);
    ops++;
  }
  bt_end(&bt, (double)ops);
  if (bt.index == 0) { /* the stop barrier has passed: no one else uses slots */
    for (size_t i = 0; i < nslots; i++) drop_block(&bt, atomic_load(&slots[i]));
    free(slots);
    slots = NULL;
  }
}

void wl_server_register(void) {
  struct shim_spec s = {0};
  s.name = "server";
  s.fn = server;
  wl_set_threads(&s, 1, 0);
  shim_register(&s);
}
