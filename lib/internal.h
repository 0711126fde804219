/* libarena internal types, constants and the functions each layer offers.
 *
 * Map of the hierarchy
 * --------------------
 *
 *   memory:   chunk (2 MiB of pages, 2 MiB aligned, from mmap, its header in
 *               the pages just below them)
 *               -> span (a run of pages inside a chunk) -> block (one allocation)
 *   threads:  thread arena (one per thread, found through initial-exec TLS)
 *               -> size-class bin (current span, partial list, parked full list)
 *               -> filled spans (all classes), not parked yet
 *               -> spans it owns
 *   global:   back end (one lock): every chunk, the free page runs inside them
 *               (coalesced, in size-segregated bins), large blocks, huge blocks,
 *               the cache of empty chunks and freed huge mappings;
 *             abandoned spans (one lock): spans of exited threads.
 *
 *   size <= SMALL_MAX (64 KiB)      small: a block of a size class in a span
 *   size <= LARGE_MAX (1 MiB)       large: a page run of its own in a chunk
 *   size  > LARGE_MAX               huge:  its own mapping, 2 MiB aligned
 *
 * Layers, lowest first; a file includes only this header and calls only the
 * layers below it:
 *   os.c          mmap/munmap/madvise, chunk map, clock, error reporting
 *   options.c     LIBARENA_* environment options
 *   size_class.c  size -> class table, span geometry per class
 *   backend.c     chunks, page runs, coalescing, large and huge blocks, decay
 *   span.c        carving a span into blocks, collecting its free lists
 *   arena.c       thread arenas: refill, remote frees, abandon and reclaim
 *   alloc.c       the public arena_* entry points; malloc, free, ... and
 *                 the C++ operators, exported by name (its override section)
 *   stats.c       statistics and the heap checker
 *   init.c        process start, fork handlers, exit report
 */
#ifndef ARENA_INTERNAL_H
#define ARENA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define noinline __attribute__((noinline))
#define cold __attribute__((cold, noinline))
#define internal __attribute__((visibility("hidden")))

/* ---- geometry ----------------------------------------------------------- */

#define PAGE_SHIFT 12
#define PAGE_SIZE ((size_t)1 << PAGE_SHIFT)
#define CHUNK_SHIFT 21
#define CHUNK_SIZE ((size_t)1 << CHUNK_SHIFT)
#define CHUNK_MASK (CHUNK_SIZE - 1)
#define CHUNK_PAGES (CHUNK_SIZE / PAGE_SIZE) /* 512 */

/* User space on x86-64 and arm64 (4-level paging) ends below 2^47; a pointer
 * at or above it was never handed out. free's fast path masks the index into
 * the chunk map instead of testing the high bits; its slow path and every
 * other lookup test them. */
#define ADDRESS_BITS 47
#define CHUNK_MAP_ENTRIES ((size_t)1 << (ADDRESS_BITS - CHUNK_SHIFT))

#define MIN_ALIGN 16
#define SMALL_MAX ((size_t)64 << 10)
#define LARGE_MAX ((size_t)1 << 20)
#define NUM_CLASSES 80 /* 16..128 by 16, then 8 classes per doubling to 64 KiB */

/* ---- hardened build -------------------------------------------------------
 * make SECURE=1 builds lib/libarena-secure.so with ARENA_SECURE: the last 8
 * bytes of each small block hold a canary checked at free, freed blocks are
 * zeroed and wait in a per-thread FIFO quarantine before reuse, new spans hand
 * out their blocks in random order, and guard pages follow chunk headers and
 * large blocks. */
#ifdef ARENA_SECURE
#define CANARY_SIZE 8
#define QUARANTINE_SLOTS 64
#else
#define CANARY_SIZE 0
#endif
/* ARENA_UNCHECKED (make unchecked: lib/libarena-unchecked.so) drops the
 * default build's O(1) checks from the fast paths and the free mark, and
 * exists only to measure what those checks cost; it is never installed. */

#ifdef ARENA_UNCHECKED
#define UNCHECKED 1
#else
#define UNCHECKED 0
#endif

/* Largest request served from a size class. */
#define SMALL_REQUEST_MAX (SMALL_MAX - CANARY_SIZE)
/* realloc keeps a block of at least this many bytes in its own mapping */
#define REALLOC_MAP_MIN ((size_t)128 << 10)

/* ---- chunk map: which 2 MiB regions are ours (os.c) ----------------------
 * One byte per 2 MiB of address space (64 MiB of reserved, lazily touched
 * zero pages). Invariant: MAP_CHUNK is set exactly while the region is a
 * mapped chunk whose header is readable; MAP_HUGE while it belongs to a huge
 * block's mapping. free() reads this byte before it dereferences anything. */
