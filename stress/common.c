/* Shared helpers of the stress programs; see common.h. */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Weak references: non-NULL only when libarena is linked or preloaded. */
extern int arena_check(void) __attribute__((weak));
extern int arena_stats_get(struct arena_stats *stats) __attribute__((weak));
extern size_t arena_usable_size(const void *ptr) __attribute__((weak));

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *f, const char *name, const char *what, const struct stress_opts *o) {
  fprintf(f,
          "usage: %s [options]\n%s\n"
          "common options (defaults are the short form run by `make test`):\n"
          "  -t, --threads N     worker threads (%ld)\n"
          "  -s, --scale N       work multiplier (%ld)\n"
          "  -r, --rounds N      rounds (%ld)\n"
          "  -d, --seconds X     duration (%.1f)\n"
          "  -S, --seed N        random seed (%" PRIu64 ")\n"
          "  -f, --forks N       forks (%ld)\n"
          "  -b, --batch N       blocks per batch (%ld)\n"
          "  -l, --limit-mib N   memory bound / headroom in MiB (%ld)\n"
          "  -m, --max-size N    largest block in bytes (%ld)\n"
          "  -c, --check X       seconds between heap checks (%.1f)\n"
          "  -v, --verbose       progress lines\n"
          "  -h, --help\n",
          name, what, o->threads, o->scale, o->rounds, o->seconds, o->seed, o->forks, o->batch, o->limit_mib,
          o->max_size, o->check);
}

static long parse_long(const char *name, const char *opt, const char *s) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 0);
  if (errno || end == s || *end || v < 0) {
    fprintf(stderr, "%s: bad value for %s: '%s'\n", name, opt, s);
    exit(2);
  }
  return v;
}

static double parse_double(const char *name, const char *opt, const char *s) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < 0) {
    fprintf(stderr, "%s: bad value for %s: '%s'\n", name, opt, s);
    exit(2);
  }
  return v;
}

void stress_parse(int argc, char **argv, struct stress_opts *o, const char *name, const char *what) {
  static const struct option longopts[] = {{"threads", required_argument, 0, 't'},
                                           {"scale", required_argument, 0, 's'},
                                           {"rounds", required_argument, 0, 'r'},
                                           {"seconds", required_argument, 0, 'd'},
                                           {"seed", required_argument, 0, 'S'},
                                           {"forks", required_argument, 0, 'f'},
                                           {"batch", required_argument, 0, 'b'},
                                           {"limit-mib", required_argument, 0, 'l'},
                                           {"max-size", required_argument, 0, 'm'},
                                           {"check", required_argument, 0, 'c'},
                                           {"verbose", no_argument, 0, 'v'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "t:s:r:d:S:f:b:l:m:c:vh", longopts, NULL)) != -1) {
    switch (c) {
    case 't': o->threads = parse_long(name, "--threads", optarg); break;
    case 's': o->scale = parse_long(name, "--scale", optarg); break;
    case 'r': o->rounds = parse_long(name, "--rounds", optarg); break;
    case 'd': o->seconds = parse_double(name, "--seconds", optarg); break;
    case 'S': o->seed = (uint64_t)strtoull(optarg, NULL, 0); break;
    case 'f': o->forks = parse_long(name, "--forks", optarg); break;
    case 'b': o->batch = parse_long(name, "--batch", optarg); break;
    case 'l': o->limit_mib = parse_long(name, "--limit-mib", optarg); break;
    case 'm': o->max_size = parse_long(name, "--max-size", optarg); break;
    case 'c': o->check = parse_double(name, "--check", optarg); break;
    case 'v': o->verbose = 1; break;
    case 'h': usage(stdout, name, what, o); exit(0);
    default: usage(stderr, name, what, o); exit(2);
    }
  }
  if (optind < argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", name, argv[optind]);
    usage(stderr, name, what, o);
    exit(2);
  }
  if (o->threads < 1) o->threads = 1;
  if (o->scale < 1) o->scale = 1;
  if (o->max_size < 1) o->max_size = 1;
  if (o->max_size > ((long)1 << 31)) o->max_size = (long)1 << 31;
  if (o->batch < 1) o->batch = 1;
}

