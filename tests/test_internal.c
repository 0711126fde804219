/* Unit tests of libarena's internals, linked with lib/libarena.a and reading
 * lib/internal.h: the size-class table, span lists, and the back end's
 * coalescing and chunk release. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* ---- size classes -------------------------------------------------------- */

static void test_class_table(void **state) {
  (void)state;
  void *warm = malloc(1); /* initialises the tables */
  free(warm);
  for (size_t n = 0; n <= SMALL_MAX; n++) {
    unsigned c = size_class(n);
    assert_true(c < NUM_CLASSES);
    uint32_t size = classes[c].block_size;
    if (size < n) fail_msg("size %zu maps to class %u of %u bytes", n, c, size);
    if (c > 0 && classes[c - 1].block_size >= n && n > 0)
      fail_msg("size %zu maps to class %u, but class %u (%u bytes) fits", n, c, c - 1,
               classes[c - 1].block_size);
    if (n > 128 && (size - n) * 8 >= n)
      fail_msg("size %zu wastes %u bytes in class %u (>= 12.5%%)", n, size - (uint32_t)n, size);
  }
  assert_int_equal(classes[NUM_CLASSES - 1].block_size, SMALL_MAX);
}

static void test_class_geometry(void **state) {
  (void)state;
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    const struct class_info *ci = &classes[c];
    assert_int_equal(ci->block_size % MIN_ALIGN, 0);
    if (c) assert_true(ci->block_size > classes[c - 1].block_size);
    /* less than a block of slack, and none but where the class is padded */
    uint64_t slack = (uint64_t)ci->span_pages * PAGE_SIZE - (uint64_t)ci->block_size * ci->capacity;
    assert_true(slack < ci->block_size);
    bool padded = ci->block_size >= PAGE_SIZE && ci->block_size % 1024 == 64;
    if (!padded) assert_int_equal(slack, 0);
    /* blocks of 4 KiB and up start on at least 8 of a page's 64 line
     * positions (8 ways each), except the largest class, kept page-aligned */
    if (ci->block_size >= PAGE_SIZE && c + 1 < NUM_CLASSES)
      assert_true((ci->block_size & (0u - ci->block_size)) <= 512);
    assert_true(ci->capacity >= 4 && ci->capacity <= 256);
    /* the multiply test agrees with % for every offset of the span */
    for (uint32_t off = 0; off < ci->span_pages * PAGE_SIZE; off += 8) {
      bool by_magic = (uint64_t)off * ci->div_magic < ci->div_magic;
      if (by_magic != (off % ci->block_size == 0)) fail_msg("class %u: offset %u misjudged", c, off);
    }
  }
}

/* span_holds_block's one compare says "a carved block's start" for exactly
 * those offsets, for every class and carved count, over the whole range free
 * can produce (p anywhere in the span's chunk, below the span's base too). */
static void test_block_bound(void **state) {
  (void)state;
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    const struct class_info *ci = &classes[c];
    struct span s = {.kind = SPAN_SMALL, .block_size = ci->block_size, .div_magic = ci->div_magic};
    const uint32_t carved[] = {0, 1, ci->capacity / 2, ci->capacity};
    for (int k = 0; k < 4; k++) {
      span_set_limit(&s, carved[k] * ci->block_size);
      for (int64_t off = -(int64_t)CHUNK_SIZE; off < (int64_t)CHUNK_SIZE; off += off & 7 ? 7 : 1) {
        bool want = off >= 0 && off % ci->block_size == 0 && off / ci->block_size < carved[k];
        if (span_holds_block(&s, (uint64_t)off) != want)
          fail_msg("class %u, %u blocks carved: offset %lld misjudged", c, carved[k], (long long)off);
      }
    }
    s.kind = SPAN_LARGE; /* any other kind holds no block */
    span_set_limit(&s, ci->capacity * ci->block_size);
    assert_false(span_holds_block(&s, 0));
  }
}

/* ---- span lists ---------------------------------------------------------- */