enum { MAP_NONE = 0, MAP_CHUNK = 1, MAP_HUGE = 2, MAP_CHUNK_ANNOTATED = 3 };
/* MAP_CHUNK_ANNOTATED: a chunk in annotate mode; free's fast path, which
 * compares with MAP_CHUNK, leaves it to the annotated slow path. */
static inline bool map_is_chunk(uint8_t kind) { return kind == MAP_CHUNK || kind == MAP_CHUNK_ANNOTATED; }
extern uint8_t chunk_map[CHUNK_MAP_ENTRIES] internal;

/* ---- span --------------------------------------------------------------
 * A span is a run of pages inside a chunk. Its descriptor lives in the chunk
 * header at the index of the run's first page. Kinds:
 *   SPAN_SMALL  blocks of one size class, owned by a thread arena or abandoned
 *   SPAN_LARGE  one large block
 *   SPAN_FREE   a free run held by the back end
 *   SPAN_NONE   not the first page of anything (a page inside another run)
 *
 * Blocks are carved lazily: those below `limit` exist, those above were never
 * handed out. Free lists hold 32-bit offsets from `base`; OFFSET_END ends a list. The link
 * stored in a free block's first word is (next offset ^ key); its second word
 * is the free mark (the key). Invariants of a small span:
 *   - block k starts at offset k * block_size, k < capacity; the pages hold
 *     less than one block more (none but for the padded classes, see
 *     size_class.c); limit is a multiple of block_size, at most
 *     capacity * block_size;
 *   - capacity == span_capacity(size_class, npages), npages <= the class's
 *     span_pages: a span may start small (its class's first_pages) and grow,
 *     under the back-end lock and only by its owner's carving, into the free
 *     pages after it; capped once it is whole or could not grow;
 *   - every carved block is in exactly one of: the program's hands (no mark), `free`,
 *     `local_free`, its owner arena's remote list, the free list of a reclaimed
 *     copy, a thread's foreign list (marked);
 *   - blocks out (in the program's hands, on a foreign list, or freed remotely and in transit to
 *     the owner) == used + bias. free's fast path decrements `used` and calls
 *     span_event when it reaches 0, which happens when: bias 0 (partial
 *     span): the span is empty; bias > 0 (full span): enough blocks are back
 *     for it to rejoin the partial list; bias -1 (current span): never;
 *   - owner is the owning thread's id, or 0 while abandoned (then only the
 *     abandoned lock may touch it). free's fast path runs only when
 *     owner == this thread.
 */
enum span_kind { SPAN_NONE = 0, SPAN_SMALL, SPAN_LARGE, SPAN_FREE, SPAN_HEADER };

#define OFFSET_END UINT32_MAX

struct arena;

struct __attribute__((aligned(64))) span {
  /* First line, the owner's: written by its mallocs and frees. */
  uint32_t free;            /* allocation list (offset), OFFSET_END when empty */
  uint32_t local_free;      /* owner's freed blocks (offset list) */
  uint32_t used;            /* blocks out minus bias: free's fast path acts when it hits 0 */
  int32_t bias;             /* small span: see `used` (0, -1 while current, > 0 while full) */
  uint8_t list;             /* which list the span is on (enum span_list_id) */
  uint8_t recarve;          /* span_relink forgot its carved blocks (see span_carve) */
  uint8_t capped;           /* small span: whole, or could not grow (set under the back-end lock) */
  struct span *next, *prev; /* bin list, back-end run bin, abandoned list */
  char *user;               /* large block: the pointer handed out */
  size_t requested;         /* large block: bytes requested */
  uint32_t capacity;        /* small span: blocks it holds */
  uint32_t carved_max;      /* small span: the highest limit since it was made (the owner's) */
  /* Second line, read by every free of the span's blocks, the owner's and
   * other threads' alike, and by malloc; written only when the span is set
   * up, carved, or changes hands. Nothing the owner writes per block may
   * live here: on a shared line, every remote free fetched the line from the
   * owner's core and the owner's next malloc fetched it back (producer and
   * consumer: 1.78x apart). Other threads' frees write span_xfree, kept in
   * an array of its own for the same reason. */
  _Alignas(64) uint32_t limit; /* small span: bytes carved into blocks so far; 0 otherwise */
  uint32_t block_size;
  char *base;          /* first byte of the span's first page */
  uint64_t key;        /* secret for link encoding and free marks */
  uint64_t div_magic;  /* floor(2^64 / block_size) + 1: see span_holds_block */
  uint64_t bound;      /* limit / block_size * (div_magic * block_size mod 2^64) */
  uintptr_t owner;     /* see above; atomic access */
  struct arena *arena; /* owner arena, NULL when abandoned; atomic access */
  uint32_t npages;
  uint8_t kind;
  uint8_t size_class;
  uint8_t fresh; /* large/free run: pages never written since mapped */
};

