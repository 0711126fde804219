/* The public arena_* entry points. malloc and free have one inline fast path
 * each and one unlikely branch into a noinline slow path:
 *
 *   malloc(n <= 1 KiB):  span = arena->direct[(n + 15) / 16];
 *   malloc(n <= 64 KiB): class = table[(n + 15) / 16]; span = arena->current[class];
 *                        pop span->free (an offset < span->limit, else refill).
 *   free(p):             chunk map says p's 2 MiB region is a chunk; span from the
 *                        chunk's page map; this thread owns the span; p is a carved
 *                        block's start (below limit, multiply test); p is not marked
 *                        free; push it on span->free (LIFO: the next malloc reuses it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

__attribute__((visibility("default"))) void *arena_malloc(size_t size) {
  if (likely(size <= DIRECT_MAX - CANARY_SIZE))
    return span_pop(fast_arena->direct[(size + CANARY_SIZE + 15) >> 4], size + CANARY_SIZE);
  if (likely(size <= SMALL_REQUEST_MAX)) return small_alloc(size);
  return alloc_slow(size, MIN_ALIGN, false);
}

__attribute__((visibility("default"))) void arena_free(void *p) {
#ifdef ARENA_SECURE
  free_slow(p); /* every free checks the canary and goes through quarantine */
  return;
#endif
  uintptr_t u = (uintptr_t)p;
  if (likely(chunk_map[(u >> CHUNK_SHIFT) & (CHUNK_MAP_ENTRIES - 1)] == MAP_CHUNK)) {
    struct chunk *c = chunk_of(p);
    struct span *s = c->pagemap[(u >> PAGE_SHIFT) & (CHUNK_PAGES - 1)];
    uint64_t off = u - (uintptr_t)s->base;
    uint64_t mark = free_mark(s, p);
    uint64_t *w = p;
#ifdef ARENA_UNCHECKED
    if (likely(__atomic_load_n(&s->owner, __ATOMIC_RELAXED) == thread_id())) {
#else
    /* p and s->base lie in one chunk, as span_holds_block needs; the owner
     * is the only writer of bound, so a plain read of it suffices here. The
     * mark test reads only the low half of the mark word: a load no wider
     * than the program's last store there can be forwarded from it, where an
     * 8-byte load after a byte store would wait for the store to reach the
     * cache. An equal low half goes to the slow path, which compares all 8
     * bytes. */
    if (likely(__atomic_load_n(&s->owner, __ATOMIC_RELAXED) == thread_id() && off * s->div_magic < s->bound &&
               ((const mark_half *)p)[2] != (uint32_t)mark)) {
#endif
      /* Onto the allocation list itself: the next malloc of this class reuses
       * the block just freed, while its lines are still in cache. */
      w[0] = s->free ^ s->key;
#ifndef ARENA_UNCHECKED
      w[1] = mark;
#else
      (void)mark;
#endif
      s->free = (uint32_t)off;
      if (likely(--s->used != 0)) return;
      span_event(thread_arena, s);
      return;
    }
#ifndef ARENA_UNCHECKED
    /* A carved, unmarked block of another thread's span: to the remote path
     * without classifying p again. bound only grows while blocks are out,
     * and is 0 for any span but a small one. */
    if (span_holds_block(s, off) && ((const mark_half *)p)[2] != (uint32_t)mark) {
      free_small_checked(s, p);
      return;
    }
#endif
  }
  free_slow(p);
}

/* ---- slow allocation: large and huge blocks ------------------------------ */

/* The heap grows only after this thread's idle memory went back (see
 * arena_trim). */
static void *large_from_backend(size_t size, size_t align, bool zero) {
  void *p = backend_alloc_large(size, align, size, zero, false);
  if (!p && arena_trim(false)) p = backend_alloc_large(size, align, size, zero, false);
  if (!p) p = backend_alloc_large(size, align, size, zero, true);
  if (!p && arena_trim(true)) p = backend_alloc_large(size, align, size, zero, true);
  return p;
}

