/* libarena: a multithreaded memory allocator.
 *
 * This header is the whole public API. The same library, built as an override
 * (the default), also exports malloc, free, calloc, realloc and the rest of the
 * malloc family, the glibc aliases and every C++ operator new/delete, so linking
 * with -larena or running under LD_PRELOAD=libarena.so replaces the system
 * allocator. The arena_* names are always available, with or without override.
 *
 * Contract (glibc 2.36 on x86-64 is the reference; docs/design.md lists every
 * deviation):
 *   - every block is aligned to at least 16 bytes; arena_malloc(0) returns a
 *     unique pointer that must be freed;
 *   - sizes above PTRDIFF_MAX, overflowing calloc products and any request the
 *     system cannot satisfy return NULL with errno = ENOMEM; an old block passed
 *     to a failing realloc is left intact;
 *   - bad alignments return EINVAL (posix_memalign) or NULL with errno = EINVAL;
 *   - arena_free(NULL) does nothing; free never changes errno;
 *   - freeing a pointer libarena did not hand out, or freeing a small block
 *     twice, prints one line on stderr and aborts.
 */
#ifndef ARENA_H
#define ARENA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ARENA_VERSION_MAJOR 1
#define ARENA_VERSION_MINOR 0
#define ARENA_VERSION_PATCH 0
#define ARENA_VERSION_STRING "1.0.0"

#if defined(__GNUC__)
#define ARENA_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define ARENA_MALLOC_ATTR
#endif

void *arena_malloc(size_t size) ARENA_MALLOC_ATTR;
void *arena_calloc(size_t count, size_t size) ARENA_MALLOC_ATTR;
void *arena_realloc(void *ptr, size_t size);
void arena_free(void *ptr);
/* size must be the size passed when the block was allocated (or any size up to
 * its usable size); a mismatch that would pick another size class aborts. */
void arena_free_sized(void *ptr, size_t size);
/* glibc 2.36 semantics (those of memalign): an alignment that is not a power
 * of two is rounded up to the next one; an alignment above SIZE_MAX / 2 + 1
 * gives NULL with errno = EINVAL. size need not be a multiple of alignment. */
void *arena_aligned_alloc(size_t alignment, size_t size) ARENA_MALLOC_ATTR;
/* POSIX: returns 0, EINVAL (alignment not a power-of-two multiple of
 * sizeof(void *); *memptr untouched) or ENOMEM. */
int arena_posix_memalign(void **memptr, size_t alignment, size_t size);
/* Bytes the caller may use from ptr on; at least the requested size. */
size_t arena_usable_size(const void *ptr);

/* Library version, "MAJOR.MINOR.PATCH"; equals ARENA_VERSION_STRING of the
 * header the library was built with. */
const char *arena_version(void);

/* ---- statistics --------------------------------------------------------- */

#define ARENA_STATS_VERSION 1
#define ARENA_STATS_CLASSES 80 /* room for every small size class */

struct arena_class_stats {
  uint64_t block_size;  /* bytes per block; 0 marks an unused slot */
  uint64_t spans;       /* spans of this class in use */
  uint64_t live_blocks; /* blocks handed to the program and not yet freed */
  uint64_t capacity;    /* blocks the class's spans can hold */
  uint64_t mallocs;     /* span refills: times a thread took a span's free list */
};

/* Counters are merged from every thread when read. Byte counts of small blocks
 * are exact at span granularity; see docs/design.md for each definition. */
struct arena_stats {
  uint32_t version; /* set by the caller to ARENA_STATS_VERSION */
  uint32_t size;    /* set by the caller to sizeof(struct arena_stats) */

  uint64_t allocated_bytes;      /* live bytes in blocks (usable sizes) */
  uint64_t peak_allocated_bytes; /* high-water mark of allocated_bytes */
  uint64_t requested_bytes;      /* live bytes requested by the program */
  uint64_t peak_requested_bytes; /* high-water mark of requested_bytes */
  uint64_t mapped_bytes;         /* bytes currently mapped from the OS */
  uint64_t peak_mapped_bytes;
  uint64_t resident_bytes; /* mapped bytes resident in RAM (mincore) */
  uint64_t chunks;         /* 2 MiB chunks currently mapped */
  uint64_t cached_chunks;  /* empty chunks kept for reuse */
  uint64_t huge_blocks;    /* blocks mapped directly (above the huge threshold) */
  uint64_t huge_bytes;
  uint64_t large_blocks; /* page-run blocks served by the back end */
  uint64_t large_bytes;
  uint64_t hugepage_bytes;     /* bytes advised or mapped as 2 MiB pages */
  uint64_t hugetlb_fallbacks;  /* MAP_HUGETLB requests the system refused */
  uint64_t remote_frees;       /* blocks freed by a thread other than owner */
  uint64_t abandoned_spans;    /* spans handed over by exiting threads */
  uint64_t reclaimed_spans;    /* abandoned spans taken over by another thread */
  uint64_t os_maps;            /* mmap calls */
  uint64_t os_unmaps;          /* munmap and whole-chunk MADV_DONTNEED calls */
  uint64_t threads;            /* threads that have an arena now */
  uint64_t thread_generations; /* arenas created since start */

  struct arena_class_stats classes[ARENA_STATS_CLASSES];
};

/* Fills *stats. Returns 0, or EINVAL when stats is NULL or its version or size
 * does not match this library. */
int arena_stats_get(struct arena_stats *stats);

enum arena_stats_format { ARENA_STATS_TEXT = 0, ARENA_STATS_JSON = 1 };

/* Writes the statistics through write_cb (called several times with pieces of
 * the report; text is not NUL-terminated). Allocates nothing. With a NULL
 * write_cb the report goes to stderr. */
void arena_stats_print(void (*write_cb)(void *cbarg, const char *text, size_t len), void *cbarg,
                       enum arena_stats_format format);

/* Walks every chunk, span and free list and verifies the invariants stated in
 * lib/internal.h. Returns 0 when the heap is consistent; otherwise prints what
 * is wrong on stderr and returns the number of problems found. Takes the
 * back-end lock; other threads may keep running. */
int arena_check(void);

#ifdef __cplusplus
}
#endif

#endif /* ARENA_H */