void stress_print_opts(const struct stress_opts *o) {
  printf("  options: threads=%ld scale=%ld rounds=%ld seconds=%.1f seed=%" PRIu64
         " forks=%ld batch=%ld limit-mib=%ld max-size=%ld check=%.1f; allocator: %s%s\n",
         o->threads, o->scale, o->rounds, o->seconds, o->seed, o->forks, o->batch, o->limit_mib, o->max_size,
         o->check, stress_have_arena() ? "libarena" : "system/preloaded (no arena_check)",
         STRESS_SANITIZED ? " (sanitizer build)" : "");
  fflush(stdout);
}

/* ---- random numbers ----------------------------------------------------- */

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void rng_init(rng_t *r, uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ULL);
  r->s = splitmix(&x);
  if (r->s == 0) r->s = 0x1234567887654321ULL;
}

/* Uniform on a log scale in [lo, hi]. */
static size_t log_between(rng_t *r, size_t lo, size_t hi) {
  if (lo >= hi) return hi;
  unsigned lb = 63 - (unsigned)__builtin_clzll(lo), hb = 63 - (unsigned)__builtin_clzll(hi);
  unsigned b = lb + (unsigned)rng_below(r, hb - lb + 1);
  size_t base = (size_t)1 << b;
  size_t s = base + (size_t)rng_below(r, base);
  if (s < lo) s = lo;
  if (s > hi) s = hi;
  return s;
}

size_t stress_rand_size(rng_t *r, size_t max) {
  uint64_t x = rng_below(r, 1000);
  size_t lo, hi;
  if (x < 450)
    lo = 1, hi = 64;
  else if (x < 750)
    lo = 65, hi = 512;
  else if (x < 900)
    lo = 513, hi = 8192;
  else if (x < 980)
    lo = 8193, hi = 32768; /* top small classes */
  else if (x < 998)
    lo = 32769, hi = (size_t)1 << 20; /* large page runs */
  else
    lo = ((size_t)1 << 20) + 1, hi = (size_t)4 << 20; /* huge mappings */
  if (max < 1) max = 1;
  if (hi > max) hi = max;
  if (lo > hi) lo = hi > 64 ? hi / 2 : 1;
  if (hi <= 512) return lo + (size_t)rng_below(r, hi - lo + 1);
  return log_between(r, lo, hi);
}

/* ---- counters and failures ---------------------------------------------- */

struct stress_counts stress_total;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;
atomic_ulong stress_failures;
static atomic_ulong heap_checks;

void stress_counts_add(const struct stress_counts *c) {
  pthread_mutex_lock(&total_lock);
  stress_total.mallocs += c->mallocs;
  stress_total.callocs += c->callocs;
  stress_total.reallocs += c->reallocs;
  stress_total.aligned += c->aligned;
  stress_total.frees += c->frees;
  stress_total.verified_blocks += c->verified_blocks;
  stress_total.verified_bytes += c->verified_bytes;
  stress_total.zero_checked_bytes += c->zero_checked_bytes;
  stress_total.exchanges += c->exchanges;
  stress_total.enomem += c->enomem;
  stress_total.ops += c->ops;
  pthread_mutex_unlock(&total_lock);
}

#define MAX_FAIL_LINES 20

void stress_fail(const char *fmt, ...) {
  unsigned long n = atomic_fetch_add(&stress_failures, 1);
  if (n >= MAX_FAIL_LINES) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  /* One write: lines of concurrent threads do not interleave. */
  char line[600];
  int len = snprintf(line, sizeof line, "FAIL[pid %d]: %s\n%s", (int)getpid(), buf,
                     n + 1 == MAX_FAIL_LINES ? "FAIL: (further failures are counted only)\n" : "");
  if (len > (int)sizeof line) len = sizeof line;
  if (write(2, line, (size_t)len) < 0) {
  }
}

void stress_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FATAL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

/* ---- blocks ------------------------------------------------------------- */

#define GOLDEN 0x9E3779B97F4A7C15ULL