static void test_span_lists(void **state) {
  (void)state;
  struct span s[4];
  struct span_list l = {0};
  memset(s, 0, sizeof s);
  span_list_push(&l, &s[0], LIST_PARTIAL);
  span_list_push(&l, &s[1], LIST_PARTIAL);
  span_list_push_tail(&l, &s[2], LIST_PARTIAL);
  span_list_push_tail(&l, &s[3], LIST_PARTIAL);
  /* order: 1 0 2 3 */
  assert_ptr_equal(l.head, &s[1]);
  assert_ptr_equal(l.head->next, &s[0]);
  assert_ptr_equal(l.head->next->next, &s[2]);
  assert_ptr_equal(l.tail, &s[3]);
  assert_int_equal(l.count, 4);
  span_list_remove(&l, &s[3]);
  assert_ptr_equal(l.tail, &s[2]);
  span_list_remove(&l, &s[1]);
  assert_ptr_equal(l.head, &s[0]);
  assert_null(s[0].prev);
  span_list_remove(&l, &s[0]);
  span_list_remove(&l, &s[2]);
  assert_null(l.head);
  assert_null(l.tail);
  assert_int_equal(l.count, 0);
  assert_int_equal(s[2].list, LIST_NONE);
}

/* ---- back end ------------------------------------------------------------ */

#define RUN_PAGES 20

static struct span *run_of(void *p) {
  struct chunk *c = chunk_of(p);
  return c->pagemap[page_index(c, p)];
}

/* Five large blocks carved one after another from a fresh chunk's head lie
 * side by side in address order. Free the 2nd and 4th, then the 3rd between
 * them: one free run of three blocks' pages, bounded by the 1st and 5th,
 * which are still in use. */
static void test_coalescing(void **state) {
  (void)state;
  size_t bytes = RUN_PAGES * PAGE_SIZE;
  void *b[5];
  for (int i = 0; i < 5; i++) {
    b[i] = backend_alloc_large(bytes, PAGE_SIZE, bytes, false, true);
    assert_non_null(b[i]);
  }
  for (int i = 1; i < 5; i++)
    if ((char *)b[i - 1] + bytes != (char *)b[i]) fail_msg("blocks %d and %d are not adjacent", i - 1, i);
  backend_free_large(run_of(b[1]));
  backend_free_large(run_of(b[3]));
  struct span *r1 = run_of(b[1]), *r3 = run_of(b[3]);
  assert_int_equal(r1->kind, SPAN_FREE);
  assert_int_equal(r3->kind, SPAN_FREE);
  assert_int_equal(r1->npages, RUN_PAGES);
  backend_free_large(run_of(b[2]));
  struct span *merged = run_of(b[1]);
  assert_int_equal(merged->kind, SPAN_FREE);
  assert_ptr_equal(merged->base, b[1]);
  assert_int_equal(merged->npages, 3 * RUN_PAGES);
  struct chunk *c = chunk_of(b[3]);
  assert_ptr_equal(c->pagemap[page_index(c, b[3]) + RUN_PAGES - 1], merged); /* boundary tag */
  assert_int_equal(run_of(b[0])->kind, SPAN_LARGE);
  assert_int_equal(run_of(b[4])->kind, SPAN_LARGE);
  assert_int_equal(arena_check(), 0);
  backend_free_large(run_of(b[0]));
  backend_free_large(run_of(b[4]));
  assert_int_equal(arena_check(), 0);
}

/* A large block is carved from the head of a free run, so the rest of the
 * run follows it: a larger realloc grows it in place, twice, and realloc
 * gives the same pointer. */
static void test_large_grows_in_place(void **state) {
  (void)state;
  size_t bytes = RUN_PAGES * PAGE_SIZE;
  void *guard = backend_alloc_large(bytes, PAGE_SIZE, bytes, false, true); /* whatever run is open */
  void *p = backend_alloc_large(bytes, PAGE_SIZE, bytes, false, true);
  assert_non_null(guard);
  assert_non_null(p);
  struct span *s = run_of(p);
  assert_true(backend_resize_large(s, 2 * bytes, 2 * bytes));
  assert_int_equal(s->npages, 2 * RUN_PAGES);
  void *q = arena_realloc(p, 3 * bytes);
  assert_ptr_equal(q, p);
  assert_int_equal(run_of(q)->npages, 3 * RUN_PAGES);
  assert_int_equal(arena_check(), 0);
  arena_free(q);
  arena_free(guard);
}