/* Whether off = p - base, for any p in the span's chunk, is the start of a
 * carved block, in one multiply and one compare. With M = div_magic and
 * e = M * block_size - 2^64 (1 <= e <= block_size), off = k * block_size + r
 * gives off * M = k * e + r * M (mod 2^64): below k_max * e < 2^22 when r == 0,
 * at least M >= 2^48 otherwise, and for a negative off (p below base) at
 * least M - 2^22. So off * M < bound = carved blocks * e exactly when off is
 * a carved block's start. Any span but a small one has bound 0. */
static inline bool span_holds_block(const struct span *s, uint64_t off) {
  return off * s->div_magic < __atomic_load_n(&s->bound, __ATOMIC_RELAXED);
}
void span_set_limit(struct span *s, uint32_t limit) internal;

static inline uint64_t canary_value(const struct span *s, const void *block) {
  return (s->key * 0x9e3779b97f4a7c15ull) ^ (uintptr_t)block;
}
#define XFREE_EMPTY ((uint64_t)OFFSET_END)
#define XFREE_COUNT_ONE ((uint64_t)1 << 32)
#define XFREE_COUNT_MASK ((((uint64_t)1 << 30) - 1) << 32)
#define XFREE_DELAYED ((uint64_t)1 << 63)
#define XFREE_ABANDONED ((uint64_t)1 << 62)

enum span_list_id {
  LIST_NONE = 0,
  LIST_PARTIAL,
  LIST_FILLED,
  LIST_FULL,
  LIST_ABANDONED,
  LIST_ABANDONED_FULL,
  LIST_RUNS
};

struct span_list {
  struct span *head, *tail;
  size_t count;
};

/* One descriptor per run and the header's: 513 at most (512 one-page runs),
 * in slots of which 31 (mod 32) stay unused (see descriptor_new): 17 x 32. */
#define DESCRIPTOR_SLOTS 544
#define XFREE_WORDS (64 * 9) /* span_xfree's spread of DESCRIPTOR_SLOTS */

/* ---- chunk ---------------------------------------------------------------
 * A chunk is one mapping: HEADER_PAGES pages of this header, then the 2 MiB-
 * aligned 2 MiB of pages that runs are made of (chunk_data). The header sits
 * below the pages, not in them, so that all 512 pages serve runs: two 1 MiB
 * blocks share a chunk, and a huge page backs only pages the program uses.
 * From a pointer into the pages the header is a constant below the aligned
 * start, which the free path's load folds into its address. Invariants:
 *   - pagemap[i] points to the descriptor of the run containing page i for
 *     every page of an in-use run (small span or large block) and for the
 *     first and last page of every free run (boundary tags for coalescing);
 *   - free runs never touch each other (they are merged at once);
 *   - free_pages == sum of the pages of its free runs. */
struct chunk {
  struct span *pagemap[CHUNK_PAGES];
  /* back end bookkeeping (backend lock), one cache line between the page map
   * and the descriptors: it puts descriptor k's lines at page offsets
   * 64 + 128 (k mod 32) and 128 + 128 (k mod 32), 0 only for the second line
   * of k = 31 (mod 32), a slot left unused. A descriptor line at offset 0
   * would share an L1 set with the first line of every page-aligned block: a
   * loop touching one line per page of a 64 KiB block evicted the descriptor
   * that its free reads next. */
  struct chunk *next, *prev; /* list of chunks of one fullness bucket, or cache */
  /* Descriptors are handed out lowest slot first and reused last freed
   * first, not kept at their run's page index: a chunk whose runs are spread
   * over its pages then touches only as many descriptor pages as it has runs
   * at once (32 per page), not most of its 16 (python3 at start-up: 46 of 64
   * resident in 4 chunks). spans[0] is the header's; the others below
   * descriptors_used each describe a run or wait on spare_descriptors, linked
   * by next, but for the unused slots 31 (mod 32). */
  struct span *spare_descriptors;
  uint32_t descriptors_used;
  uint32_t free_pages;
  uint32_t max_run; /* upper bound of the longest free run (exact after scan) */
  uint8_t bucket;   /* fullness bucket index, or BUCKET_CACHED */
  uint8_t hugepage; /* MADV_HUGEPAGE given or MAP_HUGETLB mapping */
  uint8_t hugetlb;  /* mapped with MAP_HUGETLB */
  uint64_t empty_since_ms;
  struct span spans[DESCRIPTOR_SLOTS]; /* at most one per run, and runs are at least a page */
  /* xfree[x(i)] belongs to spans[i] (span_xfree): blocks freed by other threads
   * straight into the span: bits 0-31 the first offset (a list linked like
   * local_free), bits 32-61 the count, and two flags that send those frees
   * elsewhere instead: XFREE_DELAYED (the span is parked full: to the owner
   * arena's remote list, which can move it back) and XFREE_ABANDONED (to the
   * abandoned lock). Kept off the descriptors, whose lines the owner reads or
   * writes on every malloc and free: a CAS there would take the line away.
   * x(i) = (i mod 64) * 9 + i / 64 puts the words of 64 consecutive
   * descriptors on 64 different lines: the descriptors in use at once are
   * mostly neighbours, often of different threads' spans, and on one line
   * their remote frees would take it from each other. */
  _Atomic uint64_t xfree[XFREE_WORDS];
  /* Bit i: page i may have been written since the chunk was mapped, so it
   * is resident: set for a span's pages below its highest carve point when
   * it goes back to the back end, and for all of a large block's pages when
   * it is made (the program writes them); on a chunk on huge pages every page
   * counts. Large blocks and spans that start small go to such pages first:
   * a thread generation's first spans then land where the previous one's
   * were instead of spreading over the chunk (backend.c, placement_score). */
  uint64_t written[CHUNK_PAGES / 64];
};
_Static_assert(sizeof(struct span) == 128, "descriptors are two cache lines");
_Static_assert(__builtin_offsetof(struct span, requested) < 64 &&
                   __builtin_offsetof(struct span, limit) == 64,
               "the owner's fields on the first line, the shared ones on the second");
