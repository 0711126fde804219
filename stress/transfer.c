/* Random transfer: threads allocate (malloc, calloc, realloc, posix_memalign,
 * aligned_alloc), verify calloc's zeros, write a per-block pattern, keep blocks,
 * swap blocks with other threads through a shared array (atomic exchange) and
 * free at random after verifying. Threads are destroyed and recreated every
 * round; the blocks a thread kept are taken over by a thread of the next
 * round, so blocks outlive the thread that allocated them and are freed by
 * another one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static struct stress_opts opt = {.threads = 4, .scale = 1, .rounds = 10, .seed = 1, .max_size = 4 << 20};

#define SLOTS 512           /* blocks each thread's slot set can hold */
#define OPS_PER_SCALE 20000 /* operations per thread per round per unit of scale */

static blk_t **slot_sets;       /* [threads][SLOTS], persistent across rounds */
static _Atomic(void *) *shared; /* exchange array */
static size_t nshared;
static atomic_ulong handed_over; /* blocks a thread left for the next round */

struct worker {
  long index, round;
  pthread_t tid;
};

static void *worker(void *arg) {
  struct worker *w = arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, (uint64_t)(w->round * 1000 + w->index));
  /* Take over the slot set another thread used in the previous round. */
  blk_t *slots = slot_sets[(w->index + w->round) % opt.threads];
  long ops = OPS_PER_SCALE * opt.scale;
  char who[64];
  snprintf(who, sizeof who, "transfer round %ld thread %ld", w->round, w->index);

  for (long n = 0; n < ops; n++) {
    blk_t *b = &slots[rng_below(&r, SLOTS)];
    c.ops++;
    if (!b->p) {
      blk_alloc_any(b, stress_rand_size(&r, (size_t)opt.max_size), &r, &c);
      continue;
    }
    uint64_t x = rng_below(&r, 100);
    if (x < 30) {
      blk_free(b, who, &c);
    } else if (x < 45) {
      if (!blk_verify(b, who, &c)) {
        b->p = NULL; /* leak a corrupted block */
        continue;
      }
      blk_realloc(b, stress_rand_size(&r, (size_t)opt.max_size), &r, &c);
    } else if (x < 75) {
      if (!blk_verify(b, who, &c)) {
        b->p = NULL;
        continue;
      }
      if (b->size < STRESS_HDR) continue; /* too small to carry a header */
      void *q = atomic_exchange(&shared[rng_below(&r, nshared)], b->p);
      c.exchanges++;
      b->p = NULL;
      if (q && blk_from_header(q, b, who)) {
        if (!blk_verify(b, who, &c)) b->p = NULL;
      }
    } else if (x < 90) {
      blk_verify(b, who, &c);
    } else {
      blk_free(b, who, &c);
      blk_alloc_any(b, stress_rand_size(&r, (size_t)opt.max_size), &r, &c);
    }
  }
  /* Free about half of what is left; the rest outlives this thread. */
  unsigned long kept = 0;
  for (long i = 0; i < SLOTS; i++) {
    if (!slots[i].p) continue;
    if (rng_pct(&r, 50))
      blk_free(&slots[i], who, &c);
    else if (blk_verify(&slots[i], who, &c))
      kept++;
    else
      slots[i].p = NULL;
  }
  atomic_fetch_add(&handed_over, kept);
  stress_counts_add(&c);
  return NULL;
}

int main(int argc, char **argv) {
  if (STRESS_SANITIZED) opt.rounds = 2; /* smaller short form under TSan/ASan */
  stress_parse(argc, argv, &opt, "transfer",
               "Random transfer of blocks between threads that are recreated every round.\n"
               "Work: threads * rounds * scale * 20000 operations on 512 slots per thread.");
  double start = stress_now();
  printf("transfer: %ld threads, %ld rounds, %ld ops per thread per round\n", opt.threads, opt.rounds,
         OPS_PER_SCALE * opt.scale);
  stress_print_opts(&opt);

  slot_sets = calloc((size_t)opt.threads, sizeof *slot_sets);
  nshared = (size_t)opt.threads * 64;
  shared = calloc(nshared, sizeof *shared);
  if (!slot_sets || !shared) stress_die("out of memory");
  for (long i = 0; i < opt.threads; i++)
    if (!(slot_sets[i] = calloc(SLOTS, sizeof(blk_t)))) stress_die("out of memory");

  struct worker *ws = calloc((size_t)opt.threads, sizeof *ws);
  if (!ws) stress_die("out of memory");
  char when[64];
  for (long round = 0; round < opt.rounds; round++) {
    for (long i = 0; i < opt.threads; i++) {
      ws[i].index = i;
      ws[i].round = round;
      stress_thread(&ws[i].tid, worker, &ws[i]);
    }
    for (long i = 0; i < opt.threads; i++) stress_join(ws[i].tid);
    snprintf(when, sizeof when, "after round %ld", round);
    stress_check_heap(when);
    if (opt.verbose)
      printf("  round %ld done, RSS %.1f MiB\n", round, (double)stress_rss_bytes() / 1048576.0);
  }

  /* Verify and free everything that is left, in the main thread. */
  struct stress_counts c = {0};
  unsigned long left = 0;
  for (long i = 0; i < opt.threads; i++) {
    for (long j = 0; j < SLOTS; j++)
      if (slot_sets[i][j].p) {
        left++;
        blk_free(&slot_sets[i][j], "transfer final", &c);
      }
    free(slot_sets[i]);
  }
  for (size_t k = 0; k < nshared; k++) {
    void *q = atomic_load(&shared[k]);
    blk_t b;
    if (q && blk_from_header(q, &b, "transfer final")) {
      left++;
      blk_free(&b, "transfer final", &c);
    }
  }
  stress_counts_add(&c);
  free(shared);
  free(slot_sets);
  free(ws);
  stress_check_heap("at the end");

  char extra[160];
  snprintf(extra, sizeof extra, "%lu blocks outlived their thread, %lu freed at the end",
           atomic_load(&handed_over), left);
  return stress_report("transfer", start, extra);
}