static uint8_t map_kind(const void *p) {
  return chunk_map[((uintptr_t)p >> CHUNK_SHIFT) & (CHUNK_MAP_ENTRIES - 1)];
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7 + seed);
}

static void expect_filled(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(i * 7 + seed)) fail_msg("byte %zu of %zu lost", i, n);
}

/* A large block that realloc must move to grow past 128 KiB goes to a mapping
 * of its own, with its old pages given back as they are copied, and grows
 * there without moving. Once such a block is freed (unmapped, not cached),
 * blocks of its size stay in chunks; a cached range smaller than 2 MiB serves
 * a grown block (its cut used to underflow). */
static void test_realloc_own_mapping(void **state) {
  (void)state;
  const size_t small = 100 << 10, mid = 300 << 10, big = 600 << 10;
  unsigned char *p = arena_malloc(small), *blocker = arena_malloc(small);
  assert_non_null(p);
  assert_non_null(blocker);
  fill(p, small, 1);
  char *old_pages = run_of(p)->base;
  assert_ptr_equal(run_of(blocker)->base,
                   old_pages + (size_t)run_of(p)->npages * PAGE_SIZE); /* no room to grow */
  unsigned char *q = arena_realloc(p, mid);
  assert_non_null(q);
  expect_filled(q, small, 1);
  assert_int_equal(map_kind(q), MAP_HUGE);
  assert_int_equal(os_resident(old_pages, small), 0);
  fill(q, mid, 2);
  unsigned char *r = arena_realloc(q, big);
  assert_ptr_equal(r, q);
  expect_filled(r, mid, 2);
  uint64_t mapped = backend_stats.mapped, cached = backend_cached_huge_bytes();
  arena_free(r);
  assert_true(backend_stats.mapped < mapped);
  assert_int_equal(backend_cached_huge_bytes(), cached);

  p = arena_malloc(small);
  assert_non_null(p);
  fill(p, small, 3);
  q = arena_realloc(p, big); /* no longer above the threshold */
  assert_non_null(q);
  assert_int_equal(map_kind(q), MAP_CHUNK);
  expect_filled(q, small, 3);
  arena_free(q);

  backend_decay(true);
  unsigned char *h = arena_malloc((size_t)8 << 20);
  assert_non_null(h);
  h = arena_realloc(h, (size_t)3 << 19); /* 1.5 MiB: its mapping is trimmed to the block's end */
  assert_non_null(h);
  size_t kept = (size_t)(h - (unsigned char *)huge_header_of(h)) + ((size_t)3 << 19);
  arena_free(h);
  assert_true(backend_cached_huge_bytes() > 0 && backend_cached_huge_bytes() < kept + PAGE_SIZE);
  p = arena_aligned_alloc((size_t)128 << 10, small); /* its user pointer may lie pages into its run */
  assert_non_null(p);
  /* Fill the free run after it, if any, so that realloc must move it. */
  struct span *aligned = run_of(p);
  size_t next_page = span_page(aligned) + aligned->npages;
  void *fillers[64];
  int nfill = 0;
  while (nfill < 64 && next_page < END_PAGE && span_chunk(aligned)->pagemap[next_page]->kind == SPAN_FREE) {
    struct span *r = span_chunk(aligned)->pagemap[next_page];
    fillers[nfill] = backend_alloc_large((size_t)r->npages * PAGE_SIZE, PAGE_SIZE, 1, false, false);
    assert_non_null(fillers[nfill]);
    nfill++;
  }
  assert_true(nfill < 64);
  fill(p, small, 6);
  q = arena_realloc(p, big + PAGE_SIZE);
  assert_non_null(q);
  assert_int_equal(map_kind(q), MAP_HUGE);
  expect_filled(q, small, 6);
  assert_true(backend_cached_huge_bytes() < CHUNK_SIZE); /* what is left of the range, if anything */
  fill(q, big + PAGE_SIZE, 4);
  h = arena_malloc((size_t)4 << 20);
  assert_non_null(h);
  memset(h, 5, (size_t)4 << 20);
  expect_filled(q, big + PAGE_SIZE, 4);
  assert_int_equal(arena_check(), 0);
  arena_free(h);
  arena_free(q);
  arena_free(blocker);
  for (int i = 0; i < nfill; i++) backend_free_large(run_of(fillers[i]));
}