static inline uint64_t pattern_word(uint64_t seed, size_t i) { return seed ^ (i * GOLDEN); }
static inline uint64_t hdr_word0(size_t size, uint64_t seed) {
  return (uint64_t)size | (((seed * GOLDEN) >> 32) << 32);
}
/* Word i of the block (b->size bytes): the header, then the pattern. */
static inline uint64_t block_word(const blk_t *b, size_t i) {
  if (b->size >= STRESS_HDR && i < 2) return i == 0 ? hdr_word0(b->size, b->seed) : b->seed;
  return pattern_word(b->seed, i);
}

void blk_fill(const blk_t *b) {
  uint64_t *w = b->p;
  size_t words = b->size / 8, i = 0;
  if (b->size >= STRESS_HDR) {
    w[0] = hdr_word0(b->size, b->seed);
    w[1] = b->seed;
    i = 2;
  }
  for (; i < words; i++) w[i] = pattern_word(b->seed, i);
  if (b->size & 7) {
    uint64_t last = block_word(b, words);
    memcpy((char *)b->p + words * 8, &last, b->size & 7);
  }
}

/* First byte offset in [0, upto) that differs from the layout of b, or upto. */
static size_t first_mismatch(const blk_t *b, size_t upto) {
  const uint64_t *w = b->p;
  size_t words = upto / 8, i = 0;
  if (b->size >= STRESS_HDR) {
    for (; i < 2 && i < words; i++)
      if (w[i] != block_word(b, i)) goto bytes;
  }
  for (; i < words; i++)
    if (w[i] != pattern_word(b->seed, i)) goto bytes;
  if (upto & 7) {
    uint64_t last = block_word(b, words), got = 0;
    memcpy(&got, (const char *)b->p + words * 8, upto & 7);
    memset((char *)&last + (upto & 7), 0, 8 - (upto & 7));
    if (got != last) goto bytes;
  }
  return upto;
bytes:
  for (size_t j = (i < words ? i : words) * 8; j < upto; j++) {
    uint64_t e = block_word(b, j / 8);
    unsigned char want = (unsigned char)(e >> (8 * (j % 8)));
    if (((const unsigned char *)b->p)[j] != want) return j;
  }
  return upto;
}

static void report_mismatch(const blk_t *b, size_t upto, size_t off, const char *who, const char *what) {
  uint64_t e = block_word(b, off / 8);
  unsigned char want = (unsigned char)(e >> (8 * (off % 8)));
  const unsigned char *p = b->p;
  size_t bad = 0;
  for (size_t j = off; j < upto; j++)
    if (p[j] != (unsigned char)(block_word(b, j / 8) >> (8 * (j % 8)))) bad++;
  stress_fail("%s: %s: block %p size %zu seed %#" PRIx64 ": byte %zu is %#04x, expected %#04x "
              "(%zu of %zu checked bytes differ from there on)",
              who, what, b->p, b->size, b->seed, off, p[off], want, bad, upto);
}

static bool verify_upto(const blk_t *b, size_t upto, const char *who, const char *what,
                        struct stress_counts *c) {
  size_t off = first_mismatch(b, upto);
  c->verified_blocks++;
  c->verified_bytes += upto;
  if (off == upto) return true;
  report_mismatch(b, upto, off, who, what);
  return false;
}

bool blk_verify(const blk_t *b, const char *who, struct stress_counts *c) {
  return verify_upto(b, b->size, who, "corrupted block", c);
}

bool blk_from_header(void *p, blk_t *b, const char *who) {
  const uint64_t *w = p;
  uint64_t seed = w[1];
  size_t size = (size_t)(w[0] & 0xffffffffu);
  if (size < STRESS_HDR || w[0] != hdr_word0(size, seed)) {
    stress_fail("%s: block %p has a corrupted header: %#" PRIx64 " %#" PRIx64, who, p, w[0], w[1]);
    return false;
  }
  b->p = p;
  b->size = size;
  b->seed = seed;
  return true;
}

static size_t usable(void *p) {
  if (arena_usable_size) return arena_usable_size(p);
  return malloc_usable_size(p);
}

