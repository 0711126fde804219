/* libFuzzer harness for libarena (make fuzz / make test-fuzz; see tests/fuzz/fuzz.mk).
 *
 * The input is a sequence of operations over a table of 64 slots. Each op is
 * two bytes (operation in the low 3 bits of the first, slot = second % 64)
 * followed by the bytes it needs:
 *
 *   0 malloc(size)         1 calloc(count, size)     2 realloc(slot, size)
 *   3 aligned_alloc(2^k)   4 posix_memalign(2^k)     5 free(slot)
 *   6 write the whole usable size (new pattern)      7 free_sized / usable check
 *
 * Sizes come from two bytes: a class selector (tiny, small, class boundary,
 * large, huge) and an offset, so the fuzzer reaches every size path with few
 * bytes. Every block is filled with a pattern derived from its slot and a
 * generation counter and verified before it is freed or reallocated; at the
 * end of each input every slot is verified and freed and arena_check() must
 * return 0.
 *
 * The library is linked in as objects compiled WITHOUT sanitizer
 * instrumentation (only coverage, -fsanitize=fuzzer-no-link), with its
 * malloc/free/... symbols made local, so the harness (built with
 * -fsanitize=fuzzer,address) and libFuzzer allocate from ASan while the
 * arena_* calls run libarena's real fast paths (no annotate mode: the weak
 * ASan hooks libarena looks for are renamed away). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define SLOTS 64

struct slot {
  unsigned char *p;
  size_t size;   /* bytes that carry the pattern */
  uint64_t seed; /* pattern seed */
};

static struct slot slots[SLOTS];
static uint64_t generation;

static unsigned char pat(uint64_t seed, size_t i) {
  uint64_t x = (seed + (i >> 3)) * 0x9E3779B97F4A7C15ull;
  x ^= x >> 31;
  return (unsigned char)(x >> (8 * (i & 7)));
}

/* The pattern covers every byte of blocks up to 64 KiB; of bigger ones, the
 * first and last 16 KiB and 64 bytes of every page between (filling megabytes
 * byte by byte would make each input take seconds). */
#define FULL_MAX ((size_t)64 << 10)
#define EDGE ((size_t)16 << 10)

/* Positions are those of a block of s->size bytes; only bytes below `limit`
 * are touched (after a shrinking realloc, the kept prefix). */
static size_t limit;

static size_t range_check(const struct slot *s, size_t lo, size_t hi, int write) {
  if (hi > limit) hi = limit;
  for (size_t i = lo; i < hi; i++) {
    if (write)
      s->p[i] = pat(s->seed, i);
    else if (s->p[i] != pat(s->seed, i))
      return i;
  }
  return (size_t)-1;
}

static size_t walk(const struct slot *s, int write) {
  size_t bad;
  if (s->size <= FULL_MAX) return range_check(s, 0, s->size, write);
  if ((bad = range_check(s, 0, EDGE, write)) != (size_t)-1) return bad;
  for (size_t off = EDGE; off + 64 <= s->size - EDGE; off += 4096)
    if ((bad = range_check(s, off, off + 64, write)) != (size_t)-1) return bad;
  return range_check(s, s->size - EDGE, s->size, write);
}

static void fill(struct slot *s) {
  limit = s->size;
  walk(s, 1);
}

/* Checks the pattern of a block of s->size bytes, below `upto`. */
static void verify_upto(const struct slot *s, size_t upto, const char *when) {
  limit = upto;
  size_t i = walk(s, 0);
  if (i != (size_t)-1) {
    fprintf(stderr, "fuzz_alloc: block %p (%zu bytes) corrupted at offset %zu %s\n", (void *)s->p, s->size, i,
            when);
    abort();
  }
}

static void verify(const struct slot *s, const char *when) { verify_upto(s, s->size, when); }

static void set(struct slot *s, void *p, size_t size) {
  s->p = p;
  s->size = size;
  s->seed = ++generation * 0x100000001b3ull + (uint64_t)(s - slots);
  fill(s);
}

static void release(struct slot *s) {
  if (!s->p) return;
  verify(s, "before free");
  arena_free(s->p);
  s->p = NULL;
  s->size = 0;
}