/* An aligned small request takes an aligned class at most twice its size, or
 * a page run: the padded classes (64-byte aligned) must not send a 4 KiB
 * request with 4 KiB alignment up to the 64 KiB class. */
static void test_aligned_small_waste(void **state) {
  (void)state;
  static const size_t aligns[] = {64, 256, 1024, 2048, 4096};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++)
    for (size_t n = 16; n <= SMALL_MAX; n += n / 4 + 16) {
      size_t a = aligns[i], m = n > a ? n : a;
      void *p = arena_aligned_alloc(a, n);
      assert_non_null(p);
      assert_int_equal((uintptr_t)p % a, 0);
      size_t u = arena_usable_size(p);
      if (u < n || u > 2 * m) fail_msg("aligned_alloc(%zu, %zu): usable %zu", a, n, u);
      memset(p, 0x33, n);
      arena_free(p);
    }
  assert_int_equal(arena_check(), 0);
}

/* A whole span of blocks over a page that empties while the arena keeps it
 * forgets its blocks (limit 0) and, when it is used again, is carved whole; a
 * new span is carved one block per refill. Blocks stay distinct and whole.
 * The span is the first whole one the mallocs fill: the class's first spans
 * start small, and whether they grow depends on what lies after them. */
static void test_recarve_whole(void **state) {
  (void)state;
  enum { N = 64 };
  const unsigned c = size_class(16384);
  const uint32_t SIZE = classes[c].block_size;
  char *p[N];
  /* Fill the first whole span, then the span after it, so that a refill
   * follows. */
  struct span *first = NULL, *next = NULL;
  int at = -1, n = 0, in_next = 0;
  while (n < N && !(next && in_next == (int)next->capacity)) {
    p[n] = arena_malloc(SIZE);
    assert_non_null(p[n]);
    memset(p[n], n, SIZE);
    struct span *s = run_of(p[n]);
    if (!first && s->capacity == classes[c].capacity && s->limit == SIZE) first = s, at = n;
    if (first && s != first) next = s, in_next++;
    n++;
  }
  assert_non_null(next);
  assert_int_equal(n - at - in_next, first->capacity);
  assert_int_equal(first->limit, first->capacity * SIZE); /* carved a block at a time, to the end */
  for (unsigned i = 0; i < first->capacity; i++) arena_free(p[at + i]);
  assert_int_equal(first->limit, 0);
  assert_int_equal(first->recarve, 1);
  assert_int_equal(arena_check(), 0);
  for (unsigned i = 0; i < first->capacity; i++) {
    p[at + i] = arena_malloc(SIZE);
    assert_ptr_equal(run_of(p[at + i]), first);             /* the arena's only span with room */
    assert_int_equal(first->limit, first->capacity * SIZE); /* whole again at once */
    assert_int_equal(first->recarve, 0);
    memset(p[at + i], 0x5a, SIZE);
  }
  for (int i = 0; i < n; i++)
    for (uint32_t j = 0; j < SIZE; j += 512)
      assert_int_equal((unsigned char)p[i][j], i >= at && i < at + (int)first->capacity ? 0x5a : i);
  for (int i = 0; i < n; i++) arena_free(p[i]);
  assert_int_equal(arena_check(), 0);
}

/* A chunk whose last run is freed goes to the cache whole and, once decay
 * runs, is unmapped whole. */
static void test_chunk_returned_whole(void **state) {
  (void)state;
  struct arena_stats before = {.version = ARENA_STATS_VERSION, .size = sizeof before};
  struct arena_stats mid = before, after = before;
  /* a block that needs a chunk of its own: more than half a chunk */
  size_t bytes = (USABLE_PAGES - 4) * PAGE_SIZE;
  void *p = backend_alloc_large(bytes, PAGE_SIZE, bytes, false, true);
  assert_non_null(p);
  struct chunk *c = chunk_of(p);
  assert_int_equal(arena_stats_get(&before), 0);
  backend_free_large(run_of(p));
  assert_int_equal(arena_stats_get(&mid), 0);
  assert_int_equal(c->free_pages, USABLE_PAGES);
  assert_true(mid.cached_chunks >= 1);
  backend_decay(true);
  assert_int_equal(arena_stats_get(&after), 0);
  assert_int_equal(chunk_map[(uintptr_t)chunk_data(c) >> CHUNK_SHIFT], MAP_NONE);
  assert_true(after.mapped_bytes + CHUNK_SIZE <= mid.mapped_bytes);
  assert_true(after.os_unmaps > mid.os_unmaps);
}