/* Alignment, usable size and distinctness checks common to every result. */
static void check_new(void *p, size_t size, size_t align, const char *what) {
  size_t min_align = stress_have_arena() ? 16 : (size >= 16 ? 16 : 8);
  if (align < min_align) align = min_align;
  if ((uintptr_t)p % align) stress_fail("%s(%zu) returned %p, not aligned to %zu", what, size, p, align);
  size_t u = usable(p);
  if (u < size) stress_fail("%s(%zu) returned %p with usable size %zu", what, size, p, u);
}

static uint64_t new_seed(rng_t *r) {
  uint64_t s = rng_next(r);
  return s ? s : 1;
}

static bool null_result(const char *what, size_t size, int err, struct stress_counts *c) {
  if (err == ENOMEM) {
    c->enomem++;
    return false;
  }
  stress_fail("%s(%zu) returned NULL with errno %d (%s), expected ENOMEM", what, size, err, strerror(err));
  return false;
}

bool blk_alloc(blk_t *b, size_t size, enum blk_kind kind, rng_t *r, struct stress_counts *c) {
  void *p = NULL;
  size_t align = 0;
  const char *what = "malloc";
  errno = 0;
  switch (kind) {
  case BLK_CALLOC:
    what = "calloc";
    if (size >= 64 && rng_pct(r, 50))
      p = calloc(size / 8, 8), size = size / 8 * 8;
    else
      p = calloc(1, size);
    break;
  case BLK_MEMALIGN: {
    static const size_t aligns[] = {8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192, 65536};
    unsigned n = rng_pct(r, 98) ? 9 : 11;
    align = aligns[rng_below(r, n)];
    what = "posix_memalign";
    int rc = posix_memalign(&p, align, size);
    if (rc) {
      if (rc == ENOMEM) {
        c->enomem++;
        return false;
      }
      stress_fail("posix_memalign(%zu, %zu) returned %d", align, size, rc);
      return false;
    }
    break;
  }
  case BLK_ALIGNED_ALLOC:
    align = (size_t)1 << (4 + rng_below(r, rng_pct(r, 98) ? 9 : 13)); /* 16..4096 / 64K */
    what = "aligned_alloc";
    /* The sanitizers insist on C11's size % alignment == 0. */
    if (STRESS_SANITIZED) size = (size + align - 1) & ~(align - 1);
    p = aligned_alloc(align, size);
    break;
  default: p = malloc(size); break;
  }
  if (!p) return null_result(what, size, errno, c);
  if (kind == BLK_CALLOC) {
    c->callocs++;
    const unsigned char *q = p;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      uint64_t w;
      memcpy(&w, q + i, 8);
      if (w) break;
    }
    for (; i < size; i++)
      if (q[i]) {
        stress_fail("calloc(%zu) returned %p with byte %zu = %#04x, not zero", size, p, i, q[i]);
        break;
      }
    c->zero_checked_bytes += size;
  } else if (kind == BLK_MALLOC) {
    c->mallocs++;
  } else {
    c->aligned++;
  }
  check_new(p, size, align, what);
  b->p = p;
  b->size = size;
  b->seed = new_seed(r);
  blk_fill(b);
  return true;
}

bool blk_alloc_any(blk_t *b, size_t size, rng_t *r, struct stress_counts *c) {
  uint64_t x = rng_below(r, 100);
  enum blk_kind k = x < 55 ? BLK_MALLOC : x < 75 ? BLK_CALLOC : x < 90 ? BLK_MEMALIGN : BLK_ALIGNED_ALLOC;
  return blk_alloc(b, size, k, r, c);
}

bool blk_realloc(blk_t *b, size_t new_size, rng_t *r, struct stress_counts *c) {
  errno = 0;
  void *p = realloc(b->p, new_size);
  if (!p) {
    int err = errno;
    if (new_size == 0) return false; /* not used by the programs */
    null_result("realloc", new_size, err, c);
    verify_upto(b, b->size, "realloc", "block changed by a failed realloc", c);
    return false;
  }
  c->reallocs++;
  blk_t old = *b;
  old.p = p;
  size_t keep = old.size < new_size ? old.size : new_size;
  verify_upto(&old, keep, "realloc", "prefix not preserved by realloc", c);
  check_new(p, new_size, 0, "realloc");
  b->p = p;
  b->size = new_size;
  b->seed = new_seed(r);
  blk_fill(b);
  return true;
}

