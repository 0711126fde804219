/* Shared helpers of the libarena stress programs: option parsing, a per-thread
 * xorshift generator, blocks that carry a verifiable pattern, the counters each
 * program reports, RSS reading and the optional libarena hooks.
 *
 * Every program links either with -larena (then arena_check and
 * arena_stats_get are used) or without it (run it against any allocator, e.g.
 * with LD_PRELOAD); the arena_* hooks are weak references and skipped when
 * absent. */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* ---- sanitizers --------------------------------------------------------- */

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define STRESS_SANITIZED 1
#endif
#endif
#ifndef STRESS_SANITIZED
#define STRESS_SANITIZED 0
#endif

/* ---- options ------------------------------------------------------------ */

/* One structure for every program; each program sets its defaults (the short
 * form run by `make test`) before calling stress_parse and ignores what it
 * does not use. A value of 0 from the command line keeps meaning 0. */
struct stress_opts {
  long threads;   /* -t --threads   worker threads */
  long scale;     /* -s --scale     multiplies the amount of work */
  long rounds;    /* -r --rounds    rounds (thread generations, cycles, ...) */
  double seconds; /* -d --seconds   duration of time-based programs */
  uint64_t seed;  /* -S --seed      base of every per-thread generator */
  long forks;     /* -f --forks     fork count (forkstorm) */
  long batch;     /* -b --batch     blocks per batch (prodcons, freeonly) */
  long limit_mib; /* -l --limit-mib memory bound or headroom in MiB */
  long max_size;  /* -m --max-size  largest block in bytes */
  double check;   /* -c --check     seconds between heap checks (soak) */
  int verbose;    /* -v --verbose   progress lines */
};

/* Parses argv; prints usage (with `what` describing the program and its
 * options) and exits 0 on --help, 2 on a bad option. */
void stress_parse(int argc, char **argv, struct stress_opts *o, const char *name, const char *what);
void stress_print_opts(const struct stress_opts *o);

/* ---- random numbers ----------------------------------------------------- */

typedef struct {
  uint64_t s;
} rng_t;

void rng_init(rng_t *r, uint64_t seed, uint64_t stream);
static inline uint64_t rng_next(rng_t *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1DULL;
}
/* Uniform in [0, n), n > 0. */
static inline uint64_t rng_below(rng_t *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}
/* True with probability pct/100. */
static inline bool rng_pct(rng_t *r, unsigned pct) { return rng_below(r, 100) < pct; }

/* A size from a mix that covers every allocator path: mostly tiny and small
 * blocks, some medium and large page runs, rarely a huge mapping; never above
 * max (at least 1). */
size_t stress_rand_size(rng_t *r, size_t max);

/* ---- counters and failures ---------------------------------------------- */

struct stress_counts {
  uint64_t mallocs, callocs, reallocs, aligned, frees;
  uint64_t verified_blocks, verified_bytes, zero_checked_bytes;
  uint64_t exchanges, enomem, ops;
};

/* Global totals; threads add their local counts once, at exit. */
extern struct stress_counts stress_total;
void stress_counts_add(const struct stress_counts *c);

/* Failures: the first few are printed, all are counted; the exit status is
 * non-zero when any happened. */
extern atomic_ulong stress_failures;
void stress_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the message and exits 1 at once (for set-up errors). */
void stress_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- blocks ------------------------------------------------------------- */

/* A live block and what it must contain. Blocks of at least STRESS_HDR bytes
 * start with a header (size and check, seed) so that another thread can verify
 * a block it only got the pointer of; the rest is a pattern derived from the
 * seed: word i of the block is pattern_word(seed, i). */
typedef struct {
  void *p;
  size_t size;
  uint64_t seed;
} blk_t;

#define STRESS_HDR 16

enum blk_kind { BLK_MALLOC, BLK_CALLOC, BLK_MEMALIGN, BLK_ALIGNED_ALLOC, BLK_KINDS };

/* Allocates size bytes with the given kind, checks alignment, calloc's zeros
 * and the usable size, then fills the pattern with a fresh seed from r. Returns
 * true on success; false when the allocator returned NULL with ENOMEM (counted;
 * other errno values are failures). */
bool blk_alloc(blk_t *b, size_t size, enum blk_kind kind, rng_t *r, struct stress_counts *c);
/* Picks a random kind (malloc 55%, calloc 20%, posix_memalign 15%,
 * aligned_alloc 10%). */
bool blk_alloc_any(blk_t *b, size_t size, rng_t *r, struct stress_counts *c);
/* realloc to new_size: verifies the kept prefix and refills the block. On
 * NULL (ENOMEM) the old block must be intact: it is verified and kept. */
bool blk_realloc(blk_t *b, size_t new_size, rng_t *r, struct stress_counts *c);
/* Writes the header (when size >= STRESS_HDR) and the pattern. */
void blk_fill(const blk_t *b);
/* Verifies every byte; reports a failure (with `who`) and returns false on a
 * mismatch. */
bool blk_verify(const blk_t *b, const char *who, struct stress_counts *c);
/* Verifies, then frees; a corrupted block is leaked rather than freed. */
void blk_free(blk_t *b, const char *who, struct stress_counts *c);
/* Reads the header of a block of at least STRESS_HDR bytes that this thread
 * got as a bare pointer; false (and a failure) when the header is corrupt. */
bool blk_from_header(void *p, blk_t *b, const char *who);

/* ---- system ------------------------------------------------------------- */

double stress_now(void);              /* monotonic seconds */
uint64_t stress_rss_bytes(void);      /* current RSS (/proc/self/statm) */
uint64_t stress_peak_rss_bytes(void); /* VmHWM (/proc/self/status) */
uint64_t stress_vmsize_bytes(void);   /* VmSize (/proc/self/status) */

/* libarena hooks: true when the program runs on libarena (linked or
 * preloaded). */
bool stress_have_arena(void);
/* arena_check(); returns its result, or 0 without libarena. Counts a failure
 * when non-zero. */
int stress_check_heap(const char *when);
/* arena_stats_get mapped_bytes, or 0 without libarena. */
uint64_t stress_mapped_bytes(void);
/* Fills *st with arena_stats_get; false without libarena. */
bool stress_stats(struct arena_stats *st);

/* Creates a thread or dies. */
void stress_thread(pthread_t *t, void *(*fn)(void *), void *arg);
void stress_join(pthread_t t);

/* Prints the summary line(s): counts, peak RSS, time, heap checks and result,
 * and returns the exit status (0 when no failure). Every block counted as
 * allocated must have been counted as freed by then (a failure otherwise). */
int stress_report(const char *name, double start, const char *extra);

#endif /* STRESS_COMMON_H */
