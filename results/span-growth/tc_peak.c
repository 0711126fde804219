/* thread_churn's peak RSS under any allocator: the suite's workload without
 * the harness (256 blocks handed from each thread to the next generation's,
 * half of them freed there, a burst of 1,024 malloc/free pairs of the suite's
 * skewed sizes), printing VmRSS and VmHWM after 10, 100 and all generations.
 *   gcc -O2 -pthread results/span-growth/tc_peak.c -o tc_peak
 *   LD_PRELOAD=lib/libarena.so ./tc_peak THREADS GENERATIONS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#define BLOCKS 256
#define BURST 1024
struct handoff {
  void *p[BLOCKS];
  size_t size[BLOCKS];
  int n;
};
struct worker {
  pthread_t tid;
  struct handoff *in, *out;
  uint64_t rng;
};
static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}
static size_t skew(uint64_t *s) {
  static const struct {
    unsigned cum;
    size_t lo, hi;
  } bins[] = {{500, 8, 64},      {750, 65, 256},     {900, 257, 1024},
              {970, 1025, 4096}, {995, 4097, 32768}, {1000, 32769, 262144}};
  uint64_t r = rnd(s);
  unsigned p = r % 1000;
  for (int i = 0; i < 6; i++)
    if (p < bins[i].cum) return bins[i].lo + (size_t)((r >> 20) % (bins[i].hi - bins[i].lo + 1));
  return 64;
}
static void touch(void *p, size_t n) {
  memset(p, (unsigned char)n, n < 64 ? n : 64);
  for (size_t o = 4096; o < n; o += 4096) ((char *)p)[o] = 1;
}
static void *wmain(void *arg) {
  struct worker *w = arg;
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
    size_t s = skew(&w->rng);
    void *p = malloc(s);
    touch(p, s);
    free(p);
  }
  w->out->n = 0;
  for (int i = 0; i < keep.n; i++) {
    w->out->p[w->out->n] = keep.p[i];
    w->out->size[w->out->n++] = keep.size[i];
  }
  while (w->out->n < BLOCKS) {
    size_t s = skew(&w->rng);
    void *p = malloc(s);
    touch(p, s);
    w->out->p[w->out->n] = p;
    w->out->size[w->out->n++] = s;
  }
  return NULL;
}
static long status(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char l[256];
  long v = -1;
  while (fgets(l, sizeof l, f))
    if (!strncmp(l, key, strlen(key))) v = atol(l + strlen(key));
  fclose(f);
  return v;
}
int main(int argc, char **argv) {
  int t = argc > 1 ? atoi(argv[1]) : 1, g = argc > 2 ? atoi(argv[2]) : 2000;
  struct handoff *a = calloc(t, sizeof *a), *b = calloc(t, sizeof *b);
  struct worker w[64];
  uint64_t seed = 1;
  long base = status("VmRSS:");
  for (int gen = 0; gen < g; gen++) {
    for (int i = 0; i < t; i++) {
      w[i] = (struct worker){.in = &a[(i + 1) % t], .out = &b[i], .rng = ++seed * 0x9E3779B97F4A7C15ull};
      pthread_create(&w[i].tid, NULL, wmain, &w[i]);
    }
    for (int i = 0; i < t; i++) pthread_join(w[i].tid, NULL);
    struct handoff *x = a;
    a = b;
    b = x;
    if (gen == 9 || gen == 99 || gen == g - 1)
      fprintf(stderr, "gen %d: rss %ld hwm %ld KiB (base %ld)\n", gen + 1, status("VmRSS:"), status("VmHWM:"),
              base);
  }
  return 0;
}
