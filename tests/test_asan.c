/* AddressSanitizer + UndefinedBehaviorSanitizer build of the arena_* API.
 *
 * Built with -fsanitize=address,undefined and linked with -larena (see
 * tests/tests.mk, `make test-asan`). The ASan runtime comes first in symbol
 * lookup, so the program's malloc/free (cmocka's included) are ASan's; the
 * arena_* calls below go to libarena, which sees the ASan runtime and runs in
 * annotate mode: every block it hands out is unpoisoned (its whole usable
 * size), every block it takes back is poisoned.
 *
 * Part 1 (clean): arena_malloc/calloc/realloc/aligned_alloc/posix_memalign/
 * usable_size/free over small, large and huge sizes, writing and checking every
 * usable byte, with threads and cross-thread frees; ASan must report nothing.
 * Part 2 (death, forked children): a use of a freed libarena block and a write
 * past a block's usable size must be reported by ASan ("AddressSanitizer" on
 * stderr, non-zero exit). An overflow that stays within the usable size is
 * not detectable this way (libarena unpoisons the whole usable size).
 */
#include "child.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

static const size_t k_sizes[] = {0,          1,      7,       8,       15,      16,          17,
                                 24,         31,     32,      48,      63,      64,          65,
                                 100,        127,    128,     129,     200,     255,         256,
                                 257,        500,    1000,    1024,    1500,    2048,        3000,
                                 4096,       5000,   8191,    8192,    10000,   16384,       20000,
                                 32767 - 8,  32767,  32768,   32769,   40000,   65536,       100000,
                                 262144,     500000, 1048575, 1048576, 1048577, 2 * 1048576, 3 * 1048576 + 5,
                                 8 * 1048576};
#define NSIZES (sizeof k_sizes / sizeof k_sizes[0])

/* ---- part 1: clean runs --------------------------------------------------- */

static void fill_check_free(void *p, size_t n, uint64_t seed) {
  assert_non_null(p);
  size_t u = arena_usable_size(p);
  if (u < n) fail_msg("usable size %zu < requested %zu", u, n);
  pat_fill(p, u, seed);
  assert_pattern(p, u, seed);
  arena_free(p);
}

static void test_malloc_sizes(void **state) {
  (void)state;
  for (size_t i = 0; i < NSIZES; i++) fill_check_free(arena_malloc(k_sizes[i]), k_sizes[i], i + 1);
  /* all live at once, then freed in reverse */
  void *live[NSIZES];
  for (size_t i = 0; i < NSIZES; i++) {
    live[i] = arena_malloc(k_sizes[i]);
    assert_non_null(live[i]);
    pat_fill(live[i], arena_usable_size(live[i]), 100 + i);
  }
  for (size_t i = NSIZES; i-- > 0;) {
    assert_pattern(live[i], arena_usable_size(live[i]), 100 + i);
    arena_free(live[i]);
  }
  assert_heap_ok();
}

static void test_calloc_zero(void **state) {
  (void)state;
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < NSIZES; i++) {
      size_t n = k_sizes[i];
      /* dirty a block of the same size first so calloc must clear reused memory */
      void *d = arena_malloc(n);
      assert_non_null(d);
      memset(d, 0xa5, arena_usable_size(d));
      arena_free(d);
      unsigned char *p = arena_calloc(1, n);
      assert_non_null(p);
      if (!all_bytes_equal(p, n, 0)) fail_msg("calloc(1, %zu) not zeroed", n);
      fill_check_free(p, n, 7 + i);
      p = arena_calloc(n ? n / 4 + 1 : 0, 4);
      if (n) {
        assert_non_null(p);
        if (!all_bytes_equal(p, (n / 4 + 1) * 4, 0)) fail_msg("calloc(%zu, 4) not zeroed", n / 4 + 1);
      }
      arena_free(p);
    }
  }
  errno = 0;
  assert_null(arena_calloc(SIZE_MAX / 2, 3));
  assert_int_equal(errno, ENOMEM);
  assert_heap_ok();
}

