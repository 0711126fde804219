/* Fork storm: worker threads allocate, free and exchange blocks without pause
 * while a forker thread forks --forks times. Each child verifies and frees the
 * forker's pre-fork blocks and the blocks it finds in the shared exchange array
 * (allocated by threads that do not exist in the child), allocates and frees
 * on its own (every fourth child also from a new thread, except under a
 * sanitizer), checks the heap and
 * exits 0. The parent checks every child's status; a child that does not
 * finish within 30 s (a lock left held across fork) is killed and counted as a
 * failure. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct stress_opts opt = {.threads = 3, .scale = 1, .seed = 1, .forks = 50, .max_size = 4 << 20};

#define WORKER_SLOTS 256
#define PRE_BLOCKS 200
#define NSHARED 256
#define CHILD_TIMEOUT 30.0

static _Atomic(void *) shared[NSHARED];
static atomic_int stop;
static blk_t pre[PRE_BLOCKS]; /* the forker's blocks */

static void *worker(void *arg) {
  long id = (long)(intptr_t)arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, (uint64_t)id);
  blk_t *slots = calloc(WORKER_SLOTS, sizeof *slots);
  if (!slots) stress_die("out of memory");
  char who[40];
  snprintf(who, sizeof who, "forkstorm worker %ld", id);
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    blk_t *b = &slots[rng_below(&r, WORKER_SLOTS)];
    c.ops++;
    if (!b->p) {
      blk_alloc_any(b, stress_rand_size(&r, (size_t)opt.max_size), &r, &c);
    } else if (rng_pct(&r, 40)) {
      blk_free(b, who, &c);
    } else if (rng_pct(&r, 30)) {
      blk_realloc(b, stress_rand_size(&r, (size_t)opt.max_size), &r, &c);
    } else if (b->size >= STRESS_HDR && blk_verify(b, who, &c)) {
      void *q = atomic_exchange(&shared[rng_below(&r, NSHARED)], b->p);
      c.exchanges++;
      b->p = NULL;
      if (q && blk_from_header(q, b, who) && !blk_verify(b, who, &c)) b->p = NULL;
    }
  }
  for (long i = 0; i < WORKER_SLOTS; i++) blk_free(&slots[i], who, &c);
  free(slots);
  stress_counts_add(&c);
  return NULL;
}

static void *child_thread(void *arg) {
  rng_t *r = arg;
  struct stress_counts c = {0};
  for (int i = 0; i < 500; i++) {
    blk_t b;
    if (blk_alloc_any(&b, stress_rand_size(r, 1 << 16), r, &c)) blk_free(&b, "child thread", &c);
  }
  return NULL;
}

/* Runs in the child: only the forker thread exists here. */
static void child_main(long k) {
  struct stress_counts c = {0};
  atomic_store(&stress_failures, 0); /* count the child's own failures */
  rng_t r, r2;
  rng_init(&r, opt.seed, 100000 + (uint64_t)k);
  rng_init(&r2, opt.seed, 200000 + (uint64_t)k);
  char who[48];
  snprintf(who, sizeof who, "forkstorm child %ld", k);
  pthread_t t;
  /* TSan cannot start threads after a multithreaded fork. */
  bool thread = k % 4 == 3 && !STRESS_SANITIZED;
  if (thread && pthread_create(&t, NULL, child_thread, &r2)) {
    stress_fail("%s: pthread_create failed", who);
    thread = false;
  }
  for (int i = 0; i < PRE_BLOCKS; i++) blk_free(&pre[i], who, &c);
  for (int i = 0; i < NSHARED; i++) {
    void *q = atomic_exchange(&shared[i], NULL);
    blk_t b;
    if (q && blk_from_header(q, &b, who)) blk_free(&b, who, &c);
  }
  blk_t mine[64] = {{0}};
  for (int i = 0; i < 2000; i++) {
    blk_t *b = &mine[rng_below(&r, 64)];
    if (b->p)
      blk_free(b, who, &c);
    else
      blk_alloc_any(b, stress_rand_size(&r, (size_t)opt.max_size), &r, &c);
  }
  for (int i = 0; i < 64; i++) blk_free(&mine[i], who, &c);
  if (thread) pthread_join(t, NULL);
  stress_check_heap(who);
  exit(atomic_load(&stress_failures) ? 1 : 0);
}