/* A chunk's descriptors are handed out from a pool and reused: a block that
 * fills a chunk, gives back its tail (a new free run) and takes it again (the
 * run's descriptor freed), 600 times, leaves the chunk with three slots in
 * use at most (header, block, the free run), where without reuse it would
 * run out of them. */
static void test_descriptors_recycled(void **state) {
  (void)state;
  backend_decay(true); /* no cached chunk: the block gets a fresh one */
  size_t bytes = (USABLE_PAGES - GUARD_PAGES) * PAGE_SIZE;
  void *p = backend_alloc_large(bytes, PAGE_SIZE, bytes, false, true);
  assert_non_null(p);
  struct chunk *c = chunk_of(p);
  struct span *s = run_of(p);
  assert_int_equal(s->npages, USABLE_PAGES);
  for (int i = 0; i < 600; i++) {
    size_t small = (size_t)(1 + i % 50) * PAGE_SIZE;
    assert_true(backend_resize_large(s, small, small));
    assert_int_equal(s->npages, 1 + i % 50);
    assert_true(backend_resize_large(s, bytes, bytes));
    assert_int_equal(s->npages, USABLE_PAGES);
  }
  assert_true(c->descriptors_used <= 3);
  assert_int_equal(arena_check(), 0);
  backend_free_large(s);
  assert_int_equal(arena_check(), 0);
}

/* All 512 pages of a chunk serve runs (its header lies below them): a block
 * that filled a chunk and shrank to 1 MiB leaves room for a second 1 MiB
 * block; and a chunk of 512 one-page runs has a descriptor for each. */
static void test_chunk_pages_all_usable(void **state) {
  (void)state;
  assert_int_equal(USABLE_PAGES, CHUNK_PAGES - 2 * GUARD_PAGES);
  backend_decay(true);
  size_t whole = (USABLE_PAGES - GUARD_PAGES) * PAGE_SIZE, half = LARGE_MAX;
  void *p = backend_alloc_large(whole, PAGE_SIZE, whole, false, true);
  assert_non_null(p);
  struct chunk *c = chunk_of(p);
  struct span *s = run_of(p);
  assert_true(backend_resize_large(s, half, half));
  struct span *rest = c->pagemap[FIRST_PAGE + s->npages];
  assert_int_equal(rest->kind, SPAN_FREE);
  assert_true(rest->npages * PAGE_SIZE >= LARGE_MAX);
  backend_free_large(s);

  /* enough to fill the other tests' chunks' free pages, then a new chunk */
  enum { N = 3 * CHUNK_PAGES };
  static void *pages[N];
  for (size_t i = 0; i < N; i++) {
    pages[i] = backend_alloc_large(PAGE_SIZE, PAGE_SIZE, PAGE_SIZE, false, true);
    assert_non_null(pages[i]);
  }
  struct chunk *last = chunk_of(pages[N - 1]);
  size_t in_last = 0;
  for (size_t i = 0; i < N; i++) in_last += chunk_of(pages[i]) == last;
  /* the chunk taken before the last one holds nothing but these pages */
  struct chunk *filled = chunk_of(pages[N - 1 - in_last]);
  size_t in_filled = 0;
  for (size_t i = 0; i < N; i++) in_filled += chunk_of(pages[i]) == filled;
  assert_int_equal(in_filled, USABLE_PAGES); /* one descriptor per page, and the header's */
  assert_int_equal(filled->free_pages, 0);
  assert_int_equal(arena_check(), 0);
  for (size_t i = 0; i < N; i++) backend_free_large(run_of(pages[i]));
  assert_int_equal(arena_check(), 0);
}

/* The xfree words of neighbouring descriptors, which are often in use at
 * once by different threads, lie on different cache lines; every descriptor
 * has a word of its own. */