_Static_assert(__builtin_offsetof(struct chunk, spans) % PAGE_SIZE == 64,
               "descriptor i at page offset 64 + 128 i");

#define HEADER_PAGES ((sizeof(struct chunk) + PAGE_SIZE - 1) / PAGE_SIZE)
#define HEADER_BYTES (HEADER_PAGES * PAGE_SIZE)
#define CHUNK_MAPPING (HEADER_BYTES + CHUNK_SIZE) /* a chunk's whole mapping */
/* The hardened build keeps an inaccessible page at both ends of the pages,
 * so an overflow runs into a guard before it reaches a header. */
#ifdef ARENA_SECURE
#define GUARD_PAGES 1
#else
#define GUARD_PAGES 0
#endif
#define FIRST_PAGE GUARD_PAGES               /* first page a run may use */
#define END_PAGE (CHUNK_PAGES - GUARD_PAGES) /* one past the last */
#define USABLE_PAGES (END_PAGE - FIRST_PAGE)

static inline char *chunk_data(const struct chunk *c) { return (char *)c + HEADER_BYTES; }
/* The chunk of a pointer into its pages (not into its header: span_chunk). */
static inline struct chunk *chunk_of(const void *p) {
  return (struct chunk *)(((uintptr_t)p & ~(uintptr_t)CHUNK_MASK) - HEADER_BYTES);
}
static inline struct chunk *span_chunk(const struct span *s) {
  return chunk_of((const char *)s + HEADER_BYTES);
}
static inline size_t page_index(const struct chunk *c, const void *p) {
  return ((uintptr_t)p - (uintptr_t)chunk_data(c)) >> PAGE_SHIFT;
}
static inline char *page_addr(struct chunk *c, size_t page) { return chunk_data(c) + (page << PAGE_SHIFT); }
static inline uint32_t span_out(const struct span *s) { return (uint32_t)((int32_t)s->used + s->bias); }
static inline void span_set_bias(struct span *s, int32_t bias) {
  s->used = (uint32_t)((int32_t)span_out(s) - bias);
  s->bias = bias;
}
static inline size_t large_usable(const struct span *s) {
  return (size_t)(s->base + (size_t)(s->npages - GUARD_PAGES) * PAGE_SIZE - s->user);
}
static inline size_t span_page(const struct span *s) { return page_index(span_chunk(s), s->base); }
_Static_assert(DESCRIPTOR_SLOTS <= XFREE_WORDS, "span_xfree's spread of the words is one to one");
static inline _Atomic uint64_t *span_xfree(struct span *s) {
  struct chunk *c = span_chunk(s);
  size_t i = (size_t)(s - c->spans);
  return &c->xfree[(i % 64) * 9 + i / 64];
}

/* ---- huge block --------------------------------------------------------
 * A huge block has a mapping of its own; this header sits at the mapping's
 * start, which is (user pointer - 1) rounded down to 2 MiB. */