static unsigned long children_ok;

static void wait_child(pid_t pid, long k) {
  double t0 = stress_now();
  int status;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      stress_fail("waitpid(%d): %s", (int)pid, strerror(errno));
      return;
    }
    if (stress_now() - t0 > CHILD_TIMEOUT) {
      stress_fail("child %ld (pid %d) did not exit within %.0f s (deadlock after fork?); killed", k, (int)pid,
                  CHILD_TIMEOUT);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return;
    }
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    children_ok++;
  else if (WIFEXITED(status))
    stress_fail("child %ld (pid %d) exited with status %d", k, (int)pid, WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    stress_fail("child %ld (pid %d) killed by signal %d (%s)", k, (int)pid, WTERMSIG(status),
                strsignal(WTERMSIG(status)));
  else
    stress_fail("child %ld (pid %d): status %#x", k, (int)pid, status);
}

static void *forker(void *arg) {
  (void)arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, 99999);
  for (int i = 0; i < PRE_BLOCKS; i++) blk_alloc_any(&pre[i], stress_rand_size(&r, 1 << 20), &r, &c);
  for (long k = 0; k < opt.forks; k++) {
    /* Change some of the pre-fork blocks each time. */
    for (int j = 0; j < 8; j++) {
      blk_t *b = &pre[rng_below(&r, PRE_BLOCKS)];
      if (rng_pct(&r, 50)) {
        blk_free(b, "forker", &c);
        blk_alloc_any(b, stress_rand_size(&r, 1 << 20), &r, &c);
      } else if (!b->p || !blk_realloc(b, stress_rand_size(&r, 1 << 20), &r, &c)) {
        blk_free(b, "forker", &c);
        blk_alloc_any(b, 64, &r, &c);
      }
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
      stress_fail("fork %ld: %s", k, strerror(errno));
      continue;
    }
    if (pid == 0) child_main(k);
    c.ops++;
    wait_child(pid, k);
    if (opt.verbose && (k + 1) % 100 == 0) printf("  %ld forks\n", k + 1);
  }
  for (int i = 0; i < PRE_BLOCKS; i++) blk_free(&pre[i], "forker", &c);
  stress_counts_add(&c);
  return NULL;
}

int main(int argc, char **argv) {
  if (STRESS_SANITIZED) opt.forks = 10; /* forks of a sanitized process are slow */
  stress_parse(argc, argv, &opt, "forkstorm",
               "--threads workers allocate while a forker thread forks --forks times;\n"
               "every child verifies and frees pre-fork blocks, allocates and exits 0.");
  double start = stress_now();
  printf("forkstorm: %ld worker threads, %ld forks\n", opt.threads, opt.forks);
  stress_print_opts(&opt);

  pthread_t f, *t = calloc((size_t)opt.threads, sizeof *t);
  if (!t) stress_die("out of memory");
  for (long i = 0; i < opt.threads; i++) stress_thread(&t[i], worker, (void *)(intptr_t)i);
  stress_thread(&f, forker, NULL);
  stress_join(f);
  atomic_store(&stop, 1);
  for (long i = 0; i < opt.threads; i++) stress_join(t[i]);
  free(t);
  struct stress_counts c = {0};
  for (int i = 0; i < NSHARED; i++) {
    void *q = atomic_exchange(&shared[i], NULL);
    blk_t b;
    if (q && blk_from_header(q, &b, "forkstorm final")) blk_free(&b, "forkstorm final", &c);
  }
  stress_counts_add(&c);
  stress_check_heap("at the end");
  if (children_ok != (unsigned long)opt.forks)
    stress_fail("%lu of %ld children exited 0", children_ok, opt.forks);
  char extra[120];
  snprintf(extra, sizeof extra, "%ld forks, %lu children exited 0 (ops counted in the parent only)",
           opt.forks, children_ok);
  return stress_report("forkstorm", start, extra);
}
