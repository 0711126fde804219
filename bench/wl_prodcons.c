/* Workload 3, producer/consumer: threads work in pairs; the even thread of a
 * pair allocates blocks (skewed small sizes), writes them and passes them
 * through a single-producer single-consumer ring; the odd thread reads and
 * frees them. Every free is a remote free, which is the case thread caches
 * handle worst (blocks migrate, owners' free lists drain). One op is one block
 * handed over, counted by the consumer. Runs with an even thread count >= 2. */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

#define BATCH 64
#define RING 1024 /* power of two, at least BATCH */
#define MAX_PAIRS 32

struct item {
  void *p;
  size_t size;
};

/* The ring's counters only grow; a run pushes exactly what it pops, so every
 * run starts with an empty ring without any reset that could race. */
static struct ring {
  _Alignas(64) _Atomic uint64_t head; /* next slot to fill (producer) */
  _Alignas(64) _Atomic uint64_t tail; /* next slot to drain (consumer) */
  _Alignas(64) struct item items[RING];
} rings[MAX_PAIRS];

static void wait_a_bit(int *spins) {
  if (++*spins > 64) {
    *spins = 0;
    sched_yield(); /* fewer cores than threads: let the partner run */
  } else {
    __builtin_ia32_pause();
  }
}

static void produce(struct bench_thread *bt, struct ring *r) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  int spins = 0;
  while (head + BATCH - atomic_load_explicit(&r->tail, memory_order_acquire) > RING) wait_a_bit(&spins);
  for (int i = 0; i < BATCH; i++) {
    struct item *it = &r->items[(head + (uint64_t)i) % RING];
    it->size = 16 + bt_rand(bt) % 497;
    it->p = malloc(it->size);
    bt_touch(bt, it->p, it->size);
    bt_live(bt, (int64_t)it->size);
  }
  atomic_store_explicit(&r->head, head + BATCH, memory_order_release);
}

static void consume(struct bench_thread *bt, struct ring *r) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  int spins = 0;
  while (atomic_load_explicit(&r->head, memory_order_acquire) - tail < BATCH) wait_a_bit(&spins);
  for (int i = 0; i < BATCH; i++) {
    struct item *it = &r->items[(tail + (uint64_t)i) % RING];
    bench_escape(it->p);
    if (((unsigned char *)it->p)[0] != (unsigned char)it->size) abort(); /* the block arrived intact */
    free(it->p);
    bt_live(bt, -(int64_t)it->size);
  }
  atomic_store_explicit(&r->tail, tail + BATCH, memory_order_release);
}

static void prodcons(shim_state *st, void *arg) {
  (void)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  int pair = bt.index / 2;
  int producer = bt.index % 2 == 0;
  if (pair >= MAX_PAIRS) {
    shim_skip_with_error(st, "too many threads");
    bt_end(&bt, 0);
    return;
  }
  bt_warm(256, BATCH);
  struct ring *r = &rings[pair];
  uint64_t ops = 0;
  while (bt_keep_running(&bt)) {
    if (producer) {
      produce(&bt, r);
    } else {
      consume(&bt, r);
      ops += BATCH;
    }
    bt_tick(&bt);
  }
  bt_end(&bt, (double)ops);
}

void wl_prodcons_register(void) {
  struct shim_spec s = {0};
  s.name = "prodcons";
  s.fn = prodcons;
  wl_set_threads(&s, 2, 1);
  shim_register(&s);
}