static void test_xfree_words_spread(void **state) {
  (void)state;
  void *p = arena_malloc(64);
  struct chunk *c = chunk_of(p);
  static bool taken[XFREE_WORDS];
  for (size_t k = 0; k < DESCRIPTOR_SLOTS; k++) {
    size_t w = (size_t)(span_xfree(&c->spans[k]) - c->xfree);
    assert_true(w < XFREE_WORDS);
    if (taken[w]) fail_msg("descriptors share xfree word %zu", w);
    taken[w] = true;
    if (k % 64 != 63 && k + 1 < DESCRIPTOR_SLOTS &&
        (uintptr_t)span_xfree(&c->spans[k]) / 64 == (uintptr_t)span_xfree(&c->spans[k + 1]) / 64)
      fail_msg("descriptors %zu and %zu have their xfree words on one line", k, k + 1);
  }
  arena_free(p);
}

/* A freed huge buffer holds two blocks of half its size, so a program that
 * frees one and takes two (sort does, with 16 and 8 MiB) makes no new mapping
 * and keeps its peak: the halves lie on the buffer's pages, and freed, they
 * merge and hold the whole again on the same pages. */
static void test_huge_cache_halves(void **state) {
  (void)state;
  const size_t half = ((size_t)8 << 20) + 32; /* sort's size, not a page multiple */
  backend_decay(true);
  unsigned char *big = arena_malloc(2 * half);
  assert_non_null(big);
  memset(big, 1, 2 * half);
  uint64_t maps = backend_stats.os_maps, mapped = backend_stats.mapped;
  arena_free(big);
  for (int round = 0; round < 2; round++) {
    unsigned char *a = arena_malloc(half), *b = arena_malloc(half);
    assert_non_null(a);
    assert_non_null(b);
    /* Both lie on pages the whole one wrote (the second's last page aside),
     * not a cut apart with pages between them written and unused. */
    size_t a_pages = os_resident(a - 64, half + 64), b_pages = os_resident(b - 64, half + 64);
    if (a_pages < half + 64 || b_pages + PAGE_SIZE < half + 64)
      fail_msg("the halves are on %zu and %zu resident bytes of %zu each", a_pages, b_pages, half + 64);
    memset(a, 2, half);
    memset(b, 3, half);
    /* usable ends in the request's last page, not at the mapping's end */
    assert_true(arena_usable_size(a) >= half && arena_usable_size(a) < half + PAGE_SIZE);
    if (backend_stats.os_maps != maps || backend_stats.mapped != mapped)
      fail_msg("two blocks of %zu bytes took %llu new mappings (%lld bytes) beside a freed one of %zu", half,
               (unsigned long long)(backend_stats.os_maps - maps), (long long)(backend_stats.mapped - mapped),
               2 * half);
    for (size_t i = 0; i < half; i += 4093) {
      assert_int_equal(a[i], 2);
      assert_int_equal(b[i], 3);
    }
    arena_free(a);
    unsigned char *z = arena_calloc(1, half); /* a's pages again, zeroed */
    assert_non_null(z);
    for (size_t i = 0; i < half; i += 511) assert_int_equal(z[i], 0);
    arena_free(z);
    arena_free(b);
    big = arena_malloc(2 * half);
    assert_non_null(big);
    memset(big, 4, 2 * half);
    arena_free(big);
    assert_int_equal(backend_stats.os_maps, maps);
  }
  assert_int_equal(arena_check(), 0);
}

/* The VmFlags of the mapping in /proc/self/smaps that holds p contain "hg"
 * (MADV_HUGEPAGE). */
static bool advised_huge(const void *p) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  bool in = false, hg = false;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
      in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else if (in && !strncmp(line, "VmFlags:", 8))
      hg = strstr(line, " hg") != NULL;
  }
  if (f) fclose(f);
  return hg;
}

/* A block placed at the end of its mapping's first 2 MiB uses one page of
 * them: advised for huge pages when it grows past half the huge-page
 * threshold, it keeps those 2 MiB on small pages (one huge page there would
 * be resident whole) and the rest of it on huge ones. */
