/* The thread_churn workload without the harness (256 blocks handed from
 * each thread to the next generation's, a burst of 1,024 malloc/free pairs of
 * the suite's skewed sizes), printing every tenth of the run where libarena's
 * resident chunk pages are (mincore): carved and uncarved pages of small spans,
 * large blocks, free runs, chunk headers.
 *   gcc -O2 -Ilib -Iinclude results/dirty-pages/tc_replica.c lib/libarena.a -lpthread
 *   ./a.out THREADS GENERATIONS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"
#define BLOCKS 256
#define BURST 1024
struct handoff {
  void *p[BLOCKS];
  size_t size[BLOCKS];
  int n;
};
static __thread uint64_t rs;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static size_t skewed(void) {
  static const struct {
    unsigned cum;
    size_t lo, hi;
  } bins[] = {{500, 8, 64},      {750, 65, 256},     {900, 257, 1024},
              {970, 1025, 4096}, {995, 4097, 32768}, {1000, 32769, 262144}};
  uint64_t r = rnd();
  unsigned p = (unsigned)(r % 1000);
  for (size_t i = 0; i < 6; i++)
    if (p < bins[i].cum) return bins[i].lo + (size_t)((r >> 20) % (bins[i].hi - bins[i].lo + 1));
  return 64;
}
struct worker {
  struct handoff *in, *out;
  uint64_t seed;
};
static void *worker_main(void *arg) {
  struct worker *w = arg;
  rs = w->seed * 0x9e3779b97f4a7c15ull | 1;
  struct handoff keep = {.n = 0};
  for (int i = 0; i < w->in->n; i++) {
    if (i % 2 == 0)
      free(w->in->p[i]);
    else {
      keep.p[keep.n] = w->in->p[i];
      keep.size[keep.n++] = w->in->size[i];
    }
  }
  for (int i = 0; i < BURST; i++) {
    size_t s = skewed();
    char *p = malloc(s);
    memset(p, 1, s);
    free(p);
  }
  w->out->n = 0;
  for (int i = 0; i < keep.n; i++) {
    w->out->p[w->out->n] = keep.p[i];
    w->out->size[w->out->n++] = keep.size[i];
  }
  while (w->out->n < BLOCKS) {
    size_t s = skewed();
    char *p = malloc(s);
    memset(p, 2, s);
    w->out->p[w->out->n] = p;
    w->out->size[w->out->n++] = s;
  }
  return NULL;
}
struct probe {
  uint64_t small_carved, small_uncarved, large, free_run, header, chunks;
};
static void probe_chunk(struct chunk *c, void *arg) {
  struct probe *pr = arg;
  unsigned char vec[CHUNK_PAGES];
  if (mincore(c, CHUNK_SIZE, vec)) return;
  pr->chunks++;
  for (size_t i = 0; i < CHUNK_PAGES; i++) {
    if (!(vec[i] & 1)) continue;
    struct span *s = c->pagemap[i];
    if (i < FIRST_PAGE) {
      pr->header++;
      continue;
    }
    if (s->kind == SPAN_SMALL) {
      size_t off = (i - span_page(s)) * PAGE_SIZE;
      if (off < s->limit)
        pr->small_carved++;
      else
        pr->small_uncarved++;
    } else if (s->kind == SPAN_LARGE)
      pr->large++;
    else
      pr->free_run++;
  }
}
int main(int argc, char **argv) {
  int t = argc > 1 ? atoi(argv[1]) : 1, gens = argc > 2 ? atoi(argv[2]) : 2000;
  struct handoff *a = calloc(t, sizeof *a), *b = calloc(t, sizeof *b);
  struct worker w[8];
  pthread_t tid[8];
  for (int g = 0; g < gens; g++) {
    for (int i = 0; i < t; i++) {
      w[i] = (struct worker){.in = &a[(i + 1) % t], .out = &b[i], .seed = (uint64_t)g * 8 + i + 1};
      pthread_create(&tid[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < t; i++) pthread_join(tid[i], NULL);
    struct handoff *x = a;
    a = b;
    b = x;
    if (g % (gens / 10) == gens / 10 - 1) {
      struct probe pr = {0};
      backend_lock();
      backend_each_chunk(probe_chunk, &pr);
      backend_unlock();
      uint64_t live = 0;
      for (int i = 0; i < t; i++)
        for (int j = 0; j < a[i].n; j++) live += a[i].size[j];
      printf("gen %5d chunks %llu  resident KiB: carved %llu uncarved %llu large %llu free %llu hdr %llu   "
             "live %llu KiB\n",
             g + 1, (unsigned long long)pr.chunks, (unsigned long long)pr.small_carved * 4,
             (unsigned long long)pr.small_uncarved * 4, (unsigned long long)pr.large * 4,
             (unsigned long long)pr.free_run * 4, (unsigned long long)pr.header * 4,
             (unsigned long long)live / 1024);
    }
  }
  return 0;
}
