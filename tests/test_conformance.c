/* Conformance of the malloc family (overridden symbols and the arena_* API)
 * with glibc 2.36 on x86-64, plus the statistics API.
 *
 * Where glibc's behaviour was not obvious it was measured with
 * tests/glibc_probe.c (make glibc-probe); the expected values below quote it. */
#include "common.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>

/* Not declared by glibc 2.36's headers. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);
void cfree(void *ptr);
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void __libc_free(void *ptr);
void *__libc_memalign(size_t alignment, size_t size);

/* Called through a volatile pointer: gcc would otherwise warn about using the
 * old block after a (failing) reallocarray. */
static void *(*volatile reallocarray_fn)(void *, size_t, size_t) = reallocarray;
#define reallocarray(p, n, m) reallocarray_fn(p, n, m)

/* ---- the two entry points under test ------------------------------------ */

struct api {
  const char *name;
  int is_libc;
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
  void *(*aligned_alloc)(size_t, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  size_t (*usable)(void *);
};

static size_t libc_usable(void *p) { return malloc_usable_size(p); }
static size_t arena_usable(void *p) { return arena_usable_size(p); }

static const struct api api_libc = {"libc",         1,          malloc, calloc, realloc, free, aligned_alloc,
                                    posix_memalign, libc_usable};
static const struct api api_arena = {"arena_*",     0,          arena_malloc,        arena_calloc,
                                     arena_realloc, arena_free, arena_aligned_alloc, arena_posix_memalign,
                                     arena_usable};

#define API(state) ((const struct api *)*(state))

/* ---- malloc(0), size classes --------------------------------------------- */

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

static void test_malloc_zero_unique(void **state) {
  const struct api *A = API(state);
  enum { N = 2000 };
  void **v = calloc(N, sizeof *v);
  assert_non_null(v);
  for (int i = 0; i < N; i++) {
    v[i] = A->malloc(launder_size(0));
    assert_non_null(v[i]);
    assert_aligned(v[i], 16);
  }
  qsort(v, N, sizeof *v, cmp_ptr);
  for (int i = 1; i < N; i++)
    if (v[i] == v[i - 1]) fail_msg("%s malloc(0) returned %p twice", A->name, v[i]);
  for (int i = 0; i < N; i++) A->free(v[i]);
  /* realloc(NULL, 0) behaves as malloc(0) */
  void *p = A->realloc(NULL, launder_size(0));
  assert_non_null(p);
  A->free(p);
  assert_heap_ok();
}

/* Every size 0..4096, then every 8th size to 40000: a ring of live blocks
 * catches overlapping blocks, the whole usable size must be writable. */
static void test_size_class_sweep(void **state) {
  const struct api *A = API(state);
  enum { RING = 64 };
  void *ring[RING] = {0};
  size_t ring_n[RING] = {0};
  uint64_t ring_seed[RING] = {0};
  unsigned idx = 0;
  uint64_t seed = 1;
  for (size_t n = 0; n <= 40000; n += (n < 4096 ? 1 : 8)) {
    unsigned slot = idx++ % RING;
    if (ring[slot]) {
      assert_pattern(ring[slot], ring_n[slot], ring_seed[slot]);
      A->free(ring[slot]);
    }
    void *p = A->malloc(launder_size(n));
    if (!p) fail_msg("%s malloc(%zu) returned NULL", A->name, n);
    assert_aligned(p, 16);
    size_t u = A->usable(p);
    if (u < n) fail_msg("%s usable size %zu < requested %zu", A->name, u, n);
    if (u > n + n / 2 + 4096) fail_msg("%s usable size %zu absurd for %zu", A->name, u, n);
    pat_fill(p, u, ++seed);
    assert_pattern(p, u, seed);
    ring[slot] = p;
    ring_n[slot] = u;
    ring_seed[slot] = seed;
  }
  for (unsigned i = 0; i < RING; i++) {
    if (!ring[i]) continue;
    assert_pattern(ring[i], ring_n[i], ring_seed[i]);
    A->free(ring[i]);
  }
  assert_heap_ok();
}

/* ---- sizes that cannot be satisfied ------------------------------------- */

static const size_t impossible_sizes[] = {(size_t)PTRDIFF_MAX,
                                          (size_t)PTRDIFF_MAX + 1,
                                          (size_t)PTRDIFF_MAX + 4096,
                                          SIZE_MAX - 2 * 1024 * 1024,
                                          SIZE_MAX - 4096,
                                          SIZE_MAX - 64,
                                          SIZE_MAX - 15,
                                          SIZE_MAX - 1,
                                          SIZE_MAX};
#define N_IMPOSSIBLE (sizeof impossible_sizes / sizeof impossible_sizes[0])

#define assert_enomem_null(expr, what, n)                                                                    \
  do {                                                                                                       \
    errno = 0;                                                                                               \
    void *r_ = (expr);                                                                                       \
    int e_ = errno;                                                                                          \
    if (r_ != NULL) fail_msg("%s(%#zx) returned %p, expected NULL", what, (size_t)(n), r_);                  \
    if (e_ != ENOMEM)                                                                                        \
      fail_msg("%s(%#zx): errno %d (%s), expected ENOMEM", what, (size_t)(n), e_, strerror(e_));             \
  } while (0)

static void test_impossible_sizes(void **state) {
  const struct api *A = API(state);
  void *old = A->malloc(100);
  assert_non_null(old);
  pat_fill(old, 100, 77);
  for (size_t i = 0; i < N_IMPOSSIBLE; i++) {
    size_t n = launder_size(impossible_sizes[i]);
    assert_enomem_null(A->malloc(n), "malloc", n);
    assert_enomem_null(A->calloc(1, n), "calloc(1,n)", n);
    assert_enomem_null(A->calloc(n, 1), "calloc(n,1)", n);
    assert_enomem_null(A->realloc(NULL, n), "realloc(NULL,n)", n);
    assert_enomem_null(A->realloc(old, n), "realloc(p,n)", n);
    assert_pattern(old, 100, 77);
    assert_enomem_null(A->aligned_alloc(64, n), "aligned_alloc(64,n)", n);
    assert_enomem_null(A->aligned_alloc(4096, n), "aligned_alloc(4096,n)", n);
    void *m = (void *)0x1234;
    errno = 0;
    int r = A->posix_memalign(&m, 64, n);
    if (r != ENOMEM) fail_msg("posix_memalign(64, %#zx) returned %d, expected ENOMEM", n, r);
    assert_ptr_equal(m, (void *)0x1234);
    r = A->posix_memalign(&m, 1 << 20, n);
    if (r != ENOMEM) fail_msg("posix_memalign(1M, %#zx) returned %d, expected ENOMEM", n, r);
    assert_ptr_equal(m, (void *)0x1234);
    if (A->is_libc) {
      assert_enomem_null(reallocarray(NULL, 1, n), "reallocarray(NULL,1,n)", n);
      assert_enomem_null(reallocarray(old, n, 1), "reallocarray(p,n,1)", n);
      assert_pattern(old, 100, 77);
      assert_enomem_null(memalign(64, n), "memalign(64,n)", n);
      assert_enomem_null(valloc(n), "valloc", n);
      assert_enomem_null(pvalloc(n), "pvalloc", n);
    }
  }
  assert_pattern(old, 100, 77);
  A->free(old);
  assert_heap_ok();
}

static void test_calloc_overflow(void **state) {
  const struct api *A = API(state);
  static const size_t pairs[][2] = {
      {(size_t)1 << 33, (size_t)1 << 33}, {SIZE_MAX, 2},        {2, SIZE_MAX / 2 + 1}, {SIZE_MAX / 3 + 1, 3},
      {(size_t)PTRDIFF_MAX / 2 + 1, 2}, /* no overflow, but > PTRDIFF_MAX */
      {65536, (size_t)1 << 48},           {SIZE_MAX, SIZE_MAX},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    size_t a = launder_size(pairs[i][0]), b = launder_size(pairs[i][1]);
    assert_enomem_null(A->calloc(a, b), "calloc(a,b)", a);
    assert_enomem_null(A->calloc(b, a), "calloc(b,a)", b);
  }
  /* zero element count or size: a unique freeable block (glibc: non-NULL) */
  void *p = A->calloc(launder_size(0), SIZE_MAX);
  assert_non_null(p);
  void *q = A->calloc(SIZE_MAX, launder_size(0));
  assert_non_null(q);
  assert_ptr_not_equal(p, q);
  A->free(p);
  A->free(q);
}

static void test_reallocarray(void **state) {
  (void)state;
  char *p = reallocarray(NULL, 10, 10);
  assert_non_null(p);
  pat_fill(p, 100, 5);
  assert_enomem_null(reallocarray(p, launder_size(SIZE_MAX / 2 + 1), 2), "reallocarray(p,ovf)",
                     SIZE_MAX / 2 + 1);
  assert_enomem_null(reallocarray(p, launder_size((size_t)1 << 33), (size_t)1 << 33),
                     "reallocarray(p,2^33*2^33)", (size_t)1 << 33);
  assert_enomem_null(reallocarray(NULL, launder_size((size_t)1 << 40), (size_t)1 << 40),
                     "reallocarray(NULL,ovf)", (size_t)1 << 40);
  assert_pattern(p, 100, 5);
  char *q = reallocarray(p, 1000, 100);
  assert_non_null(q);
  assert_pattern(q, 100, 5);
  assert_true(malloc_usable_size(q) >= 100000);
  free(q);
}

/* ---- realloc ---------------------------------------------------------------- */

static void test_realloc_failure_keeps_block(void **state) {
  const struct api *A = API(state);
  static const size_t sizes[] = {1, 100, 4000, 32768, 200 * 1024, 1024 * 1024, 3 * 1024 * 1024};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    void *p = A->malloc(n);
    assert_non_null(p);
    pat_fill(p, n, 1000 + i);
    for (size_t j = 0; j < N_IMPOSSIBLE; j++) {
      assert_enomem_null(A->realloc(p, launder_size(impossible_sizes[j])), "realloc(p,n)",
                         impossible_sizes[j]);
      assert_pattern(p, n, 1000 + i);
    }
    assert_true(A->usable(p) >= n);
    A->free(p);
  }
  assert_heap_ok();
}

