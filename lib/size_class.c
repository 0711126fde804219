/* Size classes: 16 to 128 bytes in steps of 16, then eight classes per
 * doubling up to SMALL_MAX. A request above 128 bytes is rounded up by less
 * than one step, and a step is one eighth of the doubling's base, so the
 * rounding waste stays under 12.5%. Every class is a multiple of 16, so every
 * block is 16-byte aligned.
 *
 * A class's span is the smallest run of pages that holds its target number of
 * blocks with no slack at the end (block_size divides the span's bytes), so
 * that a span wastes nothing; free's boundary check (span_holds_block) needs
 * only that carved blocks lie at multiples of block_size.
 *
 * Classes from 4 KiB to below 64 KiB whose size is a multiple of 1 KiB are one
 * cache line longer (4096 -> 4160). At a multiple of 1 KiB, block starts fall
 * on at most four of the 64 line positions of a page, so the first lines of a
 * batch of such blocks share four L1 sets (8 ways each) and evict one another
 * between malloc, which reads a block's link, and free, which reads its mark:
 * a batch of 64 blocks of 16 KiB missed on both (and the program's own
 * first-line writes with them). One line more moves each next block's start
 * by one line, over all 64 positions. The 64 KiB class stays page-aligned:
 * padded, a malloc/free pair of it ran 13% slower for its seventeenth page.
 * A padded class cannot be slack-free within a sensible span, so its span
 * keeps less than one block at its end. Padded blocks are 64-byte aligned; a
 * request for 4 KiB alignment takes no padded class (alloc_aligned). */
#include "internal.h"

uint8_t class_of_size[(SMALL_MAX >> 4) + 1];
struct class_info classes[NUM_CLASSES];

/* Up to 512 bytes a span holds 128 blocks (16-byte blocks 256, a page), not
 * 64: a heap of small blocks then has half as many spans, so a free finds
 * its descriptor in cache more often and a refill comes half as often. On
 * the churn and server replicas that is 2-3% fewer instructions and 2-3%
 * fewer L1 misses, with the same peak RSS: carving stays a page at a time
 * and a class's first two spans start small. Such a span is at most 16
 * pages: at 128 blocks of up to 1 KiB (32 pages), vectors grown by realloc
 * to 1 MiB had 10% more peak RSS, the spans taking room that the big runs
 * needed (results/span-blocks).
 *
 * Above 32 KiB a span holds 4 blocks (256 KiB), not 8: a program that frees
 * a few of many such blocks leaves holes in half as many bytes of spans, and
 * spans that empty go back to the back end for any class sooner. The gcc
 * trace, two thirds of whose peak is 64 KiB blocks, had 7% less peak RSS
 * (churn 3-4%); 64 mallocs then 64 frees of 64 KiB take twice the refills
 * and run up to 7% slower. Two blocks per span saved nothing more. */
static uint32_t target_blocks(uint32_t size) {
  if (size <= 512) return 128;
  if (size <= 4096) return 64;
  if (size > 32768) return 4;
  return 8;
}

static uint32_t gcd(uint32_t a, uint32_t b) {
  while (b) {
    uint32_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

#define CLASS_PAD 64 /* cache line added to the sizes that would align blocks to 1 KiB */

static void define_class(unsigned c, uint32_t nominal) {
  bool padded = nominal >= PAGE_SIZE && nominal % 1024 == 0 && nominal < SMALL_MAX;
  uint32_t size = padded ? nominal + CLASS_PAD : nominal;
  /* pages must be a multiple of `step` for size to divide pages * PAGE_SIZE. */
  uint32_t step = padded ? 1 : size / gcd(size, (uint32_t)PAGE_SIZE);
  uint32_t want = (target_blocks(nominal) * size + (uint32_t)PAGE_SIZE - 1) / (uint32_t)PAGE_SIZE;
  uint32_t pages = (want + step - 1) / step * step;
  classes[c].block_size = size;
  classes[c].span_pages = pages;
  classes[c].capacity = pages * (uint32_t)PAGE_SIZE / size;
  uint32_t first = (size + (uint32_t)PAGE_SIZE - 1) / (uint32_t)PAGE_SIZE;
  while (first < pages && first * (uint32_t)PAGE_SIZE % size > first * (uint32_t)PAGE_SIZE / 8) first++;
  classes[c].first_pages = first;
  classes[c].div_magic = (uint64_t)(((unsigned __int128)1 << 64) / size) + 1; /* span_holds_block */
  uint32_t keep = FOREIGN_CLASS_BYTES / size;
  classes[c].foreign_limit = keep > FOREIGN_BLOCKS ? FOREIGN_BLOCKS : keep ? keep : 1;
#ifdef ARENA_SECURE
  classes[c].foreign_limit = 0; /* every freed block waits in the quarantine and goes home */
#endif
}

void size_classes_init(void) {
  unsigned c = 0;
  for (uint32_t size = 16; size <= 128; size += 16) define_class(c++, size);
  for (uint32_t base = 128; base < SMALL_MAX; base *= 2)
    for (uint32_t i = 1; i <= 8; i++) define_class(c++, base + i * (base / 8));
  if (c != NUM_CLASSES) report_fatal("size class table does not match NUM_CLASSES");

  unsigned cls = 0;
  for (size_t i = 0; i <= (SMALL_MAX >> 4); i++) {
    size_t size = i << 4; /* largest request with index i */
    while (classes[cls].block_size < size) classes[++cls].direct_first = (uint32_t)i;
    class_of_size[i] = (uint8_t)cls;
  }
}
