/* Size classes: 16 to 128 bytes in steps of 16, then eight classes per
 * doubling up to SMALL_MAX. A request above 128 bytes is rounded up by less
 * than one step, and a step is one eighth of the doubling's base, so the
 * rounding waste stays under 12.5%. Every class is a multiple of 16, so every
 * block is 16-byte aligned.
 *
 * A class's span is the smallest run of pages that holds its target number of
 * blocks with no slack at the end (block_size divides the span's bytes). That
 * makes free's boundary check exact: within a span, an offset is a block
 * start exactly when block_size divides it. */
#include "internal.h"

uint8_t class_of_size[(SMALL_MAX >> 4) + 1];
struct class_info classes[NUM_CLASSES];

static uint32_t target_blocks(uint32_t size) {
  if (size <= 4096) return 64;
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

static void define_class(unsigned c, uint32_t size) {
  /* pages must be a multiple of `step` for size to divide pages * PAGE_SIZE. */
  uint32_t step = size / gcd(size, (uint32_t)PAGE_SIZE);
  uint32_t want = (target_blocks(size) * size + (uint32_t)PAGE_SIZE - 1) / (uint32_t)PAGE_SIZE;
  uint32_t pages = (want + step - 1) / step * step;
  classes[c].block_size = size;
  classes[c].span_pages = pages;
  classes[c].capacity = pages * (uint32_t)PAGE_SIZE / size;
  classes[c].div_magic = (uint64_t)(((unsigned __int128)1 << 64) / size) + 1; /* span_holds_block */
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