/* realloc(p, 0) frees p and returns NULL (glibc: REALLOC_ZERO_BYTES_FREES).
 * Checked by doing it many times: if the blocks leaked, memory would grow. */
static void test_realloc_zero_frees(void **state) {
  const struct api *A = API(state);
  struct arena_stats s0 = stats_now();
  size_t rss0 = rss_bytes();
  static const size_t sizes[] = {24, 1000, 30000, 256 * 1024, 2 * 1024 * 1024};
  static const int reps[] = {200000, 50000, 5000, 1000, 200};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int r = 0; r < reps[i]; r++) {
      char *p = A->malloc(sizes[i]);
      assert_non_null(p);
      p[0] = 1;
      p[sizes[i] - 1] = 2;
      errno = 0;
      void *q = A->realloc(p, launder_size(0));
      if (q != NULL) fail_msg("%s realloc(p, 0) returned %p, expected NULL", A->name, q);
    }
  }
  struct arena_stats s1 = stats_now();
  size_t rss1 = rss_bytes();
  if (s1.mapped_bytes > s0.mapped_bytes + 64 * MiB)
    fail_msg("mapped_bytes grew from %llu to %llu: realloc(p, 0) leaks", (unsigned long long)s0.mapped_bytes,
             (unsigned long long)s1.mapped_bytes);
  if (rss1 > rss0 + 64 * MiB) fail_msg("RSS grew from %zu to %zu: realloc(p, 0) leaks", rss0, rss1);
  assert_heap_ok();
}

