/* Soak: a mix of every stress program for --seconds:
 *   - --threads mixer threads (random transfer through a shared exchange
 *     array), each replaced by a new thread after a generation of operations;
 *     a new mixer takes over the blocks of the one it replaces;
 *   - a producer and a free-only consumer passing batches (remote frees);
 *   - a forker thread whose children verify and free inherited blocks;
 *   - a pressure thread that once a second lowers RLIMIT_AS to --limit-mib
 *     above the VmSize at start (at least 16 MiB above the current one),
 *     allocates until NULL (every thread then has to cope with ENOMEM), frees
 *     and lifts the limit again;
 *   - the main thread runs arena_check() every --check seconds while all of
 *     that goes on (skipped when not running on libarena); it must return 0.
 * Forks and thread creation never overlap a pressure phase. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct stress_opts opt = {.threads = 3,
                                 .scale = 1,
                                 .seconds = 6,
                                 .seed = 1,
                                 .check = 1.0,
                                 .batch = 500,
                                 .limit_mib = 256,
                                 .max_size = 4 << 20};

#define SLOTS 256
#define NSHARED 512
#define GEN_OPS 20000
#define CHILD_TIMEOUT 30.0

static atomic_int stop;
static pthread_mutex_t phase_lock = PTHREAD_MUTEX_INITIALIZER; /* fork, pthread_create, RLIMIT_AS */
static _Atomic(void *) shared[NSHARED];
static atomic_ulong generations, batches, forks_ok, forks_done, pressure_phases, pressure_nulls;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- mixers ------------------------------------------------------------- */

struct mixer {
  long index, gen;
  pthread_t tid;
  atomic_int finished;
  blk_t slots[SLOTS]; /* taken over by the next generation */
};

static void *mixer(void *arg) {
  struct mixer *m = arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, (uint64_t)m->gen * 64 + (uint64_t)m->index);
  char who[48];
  snprintf(who, sizeof who, "soak mixer %ld gen %ld", m->index, m->gen);
  size_t max = (size_t)opt.max_size;
  for (long n = 0; n < GEN_OPS * opt.scale && !atomic_load_explicit(&stop, memory_order_relaxed); n++) {
    blk_t *b = &m->slots[rng_below(&r, SLOTS)];
    c.ops++;
    if (!b->p) {
      if (!blk_alloc_any(b, stress_rand_size(&r, max), &r, &c)) b->p = NULL;
      continue;
    }
    uint64_t x = rng_below(&r, 100);
    if (x < 30) {
      blk_free(b, who, &c);
    } else if (x < 45) {
      if (blk_verify(b, who, &c))
        blk_realloc(b, stress_rand_size(&r, max), &r, &c);
      else
        b->p = NULL;
    } else if (x < 75) {
      if (!blk_verify(b, who, &c)) {
        b->p = NULL;
      } else if (b->size >= STRESS_HDR) {
        void *q = atomic_exchange(&shared[rng_below(&r, NSHARED)], b->p);
        c.exchanges++;
        b->p = NULL;
        if (q && blk_from_header(q, b, who) && !blk_verify(b, who, &c)) b->p = NULL;
      }
    } else {
      blk_verify(b, who, &c);
    }
  }
  stress_counts_add(&c);
  atomic_store(&m->finished, 1);
  return NULL;
}

/* ---- producer and free-only consumer ------------------------------------ */

struct batch {
  struct batch *next;
  size_t n;
  blk_t b[];
};

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static struct batch *qhead, *qtail;
static long qlen;
static int producer_done;

static void *producer(void *arg) {
  (void)arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, 7777);
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    size_t n = (size_t)opt.batch / 2 + (size_t)rng_below(&r, (uint64_t)opt.batch);
    struct batch *bt = malloc(sizeof *bt + n * sizeof(blk_t));
    if (!bt) { /* pressure phase */
      c.enomem++;
      sleep_ms(1);
      continue;
    }
    bt->next = NULL;
    bt->n = 0;
    for (size_t i = 0; i < n; i++) {
      c.ops++;
      size_t sz = rng_pct(&r, 90) ? 1 + (size_t)rng_below(&r, 256) : stress_rand_size(&r, 1 << 16);
      if (blk_alloc_any(&bt->b[bt->n], sz, &r, &c)) bt->n++;
    }
    pthread_mutex_lock(&qlock);
    while (qlen >= 4 && !atomic_load(&stop)) pthread_cond_wait(&qcond, &qlock);
    if (qtail)
      qtail->next = bt;
    else
      qhead = bt;
    qtail = bt;
    qlen++;
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
  }
  pthread_mutex_lock(&qlock);
  producer_done = 1;
  pthread_cond_broadcast(&qcond);
  pthread_mutex_unlock(&qlock);
  stress_counts_add(&c);
  return NULL;
}