static void test_realloc_chain(void **state) {
  (void)state;
  /* grow through every size, then shrink back; the common prefix survives */
  void *p = NULL;
  size_t have = 0;
  uint64_t seed = 1;
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = k_sizes[i];
    if (n == 0) continue;
    p = arena_realloc(p, n);
    assert_non_null(p);
    if (have) assert_pattern(p, have < n ? have : n, seed);
    seed++;
    have = arena_usable_size(p);
    assert_true(have >= n);
    pat_fill(p, have, seed);
  }
  for (size_t i = NSIZES; i-- > 1;) {
    size_t n = k_sizes[i];
    p = arena_realloc(p, n);
    assert_non_null(p);
    assert_pattern(p, have < n ? have : n, seed);
    seed++;
    have = arena_usable_size(p);
    pat_fill(p, have, seed);
  }
  assert_null(arena_realloc(p, 0)); /* frees */
  errno = 0;
  void *q = arena_malloc(100);
  assert_non_null(q);
  assert_null(arena_realloc(q, (size_t)PTRDIFF_MAX + 1));
  assert_int_equal(errno, ENOMEM);
  arena_free(q); /* left intact by the failing realloc */
  assert_heap_ok();
}

static void test_aligned(void **state) {
  (void)state;
  static const size_t sizes[] = {0, 1, 16, 100, 4000, 5000, 40000, 300000, 1500000};
  for (size_t a = 1; a <= 4 * MiB; a <<= 1) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      void *p = arena_aligned_alloc(a, n);
      assert_non_null(p);
      assert_aligned(p, a);
      fill_check_free(p, n, a ^ n);
      if (a >= sizeof(void *)) {
        void *q = NULL;
        assert_int_equal(arena_posix_memalign(&q, a, n), 0);
        assert_aligned(q, a);
        fill_check_free(q, n, a + n);
      }
    }
  }
  void *q = (void *)0x1;
  assert_int_equal(arena_posix_memalign(&q, 24, 10), EINVAL);
  assert_ptr_equal(q, (void *)0x1);
  assert_heap_ok();
}

/* Random mix over a table of slots: malloc, calloc, realloc, aligned, free;
 * every block carries its slot's pattern over its whole usable size. */
#define SLOTS 512
struct slot {
  unsigned char *p;
  size_t usable;
  uint64_t seed;
};

static size_t random_size(uint64_t *rng) {
  uint64_t r = rng_next(rng);
  switch (r % 16) {
  case 0: return (size_t)(rng_next(rng) % (2 * MiB)) + 1 * MiB; /* huge */
  case 1:
  case 2: return (size_t)(rng_next(rng) % (1 * MiB - 32 * KiB)) + 32 * KiB; /* large */
  case 3:
  case 4:
  case 5: return (size_t)(rng_next(rng) % (32 * KiB)); /* any small */
  default: return (size_t)(rng_next(rng) % 512);       /* tiny */
  }
}

static void churn(uint64_t seed, int ops, struct slot *t, size_t nslots) {
  uint64_t rng = seed | 1;
  for (int i = 0; i < ops; i++) {
    struct slot *s = &t[rng_next(&rng) % nslots];
    if (s->p) {
      assert_pattern(s->p, s->usable, s->seed);
      if (rng_next(&rng) % 3 == 0) {
        size_t n = random_size(&rng);
        unsigned char *q = arena_realloc(s->p, n ? n : 1);
        assert_non_null(q);
        size_t keep = s->usable < n ? s->usable : n;
        assert_pattern(q, keep, s->seed);
        s->p = q;
      } else {
        arena_free(s->p);
        s->p = NULL;
        continue;
      }
    } else {
      size_t n = random_size(&rng);
      switch (rng_next(&rng) % 4) {
      case 0: s->p = arena_malloc(n); break;
      case 1:
        s->p = arena_calloc(1, n);
        assert_non_null(s->p);
        if (!all_bytes_equal(s->p, n, 0)) fail_msg("calloc(1, %zu) not zeroed", n);
        break;
      case 2: s->p = arena_aligned_alloc((size_t)1 << (rng_next(&rng) % 14), n); break;
      default: {
        void *q = NULL;
        assert_int_equal(arena_posix_memalign(&q, (size_t)8 << (rng_next(&rng) % 10), n), 0);
        s->p = q;
      }
      }
      assert_non_null(s->p);
    }
    s->usable = arena_usable_size(s->p);
    s->seed = rng_next(&rng);
    pat_fill(s->p, s->usable, s->seed);
  }
}

static void release_all(struct slot *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (t[i].p) {
      assert_pattern(t[i].p, t[i].usable, t[i].seed);
      arena_free(t[i].p);
      t[i].p = NULL;
    }
}

static void test_random_mix(void **state) {
  (void)state;
  static struct slot t[SLOTS];
  churn(12345, 30000, t, SLOTS);
  assert_heap_ok();
  release_all(t, SLOTS);
  assert_heap_ok();
}

/* Threads: each churns its own table, then hands half of its blocks to the
 * next thread, which verifies and frees them (remote frees). */