static void test_realloc_null_is_malloc(void **state) {
  const struct api *A = API(state);
  static const size_t sizes[] = {0, 1, 17, 1000, 40000, 300000, 2 * 1024 * 1024};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = A->realloc(NULL, launder_size(sizes[i]));
    assert_non_null(p);
    assert_aligned(p, 16);
    size_t u = A->usable(p);
    assert_true(u >= sizes[i]);
    pat_fill(p, u, i);
    assert_pattern(p, u, i);
    A->free(p);
  }
}

/* small -> large -> huge -> small and back, content preserved at each step. */
static void test_realloc_chain(void **state) {
  const struct api *A = API(state);
  static const size_t chain[] = {
      1,       24,      100,     1000,           16000,          32768,  32769, 70000, 500000,
      1048576, 1048577, 3000000, 9000000,        2500000,        700000, 40000, 5000,  64,
      8,       9000000, 17,      1048576 + 4096, 1048576 - 4096, 33000,  32000, 1};
  size_t n = chain[0];
  uint64_t seed = 42;
  char *p = A->realloc(NULL, n);
  assert_non_null(p);
  pat_fill(p, n, seed);
  for (size_t i = 1; i < sizeof chain / sizeof chain[0]; i++) {
    size_t m = chain[i];
    char *q = A->realloc(p, m);
    if (!q) fail_msg("%s realloc(%zu -> %zu) failed", A->name, n, m);
    assert_aligned(q, 16);
    assert_true(A->usable(q) >= m);
    assert_pattern(q, n < m ? n : m, seed);
    p = q;
    n = m;
    pat_fill(p, n, ++seed);
  }
  A->free(p);
  assert_heap_ok();
}

/* Growth one step at a time (in-place growth paths) with a neighbour block. */
static void test_realloc_small_steps(void **state) {
  const struct api *A = API(state);
  size_t n = 1;
  char *p = A->malloc(n);
  assert_non_null(p);
  p[0] = (char)pat_byte(9, 0);
  void *neighbour = NULL;
  for (size_t m = 2; m < 300000; m += (m < 8192 ? 7 : 1531)) {
    char *q = A->realloc(p, m);
    assert_non_null(q);
    assert_pattern(q, n, 9);
    pat_fill(q, m, 9);
    p = q;
    n = m;
    if ((m & 0xff) == 3) { /* churn a neighbour to disturb in-place growth */
      A->free(neighbour);
      neighbour = A->malloc(m / 2);
      assert_non_null(neighbour);
      memset(neighbour, 0xa5, m / 2);
    }
  }
  for (size_t m = n; m > 8; m -= (m > 8192 ? 2039 : 13)) {
    char *q = A->realloc(p, m);
    assert_non_null(q);
    assert_pattern(q, m, 9);
    p = q;
  }
  A->free(p);
  A->free(neighbour);
  assert_heap_ok();
}

/* ---- alignment -------------------------------------------------------------- */

static void test_posix_memalign_bad_alignment(void **state) {
  const struct api *A = API(state);
  /* glibc probe: posix_memalign(&m, a, 100) = 22 (EINVAL), *m untouched, for
   * a = 0 1 2 3 4 12 24 48 100 4095 4097 1M+1 SIZE_MAX; 2^63 gives ENOMEM. */
  static const size_t bad[] = {0,
                               1,
                               2,
                               3,
                               4,
                               5,
                               6,
                               7,
                               12,
                               24,
                               40,
                               48,
                               100,
                               4095,
                               4097,
                               (1 << 20) + 8,
                               SIZE_MAX,
                               SIZE_MAX - 7,
                               (SIZE_MAX / 2) + 9};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *m = (void *)0x5678;
    errno = 4321;
    int r = A->posix_memalign(&m, launder_size(bad[i]), 100);
    if (r != EINVAL)
      fail_msg("%s posix_memalign(align %zu) returned %d, expected EINVAL", A->name, bad[i], r);
    if (m != (void *)0x5678) fail_msg("posix_memalign(align %zu) changed *memptr", bad[i]);
  }
  void *m = (void *)0x5678;
  int r = A->posix_memalign(&m, launder_size(SIZE_MAX / 2 + 1), 100);
  assert_int_equal(r, ENOMEM); /* glibc: 12 */
  assert_ptr_equal(m, (void *)0x5678);
  /* sizeof(void *) itself is fine, and size 0 gives a freeable block */
  r = A->posix_memalign(&m, sizeof(void *), 0);
  assert_int_equal(r, 0);
  assert_non_null(m);
  A->free(m);
}

/* aligned_alloc with a non-power-of-two alignment.
 * glibc 2.36 (probe): aligned_alloc(a, 100) succeeds for every a in
 * 0 1 2 3 4 12 24 48 100 4095 4097 1M+1, aligned to the next power of two
 * (aligned_alloc is memalign in 2.36); aligned_alloc(2^63, 100) = NULL/ENOMEM,
 * aligned_alloc(SIZE_MAX, 100) = NULL/EINVAL.
 * arena.h documents arena_aligned_alloc with the same 2.36 semantics. */
