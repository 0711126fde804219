/* Workload 8, false sharing: each thread writes its own small blocks in a
 * tight loop. If the allocator hands blocks of different threads out of the
 * same cache line, the line ping-pongs between cores and the writes slow
 * down, though no data is shared.
 *   falseshare_active:  every thread allocates its own BLOCKS 32-byte blocks
 *                       at the same time as the others;
 *   falseshare_passive: thread 0 allocates all blocks back to back and hands
 *                       BLOCKS to each thread, which frees them and allocates
 *                       its own (an allocator that returns freed blocks to the
 *                       freeing thread's cache gives back thread 0's lines).
 * One op is one write. */
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

#define BLOCKS 8
#define SIZE 32
#define WRITES 256 /* per block and iteration */
#define MAX_T 64

static void *handed[MAX_T][BLOCKS];

static void falseshare(shim_state *st, void *arg) {
  int passive = (int)(intptr_t)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  int t = shim_threads(st);
  if (t > MAX_T) {
    shim_skip_with_error(st, "too many threads");
    bt_end(&bt, 0);
    return;
  }
  bt_warm(SIZE, 64);
  volatile uint64_t *mine[BLOCKS];
  if (passive) {
    /* Thread 0 allocates everybody's first blocks before the start barrier;
     * the others pick theirs up after it (first loop iteration). */
    if (bt.index == 0)
      for (int i = 0; i < t; i++)
        for (int j = 0; j < BLOCKS; j++) handed[i][j] = malloc(SIZE);
  } else {
    for (int j = 0; j < BLOCKS; j++) mine[j] = malloc(SIZE);
  }
  bt_live(&bt, BLOCKS * SIZE);
  uint64_t ops = 0;
  int first = 1;
  while (bt_keep_running(&bt)) {
    if (first && passive) {
      for (int j = 0; j < BLOCKS; j++) {
        free(handed[bt.index][j]);
        mine[j] = malloc(SIZE);
      }
    }
    first = 0;
    for (int w = 0; w < WRITES; w++)
      for (int j = 0; j < BLOCKS; j++) *mine[j] += 1;
    ops += WRITES * BLOCKS;
    bt_tick(&bt);
  }
  bt_end(&bt, (double)ops);
  if (first && passive)
    for (int j = 0; j < BLOCKS; j++) mine[j] = handed[bt.index][j];
  for (int j = 0; j < BLOCKS; j++) free((void *)mine[j]);
  bt_live(&bt, -(BLOCKS * SIZE));
}

void wl_falseshare_register(void) {
  struct shim_spec s = {0};
  wl_set_threads(&s, 1, 0);
  s.fn = falseshare;
  s.name = "falseshare_active";
  s.arg = (void *)0;
  shim_register(&s);
  s.name = "falseshare_passive";
  s.arg = (void *)1;
  shim_register(&s);
}