noinline void *alloc_slow(size_t size, size_t align, bool zero) {
  if (unlikely(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  if (init_state != 2) global_init();
  if (size <= SMALL_REQUEST_MAX && align <= MIN_ALIGN) {
    void *p = small_alloc(size);
    if (p && zero) memset(p, 0, size);
    return p;
  }
  if (likely(!annotate_mode)) {
    void *p = NULL;
    if (size <= LARGE_MAX && align <= LARGE_MAX / 4) {
      if (align <= PAGE_SIZE) p = arena_large_from_stash(size, zero);
      if (!p) p = large_from_backend(size, align, zero);
    } else {
      p = backend_alloc_huge(size, align, size, zero);
      if (!p && arena_trim(true)) p = backend_alloc_huge(size, align, size, zero);
    }
    return p;
  }
  /* Annotate mode: the block is unpoisoned before it is zeroed. */
  annotate_enter();
  void *p = size <= LARGE_MAX && align <= LARGE_MAX / 4 ? large_from_backend(size, align, false)
                                                        : backend_alloc_huge(size, align, size, false);
  if (p) annotate_alloc(p, usable_size(p), false);
  annotate_leave();
  if (p && zero) memset(p, 0, size);
  return p;
}

/* align: a power of two. Small requests take the first class whose size is a
 * multiple of align: every block of such a class is aligned, since spans
 * start on page boundaries. */
void *alloc_aligned(size_t align, size_t size) {
  if (align <= MIN_ALIGN) return arena_malloc(size);
  if (init_state != 2) global_init();
  if (size <= SMALL_REQUEST_MAX && align <= PAGE_SIZE) {
    size_t n = (size < align ? align : size) + CANARY_SIZE;
    /* A class whose blocks are aligned, if one is at most twice the request
     * (padded classes are only 64-byte aligned, see size_class.c); else a
     * page run, which wastes less. */
    for (unsigned c = size_class(n); c < NUM_CLASSES && classes[c].block_size <= 2 * n; c++)
      if (classes[c].block_size % align == 0) return small_pop(fast_arena, classes[c].block_size);
  }
  return alloc_slow(size, align, false);
}

__attribute__((visibility("default"))) void *arena_calloc(size_t count, size_t size) {
  size_t total;
  if (unlikely(__builtin_mul_overflow(count, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  if (likely(total <= SMALL_REQUEST_MAX)) {
    void *p = small_alloc(total);
    if (likely(p != NULL)) memset(p, 0, total);
    return p;
  }
  return alloc_slow(total, MIN_ALIGN, true);
}

/* ---- block lookup -------------------------------------------------------- */

enum block_kind { BLOCK_SMALL, BLOCK_LARGE, BLOCK_HUGE };

struct block_ref {
  enum block_kind kind;
  struct span *span;
  struct huge_header *huge;
  size_t usable;
};

/* Classifies a live block, aborting with `what` on a pointer libarena did
 * not hand out or a freed small block. */
static struct block_ref block_lookup(const void *p, const char *what) {
  struct block_ref r = {0};
  uintptr_t u = (uintptr_t)p;
  uint8_t kind =
      (u >> ADDRESS_BITS) ? MAP_NONE : __atomic_load_n(&chunk_map[u >> CHUNK_SHIFT], __ATOMIC_ACQUIRE);
  if (map_is_chunk(kind)) {
    struct chunk *c = chunk_of(p);
    struct span *s = c->pagemap[page_index(c, p)];
    uint64_t off = u - (uintptr_t)s->base;
    if (span_holds_block(s, off)) {
      /* (In annotate mode the tool itself reports uses of freed blocks.) */
      if (!annotate_mode && !UNCHECKED && ((const uint64_t *)p)[1] == free_mark(s, p))
        report_invalid("use of a freed block in", p);
      r.kind = BLOCK_SMALL;
      r.span = s;
      r.usable = s->block_size - CANARY_SIZE;
      return r;
    }
    if (s->kind == SPAN_LARGE && s->user == p) {
      r.kind = BLOCK_LARGE;
      r.span = s;
      r.usable = large_usable(s);
      return r;
    }
  } else if (kind == MAP_HUGE) {
    struct huge_header *h = huge_header_of(p);
    if (h) {
      r.kind = BLOCK_HUGE;
      r.huge = h;
      r.usable = huge_usable(h);
      return r;
    }
  }
  report_invalid(what, p);
}

size_t usable_size(const void *p) {
  if (!p) return 0;
  return block_lookup(p, "invalid pointer passed to malloc_usable_size:").usable;
}

__attribute__((visibility("default"))) size_t arena_usable_size(const void *p) {
  if (likely(!annotate_mode)) return usable_size(p);
  annotate_enter();
  size_t n = usable_size(p);
  annotate_leave();
  return n;
}

/* ---- realloc ------------------------------------------------------------- */

static void *realloc_move(void *p, size_t old_usable, size_t size) {
  void *q = arena_malloc(size);
  if (!q) return NULL;
  memcpy(q, p, old_usable < size ? old_usable : size);
  arena_free(p);
  return q;
}

static void *realloc_block(void *p, size_t size);

__attribute__((visibility("default"))) void *arena_realloc(void *p, size_t size) {
  if (likely(!annotate_mode)) return realloc_block(p, size);
  annotate_enter();
  void *q = realloc_block(p, size);
  annotate_leave();
  return q;
}

static void *realloc_block(void *p, size_t size) {
  /* The common case first, with free's inline checks: a small block that
   * stays where it is because the new size fits and wastes less than half. */
  uintptr_t u = (uintptr_t)p;
  if (likely(chunk_map[(u >> CHUNK_SHIFT) & (CHUNK_MAP_ENTRIES - 1)] == MAP_CHUNK)) {
    struct span *s = chunk_of(p)->pagemap[(u >> PAGE_SHIFT) & (CHUNK_PAGES - 1)];
    uint64_t off = u - (uintptr_t)s->base;
    size_t usable = s->block_size - CANARY_SIZE;
    if (likely(span_holds_block(s, off) && (UNCHECKED || ((uint64_t *)p)[1] != free_mark(s, p)) &&
               size <= usable && size > usable / 2))
      return p;
  }
  if (!p) return arena_malloc(size);
  if (size == 0) {
    arena_free(p);
    return NULL;
  }
  struct block_ref b = block_lookup(p, "invalid realloc of");
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  if (unlikely(annotate_mode)) return realloc_move(p, b.usable, size); /* tools track whole blocks */
  switch (b.kind) {
  case BLOCK_SMALL:
    /* Stay when the new size fits and does not waste more than half. */
    if (size <= b.usable && size > b.usable / 2) return p;
    /* A block growing by small steps would move at every class boundary:
     * growing, it moves to at least 1.25x its size, as tcmalloc does. */
    if (size > b.usable && size < b.usable + b.usable / 4 && b.usable + b.usable / 4 <= SMALL_REQUEST_MAX)
      return realloc_move(p, b.usable, b.usable + b.usable / 4);
    break;
  case BLOCK_LARGE:
    if (size > SMALL_REQUEST_MAX && size <= LARGE_MAX && backend_resize_large(b.span, size, size)) return p;
    /* Growing further, it is a buffer: in a mapping of its own it grows
     * without copying again (see backend_realloc_maps). */
    if (size > b.usable && backend_realloc_maps(size)) {
      void *q = backend_alloc_huge(size, MIN_ALIGN, size, false);
      if (q) {
        backend_move_large(b.span, q, b.usable);
        arena_free(p);
        return q;
      }
    }
    break;
  case BLOCK_HUGE:
    if (size >= REALLOC_MAP_MIN) {
      void *q = backend_resize_huge(b.huge, size, size);
      if (q) return q;
    }
    break;
  }
  return realloc_move(p, b.usable, size);
}

__attribute__((visibility("default"))) void arena_free_sized(void *p, size_t size) {
  if (p && size > usable_size(p)) report_invalid("free_sized: size larger than the block at", p);
  arena_free(p);
}

/* glibc 2.36 memalign: an alignment that is not a power of two is rounded up
 * to one; only an alignment above SIZE_MAX / 2 + 1 is EINVAL. */
__attribute__((visibility("default"))) void *arena_aligned_alloc(size_t align, size_t size) {
  if (align > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  if (align & (align - 1)) align = (size_t)1 << (64 - __builtin_clzll(align));
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  return alloc_aligned(align, size);
}

__attribute__((visibility("default"))) int arena_posix_memalign(void **memptr, size_t align, size_t size) {
  if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0 || align == 0) return EINVAL;
  if (size > PTRDIFF_MAX) return ENOMEM;
  int saved = errno;
  void *p = alloc_aligned(align, size);
  if (!p) {
    errno = saved;
    return ENOMEM;
  }
  *memptr = p;
  return 0;
}

__attribute__((visibility("default"))) const char *arena_version(void) { return ARENA_VERSION_STRING; }

/* ==== override ============================================================
   The malloc family, the glibc aliases and the C++ operators, exported under
 * their standard names so that -larena or LD_PRELOAD replaces the system
 * allocator. Each name is an alias of (or a thin call to) an arena_* entry
 * point; nothing here has logic of its own beyond argument conventions.
 *
 * operator new must throw std::bad_alloc (or call the new-handler) on
 * failure. libarena does not link libstdc++; when the program is C++,
 * libstdc++ is loaded and the weak references below resolve to it.
 */
#define EXPORT __attribute__((visibility("default")))
#if defined(__clang__)
#define ALIAS(target) __attribute__((alias(#target), visibility("default")))
#else /* gcc wants the target's attributes (malloc, alloc_size...) copied */
#define ALIAS(target) __attribute__((alias(#target), copy(target), visibility("default")))
#endif

EXPORT void *malloc(size_t size) ALIAS(arena_malloc);
EXPORT void free(void *p) ALIAS(arena_free);
EXPORT void *calloc(size_t count, size_t size) ALIAS(arena_calloc);
EXPORT void *realloc(void *p, size_t size) ALIAS(arena_realloc);
EXPORT void cfree(void *p) ALIAS(arena_free);
EXPORT int posix_memalign(void **memptr, size_t align, size_t size) ALIAS(arena_posix_memalign);
EXPORT void *aligned_alloc(size_t align, size_t size) ALIAS(arena_aligned_alloc);
EXPORT void *memalign(size_t align, size_t size) ALIAS(arena_aligned_alloc);
EXPORT void free_sized(void *p, size_t size) ALIAS(arena_free_sized);

EXPORT void *__libc_malloc(size_t size) ALIAS(arena_malloc);
EXPORT void __libc_free(void *p) ALIAS(arena_free);
EXPORT void *__libc_calloc(size_t count, size_t size) ALIAS(arena_calloc);
EXPORT void *__libc_realloc(void *p, size_t size) ALIAS(arena_realloc);
EXPORT void *__libc_memalign(size_t align, size_t size) ALIAS(arena_aligned_alloc);
EXPORT int __posix_memalign(void **memptr, size_t align, size_t size) ALIAS(arena_posix_memalign);

EXPORT size_t malloc_usable_size(void *p) { return arena_usable_size(p); }

EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return arena_realloc(p, total);
}

EXPORT void free_aligned_sized(void *p, size_t align, size_t size) {
  (void)align;
  arena_free_sized(p, size);
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

EXPORT void *valloc(size_t size) { return arena_aligned_alloc(page_size(), size); }

EXPORT void *pvalloc(size_t size) {
  size_t ps = page_size();
  if (size > SIZE_MAX - 2 * ps) {
    errno = ENOMEM;
    return NULL;
  }
  return arena_aligned_alloc(ps, (size + ps - 1) & ~(ps - 1));
}

EXPORT void *__libc_valloc(size_t size) { return valloc(size); }
EXPORT void *__libc_pvalloc(size_t size) { return pvalloc(size); }

/* ---- C++ ----------------------------------------------------------------- */

typedef void (*new_handler_fn)(void);
extern new_handler_fn _ZSt15get_new_handlerv(void) __attribute__((weak));
extern _Noreturn void _ZSt17__throw_bad_allocv(void) __attribute__((weak));

/* The C++ rule: on failure call the new-handler and retry; with none, throw
 * (or return NULL for the nothrow forms). */
static void *cxx_new(size_t size, size_t align, bool nothrow) {
  for (;;) {
    void *p = align <= MIN_ALIGN ? arena_malloc(size) : alloc_aligned(align, size);
    if (likely(p != NULL)) return p;
    new_handler_fn handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
    if (handler) {
      handler();
      continue;
    }
    if (nothrow) return NULL;
    if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
    report_fatal("operator new: out of memory and no C++ runtime to throw std::bad_alloc");
  }
}

/* Plain, array, nothrow. */
EXPORT void *_Znwm(size_t n) { return cxx_new(n, 0, false); }
EXPORT void *_Znam(size_t n) { return cxx_new(n, 0, false); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) {
  (void)nt;
  return cxx_new(n, 0, true);
}
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) {
  (void)nt;
  return cxx_new(n, 0, true);
}
/* Aligned (std::align_val_t is a size_t). */
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al) { return cxx_new(n, al, false); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al) { return cxx_new(n, al, false); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) {
  (void)nt;
  return cxx_new(n, al, true);
}
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) {
  (void)nt;
  return cxx_new(n, al, true);
}

/* Deletes: plain, array, sized, aligned, nothrow; all end in arena_free. The
 * C++ sized forms skip free_sized's size check: the language guarantees the
 * size, and C++ programs delete on their hot paths. */
EXPORT void _ZdlPv(void *p) ALIAS(arena_free);
EXPORT void _ZdaPv(void *p) ALIAS(arena_free);
EXPORT void _ZdlPvm(void *p, size_t n) {
  (void)n;
  arena_free(p);
}
EXPORT void _ZdaPvm(void *p, size_t n) {
  (void)n;
  arena_free(p);
}
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) {
  (void)nt;
  arena_free(p);
}
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) {
  (void)nt;
  arena_free(p);
}
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t al) {
  (void)al;
  arena_free(p);
}
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t al) {
  (void)al;
  arena_free(p);
}
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al) {
  (void)n, (void)al;
  arena_free(p);
}
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al) {
  (void)n, (void)al;
  arena_free(p);
}
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) {
  (void)al, (void)nt;
  arena_free(p);
}
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) {
  (void)al, (void)nt;
  arena_free(p);
}