static const size_t non_pow2[] = {0, 3, 12, 24, 48, 100, 4095, 4097, 12288, (1 << 20) + 1};

static void test_aligned_alloc_odd_alignment_libc(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof non_pow2 / sizeof non_pow2[0]; i++) {
    size_t a = launder_size(non_pow2[i]);
    errno = 0;
    void *p = aligned_alloc(a, 100);
    if (!p) fail_msg("aligned_alloc(%zu, 100) = NULL errno %d; glibc 2.36 returns a block", a, errno);
    assert_aligned(p, next_pow2(a) < 16 ? 16 : next_pow2(a));
    assert_true(malloc_usable_size(p) >= 100);
    memset(p, 1, 100);
    free(p);
  }
  errno = 0;
  assert_null(aligned_alloc(launder_size(SIZE_MAX), 100));
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_null(aligned_alloc(launder_size(SIZE_MAX / 2 + 1), 100));
  assert_int_equal(errno, ENOMEM);
}

/* arena.h: arena_aligned_alloc follows glibc 2.36 (memalign's rounding). */
static void test_aligned_alloc_odd_alignment_arena(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof non_pow2 / sizeof non_pow2[0]; i++) {
    size_t a = launder_size(non_pow2[i]);
    void *p = arena_aligned_alloc(a, 100);
    if (!p) fail_msg("arena_aligned_alloc(%zu, 100) = NULL", a);
    assert_aligned(p, next_pow2(a) < 16 ? 16 : next_pow2(a));
    memset(p, 1, 100);
    arena_free(p);
  }
  errno = 0;
  assert_null(arena_aligned_alloc(launder_size(SIZE_MAX), 100));
  assert_int_equal(errno, EINVAL);
}

/* memalign rounds a non-power-of-two alignment up (glibc probe: memalign(48)
 * was 64-aligned, memalign(4097) 8192-aligned, memalign(0/3) 16-aligned). */
static void test_memalign_odd_alignment(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof non_pow2 / sizeof non_pow2[0]; i++) {
    size_t a = launder_size(non_pow2[i]);
    void *p = memalign(a, 100);
    if (!p) fail_msg("memalign(%zu, 100) = NULL", a);
    assert_aligned(p, next_pow2(a) < 16 ? 16 : next_pow2(a));
    memset(p, 1, 100);
    free(p);
  }
  errno = 0;
  assert_null(memalign(launder_size(SIZE_MAX), 100));
  assert_int_equal(errno, EINVAL); /* glibc: 22 */
  errno = 0;
  assert_null(memalign(launder_size(SIZE_MAX / 2 + 1), 100));
  assert_int_equal(errno, ENOMEM); /* glibc: 12 */
}

enum { VIA_POSIX, VIA_ALIGNED, VIA_MEMALIGN };

static void *alloc_aligned(const struct api *A, int via, size_t a, size_t n) {
  void *p = NULL;
  switch (via) {
  case VIA_POSIX: {
    int r = A->posix_memalign(&p, a, n);
    if (r != 0) fail_msg("%s posix_memalign(%zu, %zu) = %d", A->name, a, n, r);
    break;
  }
  case VIA_ALIGNED: p = A->aligned_alloc(a, n); break;
  default: p = memalign(a, n); break;
  }
  return p;
}

/* Every power-of-two alignment 1..2^26 against sizes 0 and 2^k +- 32. */
static void test_alignment_sweep(void **state) {
  const struct api *A = API(state);
  static const char *via_name[] = {"posix_memalign", "aligned_alloc", "memalign"};
  int nvia = A->is_libc ? 3 : 2;
  uint64_t seed = 1;
  for (int via = 0; via < nvia; via++) {
    for (int ab = 0; ab <= 26; ab++) {
      size_t a = (size_t)1 << ab;
      if (via == VIA_POSIX && a < sizeof(void *)) continue;
      for (int k = 5; k <= 22; k++) {
        for (int d = -1; d <= 1; d++) {
          /* sizes 0 (once), 2^k - 32 and 2^k + 32 */
          if (d == 0 && k != 5) continue;
          size_t n = d == 0 ? 0 : d < 0 ? ((size_t)1 << k) - 32 : ((size_t)1 << k) + 32;
          /* keep the run time sane: sizes from 64 KiB up only with a few
           * alignments, and 2^k - 32 with k > 20 not at the biggest ones */
          if (k >= 16 && ab != 0 && ab != 4 && ab != 12 && ab != 16 && ab != 21 && ab != 26) continue;
          if (ab >= 23 && k > 20 && d != 1) continue;
          void *p = alloc_aligned(A, via, launder_size(a), launder_size(n));
          if (!p) fail_msg("%s %s(%zu, %zu) = NULL", A->name, via_name[via], a, n);
          assert_aligned(p, a < 16 ? 16 : a);
          size_t u = A->usable(p);
          if (u < n) fail_msg("%s %s(%zu, %zu): usable %zu", A->name, via_name[via], a, n, u);
          ++seed;
          if (u <= n + 4 * MiB) {
            pat_fill(p, u, seed);
            assert_pattern(p, u, seed);
          } else { /* very generous usable size: its start and its end */
            char *tail = (char *)p + u - MiB;
            pat_fill(p, n + MiB, seed);
            pat_fill(tail, MiB, seed + 1);
            assert_pattern(p, n + MiB, seed);
            assert_pattern(tail, MiB, seed + 1);
          }
          A->free(p);
        }
      }
    }
  }
  /* several aligned blocks live at once must not overlap */
  enum { LIVE = 40 };
  void *live[LIVE];
  size_t ln[LIVE];
  for (int i = 0; i < LIVE; i++) {
    size_t a = (size_t)16 << (i % 12), n = 24 + (size_t)i * 999;
    live[i] = alloc_aligned(A, i % nvia, a, n);
    assert_non_null(live[i]);
    assert_aligned(live[i], a);
    ln[i] = n;
    pat_fill(live[i], n, 500 + i);
  }
  for (int i = 0; i < LIVE; i++) {
    assert_pattern(live[i], ln[i], 500 + i);
    A->free(live[i]);
  }
  assert_heap_ok();
}