static void test_late_block_first_2mib_small_pages(void **state) {
  (void)state;
  FILE *thp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r"); /* no THP: no advice to see */
  if (thp) fclose(thp);
  if (!thp || options.hugepages != HUGEPAGES_ON) skip();
  backend_decay(true);
  unsigned char *p = arena_malloc((size_t)4 << 20);
  assert_non_null(p);
  char *h = (char *)huge_header_of(p);
  assert_non_null(h);
  if ((size_t)((char *)p - h) < CHUNK_SIZE / 2) { /* on huge pages at once (the heap's huge-page phase) */
    arena_free(p);
    skip();
  }
  size_t big = options.hugepage_after / 2 + ((size_t)2 << 20);
  p = arena_realloc(p, big);
  assert_non_null(p);
  h = (char *)huge_header_of(p);
  memset(p, 1, big);
  assert_false(advised_huge(h));
  assert_true(advised_huge(h + CHUNK_SIZE));
  arena_free(p);
}

/* Fills the free runs right after span s, so that it cannot grow; returns
 * how many large blocks that took (in out[], at most 64). */
static int block_growth(struct span *s, void **out) {
  int n = 0;
  for (size_t next = span_page(s) + s->npages;
       n < 64 && next < END_PAGE && span_chunk(s)->pagemap[next]->kind == SPAN_FREE; n++) {
    out[n] = backend_alloc_large((size_t)span_chunk(s)->pagemap[next]->npages * PAGE_SIZE, PAGE_SIZE, 1,
                                 false, false);
    if (!out[n]) break;
  }
  return n;
}

/* A class's first spans in an arena hold only its first pages and grow in
 * place while the pages after them are free; blocked, they stay as they are
 * (capped), and after SMALL_FIRST_SPANS of them the class's spans are whole. */
static void *first_span_grows(void *arg) {
  (void)arg;
  const size_t size = 20000;
  const unsigned c = size_class(size);
  const struct class_info *ci = &classes[c];
  void *p[16];
  p[0] = arena_malloc(size);
  struct span *s = run_of(p[0]);
  if (s->npages != ci->first_pages || s->capacity != span_capacity(c, ci->first_pages) ||
      s->capacity >= ci->capacity)
    return "a class's first span did not start at its first pages";
  size_t next = span_page(s) + s->npages;
  struct span *after = next < END_PAGE ? span_chunk(s)->pagemap[next] : NULL;
  bool room = after && after->kind == SPAN_FREE && after->npages >= ci->span_pages - s->npages;
  for (uint32_t i = 1; i < ci->capacity; i++) p[i] = arena_malloc(size);
  for (uint32_t i = 1; i < ci->capacity; i++)
    if (room && run_of(p[i]) != s) return "a first span with room after it did not grow";
  if (room && (s->npages != ci->span_pages || s->capacity != ci->capacity || !s->capped))
    return "a grown span is not whole";
  if (!room && !s->capped) return "a first span without room after it is not capped";
  for (uint32_t i = 0; i < ci->capacity; i++) arena_free(p[i]);
  if (arena_check()) return "heap check failed";

  /* Blocked from the start: the first SMALL_FIRST_SPANS spans of another
   * class stay at their first pages, the next ones are whole. */
  const size_t big = 65536;
  const unsigned cb = size_class(big);
  const uint32_t first_cap = span_capacity(cb, classes[cb].first_pages);
  void *q[64], *fill[SMALL_FIRST_SPANS][64];
  int nfill[SMALL_FIRST_SPANS], nq = 0;
  struct span *small[SMALL_FIRST_SPANS];
  for (int k = 0; k < SMALL_FIRST_SPANS; k++) {
    q[nq++] = arena_malloc(big);
    small[k] = run_of(q[nq - 1]);
    if ((k && small[k] == small[k - 1]) || small[k]->npages != classes[cb].first_pages)
      return "one of a class's first spans did not start small";
    nfill[k] = block_growth(small[k], fill[k]);
    for (uint32_t i = 1; i < first_cap; i++) q[nq++] = arena_malloc(big);
  }
  struct span *whole = NULL;
  for (uint32_t i = 0; i < classes[cb].capacity && nq < 64; i++) {
    q[nq++] = arena_malloc(big);
    if (!whole) whole = run_of(q[nq - 1]);
    if (run_of(q[nq - 1]) != whole) return "a whole span did not take its capacity";
  }
  for (int k = 0; k < SMALL_FIRST_SPANS; k++)
    if (small[k]->capacity != first_cap || !small[k]->capped) return "a blocked first span grew";
  for (int k = 0; k < SMALL_FIRST_SPANS; k++)
    if (whole == small[k]) return "a capped span took more blocks";
  if (whole->npages != classes[cb].span_pages) return "the span after the small ones is not whole";
  for (int i = 0; i < nq; i++) arena_free(q[i]);
  /* Emptied, the capped spans go back to the back end; the whole one stays. */
  struct arena_stats st = {.version = ARENA_STATS_VERSION, .size = sizeof st};
  arena_stats_get(&st);
  for (int k = 0; k < SMALL_FIRST_SPANS; k++)
    for (int i = 0; i < nfill[k]; i++) backend_free_large(run_of(fill[k][i]));
  if (st.classes[cb].spans != 1 || st.classes[cb].capacity != classes[cb].capacity)
    return "an emptied capped span was kept";
  return arena_check() ? "heap check failed" : NULL;
}