void blk_free(blk_t *b, const char *who, struct stress_counts *c) {
  if (!b->p) return;
  if (blk_verify(b, who, c)) {
    free(b->p);
    c->frees++;
  }
  b->p = NULL;
}

/* ---- system ------------------------------------------------------------- */

double stress_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t stress_rss_bytes(void) {
  char buf[128];
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, rss = 0;
  if (!fgets(buf, sizeof buf, f) || sscanf(buf, "%lu %lu", &size, &rss) != 2) rss = 0;
  fclose(f);
  return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t status_kib(const char *key) {
  char line[256];
  size_t klen = strlen(key);
  uint64_t v = 0;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, klen) && line[klen] == ':') {
      v = strtoull(line + klen + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v * 1024;
}

uint64_t stress_peak_rss_bytes(void) { return status_kib("VmHWM"); }
uint64_t stress_vmsize_bytes(void) { return status_kib("VmSize"); }

bool stress_have_arena(void) { return arena_check != NULL; }

int stress_check_heap(const char *when) {
  if (!arena_check) return 0;
  atomic_fetch_add(&heap_checks, 1);
  int n = arena_check();
  if (n) stress_fail("arena_check() returned %d %s", n, when);
  return n;
}

bool stress_stats(struct arena_stats *st) {
  if (!arena_stats_get) return false;
  memset(st, 0, sizeof *st);
  st->version = ARENA_STATS_VERSION;
  st->size = sizeof *st;
  int rc = arena_stats_get(st);
  if (rc) {
    stress_fail("arena_stats_get failed: %d", rc);
    return false;
  }
  return true;
}

uint64_t stress_mapped_bytes(void) {
  struct arena_stats st;
  return stress_stats(&st) ? st.mapped_bytes : 0;
}

void stress_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
  int rc = pthread_create(t, NULL, fn, arg);
  if (rc) stress_die("pthread_create: %s", strerror(rc));
}

void stress_join(pthread_t t) {
  int rc = pthread_join(t, NULL);
  if (rc) stress_die("pthread_join: %s", strerror(rc));
}

#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

int stress_report(const char *name, double start, const char *extra) {
  const struct stress_counts *t = &stress_total;
  uint64_t allocated = t->mallocs + t->callocs + t->aligned;
  if (allocated != t->frees)
    stress_fail("%s: %" PRIu64 " blocks allocated but %" PRIu64 " freed by the end", name, allocated,
                t->frees);
  unsigned long fails = atomic_load(&stress_failures);
  printf("  ops %" PRIu64 ": malloc %" PRIu64 ", calloc %" PRIu64 ", realloc %" PRIu64 ", aligned %" PRIu64
         ", free %" PRIu64 ", exchanges %" PRIu64 ", ENOMEM %" PRIu64 "\n",
         t->ops, t->mallocs, t->callocs, t->reallocs, t->aligned, t->frees, t->exchanges, t->enomem);
  printf("  verified %" PRIu64 " blocks (%.1f MiB of pattern), %.1f MiB of calloc zeros\n",
         t->verified_blocks, MIB(t->verified_bytes), MIB(t->zero_checked_bytes));
  if (extra && *extra) printf("  %s\n", extra);
  if (stress_have_arena())
    printf("  heap checks: %lu arena_check() calls\n", atomic_load(&heap_checks));
  else
    printf("  heap checks: skipped (not running on libarena)\n");
  printf("  peak RSS %.1f MiB, time %.2f s\n", MIB(stress_peak_rss_bytes()), stress_now() - start);
  printf("%s: %s", name, fails ? "FAILED" : "OK");
  if (fails) printf(" (%lu failures)", fails);
  printf("\n");
  fflush(stdout);
  return fails ? 1 : 0;
}