#define NTHREADS 4
#define TSLOTS 256
static struct slot g_tables[NTHREADS][TSLOTS];
static pthread_barrier_t g_barrier;

static void *thread_main(void *arg) {
  size_t id = (size_t)arg;
  churn(1000 + id, 8000, g_tables[id], TSLOTS);
  pthread_barrier_wait(&g_barrier);
  /* free the first half of the next thread's table (blocks it allocated) */
  release_all(g_tables[(id + 1) % NTHREADS], TSLOTS / 2);
  pthread_barrier_wait(&g_barrier);
  churn(2000 + id, 4000, g_tables[id], TSLOTS);
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  pthread_t th[NTHREADS];
  pthread_barrier_init(&g_barrier, NULL, NTHREADS);
  for (size_t i = 0; i < NTHREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, thread_main, (void *)i), 0);
  for (size_t i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&g_barrier);
  assert_heap_ok();
  /* the threads have exited: their remaining blocks are freed from here */
  for (size_t i = 0; i < NTHREADS; i++) release_all(g_tables[i], TSLOTS);
  assert_heap_ok();
}

/* ---- part 2: ASan must catch these (forked children) ---------------------- */

/* kind: what ASan's report line must name, e.g. "use-after-poison" (or NULL) */
static void expect_asan(void (*fn)(void), const char *kind) {
  struct outcome o;
  run_child(fn, &o);
  if (o.exited && o.status == 0) fail_msg("child exited 0: ASan reported nothing; stderr: \"%s\"", o.err);
  if (!strstr(o.err, "AddressSanitizer"))
    fail_msg("stderr lacks \"AddressSanitizer\" (exit %d, signal %d): \"%s\"", o.status, o.sig, o.err);
  if (kind && !strstr(o.err, kind)) fail_msg("ASan report does not say \"%s\": \"%s\"", kind, o.err);
}

static volatile unsigned char g_sink;

static void uaf_read(size_t n) {
  unsigned char *p = arena_malloc(n);
  if (!p) _exit(98);
  memset(p, 1, n);
  arena_free(p);
  g_sink = ((volatile unsigned char *)launder(p))[n / 2];
}

static void c_uaf_read_16(void) { uaf_read(16); }
static void c_uaf_read_1000(void) { uaf_read(1000); }
static void c_uaf_read_32k(void) { uaf_read(32 * KiB); }
static void c_uaf_read_large(void) { uaf_read(300 * KiB); }
static void c_uaf_read_huge(void) {
  /* a freed huge mapping is cached (not unmapped) and poisoned */
  uaf_read(3 * MiB);
}

static void c_uaf_write_64(void) {
  unsigned char *p = arena_malloc(64);
  if (!p) _exit(98);
  arena_free(p);
  ((volatile unsigned char *)launder(p))[8] = 1;
}

/* use after realloc moved the block */
static void c_uaf_after_realloc(void) {
  unsigned char *p = arena_malloc(100);
  if (!p) _exit(98);
  memset(p, 2, 100);
  unsigned char *q = arena_realloc(p, 100000);
  if (!q) _exit(98);
  if (q == p) _exit(97); /* annotate mode always moves */
  g_sink = ((volatile unsigned char *)launder(p))[10];
}

/* Write one byte past the usable size of a small block whose neighbour is a
 * freed (poisoned) block of the same class. */
static void overflow_small(size_t n) {
  unsigned char *blocks[64];
  for (int i = 0; i < 64; i++) {
    blocks[i] = arena_malloc(n);
    if (!blocks[i]) _exit(98);
  }
  for (int i = 0; i < 64; i++)
    for (int j = 0; j < 64; j++) {
      size_t u = arena_usable_size(blocks[i]);
      if (blocks[i] + u == blocks[j]) {
        arena_free(blocks[j]);
        ((volatile unsigned char *)launder(blocks[i]))[u] = 0x55;
        _exit(0);
      }
    }
  _exit(96); /* no adjacent pair */
}

static void c_overflow_small_16(void) { overflow_small(16); }
static void c_overflow_small_100(void) { overflow_small(100); }
static void c_overflow_small_3000(void) { overflow_small(3000); }

/* Large blocks: one page run after another; the freed neighbour is poisoned. */
static void c_overflow_large(void) {
  unsigned char *b[8];
  for (int i = 0; i < 8; i++) {
    b[i] = arena_malloc(40 * KiB);
    if (!b[i]) _exit(98);
  }
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      size_t u = arena_usable_size(b[i]);
      if (b[i] + u == b[j]) {
        arena_free(b[j]);
        ((volatile unsigned char *)launder(b[i]))[u] = 0x55;
        _exit(0);
      }
    }
  _exit(96);
}