static void test_valloc_pvalloc(void **state) {
  (void)state;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, 40000, 300000, 2000000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = launder_size(sizes[i]);
    char *p = valloc(n);
    if (!p) fail_msg("valloc(%zu) = NULL", n);
    assert_aligned(p, page);
    size_t u = malloc_usable_size(p);
    assert_true(u >= n);
    pat_fill(p, u, i);
    free(p);

    p = pvalloc(n);
    if (!p) fail_msg("pvalloc(%zu) = NULL", n);
    assert_aligned(p, page);
    size_t rounded = (n + page - 1) / page * page;
    u = malloc_usable_size(p);
    if (u < rounded) fail_msg("pvalloc(%zu): usable %zu < %zu (size rounded to pages)", n, u, rounded);
    pat_fill(p, u, i);
    assert_pattern(p, u, i);
    free(p);
  }
}

/* ---- free ---------------------------------------------------------------- */

static void test_free_null_and_errno(void **state) {
  const struct api *A = API(state);
  errno = 1234;
  A->free(NULL);
  assert_int_equal(errno, 1234);
  static const size_t sizes[] = {0,      16,      1000,    32768,           65536,
                                 600000, 1048576, 1048577, 4 * 1024 * 1024, 20 * 1024 * 1024};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    /* free a batch so that span/chunk release paths (munmap, madvise) run too */
    void *v[64];
    int cnt = sizes[i] >= 1048576 ? 4 : 64;
    for (int j = 0; j < cnt; j++) {
      v[j] = A->malloc(sizes[i]);
      assert_non_null(v[j]);
      memset(v[j], 0x5a, sizes[i] < 4096 ? sizes[i] : 4096);
    }
    for (int j = 0; j < cnt; j++) {
      errno = 1234;
      A->free(v[j]);
      if (errno != 1234)
        fail_msg("%s free of a %zu-byte block changed errno to %d", A->name, sizes[i], errno);
    }
  }
  if (A->is_libc) {
    void *p = memalign(1 << 16, 100000);
    assert_non_null(p);
    errno = 1234;
    free(p);
    assert_int_equal(errno, 1234);
  }
}

static void test_usable_size_null(void **state) {
  (void)state;
  assert_int_equal(malloc_usable_size(NULL), 0);
}

static void test_free_sized(void **state) {
  (void)state;
  static const size_t sizes[] = {0, 1, 24, 100, 1000, 4097, 32768, 100000, 1048576, 3000000};
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      void *p = malloc(n);
      assert_non_null(p);
      memset(p, 1, n);
      errno = 777;
      if (round == 0)
        free_sized(p, n);
      else if (round == 1)
        arena_free_sized(p, n);
      else
        free_sized(p, malloc_usable_size(p)); /* any size up to the usable size */
      assert_int_equal(errno, 777);
    }
    for (int ab = 4; ab <= 16; ab += 3) {
      size_t a = (size_t)1 << ab;
      void *p = aligned_alloc(a, 5000);
      assert_non_null(p);
      memset(p, 2, 5000);
      free_aligned_sized(p, a, 5000);
    }
  }
  free_sized(NULL, 0);
  free_aligned_sized(NULL, 64, 0);
  assert_heap_ok();
}

/* The override, the arena_* API and the glibc aliases are one heap. */
static void test_cross_api(void **state) {
  (void)state;
  static const size_t sizes[] = {8, 500, 20000, 200000, 2000000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    void *p = malloc(n);
    assert_non_null(p);
    assert_int_equal(arena_usable_size(p), malloc_usable_size(p));
    arena_free(p);
    p = arena_malloc(n);
    assert_non_null(p);
    pat_fill(p, n, 3);
    p = realloc(p, n * 2);
    assert_non_null(p);
    assert_pattern(p, n, 3);
    p = arena_realloc(p, n * 3);
    assert_non_null(p);
    assert_pattern(p, n, 3);
    free(p);
    p = arena_calloc(n, 1);
    assert_non_null(p);
    assert_true(all_bytes_equal(p, n, 0));
    cfree(p);
    p = arena_aligned_alloc(4096, n);
    assert_non_null(p);
    free(p);
    p = __libc_malloc(n);
    assert_non_null(p);
    assert_true(arena_usable_size(p) >= n);
    free(p);
    p = malloc(n);
    assert_non_null(p);
    p = __libc_realloc(p, n + 100);
    assert_non_null(p);
    __libc_free(p);
    p = __libc_calloc(1, n);
    assert_non_null(p);
    assert_true(all_bytes_equal(p, n, 0));
    arena_free(p);
    p = __libc_memalign(256, n);
    assert_non_null(p);
    assert_aligned(p, 256);
    free(p);
  }
  assert_heap_ok();
}

/* ---- calloc zeroing --------------------------------------------------------- */