struct huge_header {
  uint64_t magic; /* HUGE_MAGIC ^ address of the header */
  size_t map_size;
  char *user;
  size_t requested;
  struct huge_header *next, *prev; /* live list, or cache list (next only) */
  uint32_t freed_ms;               /* os_now_ms() when cached, modulo 2^32 */
  /* Cached: pages [written_lo, written_hi) of the range are the hull of the
   * pages blocks were handed out in, resident most likely; empty if lo == hi. */
  uint32_t written_lo, written_hi;
  uint8_t live; /* 1 while handed out, 0 while cached */
};
#define HUGE_MAGIC 0x6c69626172656e61ull /* "libarena" */

/* ---- thread arena --------------------------------------------------------
 * Invariants:
 *   - current[c] is a span of class c owned by this arena, or &empty_span;
 *   - direct[(n + 15) / 16] == current[size_class(n)] for every n up to
 *     DIRECT_MAX (arena_set_current keeps the two in step);
 *   - the current span is on no list (bias -1); every other span the arena
 *     owns is on partial[c] (it has a free block; fully free spans at the
 *     tail, at most ARENA_EMPTY_CACHE_MAX bytes of them; bias 0), on filled (all
 *     its blocks were out when it left the current slot; other threads'
 *     frees still go into its xfree) or on full[c] (parked: XFREE_DELAYED
 *     set); on filled and full[c] the bias makes the event fire once an
 *     eighth of it is free again (a sixteenth for the first GROWTH_PARKS
 *     spans to fill after chunks_mapped_ever moved past chunks_seen);
 *   - filled is empty whenever a refill takes a span from anywhere but its
 *     partial list (settle_filled), so remote frees are used before new
 *     memory is;
 *   - foreign[c] holds marked blocks of class c of spans of other threads (or
 *     of exited ones), which count them as out;
 *   - remote holds blocks other threads freed into this arena's spans, linked
 *     through their first word (pointer ^ secret); REMOTE_CLOSED once the
 *     arena is abandoned, after which frees take the abandoned path. */
#define REMOTE_CLOSED ((uintptr_t)1)

/* Remote frees are batched: a thread gathers blocks bound for one arena in an
 * outbox and hands the whole chain over with one CAS when it holds
 * REMOTE_BATCH blocks, when the outbox is needed for another arena, or when
 * the thread exits. At most OUTBOXES * REMOTE_BATCH blocks wait this way. */
#define REMOTE_BATCH 64
#define OUTBOXES 4
/* Each thread keeps up to LARGE_STASH of the large blocks it frees (at most
 * LARGE_STASH_BYTES) for its next large mallocs of about the same size, which
 * then take no lock. */
#define LARGE_STASH 4
#define LARGE_STASH_BYTES ((size_t)4 << 20)

struct outbox {
  struct arena *dest;
  void *head, *tail; /* chain linked like the remote list */
  uint32_t count;
};
/* Bytes of empty spans an arena keeps. Kept, they skip the lock when the
 * program comes back to their class; returned, they serve any class of any
 * thread, which keeps the peak down (half the arena's span bytes, as before,
 * cost the gcc trace 13% more RSS and bought no speed). Up to
 * ARENA_EMPTY_CACHE_MAX are kept while the arena takes no new span; a refill
 * that has to take one, or a large malloc that goes to the back end, first
 * returns all beyond ARENA_EMPTY_CACHE, so the excess does not stand idle
 * while the arena grows (a flat 4 MiB cost the
 * churn and gcc traces 3-7% more RSS; 64 blocks of 64 KiB need 4 MiB). */
#define ARENA_EMPTY_CACHE ((size_t)1 << 20)
#define ARENA_EMPTY_CACHE_MAX ((size_t)4 << 20)

/* Blocks of other threads' spans that this thread freed, kept for its own
 * next mallocs of the class instead of travelling back to their owner: the
 * block's lines are in this core's cache (the program just used it, free
 * just wrote it), where the owner would have to fetch them back, and no line
 * of the other thread's span is written (foreign_keeps in arena.c says which
 * blocks). At most FOREIGN_BLOCKS blocks and about FOREIGN_CLASS_BYTES per
 * class (1.3 MiB a thread at most); trim and thread exit send them home. */
#define FOREIGN_BLOCKS 64
#define FOREIGN_CLASS_BYTES ((uint32_t)16 << 10)
#define FOREIGN_AFTER 256 /* remote frees before blocks below a line are kept too */

struct foreign_list {
  void *head;     /* newest block; linked by pointer ^ global_secret */
  uint32_t count; /* blocks held; classes[c].foreign_limit at most */
};

struct arena_counters {
  uint64_t refills[NUM_CLASSES];
  uint64_t remote_frees;
  /* Large blocks this thread stashed (-) and took back (+): kept here, not in
   * the global atomics, because an atomic add right after the program wrote
   * a block's pages waits for all those stores to drain. Wrapping sums. */
  uint64_t large_blocks, large_bytes, large_requested;
};

