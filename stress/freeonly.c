/* Free-only thread: allocator threads allocate and fill blocks and pass them
 * through single-producer rings to one thread that never allocates; it verifies
 * and frees every block. The live set is bounded by the rings, so memory must
 * stay bounded too: RSS (and libarena's mapped_bytes) is sampled while it runs
 * and must stay below the starting value plus --limit-mib. */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"

static struct stress_opts opt = {.threads = 3, .scale = 1, .seed = 1, .limit_mib = 96, .max_size = 2048};

#define BLOCKS_PER_SCALE 1000000 /* blocks freed in total per unit of scale */
#define RING 4096                /* slots per allocator ring (power of two) */

struct ring {
  _Alignas(64) atomic_size_t head; /* written by the allocator */
  _Alignas(64) atomic_size_t tail; /* written by the free-only thread */
  void *slot[RING];
};

static struct ring *rings;
static long per_thread;
static atomic_int allocators_left;
static atomic_int done;
static atomic_ulong freed;

static void *allocator(void *arg) {
  long id = (long)(intptr_t)arg;
  struct ring *rg = &rings[id];
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, (uint64_t)id);
  size_t max = (size_t)opt.max_size < STRESS_HDR ? STRESS_HDR : (size_t)opt.max_size;
  for (long n = 0; n < per_thread; n++) {
    blk_t b;
    size_t sz = STRESS_HDR + (size_t)rng_below(&r, max - STRESS_HDR + 1);
    c.ops++;
    while (!blk_alloc_any(&b, sz, &r, &c)) sched_yield();
    size_t h = atomic_load_explicit(&rg->head, memory_order_relaxed);
    while (h - atomic_load_explicit(&rg->tail, memory_order_acquire) >= RING) sched_yield();
    rg->slot[h % RING] = b.p;
    atomic_store_explicit(&rg->head, h + 1, memory_order_release);
  }
  stress_counts_add(&c);
  atomic_fetch_sub(&allocators_left, 1);
  return NULL;
}

/* Never allocates: only verifies and frees. */
static void *free_only(void *arg) {
  (void)arg;
  struct stress_counts c = {0};
  long n = opt.threads;
  for (;;) {
    bool any = false;
    int left = atomic_load(&allocators_left);
    for (long i = 0; i < n; i++) {
      struct ring *rg = &rings[i];
      size_t t = atomic_load_explicit(&rg->tail, memory_order_relaxed);
      size_t h = atomic_load_explicit(&rg->head, memory_order_acquire);
      for (; t != h; t++) {
        blk_t b;
        c.ops++;
        if (blk_from_header(rg->slot[t % RING], &b, "free-only thread")) blk_free(&b, "free-only thread", &c);
        atomic_store_explicit(&rg->tail, t + 1, memory_order_release);
        any = true;
      }
    }
    if (!any) {
      if (left == 0) break; /* every allocator finished before this pass */
      sched_yield();
    }
  }
  atomic_store(&freed, c.frees);
  stress_counts_add(&c);
  atomic_store(&done, 1);
  return NULL;
}

int main(int argc, char **argv) {
  stress_parse(argc, argv, &opt, "freeonly",
               "A thread that never allocates frees every block of --threads allocator threads;\n"
               "scale * 1000000 blocks of 16..max-size bytes; RSS must stay under start + limit-mib.");
  double start = stress_now();
  per_thread = BLOCKS_PER_SCALE * opt.scale / opt.threads;
  printf("freeonly: %ld allocator threads, 1 free-only thread, %ld blocks\n", opt.threads,
         per_thread * opt.threads);
  stress_print_opts(&opt);
  rings = aligned_alloc(64, (size_t)opt.threads * sizeof *rings);
  if (!rings) stress_die("out of memory");
  for (long i = 0; i < opt.threads; i++) {
    atomic_init(&rings[i].head, 0);
    atomic_init(&rings[i].tail, 0);
  }
  atomic_init(&allocators_left, (int)opt.threads);

  uint64_t rss0 = stress_rss_bytes(), mapped0 = stress_mapped_bytes();
  uint64_t bound = (uint64_t)opt.limit_mib << 20;
  if (STRESS_SANITIZED) bound *= 4; /* shadow memory */
  pthread_t fo, *t = calloc((size_t)opt.threads, sizeof *t);
  if (!t) stress_die("out of memory");
  stress_thread(&fo, free_only, NULL);
  for (long i = 0; i < opt.threads; i++) stress_thread(&t[i], allocator, (void *)(intptr_t)i);

  /* Sample memory while the threads run. */
  uint64_t max_rss = rss0, max_mapped = mapped0;
  unsigned long samples = 0;
  while (!atomic_load(&done)) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    uint64_t rss = stress_rss_bytes(), mapped = stress_mapped_bytes();
    samples++;
    if (rss > max_rss) max_rss = rss;
    if (mapped > max_mapped) max_mapped = mapped;
  }
  for (long i = 0; i < opt.threads; i++) stress_join(t[i]);
  stress_join(fo);
  free(t);
  free(rings);
  stress_check_heap("at the end");

  if (max_rss > rss0 + bound)
    stress_fail("RSS grew from %.1f MiB to %.1f MiB, more than the bound of %ld MiB", rss0 / 1048576.0,
                max_rss / 1048576.0, opt.limit_mib);
  if (stress_have_arena() && max_mapped > mapped0 + bound)
    stress_fail("mapped_bytes grew from %.1f MiB to %.1f MiB, more than the bound of %ld MiB",
                mapped0 / 1048576.0, max_mapped / 1048576.0, opt.limit_mib);
  uint64_t allocated = stress_total.mallocs + stress_total.callocs + stress_total.aligned;
  if (allocated != stress_total.frees)
    stress_fail("allocated %" PRIu64 " blocks, the free-only thread freed %" PRIu64, allocated,
                stress_total.frees);

  char extra[240];
  int len =
      snprintf(extra, sizeof extra,
               "free-only thread freed %lu blocks; RSS %.1f -> max %.1f MiB (bound +%ld MiB, %lu samples)",
               atomic_load(&freed), rss0 / 1048576.0, max_rss / 1048576.0, opt.limit_mib, samples);
  if (stress_have_arena())
    snprintf(extra + len, sizeof extra - (size_t)len, "; mapped %.1f -> max %.1f MiB", mapped0 / 1048576.0,
             max_mapped / 1048576.0);
  return stress_report("freeonly", start, extra);
}
