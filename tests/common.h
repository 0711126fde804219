/* Shared helpers for the libarena cmocka tests. */
#ifndef LIBARENA_TESTS_COMMON_H
#define LIBARENA_TESTS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <malloc.h>
#include <unistd.h>
#include <signal.h>
#include <sys/syscall.h>
#ifdef __cplusplus
extern "C" { /* cmocka 1.1.5's header has no C++ guards */
#include <cmocka.h>
}
#else
#include <cmocka.h>
#endif

#include "arena.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* Keeps the compiler from reasoning about a pointer (e.g. proving that a
 * malloc result is unused, or that a stack address is being freed). */
static inline void *launder(void *p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

static inline size_t launder_size(size_t n) {
  __asm__ volatile("" : "+r"(n));
  return n;
}

/* Deterministic pattern: the byte at offset i of a block seeded with seed. */
static inline unsigned char pat_byte(uint64_t seed, size_t i) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(i >> 3) * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return (unsigned char)(x >> (8 * (i & 7)));
}

static inline uint64_t pat_word(uint64_t seed, size_t word_index) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + (uint64_t)word_index * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return x;
}

/* Fills n bytes at p with the pattern (8 bytes at a time where possible). */
static inline void pat_fill(void *p, size_t n, uint64_t seed) {
  unsigned char *b = (unsigned char *)p;
  size_t words = n / 8;
  for (size_t w = 0; w < words; w++) {
    uint64_t v = pat_word(seed, w);
    memcpy(b + 8 * w, &v, 8);
  }
  for (size_t i = words * 8; i < n; i++) b[i] = pat_byte(seed, i);
}

/* Returns the offset of the first byte that differs from the pattern, or
 * (size_t)-1 when all n bytes match. */
static inline size_t pat_check(const void *p, size_t n, uint64_t seed) {
  const unsigned char *b = (const unsigned char *)p;
  size_t words = n / 8;
  for (size_t w = 0; w < words; w++) {
    uint64_t v;
    memcpy(&v, b + 8 * w, 8);
    if (v != pat_word(seed, w)) {
      for (size_t i = 8 * w; i < 8 * w + 8; i++)
        if (b[i] != pat_byte(seed, i)) return i;
    }
  }
  for (size_t i = words * 8; i < n; i++)
    if (b[i] != pat_byte(seed, i)) return i;
  return (size_t)-1;
}

#define assert_pattern(p, n, seed)                                                                           \
  do {                                                                                                       \
    size_t bad_ = pat_check((p), (n), (seed));                                                               \
    if (bad_ != (size_t)-1)                                                                                  \
      fail_msg("pattern mismatch in block %p (size %zu) at offset %zu", (void *)(p), (size_t)(n), bad_);     \
  } while (0)

static inline int all_bytes_equal(const void *p, size_t n, unsigned char v) {
  const unsigned char *b = (const unsigned char *)p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return 0;
  return 1;
}

#define assert_aligned(p, a)                                                                                 \
  do {                                                                                                       \
    if (((uintptr_t)(p)) % (uintptr_t)(a) != 0)                                                              \
      fail_msg("pointer %p is not aligned to %zu", (void *)(p), (size_t)(a));                                \
  } while (0)

/* Reads the library's statistics; fails the test if arena_stats_get fails. */
static inline struct arena_stats stats_now(void) {
  struct arena_stats s;
  memset(&s, 0, sizeof s);
  s.version = ARENA_STATS_VERSION;
  s.size = sizeof s;
  int r = arena_stats_get(&s);
  assert_int_equal(r, 0);
  return s;
}

/* Value in kB of a "Key:   N kB" line of /proc/self/status, or 0. */
static inline size_t proc_status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  size_t klen = strlen(key), v = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      v = strtoull(line + klen + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

/* Resident set size in bytes (from /proc/self/statm). */
static inline size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, res = 0;
  if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
  fclose(f);
  return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static inline size_t next_pow2(size_t a) {
  size_t p = 1;
  while (p < a) p <<= 1;
  return p;
}

/* xorshift64* generator; deterministic per seed. */
static inline uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Set when the allocator aborted during an earlier test of this process. */
static int g_aborted_before;

/* Checks the heap invariants; every test that churns memory calls this. */
#define assert_heap_ok()                                                                                     \
  do {                                                                                                       \
    int problems_ = arena_check();                                                                           \
    if (problems_)                                                                                           \
      fail_msg("arena_check() found %d problem(s) (see stderr)%s", problems_,                                \
               g_aborted_before ? "; an earlier test aborted inside the allocator, this may "                \
                                  "be a consequence"                                                         \
                                : "");                                                                       \
  } while (0)

/* TEST_FILTER=pattern (cmocka wildcard) runs only the matching tests;
 * TEST_SKIP=pattern skips the matching ones. */
static inline void apply_test_filter(void) {
  const char *f = getenv("TEST_FILTER");
  if (f && *f) cmocka_set_test_filter(f);
  const char *s = getenv("TEST_SKIP");
  if (s && *s) cmocka_set_skip_filter(s);
}

/* cmocka catches SIGSEGV but not SIGABRT: when the allocator aborts on the
 * main thread, fail the current test and go on with the next one (the
 * allocator's message is on stderr). Aborts on other threads, and in forked
 * children (other thread ids), keep the default action. */
static pid_t g_main_tid;
static void on_abort_signal(int sig) {
  if ((pid_t)syscall(SYS_gettid) != g_main_tid) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  g_aborted_before = 1;
  fail_msg("SIGABRT: the allocator aborted (its message is above)");
}
static inline void catch_aborts(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_abort_signal;
  sa.sa_flags = SA_NODEFER;
  g_main_tid = (pid_t)syscall(SYS_gettid);
  sigaction(SIGABRT, &sa, NULL);
}

#endif