static void test_calloc_zeroes_recycled(void **state) {
  const struct api *A = API(state);
  static const size_t sizes[] = {1,     24,        100,        1000,        4096,    16000,
                                 32768, 64 * 1024, 200 * 1024, 1024 * 1024, 1048577, 4 * 1024 * 1024};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    int batch = n <= 32768 ? 32 : 4;
    int rounds = n >= 1024 * 1024 ? 10 : 40;
    void *v[32];
    for (int r = 0; r < rounds; r++) {
      for (int j = 0; j < batch; j++) {
        v[j] = A->malloc(n);
        assert_non_null(v[j]);
        memset(v[j], 0xff, A->usable(v[j]));
      }
      for (int j = 0; j < batch; j++) A->free(v[j]);
      for (int j = 0; j < batch; j++) {
        /* alternate count/size order; both mean n bytes */
        v[j] = (j & 1) ? A->calloc(n, 1) : A->calloc(1, n);
        assert_non_null(v[j]);
        if (!all_bytes_equal(v[j], n, 0))
          fail_msg("%s calloc(%zu) round %d returned non-zero memory at %p", A->name, n, r, v[j]);
        memset(v[j], 0xff, A->usable(v[j]));
      }
      for (int j = 0; j < batch; j++) A->free(v[j]);
    }
    /* element-count form with a realistic struct size */
    void *p = A->calloc(n / 12 + 1, 12);
    assert_non_null(p);
    assert_true(all_bytes_equal(p, (n / 12 + 1) * 12, 0));
    A->free(p);
  }
  assert_heap_ok();
}

/* ---- version and statistics -------------------------------------------- */

static void test_version(void **state) {
  (void)state;
  const char *v = arena_version();
  assert_non_null(v);
  assert_string_equal(v, ARENA_VERSION_STRING);
  char buf[32];
  snprintf(buf, sizeof buf, "%d.%d.%d", ARENA_VERSION_MAJOR, ARENA_VERSION_MINOR, ARENA_VERSION_PATCH);
  assert_string_equal(v, buf);
}

static void test_stats_get_validation(void **state) {
  (void)state;
  struct arena_stats s;
  assert_int_equal(arena_stats_get(NULL), EINVAL);
  memset(&s, 0, sizeof s);
  s.version = ARENA_STATS_VERSION + 1;
  s.size = sizeof s;
  assert_int_equal(arena_stats_get(&s), EINVAL);
  s.version = 0;
  assert_int_equal(arena_stats_get(&s), EINVAL);
  s.version = ARENA_STATS_VERSION;
  s.size = sizeof s - 8;
  assert_int_equal(arena_stats_get(&s), EINVAL);
  s.size = sizeof s + 8;
  assert_int_equal(arena_stats_get(&s), EINVAL);
  s.size = sizeof s;
  assert_int_equal(arena_stats_get(&s), 0);
  assert_int_equal(s.version, ARENA_STATS_VERSION);
  assert_int_equal(s.size, sizeof s);
}