/* Requests up to DIRECT_MAX bytes find their span in one load, without the
 * class table (mimalloc's pages_free_direct does the same up to 1 KiB). */
#define DIRECT_MAX 1024
#define DIRECT_ENTRIES (DIRECT_MAX / 16 + 1)

struct arena {
  struct span *direct[DIRECT_ENTRIES];
  struct span *current[NUM_CLASSES];
  uintptr_t owner_word; /* the owning thread's id, as spans' owner holds it */
  _Atomic uintptr_t remote;
  struct span_list partial[NUM_CLASSES];
  struct span_list full[NUM_CLASSES];
  struct span_list filled;
  struct arena_counters counters;
  size_t empty_bytes;             /* bytes of fully free spans kept on partial lists */
  struct span *idle[NUM_CLASSES]; /* current span found empty by the last arena_trim (compared only) */
  struct outbox outbox[OUTBOXES];
  struct foreign_list foreign[NUM_CLASSES];
  uint32_t remote_freed; /* other threads' blocks freed here, counted up to FOREIGN_AFTER */
  uint64_t chunks_seen;  /* chunks_mapped_ever when the arena was made or a span last filled */
  uint32_t growth_parks; /* spans still to fill with the growing heap's rejoin point */
  struct span *large_stash[LARGE_STASH]; /* freed large blocks kept for reuse, oldest first */
  unsigned large_stashed;
  size_t large_stash_bytes;
#ifdef ARENA_SECURE
  void *quarantine[QUARANTINE_SLOTS]; /* ring of freed small blocks, oldest at next */
  unsigned quarantine_next, quarantine_count;
#endif
  struct arena *next_in_pool; /* pool free list, or list of live arenas */
  struct arena *prev_live;
  bool live;
};

extern struct span empty_span internal;
extern struct arena empty_arena internal;
/* thread_arena is the thread's arena (empty_arena until it has one);
 * fast_arena is what malloc's fast path reads: the same, or empty_arena in
 * annotate mode so that every allocation takes the annotated slow path. */
extern __thread struct arena *thread_arena internal;
extern __thread struct arena *fast_arena internal;

/* The thread pointer: unique for every live thread, cheaper than a TLS read. */
static inline uintptr_t thread_id(void) {
#if defined(__x86_64__) && defined(__SEG_FS)
  /* fs:0 holds the thread pointer itself; a plain load through the fs
   * segment, unlike asm, lets the compiler fold it into a compare. */
  return *(const uintptr_t __seg_fs *)0;
#elif defined(__x86_64__)
  uintptr_t tp;
  __asm__("mov %%fs:0, %0" : "=r"(tp));
  return tp;
#else
  return (uintptr_t)__builtin_thread_pointer();
#endif
}

/* ---- size classes (size_class.c) ---------------------------------------- */
struct class_info {
  uint32_t block_size;
  uint32_t span_pages;
  uint32_t first_pages; /* pages a span that starts small reserves (span_first_pages) */
  uint32_t capacity;
  uint64_t div_magic;
  uint32_t direct_first;  /* first index of arena.direct that maps to the class */
  uint32_t foreign_limit; /* blocks arena.foreign may hold */
};
extern uint8_t class_of_size[(SMALL_MAX >> 4) + 1] internal; /* index (n+15)>>4 */
extern struct class_info classes[NUM_CLASSES] internal;
void size_classes_init(void) internal;
static inline unsigned size_class(size_t n) { return class_of_size[(n + 15) >> 4]; }
/* Blocks of class c that a span of `pages` pages holds. A span reserves only
 * the pages it has carved into (span_carve grows it, backend_grow_span), up
 * to its class's span_pages, where it holds the class's capacity. */
static inline uint32_t span_capacity(unsigned c, uint32_t pages) {
  if (pages >= classes[c].span_pages) return classes[c].capacity;
  uint32_t k = (uint32_t)((size_t)pages * PAGE_SIZE / classes[c].block_size);
  return k < classes[c].capacity ? k : classes[c].capacity;
}
/* A span that starts small: the fewest pages that hold a block with at most
 * an eighth of them left over (a 4160-byte block alone in 2 pages would
 * leave half). */
static inline uint32_t span_first_pages(unsigned c) { return classes[c].first_pages; }
/* How many of a class's spans in an arena start small (refill). */
#define SMALL_FIRST_SPANS 2

