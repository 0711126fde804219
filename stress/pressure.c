/* Memory pressure: RLIMIT_AS is set --limit-mib above the current VmSize, then
 * every thread allocates (malloc, calloc, posix_memalign, aligned_alloc,
 * growing realloc) until it gets NULL, verifies everything, frees half and
 * goes on, --rounds times. Every NULL must come with ENOMEM (posix_memalign:
 * return value ENOMEM), a failed realloc must leave its block intact, and no
 * block may be corrupted. Threads are created before the limit is set.
 * Under a sanitizer the limit is not set (shadow memory); a per-thread budget
 * stands in for it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common.h"

static struct stress_opts opt = {
    .threads = 4, .scale = 1, .rounds = 20, .seed = 1, .limit_mib = 256, .max_size = 32 << 20};

#define SLOTS 32768

struct worker {
  long id;
  pthread_t tid;
  blk_t *slots;
  long nlive;
  unsigned long cycles, nulls, full, level_nulls[5];
  uint64_t peak_live, live, budget;
};

static pthread_barrier_t barrier;

static size_t pick_size(rng_t *r) {
  if (rng_pct(r, 60)) return stress_rand_size(r, (size_t)opt.max_size);
  size_t base = (size_t)1 << (16 + rng_below(r, 9)); /* 64 KiB .. 16 MiB */
  size_t s = base + (size_t)rng_below(r, base);
  return s > (size_t)opt.max_size ? (size_t)opt.max_size : s;
}

/* Verifies every live block and frees about half of them. */
static void free_half(struct worker *w, rng_t *r, struct stress_counts *c, const char *who) {
  long j = 0;
  for (long i = 0; i < w->nlive; i++) {
    blk_t *b = &w->slots[i];
    if (rng_pct(r, 50)) {
      w->live -= b->size;
      blk_free(b, who, c);
    } else if (blk_verify(b, who, c)) {
      w->slots[j++] = *b;
    } else {
      w->live -= b->size; /* corrupted: leaked */
    }
  }
  w->nlive = j;
}

static void *worker(void *arg) {
  struct worker *w = arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, (uint64_t)w->id);
  char who[40];
  snprintf(who, sizeof who, "pressure thread %ld", w->id);
  free(malloc(100)); /* let the allocator set this thread up before the limit */
  pthread_barrier_wait(&barrier);
  pthread_barrier_wait(&barrier);

  while (w->cycles < (unsigned long)opt.rounds) {
    c.ops++;
    size_t sz = pick_size(&r);
    bool ok;
    blk_t *b = NULL;
    if (w->nlive == SLOTS) {
      w->full++;
      w->cycles++;
      free_half(w, &r, &c, who);
      continue;
    }
    if (w->budget && w->live + sz > w->budget) {
      ok = false; /* simulated NULL under a sanitizer */
    } else if (w->nlive > 0 && rng_pct(&r, 15)) {
      b = &w->slots[rng_below(&r, (uint64_t)w->nlive)];
      size_t old = b->size;
      ok = blk_realloc(b, old + sz, &r, &c); /* keeps the block on failure */
      if (ok) w->live += b->size - old;
    } else {
      b = &w->slots[w->nlive];
      ok = blk_alloc_any(b, sz, &r, &c);
      if (ok) {
        w->nlive++;
        w->live += sz;
      }
    }
    if (w->live > w->peak_live) w->peak_live = w->live;
    if (ok) continue;
    /* NULL: smaller requests may still fit. Exhaust the rest with ever
     * smaller blocks (huge, large, small, tiny) so that every size reaches
     * ENOMEM, then free half. */
    w->nulls++;
    static const size_t levels[] = {2 << 20, 256 << 10, 16 << 10, 1024, 64};
    for (unsigned l = 0; l < sizeof levels / sizeof *levels && !w->budget; l++) {
      for (int i = 0; i < 1024 && w->nlive < SLOTS; i++) {
        blk_t *s = &w->slots[w->nlive];
        size_t sz2 = levels[l] / 2 + (size_t)rng_below(&r, levels[l] / 2);
        c.ops++;
        if (!blk_alloc_any(s, sz2, &r, &c)) {
          w->level_nulls[l]++;
          break;
        }
        w->nlive++;
        w->live += sz2;
      }
    }
    w->cycles++;
    free_half(w, &r, &c, who);
  }
  stress_counts_add(&c);
  return NULL;
}