/* Never allocates. */
static void *consumer(void *arg) {
  (void)arg;
  struct stress_counts c = {0};
  for (;;) {
    pthread_mutex_lock(&qlock);
    while (!qhead && !producer_done) pthread_cond_wait(&qcond, &qlock);
    struct batch *bt = qhead;
    if (bt) {
      qhead = bt->next;
      if (!qhead) qtail = NULL;
      qlen--;
      pthread_cond_broadcast(&qcond);
    }
    pthread_mutex_unlock(&qlock);
    if (!bt) break;
    for (size_t i = 0; i < bt->n; i++) {
      c.ops++;
      blk_free(&bt->b[i], "soak free-only consumer", &c);
    }
    free(bt);
    atomic_fetch_add(&batches, 1);
  }
  stress_counts_add(&c);
  return NULL;
}

/* ---- forker ------------------------------------------------------------- */

static void child_main(unsigned long k) {
  struct stress_counts c = {0};
  atomic_store(&stress_failures, 0);
  rng_t r;
  rng_init(&r, opt.seed, 500000 + k);
  char who[48];
  snprintf(who, sizeof who, "soak child %lu", k);
  for (int i = 0; i < NSHARED; i++) {
    void *q = atomic_exchange(&shared[i], NULL);
    blk_t b;
    if (q && blk_from_header(q, &b, who)) blk_free(&b, who, &c);
  }
  for (int i = 0; i < 300; i++) {
    blk_t b;
    if (blk_alloc_any(&b, stress_rand_size(&r, (size_t)opt.max_size), &r, &c)) blk_free(&b, who, &c);
  }
  stress_check_heap(who);
  exit(atomic_load(&stress_failures) ? 1 : 0);
}

static void *forker(void *arg) {
  (void)arg;
  for (unsigned long k = 0; !atomic_load(&stop); k++) {
    pthread_mutex_lock(&phase_lock);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) child_main(k);
    pthread_mutex_unlock(&phase_lock);
    if (pid < 0) {
      stress_fail("fork: %s", strerror(errno));
      sleep_ms(50);
      continue;
    }
    atomic_fetch_add(&forks_done, 1);
    double t0 = stress_now();
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && stress_now() - t0 < CHILD_TIMEOUT) sleep_ms(1);
    if (w == 0) {
      stress_fail("soak child %lu (pid %d) did not exit within %.0f s; killed", k, (int)pid, CHILD_TIMEOUT);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    } else if (w < 0) {
      stress_fail("waitpid: %s", strerror(errno));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      atomic_fetch_add(&forks_ok, 1);
    } else if (WIFSIGNALED(status)) {
      stress_fail("soak child %lu (pid %d) killed by signal %d (%s)", k, (int)pid, WTERMSIG(status),
                  strsignal(WTERMSIG(status)));
    } else {
      stress_fail("soak child %lu (pid %d) exited with status %d", k, (int)pid, WEXITSTATUS(status));
    }
    sleep_ms(20);
  }
  return NULL;
}

/* ---- pressure ----------------------------------------------------------- */

#define PSLOTS 4096
static uint64_t pressure_ceiling; /* VmSize at start + --limit-mib */