/* ---- os.c --------------------------------------------------------------- */
void *os_map(size_t size, bool hugetlb) internal;
void *os_map_aligned(size_t size, size_t align, size_t offset) internal;
bool os_map_at(void *p, size_t size) internal;
void os_unmap(void *p, size_t size) internal;
void os_decommit(void *p, size_t size) internal;
void os_protect(void *p, size_t size, bool accessible) internal;
void os_advise_huge(void *p, size_t size, bool collapse) internal;
bool os_resize_in_place(void *p, size_t old_size, size_t new_size) internal;
bool os_move(void *p, size_t size, void *dst) internal;
size_t os_resident(void *p, size_t size) internal;
void os_name(void *p, size_t size) internal;
uint64_t os_now_ms(void) internal;
uint64_t os_random(void) internal;
static inline uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
void chunk_map_set(void *p, size_t size, uint8_t kind) internal;

/* Annotate mode: when the process runs under valgrind or AddressSanitizer,
 * every allocation and free takes a slow path that describes the block to the
 * tool (valgrind MALLOCLIKE/FREELIKE, ASan poisoning). Decided once at start. */
extern bool annotate_mode internal;
void annotate_init(void) internal;
void annotate_alloc(const void *p, size_t size, bool zeroed) internal;
void annotate_free(const void *p, size_t size) internal;
void annotate_hide(const void *p, size_t size) internal;
void annotate_enter(void) internal; /* allocator code touches freed blocks */
void annotate_leave(void) internal;

/* Error reporting without allocation. report_* print one line and abort. */
_Noreturn void report_invalid(const char *what, const void *p) internal;
void report_pointer(const char *what, const void *p) internal;
_Noreturn void report_fatal(const char *what) internal;
void warn(const char *a, const char *b, const char *c) internal;
void write_all(int fd, const char *s, size_t n) internal;

/* A small append buffer for building lines without stdio. */
struct text {
  char buf[512];
  size_t len;
  void (*flush)(void *arg, const char *s, size_t n);
  void *arg;
};
void text_str(struct text *t, const char *s) internal;
void text_u64(struct text *t, uint64_t v) internal;
void text_hex(struct text *t, uint64_t v) internal;
void text_flush(struct text *t) internal;

/* ---- options.c ---------------------------------------------------------- */
enum hugepage_mode { HUGEPAGES_OFF = 0, HUGEPAGES_ON = 1, HUGEPAGES_HUGETLB = 2 };
struct options {
  int hugepages;           /* LIBARENA_HUGEPAGES: 0, 1, hugetlb */
  uint64_t hugepage_after; /* LIBARENA_HUGEPAGE_AFTER_MB: chunk bytes before dense chunks are advised */
  uint64_t decay_ms;       /* LIBARENA_DECAY_MS */
  uint64_t chunk_cache;    /* LIBARENA_CHUNK_CACHE: empty chunks kept past decay */
  uint64_t huge_cache;     /* LIBARENA_HUGE_CACHE_MB (bytes here) */
  bool show_stats;         /* LIBARENA_SHOW_STATS */
  bool verbose;            /* LIBARENA_VERBOSE */
  bool memcheck;           /* running under valgrind's memcheck (not an option) */
};
extern struct options options internal;
void options_init(void) internal;

/* ---- backend.c ----------------------------------------------------------
 * All functions take the back-end lock themselves. */
struct span *backend_alloc_span(unsigned cls, uint32_t pages, uintptr_t owner, bool grow) internal;
void backend_free_span(struct span *s) internal;
bool backend_grow_span(struct span *s, uint32_t blocks) internal;
void *backend_alloc_large(size_t size, size_t align, size_t requested, bool zero, bool grow) internal;
void backend_free_large(struct span *s) internal;
void backend_large_stash(struct span *s) internal;
void *backend_large_unstash(struct span *s, size_t size, bool zero) internal;
void backend_free_stashed(struct span *s) internal;
bool backend_resize_large(struct span *s, size_t new_size, size_t requested) internal;
void backend_move_large(struct span *s, char *dst, size_t n) internal;
bool backend_realloc_maps(size_t size) internal;
void *backend_alloc_huge(size_t size, size_t align, size_t requested, bool zero) internal;
void backend_free_huge(struct huge_header *h) internal;
void *backend_resize_huge(struct huge_header *h, size_t new_size, size_t requested) internal;
uint64_t backend_cached_huge_bytes(void) internal;
struct huge_header *huge_header_of(const void *p) internal;
size_t huge_usable(const struct huge_header *h) internal;
void backend_decay(bool force) internal;
void backend_lock(void) internal;
void backend_unlock(void) internal;
void backend_after_fork_child(void) internal;

struct backend_stats {
  uint64_t mapped, peak_mapped, chunks, cached_chunks;
  uint64_t huge_blocks, huge_bytes, huge_requested;
  uint64_t hugepage_bytes, hugetlb_fallbacks, os_maps, os_unmaps;
  uint64_t peak_active; /* bytes in in-use spans, large and huge blocks */
};
extern struct backend_stats backend_stats internal;
/* Chunks ever mapped: arenas compare it to tell a growing heap (see
 * span_retire_full in arena.c). Written under the back-end lock. */
