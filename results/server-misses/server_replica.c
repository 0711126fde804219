/* One thread of the suite's server workload, without the harness, so that
 * cachegrind counts a fixed number of operations: 32768 slots of blocks of
 * the suite's skewed sizes; each op allocates a block, writes its first 256
 * bytes, swaps it into a random slot, reads the displaced block's first word
 * (as the workload does for its size) and frees it. Optional arguments: the
 * number of slots, and 1 to write each block the way the suite's bt_touch
 * does (first byte, one byte per further page, last byte) instead of its
 * first 256 bytes.
 *
 *   gcc -O2 server_replica.c -o server_replica
 *   LD_PRELOAD=... valgrind --tool=cachegrind --cache-sim=yes ./server_replica 2000000
 *   LD_PRELOAD=... ./server_replica 10000000 32768 1
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t sink;
static uint64_t state = 88172645463325252ull;

static uint64_t next_random(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

/* bench_skewed_size's bins: cumulative per-mille, low, high. */
static size_t skewed_size(void) {
  static const struct {
    unsigned cum;
    size_t lo, hi;
  } bins[] = {{500, 8, 64},      {750, 65, 256},     {900, 257, 1024},
              {970, 1025, 4096}, {995, 4097, 32768}, {1000, 32769, 262144}};
  uint64_t r = next_random();
  unsigned p = (unsigned)(r % 1000);
  for (int i = 0; i < 6; i++)
    if (p < bins[i].cum) return bins[i].lo + (r >> 20) % (bins[i].hi - bins[i].lo + 1);
  return 64;
}

static int touch_pages;

static size_t *new_block(void) {
  size_t size = skewed_size();
  if (size < 16) size = 16;
  size_t *b = malloc(size);
  if (!b) abort();
  if (touch_pages) {
    unsigned char *c = (unsigned char *)b;
    for (size_t off = 4096 - ((uintptr_t)c & 4095); off < size; off += 4096) c[off] = 1;
    c[size - 1] = 2;
  } else {
    memset(b, 1, size < 256 ? size : 256);
  }
  b[0] = size;
  return b;
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 2000000;
  size_t nslots = argc > 2 ? (size_t)atol(argv[2]) : 32768;
  touch_pages = argc > 3 && atoi(argv[3]) == 1;
  size_t **slots = calloc(nslots, sizeof(*slots));
  if (!slots) return 1;
  for (size_t i = 0; i < nslots; i++) slots[i] = new_block();
  for (long i = 0; i < ops; i++) {
    size_t *b = new_block();
    size_t j = next_random() % nslots;
    size_t *old = slots[j];
    slots[j] = b;
    sink += old[0];
    free(old);
  }
  return 0;
}