static void test_first_span_grows(void **state) {
  (void)state;
  pthread_t t;
  void *err = NULL;
  assert_int_equal(pthread_create(&t, NULL, first_span_grows, NULL), 0);
  assert_int_equal(pthread_join(t, &err), 0);
  if (err) fail_msg("%s", (const char *)err);
}

/* Before the heap grows, arena_trim gives back a current span found empty
 * twice in a row (once is not enough: a program cycling through a class
 * empties its span for a moment), and the back end, asked not to grow, maps
 * nothing. */
static void test_trim_before_growth(void **state) {
  (void)state;
  const size_t big = 60 * 1024; /* a class of 4-block spans of 61 pages */
  const unsigned cls = size_class(big);
  const size_t span_bytes = (size_t)classes[cls].span_pages * PAGE_SIZE;
  const uint32_t n_blocks = classes[cls].capacity; /* one span's worth */
  void *blocks[8];
  assert_true(n_blocks <= 8);
  /* The class's first span in this arena starts small; give it back, so
   * that the span below is whole. */
  arena_free(arena_malloc(big));
  arena_trim(false);
  arena_trim(false);
  for (uint32_t i = 0; i < n_blocks; i++) blocks[i] = arena_malloc(big);
  for (uint32_t i = 0; i < n_blocks; i++) arena_free(blocks[i]);
  struct arena_stats st = {.version = ARENA_STATS_VERSION, .size = sizeof st};
  assert_int_equal(arena_stats_get(&st), 0);
  assert_int_equal(st.classes[cls].spans, 1); /* the emptied span is still the current one */
  arena_trim(false);
  assert_int_equal(arena_stats_get(&st), 0);
  assert_int_equal(st.classes[cls].spans, 1);
  arena_trim(false);
  assert_int_equal(arena_stats_get(&st), 0);
  assert_int_equal(st.classes[cls].spans, 0);

  backend_decay(true);
  uint64_t chunks = backend_stats.chunks;
  void *fill[4096];
  int n = 0;
  while (n < 4096 && (fill[n] = backend_alloc_large(span_bytes, PAGE_SIZE, span_bytes, false, false))) n++;
  assert_true(n > 0 && n < 4096); /* the given-back span at least */
  assert_int_equal(backend_stats.chunks, chunks);
  for (int i = 0; i < n; i++) backend_free_large(run_of(fill[i]));
  assert_int_equal(arena_check(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_class_table),
      cmocka_unit_test(test_class_geometry),
      cmocka_unit_test(test_block_bound),
      cmocka_unit_test(test_recarve_whole),
      cmocka_unit_test(test_span_lists),
      cmocka_unit_test(test_coalescing),
      cmocka_unit_test(test_large_grows_in_place),
      cmocka_unit_test(test_realloc_own_mapping), /* first to grow a buffer past 128 KiB */
      cmocka_unit_test(test_chunk_returned_whole),
      cmocka_unit_test(test_huge_cache_halves),
      cmocka_unit_test(test_late_block_first_2mib_small_pages),
      cmocka_unit_test(test_trim_before_growth),
      cmocka_unit_test(test_first_span_grows),
      cmocka_unit_test(test_descriptors_recycled),
      cmocka_unit_test(test_xfree_words_spread),
      cmocka_unit_test(test_chunk_pages_all_usable),
      cmocka_unit_test(test_aligned_small_waste), /* last: leaves spans of many classes */
  };
  return cmocka_run_group_tests_name("internal", tests, NULL, NULL);
}
