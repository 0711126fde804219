/* OS layer: every byte libarena uses comes from mmap here, and every message
 * it prints leaves through write(2) here. Nothing in this file allocates. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, z) ((void)0)
#define VALGRIND_FREELIKE_BLOCK(p, rz) ((void)0)
#define VALGRIND_DISABLE_ERROR_REPORTING ((void)0)
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)0)
#define VALGRIND_ENABLE_ERROR_REPORTING ((void)0)
#endif

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

/* 64 MiB of zero pages in .bss: the kernel backs only the pages we touch, one
 * 4 KiB page per 8 GiB of address space in use. Being static, it is valid
 * before any initialisation, so free() may consult it from the first call. */
uint8_t chunk_map[CHUNK_MAP_ENTRIES];

void chunk_map_set(void *p, size_t size, uint8_t kind) {
  size_t first = (uintptr_t)p >> CHUNK_SHIFT;
  size_t last = ((uintptr_t)p + size - 1) >> CHUNK_SHIFT;
  for (size_t i = first; i <= last && i < CHUNK_MAP_ENTRIES; i++)
    __atomic_store_n(&chunk_map[i], kind, __ATOMIC_RELEASE);
}

/* ---- mappings ------------------------------------------------------------ */

void os_name(void *p, size_t size) {
  /* Kernels before 5.17 or without CONFIG_ANON_VMA_NAME say EINVAL: harmless. */
  int saved = errno;
  prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, size, (unsigned long)"libarena");
  errno = saved;
}

void *os_map(size_t size, bool hugetlb) {
  /* A hugetlb mapping must reserve its pages now (no MAP_NORESERVE): without
   * a reservation the first touch of a page the pool cannot supply is SIGBUS,
   * where a refused mmap lets us fall back to normal pages. */
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (hugetlb ? MAP_HUGETLB | MAP_HUGE_2MB : MAP_NORESERVE);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) return NULL;
  os_name(p, size);
  return p;
}

/* Normal pages at exactly [p, p + size), where nothing is mapped yet; false
 * if something is (or the kernel, before 4.17, took the flag for a hint). */
bool os_map_at(void *p, size_t size) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE;
  void *q = mmap(p, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (q == p) {
    os_name(p, size);
    return true;
  }
  if (q != MAP_FAILED) os_unmap(q, size);
  return false;
}

/* A mapping of `size` bytes at base, with (base + offset) a multiple of
 * align (a power of two >= 2 MiB; offset a multiple of the page size, below
 * size). Maps the slack needed and trims both ends. */
void *os_map_aligned(size_t size, size_t align, size_t offset) {
  if (size > SIZE_MAX - align) return NULL;
  size_t total = size + align;
  char *raw = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uintptr_t x = ((uintptr_t)raw + offset + align - 1) & ~(uintptr_t)(align - 1);
  char *base = (char *)(x - offset);
  if (base > raw) munmap(raw, (size_t)(base - raw));
  char *end = raw + total;
  if (end > base + size) munmap(base + size, (size_t)(end - (base + size)));
  os_name(base, size);
  return base;
}

void os_unmap(void *p, size_t size) {
  int saved = errno;
  munmap(p, size);
  errno = saved;
}

void os_protect(void *p, size_t size, bool accessible) {
  int saved = errno;
  mprotect(p, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE);
  errno = saved;
}

void os_decommit(void *p, size_t size) {
  int saved = errno;
  madvise(p, size, MADV_DONTNEED);
  errno = saved;
}

void os_advise_huge(void *p, size_t size, bool collapse) {
  int saved = errno;
  madvise(p, size, MADV_HUGEPAGE);
  if (collapse) madvise(p, size, MADV_COLLAPSE); /* Linux 6.1+; else EINVAL */
  errno = saved;
}

/* Grows or shrinks a mapping without moving it. */
bool os_resize_in_place(void *p, size_t old_size, size_t new_size) {
  int saved = errno;
  void *q = mremap(p, old_size, new_size, 0);
  errno = saved;
  if (q == MAP_FAILED) return false;
  if (new_size > old_size) os_name(p, new_size);
  return true;
}

/* Moves a mapping of `size` bytes onto dst, the start of a reservation of
 * ours, without copying the pages. The size does not change, so the kernel
 * never has to grow the address space and cannot refuse for RLIMIT_AS after
 * it has already unmapped part of dst (which would open a hole another
 * thread's mmap could take). On failure the caller must not touch
 * [dst, dst + size) again. */
bool os_move(void *p, size_t size, void *dst) {
  int saved = errno;
  void *q = mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  errno = saved;
  return q != MAP_FAILED;
}

