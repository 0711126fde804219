/* Back end: chunks, the free page runs inside them, large blocks and huge
 * blocks. One lock protects all of it; the small-block fast paths never come
 * here.
 *
 * Placement: a request for n pages takes the smallest size bin that can hold
 * it and, within the bin, the run in the fullest chunk. Taking from fuller
 * chunks lets the emptier ones drain. Spans are carved from the run's tail,
 * large blocks from its head, so that a large block has free pages after it
 * to grow into. A span that starts small (a class's first two in its arena)
 * grows in place as it is carved, and the others keep clear of its room where
 * they can. It and large blocks go where they cover the most pages written
 * before (chunk.written: resident already, so reusing them costs no RSS and no
 * page fault); see placement_score.
 *
 * Release: a freed run merges with free neighbours at once (boundary tags in
 * the page map). A chunk that becomes empty goes to a cache of empty chunks;
 * chunks in the cache longer than the decay time are unmapped, all but the
 * newest LIBARENA_CHUNK_CACHE. Freed huge mappings are cached the same way. */
#include <errno.h>
#include <string.h>

#include "internal.h"

static pthread_mutex_t backend_mutex = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
struct backend_stats backend_stats;
_Atomic uint64_t chunks_mapped_ever;

#define NUM_RUN_BINS 48
#define RUN_BIN_SCAN 16 /* runs of one bin compared for fullness */

static struct span *run_bins[NUM_RUN_BINS];
static uint64_t run_bin_bitmap;
static struct chunk *live_chunks;   /* chunks with at least one page in use */
static struct chunk *cached_chunks; /* empty chunks, newest first */
static struct huge_header *live_huge;
static struct huge_header *cached_huge; /* freed huge mappings, by address, touching ones merged */
static uint64_t cached_huge_bytes;
/* Like glibc's dynamic mmap threshold: a realloc that moves a large block
 * of at least this size puts it in a mapping of its own; a freed one raises
 * it past its size (backend_free_huge). Relaxed: a late view moves one block. */
static _Atomic size_t realloc_map_min = REALLOC_MAP_MIN;
static uint64_t active_bytes; /* pages in use by spans and large blocks, huge bytes */
static uint64_t last_decay_ms;

void backend_lock(void) { pthread_mutex_lock(&backend_mutex); }
void backend_unlock(void) { pthread_mutex_unlock(&backend_mutex); }
void backend_after_fork_child(void) { pthread_mutex_init(&backend_mutex, NULL); }

static void note_active(int64_t delta) {
  active_bytes += (uint64_t)delta;
  if (active_bytes > backend_stats.peak_active) backend_stats.peak_active = active_bytes;
}

static void note_mapped(int64_t delta) {
  backend_stats.mapped += (uint64_t)delta;
  if (backend_stats.mapped > backend_stats.peak_mapped) backend_stats.peak_mapped = backend_stats.mapped;
}

/* ---- run bins -------------------------------------------------------------
 * Exact bins for 1..32 pages, then four bins per doubling up to 512. */
static unsigned run_bin(uint32_t pages) {
  if (pages <= 32) return pages - 1;
  uint32_t x = pages - 1;
  unsigned lg = 31u - (unsigned)__builtin_clz(x);
  return 32 + 4 * (lg - 5) + ((x >> (lg - 2)) & 3);
}

static void run_insert(struct span *r) {
  unsigned b = run_bin(r->npages);
  r->prev = NULL;
  r->next = run_bins[b];
  if (r->next) r->next->prev = r;
  run_bins[b] = r;
  run_bin_bitmap |= (uint64_t)1 << b;
  r->list = LIST_RUNS;
}

static void run_remove(struct span *r) {
  unsigned b = run_bin(r->npages);
  if (r->prev)
    r->prev->next = r->next;
  else
    run_bins[b] = r->next;
  if (r->next) r->next->prev = r->prev;
  if (!run_bins[b]) run_bin_bitmap &= ~((uint64_t)1 << b);
  r->next = r->prev = NULL;
  r->list = LIST_NONE;
}

static void descriptor_retire(struct span *s) {
  s->kind = SPAN_NONE;
  span_set_limit(s, 0);
  __atomic_store_n(&s->owner, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&s->arena, NULL, __ATOMIC_RELEASE);
}

/* A slot k = 31 (mod 32) is never used: its second line would sit at page
 * offset 0, in the L1 set of the first line of every page-aligned block (see
 * struct chunk). The other 527 are enough for the most runs a chunk can have,
 * one per usable page, and the header's. */
_Static_assert(1 + USABLE_PAGES <= DESCRIPTOR_SLOTS - DESCRIPTOR_SLOTS / 32,
               "a descriptor for every possible run");

static struct span *descriptor_new(struct chunk *c) {
  struct span *d = c->spare_descriptors;
  if (d) {
    c->spare_descriptors = d->next;
    return d;
  }
  if (c->descriptors_used % 32 == 31) c->descriptors_used++;
  if (c->descriptors_used >= DESCRIPTOR_SLOTS) report_fatal("chunk out of descriptors");
  return &c->spans[c->descriptors_used++];
}

static void descriptor_free(struct chunk *c, struct span *d) {
  descriptor_retire(d);
  d->next = c->spare_descriptors;
  c->spare_descriptors = d;
}

/* Describes pages [first, first + n) of c as a free run, with descriptor r,
 * and bins it. */
static void make_free_run(struct chunk *c, struct span *r, size_t first, uint32_t n, bool fresh) {
  descriptor_retire(r);
  r->kind = SPAN_FREE;
  r->npages = n;
  r->base = page_addr(c, first);
  r->fresh = fresh;
  c->pagemap[first] = r;
  c->pagemap[first + n - 1] = r;
  run_insert(r);
}

/* ---- chunks -------------------------------------------------------------- */

static void list_push_chunk(struct chunk **head, struct chunk *c) {
  c->prev = NULL;
  c->next = *head;
  if (*head) (*head)->prev = c;
  *head = c;
}

static void list_remove_chunk(struct chunk **head, struct chunk *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    *head = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
}

/* Huge pages pay where a chunk is dense: a 2 MiB page makes all of the chunk
 * resident, so advising a chunk whose pages are mostly free would charge the
 * program for memory it never touched. Once the chunks hold more than
 * LIBARENA_HUGEPAGE_AFTER_MB, a chunk is advised and collapsed into a huge
 * page when three quarters of its pages are in use (once: it stays advised).
 * Below that size a small program keeps 4 KiB pages and pays only for what it
 * touches. The flag only turns on, under the lock; huge-block paths read it
 * without the lock, where a late view only delays one block's advice. */
static _Atomic bool hugepage_phase;