static void *pressure(void *arg) {
  (void)arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, 8888);
  blk_t *slots = calloc(PSLOTS, sizeof *slots);
  if (!slots) stress_die("out of memory");
  while (!atomic_load(&stop)) {
    for (int i = 0; i < 20 && !atomic_load(&stop); i++) sleep_ms(50);
    if (atomic_load(&stop)) break;
    pthread_mutex_lock(&phase_lock);
    struct rlimit old, lim;
    getrlimit(RLIMIT_AS, &old);
    lim = old;
    /* A fixed ceiling (so that retained memory does not ratchet it up),
     * but always a little room above the current size. */
    uint64_t vm = stress_vmsize_bytes();
    lim.rlim_cur = vm + (16 << 20) > pressure_ceiling ? vm + (16 << 20) : pressure_ceiling;
    bool limited = !STRESS_SANITIZED && (old.rlim_max == RLIM_INFINITY || lim.rlim_cur <= old.rlim_max);
    if (limited && setrlimit(RLIMIT_AS, &lim)) stress_die("setrlimit: %s", strerror(errno));
    long n = 0;
    static const size_t levels[] = {8 << 20, 1 << 20, 64 << 10, 4 << 10, 256};
    for (unsigned l = 0; l < sizeof levels / sizeof *levels; l++) {
      /* without a limit (sanitizer), stop at 32 blocks per level */
      for (int i = 0; n < PSLOTS && (limited || i < 32); i++) {
        size_t sz = levels[l] / 2 + (size_t)rng_below(&r, levels[l] / 2);
        c.ops++;
        if (!blk_alloc_any(&slots[n], sz, &r, &c)) {
          atomic_fetch_add(&pressure_nulls, 1);
          break;
        }
        n++;
      }
    }
    for (long i = 0; i < n; i++) blk_free(&slots[i], "soak pressure", &c);
    if (limited && setrlimit(RLIMIT_AS, &old)) stress_die("setrlimit: %s", strerror(errno));
    pthread_mutex_unlock(&phase_lock);
    atomic_fetch_add(&pressure_phases, 1);
  }
  free(slots);
  stress_counts_add(&c);
  return NULL;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv) {
  stress_parse(argc, argv, &opt, "soak",
               "A mix of transfer, producer/free-only consumer, fork storm and memory pressure\n"
               "for --seconds, with arena_check() every --check seconds; --threads mixers.");
  double start = stress_now();
  printf("soak: %.1f s, %ld mixer threads, producer + free-only consumer, forker, pressure, "
         "heap check every %.1f s\n",
         opt.seconds, opt.threads, opt.check);
  stress_print_opts(&opt);

  struct mixer *ms = calloc((size_t)opt.threads, sizeof *ms);
  if (!ms) stress_die("out of memory");
  pthread_t prod, cons, fork_t, press;
  for (long i = 0; i < opt.threads; i++) {
    ms[i].index = i;
    stress_thread(&ms[i].tid, mixer, &ms[i]);
  }
  stress_thread(&cons, consumer, NULL);
  stress_thread(&prod, producer, NULL);
  stress_thread(&fork_t, forker, NULL);
  pressure_ceiling = stress_vmsize_bytes() + ((uint64_t)opt.limit_mib << 20);
  stress_thread(&press, pressure, NULL);

  double end = start + opt.seconds, next_check = start + opt.check, next_report = start + 1;
  unsigned long checks = 0;
  while (stress_now() < end) {
    sleep_ms(5);
    for (long i = 0; i < opt.threads; i++) {
      if (!atomic_load(&ms[i].finished)) continue;
      stress_join(ms[i].tid);
      atomic_store(&ms[i].finished, 0);
      ms[i].gen++;
      atomic_fetch_add(&generations, 1);
      pthread_mutex_lock(&phase_lock);
      stress_thread(&ms[i].tid, mixer, &ms[i]);
      pthread_mutex_unlock(&phase_lock);
    }
    double now = stress_now();
    if (opt.check > 0 && now >= next_check) {
      char when[64];
      snprintf(when, sizeof when, "at %.1f s", now - start);
      stress_check_heap(when);
      checks++;
      next_check = now + opt.check;
    }
    if (opt.verbose && now >= next_report) {
      printf("  %.0f s: mixer generations %lu, batches %lu, forks %lu, pressure phases %lu, RSS %.1f MiB\n",
             now - start, atomic_load(&generations), atomic_load(&batches), atomic_load(&forks_done),
             atomic_load(&pressure_phases), stress_rss_bytes() / 1048576.0);
      fflush(stdout);
      next_report = now + 1;
    }
  }
  atomic_store(&stop, 1);
  pthread_mutex_lock(&qlock);
  pthread_cond_broadcast(&qcond);
  pthread_mutex_unlock(&qlock);
  for (long i = 0; i < opt.threads; i++) stress_join(ms[i].tid);
  stress_join(prod);
  stress_join(cons);
  stress_join(fork_t);
  stress_join(press);

  struct stress_counts c = {0};
  for (long i = 0; i < opt.threads; i++)
    for (int j = 0; j < SLOTS; j++) blk_free(&ms[i].slots[j], "soak final", &c);
  for (int i = 0; i < NSHARED; i++) {
    void *q = atomic_exchange(&shared[i], NULL);
    blk_t b;
    if (q && blk_from_header(q, &b, "soak final")) blk_free(&b, "soak final", &c);
  }
  stress_counts_add(&c);
  free(ms);
  stress_check_heap("at the end");
  if (atomic_load(&forks_ok) != atomic_load(&forks_done))
    stress_fail("%lu of %lu children exited 0", atomic_load(&forks_ok), atomic_load(&forks_done));

  char extra[300];
  snprintf(extra, sizeof extra,
           "mixer generations %lu, batches %lu, children %lu (all exited 0: %s), pressure phases %lu "
           "(%lu NULLs), periodic heap checks %lu",
           atomic_load(&generations) + (unsigned long)opt.threads, atomic_load(&batches),
           atomic_load(&forks_done), atomic_load(&forks_ok) == atomic_load(&forks_done) ? "yes" : "no",
           atomic_load(&pressure_phases), atomic_load(&pressure_nulls), checks);
  return stress_report("soak", start, extra);
}