size_t os_resident(void *p, size_t size) {
  unsigned char vec[256];
  size_t resident = 0;
  int saved = errno;
  for (size_t off = 0; off < size; off += sizeof(vec) * PAGE_SIZE) {
    size_t len = size - off;
    if (len > sizeof(vec) * PAGE_SIZE) len = sizeof(vec) * PAGE_SIZE;
    if (mincore((char *)p + off, len, vec) != 0) break;
    for (size_t i = 0; i < (len + PAGE_SIZE - 1) / PAGE_SIZE; i++) resident += vec[i] & 1;
  }
  errno = saved;
  return resident * PAGE_SIZE;
}

uint64_t os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t os_random(void) {
  uint64_t v = 0;
  int saved = errno;
  if (syscall(SYS_getrandom, &v, sizeof(v), 0x1 /* GRND_NONBLOCK */) != (long)sizeof(v)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 32 ^ (uintptr_t)&v;
  }
  errno = saved;
  return v | 1;
}

/* ---- tools: valgrind and AddressSanitizer ------------------------------------
 * Both are optional at run time: the valgrind requests are no-ops natively,
 * and the ASan entry points are weak, present only when the program was built
 * with -fsanitize=address. */

extern void __asan_poison_memory_region(void const volatile *addr, size_t size) __attribute__((weak));
extern void __asan_unpoison_memory_region(void const volatile *addr, size_t size) __attribute__((weak));

bool annotate_mode;
static bool on_valgrind;

void annotate_init(void) {
  on_valgrind = RUNNING_ON_VALGRIND != 0 && options.memcheck;
  annotate_mode = on_valgrind || __asan_poison_memory_region != NULL;
}

void annotate_alloc(const void *p, size_t size, bool zeroed) {
  if (on_valgrind) VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed);
  if (__asan_unpoison_memory_region) __asan_unpoison_memory_region(p, size);
}

void annotate_free(const void *p, size_t size) {
  if (on_valgrind) VALGRIND_FREELIKE_BLOCK(p, 0);
  if (__asan_poison_memory_region) __asan_poison_memory_region(p, size);
}

/* Allocator metadata that holds block addresses (span bases, large and huge
 * block pointers) is hidden from valgrind, whose leak check would otherwise
 * take those words for references to the blocks. */
void annotate_hide(const void *p, size_t size) {
  if (on_valgrind) VALGRIND_MAKE_MEM_NOACCESS(p, size);
}

/* The allocator reads and writes the first words of free blocks, which the
 * tools see as freed memory: those accesses are its own business. */
void annotate_enter(void) {
  if (on_valgrind) VALGRIND_DISABLE_ERROR_REPORTING;
}
void annotate_leave(void) {
  if (on_valgrind) VALGRIND_ENABLE_ERROR_REPORTING;
}

/* ---- messages ------------------------------------------------------------ */

void write_all(int fd, const char *s, size_t n) {
  int saved = errno;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    s += w;
    n -= (size_t)w;
  }
  errno = saved;
}

static void flush_fd(void *arg, const char *s, size_t n) { write_all((int)(intptr_t)arg, s, n); }

void text_flush(struct text *t) {
  if (t->len) t->flush(t->arg, t->buf, t->len);
  t->len = 0;
}

void text_str(struct text *t, const char *s) {
  while (*s) {
    if (t->len == sizeof(t->buf)) text_flush(t);
    t->buf[t->len++] = *s++;
  }
}

void text_u64(struct text *t, uint64_t v) {
  char d[24];
  int n = 0;
  do d[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  char s[24];
  for (int i = 0; i < n; i++) s[i] = d[n - 1 - i];
  s[n] = 0;
  text_str(t, s);
}

void text_hex(struct text *t, uint64_t v) {
  char s[19] = "0x";
  int n = 2;
  int shift = 60;
  while (shift > 0 && ((v >> shift) & 15) == 0) shift -= 4;
  for (; shift >= 0; shift -= 4) s[n++] = "0123456789abcdef"[(v >> shift) & 15];
  s[n] = 0;
  text_str(t, s);
}

static struct text stderr_text(void) {
  struct text t;
  t.len = 0;
  t.flush = flush_fd;
  t.arg = (void *)(intptr_t)2;
  return t;
}

void warn(const char *a, const char *b, const char *c) {
  struct text t = stderr_text();
  text_str(&t, "libarena: ");
  text_str(&t, a);
  if (b) text_str(&t, b);
  if (c) text_str(&t, c);
  text_str(&t, "\n");
  text_flush(&t);
}

void report_pointer(const char *what, const void *p) {
  struct text t = stderr_text();
  text_str(&t, "libarena: ");
  text_str(&t, what);
  text_str(&t, " ");
  text_hex(&t, (uintptr_t)p);
  text_str(&t, " (thread ");
  text_u64(&t, (uint64_t)syscall(SYS_gettid));
  text_str(&t, ")\n");
  text_flush(&t);
}

_Noreturn void report_invalid(const char *what, const void *p) {
  report_pointer(what, p);
  abort();
}

_Noreturn void report_fatal(const char *what) {
  warn(what, NULL, NULL);
  abort();
}