#define assert_ge(a, b)                                                                                      \
  do {                                                                                                       \
    unsigned long long a_ = (a), b_ = (b);                                                                   \
    if (a_ < b_) fail_msg("%s = %llu, expected >= %s = %llu", #a, a_, #b, b_);                               \
  } while (0)

static void check_stats_sane(const struct arena_stats *s) {
  assert_ge(s->peak_allocated_bytes, s->allocated_bytes);
  assert_ge(s->peak_requested_bytes, s->requested_bytes);
  assert_ge(s->peak_mapped_bytes, s->mapped_bytes);
  assert_ge(s->allocated_bytes, s->requested_bytes);
  assert_ge(s->mapped_bytes, s->allocated_bytes);
  assert_ge(s->mapped_bytes, s->resident_bytes);
  assert_ge(s->thread_generations, s->threads);
  assert_ge(s->threads, 1);
  assert_ge(s->chunks, s->cached_chunks);
  uint64_t prev = 0, maxbs = 0;
  int used = 0;
  for (int i = 0; i < ARENA_STATS_CLASSES; i++) {
    const struct arena_class_stats *c = &s->classes[i];
    if (c->block_size == 0) continue;
    used++;
    if (c->block_size % 16)
      fail_msg("class %d block size %llu not a multiple of 16", i, (unsigned long long)c->block_size);
    if (c->block_size <= prev)
      fail_msg("class %d block size %llu not increasing", i, (unsigned long long)c->block_size);
    prev = maxbs = c->block_size;
    assert_ge(c->capacity, c->live_blocks);
  }
  assert_true(used > 4);
  assert_ge(maxbs, 32768); /* small blocks go up to 32 KiB */
}

/* Freed huge blocks serve later huge requests of other sizes without new
 * mappings: a freed 48 MiB block is cut into three 12 MiB ones whose contents
 * stay apart, and they merge back into one that serves 48 MiB again. */
static void test_huge_cache_split_merge(void **state) {
  (void)state;
  unsigned char *big = malloc(48 * MiB);
  assert_non_null(big);
  memset(big, 0x5a, 48 * MiB);
  free(big);
  struct arena_stats s0 = stats_now();
  unsigned char *p[3];
  for (int i = 0; i < 3; i++) {
    p[i] = malloc(12 * MiB);
    assert_non_null(p[i]);
    memset(p[i], i + 1, 12 * MiB);
  }
  struct arena_stats s1 = stats_now();
  check_stats_sane(&s1);
  if (s1.os_maps != s0.os_maps)
    fail_msg("three 12 MiB blocks took %llu new mappings beside a freed 48 MiB one",
             (unsigned long long)(s1.os_maps - s0.os_maps));
  for (int i = 0; i < 3; i++)
    for (size_t j = 0; j < 12 * MiB; j += 4093)
      if (p[i][j] != i + 1) fail_msg("block %d byte %zu is %d: split blocks overlap", i, j, p[i][j]);
  for (int i = 0; i < 3; i++) free(p[i]);
  unsigned char *again = malloc(48 * MiB);
  assert_non_null(again);
  struct arena_stats s2 = stats_now();
  if (s2.os_maps != s0.os_maps) fail_msg("the freed pieces did not merge back: a new mapping for 48 MiB");
  memset(again, 7, 48 * MiB);
  free(again);
}

static void test_stats_counters(void **state) {
  (void)state;
  struct arena_stats s0 = stats_now();
  check_stats_sane(&s0);

  /* huge */
  size_t hn = 3 * MiB;
  void *h = malloc(hn);
  assert_non_null(h);
  memset(h, 1, hn);
  struct arena_stats s1 = stats_now();
  check_stats_sane(&s1);
  assert_ge(s1.allocated_bytes, s0.allocated_bytes + hn);
  assert_ge(s1.requested_bytes, s0.requested_bytes + hn);
  assert_ge(s1.huge_blocks, s0.huge_blocks + 1);
  assert_ge(s1.huge_bytes, s0.huge_bytes + hn);
  assert_ge(s1.mapped_bytes, s1.huge_bytes);
  assert_ge(s1.os_maps, 1);
  assert_ge(s1.resident_bytes, 2 * MiB); /* we touched 3 MiB */
  free(h);
  struct arena_stats s2 = stats_now();
  assert_int_equal(s2.huge_blocks, s1.huge_blocks - 1);
  assert_ge(s1.allocated_bytes - hn, s2.allocated_bytes);

  /* large */
  size_t ln = 200 * KiB;
  void *l = malloc(ln);
  assert_non_null(l);
  struct arena_stats s3 = stats_now();
  check_stats_sane(&s3);
  assert_ge(s3.large_blocks, s2.large_blocks + 1);
  assert_ge(s3.large_bytes, s2.large_bytes + ln);
  assert_ge(s3.allocated_bytes, s2.allocated_bytes + ln);
  assert_ge(s3.chunks, 1);
  free(l);
  struct arena_stats s4 = stats_now();
  assert_int_equal(s4.large_blocks, s3.large_blocks - 1);
  assert_ge(s3.large_bytes - ln, s4.large_bytes);

  /* small: 20000 blocks of 100 bytes */
  enum { NS = 20000 };
  void **v = malloc(NS * sizeof *v);
  assert_non_null(v);
  struct arena_stats s5 = stats_now();
  for (int i = 0; i < NS; i++) {
    v[i] = malloc(100);
    assert_non_null(v[i]);
  }
  struct arena_stats s6 = stats_now();
  check_stats_sane(&s6);
  assert_ge(s6.allocated_bytes, s5.allocated_bytes + NS * 100 / 2);
  assert_ge(s6.requested_bytes, s5.requested_bytes + NS * 100 / 2);
  assert_ge(s6.peak_allocated_bytes, s6.allocated_bytes);
  uint64_t live = 0, spans = 0;
  for (int i = 0; i < ARENA_STATS_CLASSES; i++) {
    if (s6.classes[i].block_size >= 100) {
      live = s6.classes[i].live_blocks;
      spans = s6.classes[i].spans;
      break;
    }
  }
  assert_ge(live, NS / 2);
  assert_ge(spans, 1);
  for (int i = 0; i < NS; i++) free(v[i]);
  free(v);
  assert_heap_ok();
}

struct sink {
  char buf[1 << 17];
  size_t len;
  int calls;
};

static void sink_write(void *arg, const char *text, size_t len) {
  struct sink *s = arg;
  s->calls++;
  if (len > sizeof s->buf - 1 - s->len) len = sizeof s->buf - 1 - s->len;
  memcpy(s->buf + s->len, text, len);
  s->len += len;
  s->buf[s->len] = 0;
}

/* Minimal JSON validator (RFC 8259 grammar, no semantic checks). */
static const char *json_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}
static const char *json_value(const char *p, int depth);
static const char *json_string(const char *p) {
  if (*p != '"') return NULL;
  p++;
  while (*p && *p != '"') {
    if ((unsigned char)*p < 0x20) return NULL;
    if (*p == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
        p += 4;
      } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
        return NULL;
      }
    }
    p++;
  }
  return *p == '"' ? p + 1 : NULL;
}
static const char *json_number(const char *p) {
  const char *s = p;
  if (*p == '-') p++;
  if (*p == '0')
    p++;
  else if (*p >= '1' && *p <= '9')
    while (*p >= '0' && *p <= '9') p++;
  else
    return NULL;
  if (*p == '.') {
    p++;
    if (!(*p >= '0' && *p <= '9')) return NULL;
    while (*p >= '0' && *p <= '9') p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!(*p >= '0' && *p <= '9')) return NULL;
    while (*p >= '0' && *p <= '9') p++;
  }
  return p > s ? p : NULL;
}
static const char *json_value(const char *p, int depth) {
  if (depth > 64) return NULL;
  p = json_ws(p);
  if (*p == '{') {
    p = json_ws(p + 1);
    if (*p == '}') return p + 1;
    for (;;) {
      p = json_string(json_ws(p));
      if (!p) return NULL;
      p = json_ws(p);
      if (*p != ':') return NULL;
      p = json_value(p + 1, depth + 1);
      if (!p) return NULL;
      p = json_ws(p);
      if (*p == ',') {
        p++;
        continue;
      }
      return *p == '}' ? p + 1 : NULL;
    }
  }
  if (*p == '[') {
    p = json_ws(p + 1);
    if (*p == ']') return p + 1;
    for (;;) {
      p = json_value(p, depth + 1);
      if (!p) return NULL;
      p = json_ws(p);
      if (*p == ',') {
        p++;
        continue;
      }
      return *p == ']' ? p + 1 : NULL;
    }
  }
  if (*p == '"') return json_string(p);
  if (!strncmp(p, "true", 4)) return p + 4;
  if (!strncmp(p, "false", 5)) return p + 5;
  if (!strncmp(p, "null", 4)) return p + 4;
  return json_number(p);
}