extern _Atomic uint64_t chunks_mapped_ever internal;
/* Large blocks also change count outside the lock (stashing): atomics. */
extern _Atomic uint64_t large_blocks, large_bytes, large_requested;
/* Calls fn for every chunk; caller holds the back-end lock. */
void backend_each_chunk(void (*fn)(struct chunk *, void *), void *arg) internal;
void backend_each_huge(void (*fn)(struct huge_header *, void *), void *arg) internal;

/* ---- span.c ------------------------------------------------------------- */
void span_describe_small(struct span *s, unsigned cls, uintptr_t owner) internal;
void span_init_small(struct span *s, struct arena *a) internal;
bool span_carve(struct span *s) internal;
void span_push_local(struct span *s, void *block) internal;
bool span_collect_local(struct span *s) internal;
void span_relink(struct span *s) internal;
bool span_collect_xfree(struct span *s) internal;
uint32_t span_take_xfree(struct span *s, uint64_t flags) internal;
bool span_contains_free(struct span *s, const void *p) internal;
/* The free mark is the span's secret itself: a block holds it in its second
 * word only while free (or by a 2^-64 coincidence, which cannot be produced
 * without reading freed memory). */
static inline uint64_t free_mark(const struct span *s, const void *p) {
  (void)p;
  return s->key;
}
/* The mark word's low half, read on its own by free's fast path. */
typedef uint32_t __attribute__((may_alias)) mark_half;
static inline uint32_t link_decode(const struct span *s, const void *block) {
  return (uint32_t)(*(const uint64_t *)block ^ s->key);
}
void span_list_push(struct span_list *l, struct span *s, uint8_t id) internal;
void span_list_push_tail(struct span_list *l, struct span *s, uint8_t id) internal;
void span_list_remove(struct span_list *l, struct span *s) internal;

/* ---- arena.c ------------------------------------------------------------ */
void *arena_alloc_refill(size_t size) internal;
void arena_set_current(struct arena *a, unsigned cls, struct span *s) internal;
void foreign_flush(struct arena *a) internal;
void *arena_large_from_stash(size_t size, bool zero) internal;
bool arena_trim(bool all) internal;
void free_slow(void *p) internal;
void free_small_checked(struct span *s, void *p) internal;
void span_event(struct arena *a, struct span *s) internal;
struct arena *arena_get(void) internal;
void arena_key_create(void) internal;
void arenas_lock(void) internal;
void arenas_unlock(void) internal;
void arenas_after_fork_child(void) internal;
void abandoned_lock(void) internal;
void abandoned_unlock(void) internal;
void abandoned_after_fork_child(void) internal;
void arena_each_live(void (*fn)(struct arena *, void *), void *arg) internal;
void abandoned_each(void (*fn)(struct span *, void *), void *arg) internal;
extern struct arena_counters dead_counters internal;
extern _Atomic uint64_t stat_abandoned, stat_reclaimed, stat_remote_orphan, stat_generations;

/* ---- alloc.c ------------------------------------------------------------ */
/* Small-block fast path: pop the current span's free list. size: the
 * block's size (the request plus any canary), which refill needs. */
static inline void *span_pop(struct span *s, size_t size) {
  uint32_t off = s->free;
  if (unlikely(off >= s->limit)) return arena_alloc_refill(size);
  char *block = s->base + off;
  s->free = link_decode(s, block);
#ifndef ARENA_UNCHECKED
  ((uint64_t *)block)[1] = 0; /* clear the free mark */
#endif
  s->used++;
#ifdef ARENA_SECURE
  *(uint64_t *)(block + s->block_size - CANARY_SIZE) = canary_value(s, block);
#endif
  return block;
}
static inline void *small_pop(struct arena *a, size_t size) {
  return span_pop(size <= DIRECT_MAX ? a->direct[(size + 15) >> 4] : a->current[size_class(size)], size);
}
/* size: what the program asked for; the hardened build adds its canary. */
static inline void *small_alloc(size_t size) { return small_pop(fast_arena, size + CANARY_SIZE); }
size_t usable_size(const void *p) internal;
void *alloc_aligned(size_t align, size_t size) internal;
void *alloc_slow(size_t size, size_t align, bool zero) internal;

/* ---- init.c ------------------------------------------------------------- */
extern _Atomic int init_state internal; /* 0 none, 1 running, 2 done */
void global_init(void) internal;
extern uint64_t global_secret internal;

#endif /* ARENA_INTERNAL_H */
