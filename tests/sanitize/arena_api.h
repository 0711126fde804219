/* Forced include (-include) for the ThreadSanitizer build of the stress
 * programs (stress/stress.mk, `make test-tsan`).
 *
 * Under -fsanitize=thread the TSan runtime defines malloc, free, ... and comes
 * first in symbol lookup, so a program linked with -larena would still
 * allocate from TSan's allocator and libarena would never run. These macros
 * send the stress programs' own calls to libarena's arena_* entry points
 * instead (libc's internal allocations stay with TSan, which does not matter).
 * TSan does not know that arena_malloc is an allocator: every reuse of a block
 * by another thread must then be ordered by libarena's own synchronisation
 * (remote-free CAS, abandoned lock, back-end lock), which is exactly what this
 * build checks. */
#ifndef LIBARENA_SANITIZE_ARENA_API_H
#define LIBARENA_SANITIZE_ARENA_API_H

#include <malloc.h>
#include <stdlib.h>

#include "arena.h"

#define malloc(n) arena_malloc(n)
#define calloc(c, n) arena_calloc((c), (n))
#define realloc(p, n) arena_realloc((p), (n))
#define free(p) arena_free(p)
#define posix_memalign(pp, a, n) arena_posix_memalign((pp), (a), (n))
#define aligned_alloc(a, n) arena_aligned_alloc((a), (n))
#define memalign(a, n) arena_aligned_alloc((a), (n))
#define malloc_usable_size(p) arena_usable_size(p)

#endif
