/* One thread of the suite's churn workload, without the harness, so that
 * callgrind counts a fixed amount of work: 8,192 slots of blocks of the
 * suite's skewed sizes (bench_skewed_size), then N random replacements, each
 * a free and a malloc whose block is written as bt_touch writes it (first
 * byte, one byte a page, last byte). Runs under any allocator by LD_PRELOAD:
 *   cc -O2 -o churn_replica churn_replica.c
 *   LD_PRELOAD=lib/libarena.so ./churn_replica 500000 */
#include <stdint.h>
#include <stdlib.h>

static uint64_t rng = 88172645463325252ull;

static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static size_t skewed_size(void) {
  static const struct {
    unsigned cum;
    size_t lo, hi;
  } bins[] = {{500, 8, 64},      {750, 65, 256},     {900, 257, 1024},
              {970, 1025, 4096}, {995, 4097, 32768}, {1000, 32769, 262144}};
  uint64_t r = next_random();
  unsigned p = (unsigned)(r % 1000);
  for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++)
    if (p < bins[i].cum) return bins[i].lo + (size_t)((r >> 20) % (bins[i].hi - bins[i].lo + 1));
  return 64;
}

static void touch(char *c, size_t n) {
  c[0] = (char)n;
  for (size_t off = 4096 - ((uintptr_t)c & 4095); off < n; off += 4096) c[off] = 1;
  c[n - 1] = 2;
  __asm__ volatile("" ::"r"(c) : "memory");
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 1000000;
  const size_t nslots = 8192;
  void **slot = calloc(nslots, sizeof *slot);
  if (!slot) return 1;
  for (size_t i = 0; i < nslots; i++) {
    size_t n = skewed_size();
    if (!(slot[i] = malloc(n))) return 1;
    touch(slot[i], n);
  }
  for (long k = 0; k < ops; k++) {
    size_t i = next_random() % nslots;
    free(slot[i]);
    size_t n = skewed_size();
    if (!(slot[i] = malloc(n))) return 1;
    touch(slot[i], n);
  }
  for (size_t i = 0; i < nslots; i++) free(slot[i]);
  free(slot);
  return 0;
}