static void c_read_before_block(void) {
  /* underflow into a freed neighbour below */
  unsigned char *b[64];
  for (int i = 0; i < 64; i++) {
    b[i] = arena_malloc(48);
    if (!b[i]) _exit(98);
  }
  for (int i = 0; i < 64; i++)
    for (int j = 0; j < 64; j++)
      if (b[j] + arena_usable_size(b[j]) == b[i]) {
        arena_free(b[j]);
        g_sink = ((volatile unsigned char *)launder(b[i]))[-1];
        _exit(0);
      }
  _exit(96);
}

#define DEATH(name, kind)                                                                                    \
  static void test_asan_##name(void **state) {                                                               \
    (void)state;                                                                                             \
    expect_asan(c_##name, kind);                                                                             \
  }
DEATH(uaf_read_16, "use-after-poison")
DEATH(uaf_read_1000, "use-after-poison")
DEATH(uaf_read_32k, "use-after-poison")
DEATH(uaf_read_large, "use-after-poison")
DEATH(uaf_read_huge, "use-after-poison")
DEATH(uaf_write_64, "use-after-poison")
DEATH(uaf_after_realloc, "use-after-poison")
DEATH(overflow_small_16, NULL)
DEATH(overflow_small_100, NULL)
DEATH(overflow_small_3000, NULL)
DEATH(overflow_large, NULL)
DEATH(read_before_block, NULL)

/* libarena's own double-free check still works in annotate mode. */
static void c_double_free(void) {
  void *p = arena_malloc(64);
  if (!p) _exit(98);
  arena_free(p);
  arena_free(launder(p));
}

static void test_double_free_still_caught(void **state) {
  (void)state;
  struct outcome o;
  run_child(c_double_free, &o);
  if (!o.signaled || o.sig != SIGABRT)
    fail_msg("expected SIGABRT (exit %d, signal %d): \"%s\"", o.status, o.sig, o.err);
  if (!strstr(o.err, "double free")) fail_msg("stderr lacks \"double free\": \"%s\"", o.err);
}

/* calloc of a large or huge block that reuses a freed (poisoned) one must
 * unpoison it before clearing it. */
static void test_calloc_reused_large_huge(void **state) {
  (void)state;
  static const size_t sizes[] = {40 * KiB, 300 * KiB, 1 * MiB, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *d = arena_malloc(sizes[i]);
    assert_non_null(d);
    memset(d, 0xa5, sizes[i]);
    arena_free(d);
    unsigned char *p = arena_calloc(1, sizes[i]);
    assert_non_null(p);
    if (!all_bytes_equal(p, sizes[i], 0)) fail_msg("calloc(1, %zu) not zeroed", sizes[i]);
    arena_free(p);
  }
  assert_heap_ok();
}

/* A block used within its usable size after allocation, then freed, and
 * reallocated: the new owner may use all of it (unpoisoned again). */
static void test_reuse_is_unpoisoned(void **state) {
  (void)state;
  for (int i = 0; i < 1000; i++) {
    size_t n = (size_t)(i * 37) % 5000;
    unsigned char *p = arena_malloc(n);
    assert_non_null(p);
    memset(p, i & 0xff, arena_usable_size(p));
    arena_free(p);
  }
  assert_heap_ok();
}

int main(void) {
  apply_test_filter();
  catch_aborts();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_malloc_sizes),
      cmocka_unit_test(test_calloc_zero),
      cmocka_unit_test(test_realloc_chain),
      cmocka_unit_test(test_aligned),
      cmocka_unit_test(test_random_mix),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_reuse_is_unpoisoned),
      cmocka_unit_test(test_calloc_reused_large_huge),
      cmocka_unit_test(test_asan_uaf_read_16),
      cmocka_unit_test(test_asan_uaf_read_1000),
      cmocka_unit_test(test_asan_uaf_read_32k),
      cmocka_unit_test(test_asan_uaf_read_large),
      cmocka_unit_test(test_asan_uaf_read_huge),
      cmocka_unit_test(test_asan_uaf_write_64),
      cmocka_unit_test(test_asan_uaf_after_realloc),
      cmocka_unit_test(test_asan_overflow_small_16),
      cmocka_unit_test(test_asan_overflow_small_100),
      cmocka_unit_test(test_asan_overflow_small_3000),
      cmocka_unit_test(test_asan_overflow_large),
      cmocka_unit_test(test_asan_read_before_block),
      cmocka_unit_test(test_double_free_still_caught),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