int main(int argc, char **argv) {
  if (STRESS_SANITIZED) opt.rounds = 5; /* smaller short form under TSan/ASan */
  stress_parse(argc, argv, &opt, "pressure",
               "RLIMIT_AS = VmSize + limit-mib; --threads threads allocate until NULL (ENOMEM),\n"
               "verify, free half and go on, --rounds times each; blocks up to max-size bytes.");
  double start = stress_now();
  printf("pressure: %ld threads, %ld NULL cycles each, %ld MiB of address space headroom\n", opt.threads,
         opt.rounds, opt.limit_mib);
  stress_print_opts(&opt);

  struct worker *ws = calloc((size_t)opt.threads, sizeof *ws);
  if (!ws) stress_die("out of memory");
  pthread_barrier_init(&barrier, NULL, (unsigned)opt.threads + 1);
  for (long i = 0; i < opt.threads; i++) {
    ws[i].id = i;
    if (!(ws[i].slots = calloc(SLOTS, sizeof(blk_t)))) stress_die("out of memory");
    if (STRESS_SANITIZED) ws[i].budget = ((uint64_t)opt.limit_mib << 20) / (uint64_t)opt.threads;
    stress_thread(&ws[i].tid, worker, &ws[i]);
  }
  pthread_barrier_wait(&barrier); /* every thread is set up */

  struct rlimit old, lim;
  if (getrlimit(RLIMIT_AS, &old)) stress_die("getrlimit: %s", strerror(errno));
  uint64_t vmsize = stress_vmsize_bytes();
  lim = old;
  lim.rlim_cur = vmsize + ((uint64_t)opt.limit_mib << 20);
  if (old.rlim_max != RLIM_INFINITY && lim.rlim_cur > old.rlim_max) lim.rlim_cur = old.rlim_max;
  bool limited = !STRESS_SANITIZED;
  if (limited && setrlimit(RLIMIT_AS, &lim)) stress_die("setrlimit: %s", strerror(errno));
  printf("  VmSize %.1f MiB, RLIMIT_AS %s %.1f MiB\n", vmsize / 1048576.0,
         limited ? "set to" : "not set (sanitizer), budget", lim.rlim_cur / 1048576.0);
  fflush(stdout);

  pthread_barrier_wait(&barrier); /* go */
  for (long i = 0; i < opt.threads; i++) stress_join(ws[i].tid);
  if (limited && setrlimit(RLIMIT_AS, &old)) stress_die("setrlimit: %s", strerror(errno));
  uint64_t vm_peak = stress_vmsize_bytes();

  /* Everything must still be intact and allocation must work again. */
  struct stress_counts c = {0};
  unsigned long nulls = 0, full = 0, level_nulls[5] = {0};
  uint64_t peak = 0;
  rng_t r;
  rng_init(&r, opt.seed, 12345);
  for (long i = 0; i < opt.threads; i++) {
    for (long j = 0; j < ws[i].nlive; j++) blk_free(&ws[i].slots[j], "pressure final", &c);
    free(ws[i].slots);
    nulls += ws[i].nulls;
    full += ws[i].full;
    for (int l = 0; l < 5; l++) level_nulls[l] += ws[i].level_nulls[l];
    peak += ws[i].peak_live;
  }
  for (int i = 0; i < 1000; i++) {
    blk_t b;
    if (!blk_alloc_any(&b, stress_rand_size(&r, 1 << 20), &r, &c))
      stress_fail("allocation fails after the limit was lifted");
    else
      blk_free(&b, "pressure after", &c);
  }
  stress_counts_add(&c);
  free(ws);
  pthread_barrier_destroy(&barrier);
  stress_check_heap("at the end");
  if (nulls == 0 && limited && opt.rounds > 0)
    stress_fail("no allocation ever failed: the limit was never reached");

  char extra[300];
  snprintf(extra, sizeof extra,
           "%lu NULL cycles, %lu slot-full cycles; NULL when exhausting with ~2M/256K/16K/1K/64 B "
           "blocks: %lu/%lu/%lu/%lu/%lu;\n  sum of per-thread peak live %.1f MiB, VmSize at end %.1f MiB",
           nulls, full, level_nulls[0], level_nulls[1], level_nulls[2], level_nulls[3], level_nulls[4],
           peak / 1048576.0, vm_peak / 1048576.0);
  return stress_report("pressure", start, extra);
}