struct input {
  const uint8_t *d;
  size_t n, i;
};

static uint8_t take(struct input *in) { return in->i < in->n ? in->d[in->i++] : 0; }

/* Keeps the total bounded: huge blocks are rare and at most 8 MiB. */
static size_t take_size(struct input *in) {
  uint8_t sel = take(in), v = take(in);
  switch (sel % 8) {
  case 0: return v;                                                      /* 0..255 */
  case 1: return (size_t)v * 16 + (sel >> 3);                            /* around every 16-byte class */
  case 2: return ((size_t)v << 8) + (sel >> 3);                          /* small: up to 64 KiB */
  case 3: return ((size_t)64 << 10) + (sel >> 3) - 16 + (v & 31);        /* small/large boundary */
  case 4: return ((size_t)v << 12) + (sel >> 3);                         /* large: up to 1 MiB */
  case 5: return ((size_t)1 << 20) + ((size_t)v << 8) - 64 + (sel >> 3); /* large/huge boundary */
  case 6: return ((size_t)(v & 7) + 1) << 20 | (sel >> 3);               /* huge */
  default: return (size_t)1 << (v % 16);                                 /* powers of two */
  }
}

static void run(const uint8_t *data, size_t size) {
  struct input in = {data, size, 0};
  while (in.i < in.n) {
    uint8_t op = take(&in);
    struct slot *s = &slots[take(&in) % SLOTS];
    switch (op & 7) {
    case 0: { /* malloc */
      size_t n = take_size(&in);
      release(s);
      void *p = arena_malloc(n);
      if (!p) abort();
      if (arena_usable_size(p) < n) abort();
      set(s, p, n);
      break;
    }
    case 1: { /* calloc */
      size_t n = take_size(&in);
      size_t count = (take(&in) % 8) + 1;
      release(s);
      unsigned char *p = arena_calloc(count, n / count);
      if (!p) abort();
      for (size_t i = 0; i < n / count * count; i++)
        if (p[i]) {
          fprintf(stderr, "fuzz_alloc: calloc(%zu, %zu) byte %zu not zero\n", count, n / count, i);
          abort();
        }
      set(s, p, n / count * count);
      break;
    }
    case 2: { /* realloc */
      size_t n = take_size(&in);
      if (s->p) verify(s, "before realloc");
      unsigned char *p = arena_realloc(s->p, n);
      if (n == 0 && s->p) { /* glibc semantics: freed, NULL returned */
        if (p) abort();
        s->p = NULL;
        s->size = 0;
        break;
      }
      if (!p) abort();
      size_t keep = s->size < n ? s->size : n;
      s->p = p;
      verify_upto(s, keep, "after realloc"); /* the common prefix survived */
      set(s, p, n);
      break;
    }
    case 3:
    case 4: {                                       /* aligned_alloc / posix_memalign */
      size_t align = (size_t)1 << (take(&in) % 22); /* up to 2 MiB */
      size_t n = take_size(&in);
      release(s);
      void *p = NULL;
      if ((op & 7) == 3) {
        p = arena_aligned_alloc(align, n);
      } else {
        if (align < sizeof(void *)) align = sizeof(void *);
        if (arena_posix_memalign(&p, align, n) != 0) abort();
      }
      if (!p || ((uintptr_t)p & (align - 1))) abort();
      set(s, p, n);
      break;
    }
    case 5: /* free */ release(s); break;
    case 6: /* write the whole usable size */
      if (s->p) {
        verify(s, "before usable-size write");
        set(s, s->p, arena_usable_size(s->p));
      }
      break;
    default: /* free_sized with the size in hand, or a usable-size check */
      if (s->p) {
        verify(s, "before free_sized");
        if (arena_usable_size(s->p) < s->size) abort();
        if (take(&in) & 1) {
          arena_free_sized(s->p, s->size);
          s->p = NULL;
          s->size = 0;
        }
      }
      break;
    }
  }
  for (int i = 0; i < SLOTS; i++) release(&slots[i]);
  int problems = arena_check();
  if (problems) {
    fprintf(stderr, "fuzz_alloc: arena_check() found %d problem(s)\n", problems);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run(data, size);
  return 0;
}