static void test_stats_print(void **state) {
  (void)state;
  void *keep = malloc(300000); /* something to report */
  assert_non_null(keep);
  static struct sink text, json;
  memset(&text, 0, sizeof text);
  memset(&json, 0, sizeof json);
  arena_stats_print(sink_write, &text, ARENA_STATS_TEXT);
  assert_true(text.calls >= 1);
  assert_true(text.len > 40);
  assert_true(text.len < sizeof text.buf - 1);
  assert_int_equal(strlen(text.buf), text.len); /* no NUL bytes in the report */
  assert_non_null(strchr(text.buf, '\n'));

  arena_stats_print(sink_write, &json, ARENA_STATS_JSON);
  assert_true(json.calls >= 1);
  assert_true(json.len > 40);
  assert_int_equal(strlen(json.buf), json.len);
  const char *end = json_value(json.buf, 0);
  if (!end || *json_ws(end) != 0)
    fail_msg("arena_stats_print JSON does not parse near offset %ld:\n%s", end ? (long)(end - json.buf) : -1L,
             json.buf);
  assert_int_equal(*json_ws(json.buf), '{');
  static const char *keys[] = {"\"allocated_bytes\"", "\"mapped_bytes\"", "\"chunks\"",
                               "\"huge_blocks\"",     "\"large_blocks\"", "\"thread_generations\""};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (!strstr(json.buf, keys[i])) fail_msg("JSON report lacks key %s:\n%s", keys[i], json.buf);

  /* NULL callback: the report goes to stderr */
  fflush(stderr);
  int saved = dup(2);
  assert_true(saved >= 0);
  char path[] = "/tmp/arena-stats-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  dup2(fd, 2);
  arena_stats_print(NULL, NULL, ARENA_STATS_TEXT);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  close(fd);
  assert_true(st.st_size > 40);
  free(keep);
}

/* Every malloc-family symbol resolves to libarena (the shared library, or
 * this executable when linked with libarena.a), never to glibc. */
static void test_symbols_overridden(void **state) {
  (void)state;
  static const char *names[] = {"malloc",
                                "free",
                                "calloc",
                                "realloc",
                                "reallocarray",
                                "posix_memalign",
                                "aligned_alloc",
                                "memalign",
                                "valloc",
                                "pvalloc",
                                "malloc_usable_size",
                                "free_sized",
                                "free_aligned_sized",
                                "cfree",
                                "__libc_malloc",
                                "__libc_free",
                                "__libc_calloc",
                                "__libc_realloc",
                                "__libc_memalign",
                                "__libc_valloc",
                                "__libc_pvalloc"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    void *sym = dlsym(RTLD_DEFAULT, names[i]);
    if (!sym) fail_msg("%s is not defined", names[i]);
    Dl_info info;
    if (!dladdr(sym, &info) || !info.dli_fname) fail_msg("dladdr(%s) failed", names[i]);
    if (strstr(info.dli_fname, "libc.so") || strstr(info.dli_fname, "ld-linux"))
      fail_msg("%s resolves to %s, not libarena", names[i], info.dli_fname);
  }
}

static void test_heap_check_final(void **state) {
  (void)state;
  assert_heap_ok();
}

#define BOTH(f)                                                                                              \
  {#f "[libc]", f, NULL, NULL, (void *)&api_libc}, { #f "[arena_*]", f, NULL, NULL, (void *)&api_arena }

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_malloc_zero_unique),
      BOTH(test_size_class_sweep),
      BOTH(test_impossible_sizes),
      BOTH(test_calloc_overflow),
      cmocka_unit_test(test_reallocarray),
      BOTH(test_realloc_failure_keeps_block),
      BOTH(test_realloc_zero_frees),
      BOTH(test_realloc_null_is_malloc),
      BOTH(test_realloc_chain),
      BOTH(test_realloc_small_steps),
      BOTH(test_posix_memalign_bad_alignment),
      cmocka_unit_test(test_aligned_alloc_odd_alignment_libc),
      cmocka_unit_test(test_aligned_alloc_odd_alignment_arena),
      cmocka_unit_test(test_memalign_odd_alignment),
      BOTH(test_alignment_sweep),
      cmocka_unit_test(test_valloc_pvalloc),
      BOTH(test_free_null_and_errno),
      cmocka_unit_test(test_usable_size_null),
      cmocka_unit_test(test_free_sized),
      cmocka_unit_test(test_cross_api),
      BOTH(test_calloc_zeroes_recycled),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_stats_get_validation),
      cmocka_unit_test(test_stats_counters),
      cmocka_unit_test(test_huge_cache_split_merge),
      cmocka_unit_test(test_stats_print),
      cmocka_unit_test(test_symbols_overridden),
      cmocka_unit_test(test_heap_check_final),
  };
  apply_test_filter();
  catch_aborts();
  return cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
}
