/* Prints what the system allocator (glibc) does for the corner cases that
 * test_conformance.c checks libarena against. Not linked with libarena and
 * not part of `make test`; run it with `make glibc-probe`. The values the tests
 * expect were taken from its output on glibc 2.36 (Debian 12, x86-64). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <gnu/libc-version.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Through volatile pointers so that the compiler cannot fold anything. */
static void *(*volatile p_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile p_memalign)(size_t, size_t) = memalign;
static int (*volatile p_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_calloc)(size_t, size_t) = calloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static void *(*volatile p_reallocarray)(void *, size_t, size_t) = reallocarray;
static void *(*volatile p_valloc)(size_t) = valloc;
static void *(*volatile p_pvalloc)(size_t) = pvalloc;

static size_t actual_alignment(void *p) {
  size_t a = 1;
  while (a < ((size_t)1 << 30) && (uintptr_t)p % (a * 2) == 0) a *= 2;
  return a;
}

int main(void) {
  printf("glibc %s\n", gnu_get_libc_version());
  static const size_t al[] = {0,
                              1,
                              2,
                              3,
                              4,
                              8,
                              12,
                              16,
                              24,
                              48,
                              100,
                              4095,
                              4097,
                              (size_t)1 << 20,
                              ((size_t)1 << 20) + 1,
                              SIZE_MAX / 2 + 1,
                              SIZE_MAX};
  for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
    errno = 0;
    void *p = p_aligned_alloc(al[i], 100);
    int e = errno;
    printf("aligned_alloc(%zu, 100) = %s errno %d", al[i], p ? "ptr" : "NULL", e);
    if (p) printf(" aligned to %zu usable %zu", actual_alignment(p), malloc_usable_size(p));
    printf("\n");
    free(p);
    errno = 0;
    p = p_memalign(al[i], 100);
    e = errno;
    printf("memalign(%zu, 100) = %s errno %d", al[i], p ? "ptr" : "NULL", e);
    if (p) printf(" aligned to %zu", actual_alignment(p));
    printf("\n");
    free(p);
    void *m = (void *)0x1234;
    int r = p_posix_memalign(&m, al[i], 100);
    printf("posix_memalign(%zu, 100) = %d, memptr %s\n", al[i], r, m == (void *)0x1234 ? "untouched" : "set");
    if (r == 0) free(m);
  }
  static const size_t big[] = {(size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 4096, SIZE_MAX};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    size_t n = big[i];
    void *p;
    errno = 0;
    p = p_malloc(n);
    printf("malloc(%#zx) = %p errno %d\n", n, p, errno);
    errno = 0;
    p = p_calloc(1, n);
    printf("calloc(1, %#zx) = %p errno %d\n", n, p, errno);
    errno = 0;
    p = p_aligned_alloc(64, n);
    printf("aligned_alloc(64, %#zx) = %p errno %d\n", n, p, errno);
    errno = 0;
    p = p_memalign(64, n);
    printf("memalign(64, %#zx) = %p errno %d\n", n, p, errno);
    void *m = (void *)0x1234;
    int r = p_posix_memalign(&m, 64, n);
    printf("posix_memalign(64, %#zx) = %d memptr %s\n", n, r, m == (void *)0x1234 ? "untouched" : "set");
    char *old = p_malloc(10);
    strcpy(old, "hello");
    errno = 0;
    p = p_realloc(old, n);
    printf("realloc(p, %#zx) = %p errno %d, old block \"%s\"\n", n, p, errno, old);
    errno = 0;
    p = p_reallocarray(old, 1, n);
    printf("reallocarray(p, 1, %#zx) = %p errno %d\n", n, p, errno);
    free(old);
    errno = 0;
    p = p_valloc(n);
    printf("valloc(%#zx) = %p errno %d\n", n, p, errno);
    errno = 0;
    p = p_pvalloc(n);
    printf("pvalloc(%#zx) = %p errno %d\n", n, p, errno);
  }
  errno = 0;
  void *p = p_calloc((size_t)1 << 33, (size_t)1 << 33);
  printf("calloc(2^33, 2^33) = %p errno %d\n", p, errno);
  errno = 0;
  p = p_calloc(0, SIZE_MAX);
  printf("calloc(0, SIZE_MAX) = %s errno %d\n", p ? "ptr" : "NULL", errno);
  free(p);
  errno = 0;
  p = p_reallocarray(NULL, (size_t)1 << 33, (size_t)1 << 33);
  printf("reallocarray(NULL, 2^33, 2^33) = %p errno %d\n", p, errno);
  errno = 0;
  p = p_realloc(p_malloc(100), 0);
  printf("realloc(p, 0) = %p errno %d\n", p, errno);
  p = p_realloc(NULL, 0);
  printf("realloc(NULL, 0) = %s usable %zu\n", p ? "ptr" : "NULL", malloc_usable_size(p));
  free(p);
  p = p_malloc(0);
  printf("malloc(0) = %s usable %zu\n", p ? "ptr" : "NULL", malloc_usable_size(p));
  free(p);
  printf("malloc_usable_size(NULL) = %zu\n", malloc_usable_size(NULL));
  static const size_t pv[] = {0, 1, 4096, 4097};
  for (size_t i = 0; i < sizeof pv / sizeof pv[0]; i++) {
    p = p_pvalloc(pv[i]);
    printf("pvalloc(%zu): page offset %zu usable %zu\n", pv[i], (size_t)((uintptr_t)p % 4096),
           malloc_usable_size(p));
    free(p);
    p = p_valloc(pv[i]);
    printf("valloc(%zu): page offset %zu usable %zu\n", pv[i], (size_t)((uintptr_t)p % 4096),
           malloc_usable_size(p));
    free(p);
  }
  p = p_malloc(100);
  errno = 1234;
  free(p);
  printf("free keeps errno: %s\n", errno == 1234 ? "yes" : "no");
  return 0;
}