static bool in_hugepage_phase(void) { return atomic_load_explicit(&hugepage_phase, memory_order_relaxed); }

static bool chunk_dense(const struct chunk *c) { return c->free_pages <= USABLE_PAGES / 4; }

static void chunk_make_huge(struct chunk *c) {
  os_advise_huge(chunk_data(c), CHUNK_SIZE, true);
  c->hugepage = 1;
  backend_stats.hugepage_bytes += CHUNK_SIZE;
}

/* Only the pages the block uses: past them its mapping is address space held
 * for reuse (see backend_alloc_huge), and the VMA's end there keeps the last,
 * partly used 2 MiB from being faulted in as one huge page. */
static void huge_advise_bytes(void *base, size_t used, size_t map_size, bool collapse) {
  used = (used + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (used > map_size) used = map_size;
  if (used >= CHUNK_SIZE) os_advise_huge(base, used, collapse);
}

/* A block that starts late in its first 2 MiB (HUGE_LATE, or on a cached
 * range's written pages) leaves most of them unused: a huge page there would
 * make them resident (the TLB build's arrays, grown by realloc, took 8 MB
 * more), so its advice starts at the next 2 MiB. */
static void huge_advise(struct huge_header *h, bool collapse) {
  size_t off = (size_t)(h->user - (char *)h), skip = off >= CHUNK_SIZE / 2 ? CHUNK_SIZE : 0;
  if (off + h->requested <= skip) return;
  huge_advise_bytes((char *)h + skip, off + h->requested - skip, h->map_size - skip, collapse);
}

/* A huge page is resident whole once touched: a small program with one big,
 * mostly unused buffer (sort's, 20 MB) would pay 2 MiB per touch. So a huge
 * block is advised in the huge-page phase, or when it alone is half the
 * phase's threshold: a 32 MiB block is a big program's array, and left on
 * 4 KiB pages it re-faults all 8,192 of them each time it is reused. */
static bool huge_pages_due(size_t size) {
  return options.hugepages == HUGEPAGES_ON && (in_hugepage_phase() || size >= options.hugepage_after / 2);
}

/* For a block that grew: the pages it grew into (the spare chunk, or an
 * mremap's new tail) are a VMA of their own, not advised. */
static void huge_advise_due(struct huge_header *h, size_t size) {
  if (huge_pages_due(size)) huge_advise(h, false);
}

/* Entering the phase, the huge blocks already live are advised too: in a heap
 * this big they are the program's arrays and tables, not a small program's
 * spare buffer. */
static void enter_hugepage_phase(void) {
  atomic_store_explicit(&hugepage_phase, true, memory_order_relaxed);
  for (struct chunk *c = live_chunks; c; c = c->next)
    if (!c->hugepage && chunk_dense(c)) chunk_make_huge(c);
  for (struct huge_header *h = live_huge; h; h = h->next) huge_advise(h, true);
}

/* A chunk's mapping: its header pages, then its 2 MiB-aligned pages. With
 * MAP_HUGETLB the pages are a mapping from the huge-page pool (2 MiB aligned
 * by the kernel) and the header normal pages just below them, if free. */
static struct chunk *chunk_map_new(bool hugetlb) {
  if (!hugetlb) return os_map_aligned(CHUNK_MAPPING, CHUNK_SIZE, HEADER_BYTES);
  char *data = os_map(CHUNK_SIZE, true);
  if (!data) return NULL;
  if (os_map_at(data - HEADER_BYTES, HEADER_BYTES)) return (struct chunk *)(data - HEADER_BYTES);
  os_unmap(data, CHUNK_SIZE);
  return NULL;
}

static struct chunk *chunk_new(void) {
  bool hugetlb = options.hugepages == HUGEPAGES_HUGETLB;
  struct chunk *c = chunk_map_new(hugetlb);
  if (!c && hugetlb) {
    backend_stats.hugetlb_fallbacks++;
    if (options.verbose && backend_stats.hugetlb_fallbacks == 1)
      warn("MAP_HUGETLB failed (no reserved huge pages?); using normal pages", NULL, NULL);
    hugetlb = false;
    c = chunk_map_new(false);
  }
  if (!c) return NULL;
  backend_stats.os_maps++;
  atomic_store_explicit(&chunks_mapped_ever,
                        atomic_load_explicit(&chunks_mapped_ever, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  c->hugepage = hugetlb;
  c->hugetlb = hugetlb;
  if (c->hugepage) backend_stats.hugepage_bytes += CHUNK_SIZE;

  struct span *h = &c->spans[0];
  h->kind = SPAN_HEADER;
  h->npages = FIRST_PAGE;
  h->base = chunk_data(c);
  c->descriptors_used = 1;
  /* Every page-map entry starts valid, so free() never reads a null one. */
  struct span *r = descriptor_new(c);
  for (size_t i = 0; i < CHUNK_PAGES; i++) c->pagemap[i] = i - FIRST_PAGE < USABLE_PAGES ? r : h;
  if (GUARD_PAGES) {
    os_protect(page_addr(c, 0), GUARD_PAGES * PAGE_SIZE, false);
    os_protect(page_addr(c, END_PAGE), GUARD_PAGES * PAGE_SIZE, false);
  }
  c->free_pages = USABLE_PAGES;
  chunk_map_set(chunk_data(c), CHUNK_SIZE, annotate_mode ? MAP_CHUNK_ANNOTATED : MAP_CHUNK);
  note_mapped((int64_t)CHUNK_MAPPING);
  backend_stats.chunks++;
  list_push_chunk(&live_chunks, c);
  make_free_run(c, r, FIRST_PAGE, (uint32_t)USABLE_PAGES, true);
  annotate_hide(c, HEADER_BYTES);
  if (options.hugepages == HUGEPAGES_ON && !in_hugepage_phase() &&
      backend_stats.chunks * CHUNK_SIZE > options.hugepage_after)
    enter_hugepage_phase();
  return c;
}

static void chunk_unmap(struct chunk *c) {
  if (c->hugepage) backend_stats.hugepage_bytes -= CHUNK_SIZE;
  chunk_map_set(chunk_data(c), CHUNK_SIZE, MAP_NONE);
  if (c->hugetlb) { /* two mappings */
    os_unmap(chunk_data(c), CHUNK_SIZE);
    os_unmap(c, HEADER_BYTES);
  } else {
    os_unmap(c, CHUNK_MAPPING);
  }
  note_mapped(-(int64_t)CHUNK_MAPPING);
  backend_stats.chunks--;
  backend_stats.os_unmaps++;
}

static struct chunk *chunk_from_cache(void) {
  struct chunk *c = cached_chunks;
  if (!c) return NULL;
  list_remove_chunk(&cached_chunks, c);
  backend_stats.cached_chunks--;
  list_push_chunk(&live_chunks, c);
  run_insert(c->pagemap[FIRST_PAGE]);
  return c;
}

static void chunk_to_cache(struct chunk *c) {
  list_remove_chunk(&live_chunks, c);
  c->empty_since_ms = os_now_ms();
  list_push_chunk(&cached_chunks, c);
  backend_stats.cached_chunks++;
}

static uint32_t pages_for(size_t bytes) { return (uint32_t)((bytes + PAGE_SIZE - 1) / PAGE_SIZE); }

/* ---- written pages -------------------------------------------------------
 * chunk.written says which pages may be resident (see struct chunk). */
static void mark_written(struct chunk *c, size_t first, size_t n) {
  for (size_t i = first; i < first + n; i++) c->written[i / 64] |= (uint64_t)1 << (i % 64);
}

static uint32_t count_written(const struct chunk *c, size_t first, size_t n) {
  uint32_t k = 0;
  for (size_t i = first; i < first + n;) {
    size_t bits = 64 - i % 64 < first + n - i ? 64 - i % 64 : first + n - i;
    uint64_t w = c->written[i / 64] >> (i % 64);
    if (bits < 64) w &= ((uint64_t)1 << bits) - 1;
    /* Bit count without the POPCNT instruction, which the baseline x86-64
     * lacks (the builtin would be a library call). */
    w -= (w >> 1) & 0x5555555555555555ull;
    w = (w & 0x3333333333333333ull) + ((w >> 2) & 0x3333333333333333ull);
    w = (w + (w >> 4)) & 0x0f0f0f0f0f0f0f0full;
    k += (uint32_t)((w * 0x0101010101010101ull) >> 56);
    i += bits;
  }
  return k;
}

/* ---- page runs ----------------------------------------------------------- */

/* Takes pages [at, at + n) of run r; what is left on either side stays a free
 * run. Returns the new run's descriptor with every page-map entry of its
 * pages pointing at it. Stale page-map entries inside free runs may point at
 * any descriptor, live or dead: every lookup bounds the offset by the run it
 * finds (limit, user pointer), and coalescing reads only boundary tags. */
static struct span *carve(struct span *r, size_t at, uint32_t n) {
  struct chunk *c = span_chunk(r);
  size_t first = span_page(r), end = first + r->npages;
  bool fresh = r->fresh;
  run_remove(r);
  struct span *s = r;
  if (at > first) { /* r keeps the pages before the new run */
    r->npages = (uint32_t)(at - first);
    c->pagemap[at - 1] = r;
    run_insert(r);
    s = descriptor_new(c);
  }
  if (at + n < end) make_free_run(c, descriptor_new(c), at + n, (uint32_t)(end - at - n), fresh);
  descriptor_retire(s);
  s->npages = n;
  s->base = page_addr(c, at);
  s->fresh = fresh;
  s->list = LIST_NONE;
  s->next = s->prev = NULL;
  for (size_t i = at; i < at + n; i++) c->pagemap[i] = s;
  c->free_pages -= n;
  note_active((int64_t)n * (int64_t)PAGE_SIZE);
  if (in_hugepage_phase() && !c->hugepage && chunk_dense(c)) chunk_make_huge(c);
  return s;
}

/* A place for a request: pages [at, at + pages) of run `run`. */
struct placement {
  struct span *run;
  size_t at;
  uint32_t score; /* placement_score */
};

/* pages wanted; lead: those written first; room: free pages wanted after
 * them (a span that starts small grows there); head: at a run's head (large
 * blocks, which realloc may grow) rather than at its tail. */
struct run_request {
  uint32_t pages, lead, room;
  bool head;
};

/* Pages that the small span ending just before page p may still grow into
 * (backend_grow_span). */
static uint32_t growth_room(struct chunk *c, size_t p) {
  if (p == FIRST_PAGE) return 0;
  const struct span *s = c->pagemap[p - 1];
  if (s->kind != SPAN_SMALL || s->capped) return 0;
  uint32_t whole = classes[s->size_class].span_pages;
  return s->npages < whole ? whole - s->npages : 0;
}

#define PLACE_CLEAR ((uint32_t)1 << 30) /* above any count of written pages */

/* How good placing q at page `at` of a run is: written pages among its first
 * q->lead, then among all its pages (resident already: no new RSS, no page
 * fault), for a large block or a span that starts small, which then takes a
 * hole of pages written before rather than room to grow (a thread that uses
 * its class a few times does not need the room, and one that uses it more
 * takes whole spans next). Whole spans keep the dense packing of smallest bin
 * and fullest chunk (placed by written pages too, the gcc trace took a
 * chunk more). Above all, except for the span that starts small: keeping
 * clear of the pages below lo, which the run holds as the room of the
 * growing span before it (PLACE_CLEAR). */
static uint32_t placement_score(const struct chunk *c, size_t at, size_t lo, const struct run_request *q) {
  uint32_t n = q->pages;
  uint32_t score = q->room || at >= lo ? PLACE_CLEAR : 0;
  if (!q->room && !q->head) return score;                /* whole spans */
  if (c->hugepage) return score + q->lead * (n + 1) + n; /* every page resident */
  return score + count_written(c, at, q->lead) * (n + 1) + count_written(c, at, n);
}

/* chunk.written's word k, limited to pages [low, end). */
static uint64_t written_word(const struct chunk *c, size_t k, size_t low, size_t end) {
  if (k * 64 >= end || k * 64 + 64 <= low) return 0;
  uint64_t w = c->written[k];
  if (low > k * 64) w &= ~(uint64_t)0 << (low - k * 64);
  if (end < k * 64 + 64) w &= ((uint64_t)1 << (end - k * 64)) - 1;
  return w;
}

static struct placement place_in_run(struct span *r, const struct run_request *q) {
  struct chunk *c = span_chunk(r);
  uint32_t n = q->pages;
  size_t first = span_page(r), end = first + r->npages, last = end - n; /* last start that fits */
  size_t lo = first + growth_room(c, first), low = lo < last ? lo : last;
  size_t at = q->head ? low : last >= lo + q->room ? last - q->room : low;
  struct placement best = {r, at, placement_score(c, at, lo, q)};
  if (c->hugepage || (!q->room && !q->head)) return best;
  /* Other starts worth a look: where a stretch of written pages begins, or
   * where one ends (the request's last page on its last page). */
  int tried = 0;
  uint64_t prev = 0, w = written_word(c, low / 64, low, end);
  for (size_t k = low / 64; k <= (end - 1) / 64 && tried < 16; k++) {
    uint64_t next = written_word(c, k + 1, low, end);
    uint64_t starts = w & ~(w << 1 | prev >> 63), ends = w & ~(w >> 1 | next << 63);
    for (uint64_t edges = starts | ends; edges && tried < 16; edges &= edges - 1, tried++) {
      size_t i = k * 64 + (size_t)__builtin_ctzll(edges);
      if (starts >> (i % 64) & 1)
        at = i < last ? i : last;
      else
        at = i + 1 >= low + n ? i + 1 - n : low;
      uint32_t score = placement_score(c, at, lo, q);
      if (score > best.score) best = (struct placement){r, at, score};
    }
    prev = w;
    w = next;
  }
  return best;
}

/* The best placement (placement_score) among up to RUN_SCAN runs, from the
 * smallest bin that can hold the request upwards; ties go to the smaller
 * bin, then to the fuller chunk. NULL run: none holds it. */
#define RUN_SCAN 24
static struct placement find_run(const struct run_request *q) {
  uint32_t n = q->pages, perfect = PLACE_CLEAR + (q->room || q->head ? q->lead * (n + 1) + n : 0);
  struct placement best = {NULL, 0, 0};
  unsigned best_bin = 0;
  int scanned = 0;
  for (unsigned b = run_bin(n); b < NUM_RUN_BINS && scanned < RUN_SCAN; b++) {
    uint64_t mask = run_bin_bitmap & (~(uint64_t)0 << b);
    if (!mask) break;
    b = (unsigned)__builtin_ctzll(mask);
    int in_bin = 0;
    for (struct span *r = run_bins[b]; r && in_bin < RUN_BIN_SCAN && scanned < RUN_SCAN;
         r = r->next, in_bin++) {
      if (r->npages < n) continue;
      scanned++;
      struct placement p = place_in_run(r, q);
      if (!best.run || p.score > best.score ||
          (p.score == best.score && b == best_bin &&
           span_chunk(r)->free_pages < span_chunk(best.run)->free_pages)) {
        if (!best.run || p.score > best.score) best_bin = b;
        best = p;
      }
      if ((q->room || q->head) && best.score == perfect) return best;
    }
    if (best.run && best.score == perfect) return best; /* no later bin can win a tie */
  }
  return best;
}

static void decay_locked(bool force);

/* grow: whether a new chunk may be mapped when no run and no cached chunk
 * holds n pages (callers first ask without, see arena_trim). */
static struct span *alloc_run(const struct run_request *q, bool grow) {
  struct placement p = find_run(q);
  if (!p.run) {
    struct chunk *c = chunk_from_cache();
    if (!c && !grow) return NULL;
    if (!c) c = chunk_new();
    if (!c) {
      /* Out of address space or memory: give back every cached mapping and
       * try once more before reporting ENOMEM. */
      decay_locked(true);
      c = chunk_new();
    }
    if (!c) return NULL;
    p.run = c->pagemap[FIRST_PAGE];
    p.at = q->head ? FIRST_PAGE : END_PAGE - q->pages - q->room;
  }
  return carve(p.run, p.at, q->pages);
}

/* Returns pages [first, first + n) of c to the free runs, merged with free
 * neighbours; d is their run's descriptor, or NULL for the tail of a run that
 * stays. The merged run keeps one of the descriptors, the others are freed.
 * An emptied chunk goes to the cache. */
static void release_run(struct chunk *c, struct span *d, size_t first, uint32_t n, bool fresh) {
  c->free_pages += n;
  note_active(-(int64_t)n * (int64_t)PAGE_SIZE);
  if (first > FIRST_PAGE) {
    struct span *l = c->pagemap[first - 1];
    if (l->kind == SPAN_FREE) {
      run_remove(l);
      if (d) descriptor_free(c, d);
      d = l;
      first = span_page(l);
      n += l->npages;
      fresh = fresh && l->fresh;
    }
  }
  if (first + n < END_PAGE) {
    struct span *r = c->pagemap[first + n];
    if (r->kind == SPAN_FREE) {
      run_remove(r);
      n += r->npages;
      fresh = fresh && r->fresh;
      if (d)
        descriptor_free(c, r);
      else
        d = r;
    }
  }
  make_free_run(c, d ? d : descriptor_new(c), first, n, fresh);
  if (c->free_pages == USABLE_PAGES) {
    run_remove(c->pagemap[FIRST_PAGE]);
    chunk_to_cache(c);
  }
}

/* ---- decay --------------------------------------------------------------- */

static void huge_unmap(struct huge_header *h);

static void decay_locked(bool force) {
  uint64_t now = os_now_ms();
  if (!force && now - last_decay_ms < options.decay_ms / 4 + 1) return;
  last_decay_ms = now;
  uint64_t kept = 0;
  struct chunk *next;
  for (struct chunk *c = cached_chunks; c; c = next) {
    next = c->next;
    if (kept < options.chunk_cache && !force) {
      kept++;
      continue;
    }
    if (force || now - c->empty_since_ms >= options.decay_ms) {
      list_remove_chunk(&cached_chunks, c);
      backend_stats.cached_chunks--;
      chunk_unmap(c);
    }
  }
  struct huge_header **link = &cached_huge;
  while (*link) {
    struct huge_header *h = *link;
    if (force || (uint32_t)now - h->freed_ms >= options.decay_ms) {
      *link = h->next;
      cached_huge_bytes -= h->map_size;
      huge_unmap(h);
    } else {
      link = &h->next;
    }
  }
}

void backend_decay(bool force) {
  backend_lock();
  decay_locked(force);
  backend_unlock();
}

/* Gives run s the first `take` pages of the free run after it. */
static void extend_run(struct span *s, uint32_t take) {
  struct chunk *c = span_chunk(s);
  size_t end = span_page(s) + s->npages;
  struct span *r = c->pagemap[end];
  uint32_t left = r->npages - take;
  bool fresh = r->fresh;
  run_remove(r);
  if (left)
    make_free_run(c, r, end + take, left, fresh);
  else
    descriptor_free(c, r);
  for (size_t i = end; i < end + take; i++) c->pagemap[i] = s;
  c->free_pages -= take;
  note_active((int64_t)take * (int64_t)PAGE_SIZE);
  s->npages += take;
}

/* ---- spans and large blocks --------------------------------------------- */

/* A span goes where a whole one would, at a run's tail, written pages first
 * for its first block; one that starts smaller leaves the rest of the whole
 * span's pages free after it, to grow into. */
struct span *backend_alloc_span(unsigned cls, uint32_t pages, uintptr_t owner, bool grow) {
  uint32_t lead = pages_for(classes[cls].block_size);
  struct run_request q = {pages, lead < pages ? lead : pages, classes[cls].span_pages - pages, false};
  backend_lock();
  decay_locked(false);
  struct span *s = alloc_run(&q, grow);
  if (s) span_describe_small(s, cls, owner);
  backend_unlock();
  return s;
}

/* Grows small span s in place, into the free run after it, towards `blocks`
 * blocks (at most its class's span); false when no page could be added, and
 * then s is capped: placement no longer keeps room for it, and span_carve
 * no longer asks. Written under the lock, which growth_room reads under. */
bool backend_grow_span(struct span *s, uint32_t blocks) {
  const struct class_info *ci = &classes[s->size_class];
  struct chunk *c = span_chunk(s);
  uint32_t want = blocks >= ci->capacity ? ci->span_pages : pages_for((size_t)blocks * ci->block_size);
  bool grown = false;
  backend_lock();
  size_t end = span_page(s) + s->npages;
  struct span *r = end < END_PAGE ? c->pagemap[end] : NULL;
  if (want > s->npages && r && r->kind == SPAN_FREE) {
    uint32_t take = want - s->npages < r->npages ? want - s->npages : r->npages;
    extend_run(s, take);
    s->capacity = span_capacity(s->size_class, s->npages);
    grown = true;
  }
  /* Whole, or its neighbour holds the pages: it stays as it is. */
  s->capped = s->capacity == ci->capacity || !grown;
  backend_unlock();
  return grown;
}

void backend_free_span(struct span *s) {
  size_t written = ((size_t)s->carved_max + PAGE_SIZE - 1) / PAGE_SIZE;
  backend_lock();
  mark_written(span_chunk(s), span_page(s), written < s->npages ? written : s->npages);
  release_run(span_chunk(s), s, span_page(s), s->npages, false);
  decay_locked(false);
  backend_unlock();
}

_Atomic uint64_t large_blocks, large_bytes, large_requested;

static void large_count(int64_t blocks, int64_t bytes, int64_t requested) {
  atomic_fetch_add_explicit(&large_blocks, (uint64_t)blocks, memory_order_relaxed);
  atomic_fetch_add_explicit(&large_bytes, (uint64_t)bytes, memory_order_relaxed);
  atomic_fetch_add_explicit(&large_requested, (uint64_t)requested, memory_order_relaxed);
}

void *backend_alloc_large(size_t size, size_t align, size_t requested, bool zero, bool grow) {
  size_t pad = align > PAGE_SIZE ? align - PAGE_SIZE : 0;
  /* At least one byte after the aligned pointer, so that it lies in the run. */
  uint32_t n = pages_for((size ? size : 1) + pad) + GUARD_PAGES;
  backend_lock();
  decay_locked(false);
  struct run_request q = {n, n, 0, true};
  struct span *s = alloc_run(&q, grow);
  if (!s) {
    backend_unlock();
    if (grow) errno = ENOMEM;
    return NULL;
  }
  s->kind = SPAN_LARGE;
  mark_written(span_chunk(s), span_page(s), n); /* by the program, most likely */
  s->user = (char *)(((uintptr_t)s->base + align - 1) & ~(uintptr_t)(align - 1));
  s->requested = requested;
  large_count(1, (int64_t)n * (int64_t)PAGE_SIZE, (int64_t)requested);
  bool fresh = s->fresh;
  s->fresh = 0;
  backend_unlock();
  if (GUARD_PAGES)
    os_protect(s->base + (size_t)(n - GUARD_PAGES) * PAGE_SIZE, GUARD_PAGES * PAGE_SIZE, false);
  if (zero && !fresh) memset(s->user, 0, size);
  return s->user;
}

void backend_free_large(struct span *s) {
  large_count(-1, -(int64_t)s->npages * (int64_t)PAGE_SIZE, -(int64_t)s->requested);
  backend_free_stashed(s);
}

/* A thread may keep a few freed large blocks for its next large malloc
 * (arena.c): stashed, a block no longer counts as allocated (the arena's
 * counters say so), and its user pointer is cleared so that another free of
 * it is refused. */
void backend_large_stash(struct span *s) { __atomic_store_n(&s->user, NULL, __ATOMIC_RELEASE); }

void *backend_large_unstash(struct span *s, size_t size, bool zero) {
  s->requested = size;
  __atomic_store_n(&s->user, s->base, __ATOMIC_RELEASE);
  if (zero) memset(s->base, 0, size);
  return s->base;
}

void backend_free_stashed(struct span *s) {
  if (GUARD_PAGES)
    os_protect(s->base + (size_t)(s->npages - GUARD_PAGES) * PAGE_SIZE, GUARD_PAGES * PAGE_SIZE, true);
  backend_lock();
  release_run(span_chunk(s), s, span_page(s), s->npages, false);
  decay_locked(false);
  backend_unlock();
}

/* A buffer that realloc must move to grow past REALLOC_MAP_MIN goes to a
 * mapping of its own, where it grows in place (the mapping reserves room, then
 * mremap) and whose pages a free gives back, as glibc's do: ls -l grows one
 * to 650 KB, and its copy from run to run left 330 KB of freed pages
 * resident. Once such a block is freed, blocks up to its size stay in
 * chunks: a program that grows buffers in a loop reuses their runs without
 * a system call or a page fault. */
bool backend_realloc_maps(size_t size) {
  return size >= atomic_load_explicit(&realloc_map_min, memory_order_relaxed);
}

/* Copies the first n bytes of large block s to dst, giving back each 64 KiB
 * of s's pages once copied (unless they are on a huge page), so that the
 * block and its copy are never resident whole at once: a page that glibc's
 * mremap would move is here copied and its source dropped. */
void backend_move_large(struct span *s, char *dst, size_t n) {
  const size_t step = (size_t)64 << 10;
  bool discard = !span_chunk(s)->hugepage;
  char *src = s->user, *end = s->user + n, *last = s->base + (size_t)s->npages * PAGE_SIZE;
  for (char *piece = s->base; piece < last; piece += step) {
    char *stop = piece + step < last ? piece + step : last;
    if (src < end && stop > src) { /* an aligned block's user pointer may lie pieces in */
      size_t k = (size_t)((stop < end ? stop : end) - src);
      memcpy(dst, src, k);
      dst += k;
      src += k;
    }
    if (discard) os_decommit(piece, (size_t)(stop - piece));
  }
}

/* Grows a large block into the free run after it, or gives back its tail. */
bool backend_resize_large(struct span *s, size_t new_size, size_t requested) {
  if (GUARD_PAGES) return false; /* the guard page would have to move: realloc moves instead */
  struct chunk *c = span_chunk(s);
  size_t first = span_page(s);
  uint32_t want = pages_for((size_t)(s->user - s->base) + new_size);
  bool ok = true;
  backend_lock();
  uint32_t have = s->npages;
  if (want < have) {
    s->npages = want;
    large_count(0, -(int64_t)(have - want) * (int64_t)PAGE_SIZE, 0);
    release_run(c, NULL, first + want, have - want, false);
  } else if (want > have) {
    struct span *r = first + have < END_PAGE ? c->pagemap[first + have] : NULL;
    if (r && r->kind == SPAN_FREE && have + r->npages >= want) {
      extend_run(s, want - have);
      mark_written(c, first + have, want - have);
      large_count(0, (int64_t)(want - have) * (int64_t)PAGE_SIZE, 0);
    } else {
      ok = false;
    }
  }
  if (ok) {
    large_count(0, 0, (int64_t)requested - (int64_t)s->requested);
    s->requested = requested;
  }
  backend_unlock();
  return ok;
}

/* ---- huge blocks ---------------------------------------------------------
 * Layout: the header at a 2 MiB-aligned start, the user pointer within the
 * 2 MiB after it, so that huge_header_of finds the header from the pointer:
 * 64 bytes into a page (at offset 64 in a mapping of the block's own size,
 * at HUGE_LATE in a roomy one, on the written pages in a range from the
 * cache: huge_from_cache), or at the alignment asked for, at most 2 MiB
 * (larger alignments put the user pointer 2 MiB after the header). */
#define HUGE_OFFSET 64
#define HUGE_LATE (CHUNK_SIZE - PAGE_SIZE + HUGE_OFFSET) /* see backend_alloc_huge */
_Static_assert(sizeof(struct huge_header) <= HUGE_OFFSET,
               "a huge block's header fits below its user pointer");
/* A block placed without an alignment asked for: 64 bytes into a page of
 * its first 2 MiB (an aligned one is at its alignment, or 2 MiB in). */
static bool huge_unaligned(const struct huge_header *h) {
  size_t off = (size_t)(h->user - (const char *)h);
  return off % PAGE_SIZE == HUGE_OFFSET && off < CHUNK_SIZE;
}

struct huge_header *huge_header_of(const void *p) {
  uintptr_t h = ((uintptr_t)p - 1) & ~(uintptr_t)CHUNK_MASK;
  if (((uintptr_t)p - 1) >> ADDRESS_BITS) return NULL;
  if (__atomic_load_n(&chunk_map[h >> CHUNK_SHIFT], __ATOMIC_ACQUIRE) != MAP_HUGE) return NULL;
  struct huge_header *hdr = (struct huge_header *)h;
  if (hdr->magic != (HUGE_MAGIC ^ h) || hdr->user != p || !hdr->live) return NULL;
  return hdr;
}

/* The bytes a caller may use: up to the page the request ends in. The
 * mapping may go on (a block from the cache, or the chunk of address space a
 * fresh block keeps past its end), but reporting that would invite programs
 * that size their buffers by malloc_usable_size to fault it in. */
size_t huge_usable(const struct huge_header *h) {
  size_t off = (size_t)(h->user - (const char *)h);
  size_t end = (off + h->requested + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  return (end < h->map_size ? end : h->map_size) - off;
}

static void huge_link(struct huge_header *h) {
  h->prev = NULL;
  h->next = live_huge;
  if (live_huge) live_huge->prev = h;
  live_huge = h;
  backend_stats.huge_blocks++;
  backend_stats.huge_bytes += h->map_size;
  backend_stats.huge_requested += h->requested;
  note_active((int64_t)h->map_size);
}

static void huge_unlink(struct huge_header *h) {
  if (h->prev)
    h->prev->next = h->next;
  else
    live_huge = h->next;
  if (h->next) h->next->prev = h->prev;
  backend_stats.huge_blocks--;
  backend_stats.huge_bytes -= h->map_size;
  backend_stats.huge_requested -= h->requested;
  note_active(-(int64_t)h->map_size);
}

static void huge_unmap(struct huge_header *h) {
  char *base = (char *)h;
  size_t size = h->map_size;
  chunk_map_set(base, size, MAP_NONE);
  os_unmap(base, size);
  note_mapped(-(int64_t)size);
  backend_stats.os_unmaps++;
}

/* ---- the huge cache --------------------------------------------------------
 * Freed huge mappings are kept (up to LIBARENA_HUGE_CACHE_MB, for the decay
 * time) as ranges sorted by address; ranges that touch are merged, and a
 * request takes the best fit, split at a 2 MiB boundary (blocks start on one)
 * when it is more than twice the request. So freed big buffers serve smaller
 * ones and back with no page faults, and without the peak of holding both. */

static void huge_cache_remove(struct huge_header **link) {
  struct huge_header *h = *link;
  *link = h->next;
  cached_huge_bytes -= h->map_size;
}

/* a's written hull grown by that of b, the range right after a. */
static void written_join(struct huge_header *a, const struct huge_header *b) {
  uint32_t at = (uint32_t)(a->map_size / PAGE_SIZE);
  if (b->written_lo == b->written_hi) return;
  if (a->written_lo == a->written_hi) a->written_lo = at + b->written_lo;
  a->written_hi = at + b->written_hi;
}

static void huge_cache_insert(struct huge_header *h) {
  struct huge_header **link = &cached_huge, *prev = NULL;
  while (*link && *link < h) {
    prev = *link;
    link = &(*link)->next;
  }
  h->live = 0;
  h->next = *link;
  *link = h;
  cached_huge_bytes += h->map_size;
  struct huge_header *next = h->next;
  if (next && (char *)h + h->map_size == (char *)next) {
    written_join(h, next);
    h->map_size += next->map_size;
    h->next = next->next;
    next->magic = 0;
  }
  if (prev && (char *)prev + prev->map_size == (char *)h) {
    written_join(prev, h);
    prev->map_size += h->map_size;
    prev->next = h->next;
    prev->freed_ms = h->freed_ms;
    h->magic = 0;
  }
}

/* Unmaps the pages of h's mapping past its first `want` bytes (a page
 * multiple below map_size). No one else can reach h while this runs; the
 * caller holds the back-end lock. */
static void huge_trim(struct huge_header *h, size_t want) {
  char *base = (char *)h;
  size_t have = h->map_size;
  chunk_map_set(base + want, have - want, MAP_NONE);
  chunk_map_set(base, want, MAP_HUGE); /* a shared 2 MiB region stays ours */
  os_unmap(base + want, have - want);  /* munmap: the range may span several mmaps */
  h->map_size = want;
  note_mapped((int64_t)want - (int64_t)have);
  backend_stats.os_unmaps++;
}

/* Where a block of `size` bytes from the cache starts in range h, whose
 * first `fit` bytes it may use: as near the range's written pages as the
 * header allows (the user pointer within 2 MiB of it, see huge_header_of). */
static size_t huge_place(const struct huge_header *h, size_t size, size_t fit) {
  size_t start = (size_t)h->written_lo * PAGE_SIZE, last = CHUNK_SIZE - PAGE_SIZE;
  size_t room = (fit - HUGE_OFFSET - size) & ~(PAGE_SIZE - 1); /* fit >= HUGE_OFFSET + size */
  if (room < last) last = room;
  return start < last ? start : last;
}

/* The smallest cached range that holds a block of `size` bytes (map_size
 * with its header), NULL when none does. A range more than twice the request
 * is cut at the first 2 MiB boundary after the block and the rest stays
 * cached, so a freed 16 MiB buffer serves two 8 MiB ones (its mapping has
 * room for both, see backend_alloc_huge), and once both are freed they merge
 * and serve 16 MiB again. A smaller one is taken whole: a block freed and
 * asked for again gets its own pages back, not a cut that shifts onto pages
 * never touched. The block lands on the range's written pages (huge_place):
 * the first half of the 16 MiB buffer ends at the cut and the second starts
 * there, so that the two cover the buffer's pages and no others, and the
 * buffer, asked for again, covers theirs.
 * *dirty: the range's bytes that may not be zero. */
static struct huge_header *huge_from_cache(size_t size, size_t map_size, size_t *dirty) {
  struct huge_header **best = NULL;
  for (struct huge_header **link = &cached_huge; *link; link = &(*link)->next)
    if ((*link)->map_size >= map_size && (!best || (*link)->map_size < (*best)->map_size)) best = link;
  if (!best) return NULL;
  struct huge_header *h = *best;
  huge_cache_remove(best);
  *dirty = h->map_size;
  if (h->map_size <= 2 * map_size) { /* resident already: a bigger block costs nothing more */
    h->user = (char *)h + huge_place(h, size, h->map_size) + HUGE_OFFSET;
    return h;
  }
  size_t take = (map_size + CHUNK_MASK) & ~CHUNK_MASK;
  size_t start = huge_place(h, size, take);
  h->user = (char *)h + start + HUGE_OFFSET;
  if (h->map_size >= take + CHUNK_SIZE) {
    struct huge_header *rest = (struct huge_header *)((char *)h + take);
    uint32_t cut = (uint32_t)(take / PAGE_SIZE);
    rest->magic = HUGE_MAGIC ^ (uintptr_t)rest;
    rest->map_size = h->map_size - take;
    rest->user = (char *)rest + HUGE_OFFSET;
    rest->freed_ms = h->freed_ms;
    rest->written_lo = h->written_lo > cut ? h->written_lo - cut : 0;
    rest->written_hi = h->written_hi > cut ? h->written_hi - cut : 0;
    if (rest->written_hi == 0) rest->written_lo = 0;
    h->map_size = take;
    huge_cache_insert(rest);
  } else {
    huge_trim(h, start + map_size); /* both page multiples, at most take */
  }
  *dirty = h->map_size;
  return h;
}

static void huge_cache_drop(void) {
  while (cached_huge) {
    struct huge_header *next = cached_huge->next;
    cached_huge_bytes -= cached_huge->map_size;
    huge_unmap(cached_huge);
    cached_huge = next;
  }
}

/* Grows the mapping at base from have to want bytes, in place when the
 * address space after it is free, else by moving its pages (not copying
 * them) onto the start of a fresh 2 MiB-aligned reservation of want bytes.
 * Returns the new base, or NULL with the mapping as it was. No other thread
 * can reach the range while this runs. */
static char *huge_grow(char *base, size_t have, size_t want) {
  if (os_resize_in_place(base, have, want)) return base;
  char *dst = os_map_aligned(want, CHUNK_SIZE, 0);
  if (!dst) return NULL;
  /* The old range is unmapped by the move itself, and another thread's mmap
   * may get it at once: its chunk-map entries must be cleared before. */
  chunk_map_set(base, have, MAP_NONE);
  if (!os_move(base, have, dst)) {
    chunk_map_set(base, have, MAP_HUGE);
    os_unmap(dst + have, want - have); /* only the part still surely ours */
    return NULL;
  }
  return dst;
}

/* No cached range holds map_size bytes: the largest one is taken out, to be
 * grown (huge_grow), so that its resident pages serve the block and only the
 * growth is new. The others are unmapped: kept beside the block, they would
 * only add to the peak. Caller holds the lock. */
static struct huge_header *huge_cache_take_largest(void) {
  struct huge_header **largest = NULL;
  for (struct huge_header **link = &cached_huge; *link; link = &(*link)->next)
    if (!largest || (*link)->map_size > (*largest)->map_size) largest = link;
  struct huge_header *h = largest ? *largest : NULL;
  if (h) huge_cache_remove(largest);
  huge_cache_drop();
  return h;
}

/* h (out of the cache) grown to map_size, or NULL with h unmapped. */
static struct huge_header *huge_from_grown(struct huge_header *h, size_t map_size) {
  size_t have = h->map_size;
  char *base = huge_grow((char *)h, have, map_size);
  backend_lock();
  if (base)
    note_mapped((int64_t)map_size - (int64_t)have);
  else
    huge_unmap(h);
  backend_unlock();
  if (!base) return NULL;
  h = (struct huge_header *)base;
  h->magic = HUGE_MAGIC ^ (uintptr_t)h;
  h->map_size = map_size;
  h->user = base + HUGE_OFFSET;
  chunk_map_set(h, map_size, MAP_HUGE);
  return h;
}

void *backend_alloc_huge(size_t size, size_t align, size_t requested, bool zero) {
  size_t off = align <= HUGE_OFFSET ? HUGE_OFFSET : (align <= CHUNK_SIZE ? align : CHUNK_SIZE);
  if (size > PTRDIFF_MAX - off - PAGE_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  /* At least one byte after the user pointer, so that it lies in the mapping. */
  size_t map_size = (off + (size ? size : 1) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  struct huge_header *h = NULL;
  backend_lock();
  decay_locked(false);
  struct huge_header *grow = NULL;
  size_t dirty = 0; /* bytes of the block that may not be zero */
  if (off == HUGE_OFFSET) {
    h = huge_from_cache(size ? size : 1, map_size, &dirty);
    if (!h) grow = huge_cache_take_largest();
  } else {
    huge_cache_drop(); /* it takes none of them: kept beside it, they would only add to the peak */
  }
  backend_unlock();
  if (grow) {
    dirty = grow->map_size;
    h = huge_from_grown(grow, map_size);
  }
  bool cached = h != NULL;
  size_t user_off = off;
  if (!h) {
    dirty = 0;
    /* A cacheable block's mapping ends a chunk past its last one (address
     * space only, never touched unless the block grows into it): freed, it
     * then holds two blocks of half its size, each starting on a 2 MiB
     * boundary, which it could not if it ended at the block's last page. Not
     * for a block on huge pages: cut and merged in the cache, the spare
     * chunks would end up inside other blocks, unadvised and not resident
     * (32 MiB blocks: 47% on huge pages instead of 96%, and page faults). */
    size_t roomy = ((map_size + CHUNK_MASK) & ~CHUNK_MASK) + CHUNK_SIZE;
    /* A block in a roomy mapping starts at the end of its first 2 MiB (the
     * header alone in the first page): freed and cut into two of half its
     * size, the first then ends where the second starts (huge_from_cache). */
    if (off == HUGE_OFFSET && roomy <= options.huge_cache && !huge_pages_due(size)) {
      map_size = roomy;
      user_off = HUGE_LATE;
    }
    size_t map_align = align > CHUNK_SIZE ? align : CHUNK_SIZE;
    size_t map_offset = off == CHUNK_SIZE ? CHUNK_SIZE : 0;
    char *base = os_map_aligned(map_size, map_align, map_offset);
    if (!base) {
      backend_decay(true); /* give back cached mappings, then try once more */
      base = os_map_aligned(map_size, map_align, map_offset);
    }
    if (!base) {
      errno = ENOMEM;
      return NULL;
    }
    h = (struct huge_header *)(((uintptr_t)(base + off) - 1) & ~(uintptr_t)CHUNK_MASK);
    if ((char *)h != base) report_fatal("huge block layout");
    /* Before the header is written: a page faulted in first stays small, and
     * its 2 MiB with it (a 32 MiB block was 90% on huge pages, not 96%). */
    if (huge_pages_due(size)) huge_advise_bytes(base, off + size, map_size, false);
    backend_lock();
    note_mapped((int64_t)map_size);
    backend_stats.os_maps++;
    backend_unlock();
  }
  if (!cached) {
    h->magic = HUGE_MAGIC ^ (uintptr_t)h;
    h->map_size = map_size;
    h->user = (char *)h + user_off;
    annotate_hide(h, sizeof(*h));
    chunk_map_set(h, map_size, MAP_HUGE);
  }
  h->requested = requested;
  h->live = 1;
  if (grow && cached) huge_advise_due(h, size); /* a grown range's new pages are not advised */
  backend_lock();
  huge_link(h);
  backend_unlock();
  size_t uoff = (size_t)(h->user - (char *)h);
  if (zero && dirty > uoff) memset(h->user, 0, size < dirty - uoff ? size : dirty - uoff);
  return h->user;
}

void backend_free_huge(struct huge_header *h) {
  backend_lock();
  huge_unlink(h);
  h->live = 0;
  bool grown = h->requested <= LARGE_MAX; /* only realloc makes a huge block this small */
  if (grown && h->requested >= atomic_load_explicit(&realloc_map_min, memory_order_relaxed))
    atomic_store_explicit(&realloc_map_min, h->requested + 1, memory_order_relaxed);
  bool cacheable = !grown && huge_unaligned(h) && h->map_size <= options.huge_cache;
  if (cacheable) {
    uint32_t now_ms = (uint32_t)os_now_ms();
    h->freed_ms = now_ms;
    size_t uoff = (size_t)(h->user - (char *)h);
    h->written_lo = (uint32_t)(uoff / PAGE_SIZE);
    h->written_hi = (uint32_t)((uoff + huge_usable(h)) / PAGE_SIZE);
    huge_cache_insert(h);
    /* Over the byte budget: drop the ranges freed longest ago. */
    while (cached_huge_bytes > options.huge_cache) {
      struct huge_header **oldest = &cached_huge;
      for (struct huge_header **link = &cached_huge; *link; link = &(*link)->next)
        if ((uint32_t)(now_ms - (*link)->freed_ms) > (uint32_t)(now_ms - (*oldest)->freed_ms)) oldest = link;
      struct huge_header *old = *oldest;
      huge_cache_remove(oldest);
      huge_unmap(old);
    }
  } else {
    huge_unmap(h);
  }
  decay_locked(false);
  backend_unlock();
}

/* Resizes a huge block's mapping (growing it with huge_grow); returns the
 * (possibly moved) user pointer or NULL, leaving the block as it was. */
void *backend_resize_huge(struct huge_header *h, size_t new_size, size_t requested) {
  size_t off = (size_t)(h->user - (char *)h);
  if (new_size > PTRDIFF_MAX - off - PAGE_SIZE) return NULL;
  size_t want = (off + new_size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  size_t have = h->map_size;
  char *base = (char *)h;
  if (want <= have && (want >= have / 2 || requested > h->requested)) {
    bool grows = requested > h->requested;
    backend_lock();
    backend_stats.huge_requested += requested - h->requested;
    h->requested = requested;
    backend_unlock();
    if (grows) huge_advise_due(h, new_size);
    return h->user;
  }
  backend_lock();
  huge_unlink(h);
  backend_unlock();
  char *moved = base;
  if (want < have) {
    backend_lock();
    huge_trim(h, want);
    backend_unlock();
    have = want; /* huge_trim accounted for the pages it gave back */
  } else {
    moved = huge_grow(base, have, want);
    if (!moved) {
      backend_lock();
      huge_link(h);
      backend_unlock();
      return NULL;
    }
    h = (struct huge_header *)moved;
    h->magic = HUGE_MAGIC ^ (uintptr_t)moved;
    h->user = moved + off;
  }
  chunk_map_set(moved, want, MAP_HUGE);
  h->map_size = want;
  h->requested = requested;
  backend_lock();
  note_mapped((int64_t)want - (int64_t)have);
  huge_link(h);
  backend_unlock();
  if (moved != base || want > have) huge_advise_due(h, new_size);
  return h->user;
}

/* ---- walking, for stats and the checker ---------------------------------- */

void backend_each_chunk(void (*fn)(struct chunk *, void *), void *arg) {
  for (struct chunk *c = live_chunks; c; c = c->next) fn(c, arg);
  for (struct chunk *c = cached_chunks; c; c = c->next) fn(c, arg);
}

void backend_each_huge(void (*fn)(struct huge_header *, void *), void *arg) {
  for (struct huge_header *h = live_huge; h; h = h->next) fn(h, arg);
}

uint64_t backend_cached_huge_bytes(void) { return cached_huge_bytes; }
