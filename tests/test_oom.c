/* Out of memory: under RLIMIT_AS (set in a forked child, relative to the
 * current VmSize since libarena reserves address space at load) allocation
 * fails cleanly with ENOMEM, earlier blocks stay intact, and freeing memory
 * makes allocation work again. */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define LIMIT_EXTRA (256 * MiB)

/* In the child: report and exit with the line number. */
#define CHECK(cond, ...)                                                                                     \
  do {                                                                                                       \
    if (!(cond)) {                                                                                           \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                               \
      fprintf(stderr, __VA_ARGS__);                                                                          \
      fprintf(stderr, "\n");                                                                                 \
      _exit(__LINE__ % 250 + 1);                                                                             \
    }                                                                                                        \
  } while (0)

static void set_limit(size_t extra) {
  size_t vm = proc_status_kb("VmSize") * 1024;
  CHECK(vm > 0, "cannot read VmSize");
  struct rlimit r = {vm + extra, vm + extra};
  CHECK(setrlimit(RLIMIT_AS, &r) == 0, "setrlimit: %s", strerror(errno));
}

static void run_in_child(void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    alarm(60);
    fn();
    _exit(0);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (WIFSIGNALED(st)) fail_msg("child killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
  if (WEXITSTATUS(st) != 0) fail_msg("child failed (exit %d, see stderr)", WEXITSTATUS(st));
}

/* Blocks are chained through their first word; the rest carries a pattern. */
struct node {
  struct node *next;
  uint64_t seed;
  size_t n;
};

static void node_fill(struct node *b, size_t n, uint64_t seed) {
  b->seed = seed;
  b->n = n;
  pat_fill(b + 1, n - sizeof *b, seed);
}

static void node_verify(const struct node *b) {
  size_t off = pat_check(b + 1, b->n - sizeof *b, b->seed);
  CHECK(off == (size_t)-1, "block %p (size %zu) corrupted at offset %zu", (void *)b, b->n, off);
}

static size_t g_size;

/* Allocates g_size blocks until NULL; returns the list and count. */
static struct node *fill_until_null(size_t *count, uint64_t seed0) {
  struct node *head = NULL;
  size_t cnt = 0, total = 0;
  for (;;) {
    errno = 0;
    struct node *b = malloc(g_size);
    if (!b) {
      CHECK(errno == ENOMEM, "malloc(%zu) failed with errno %d (%s), expected ENOMEM", g_size, errno,
            strerror(errno));
      break;
    }
    node_fill(b, g_size, seed0 + cnt);
    b->next = head;
    head = b;
    cnt++;
    total += g_size;
    CHECK(total < 4096 * MiB, "malloc(%zu) never failed under RLIMIT_AS", g_size);
  }
  *count = cnt;
  return head;
}

static void exhaust_and_recover(void) {
  set_limit(LIMIT_EXTRA);
  size_t cnt;
  struct node *head = fill_until_null(&cnt, 1);
  /* most of the limit must have been usable */
  CHECK(cnt * g_size >= LIMIT_EXTRA / 3, "only %zu blocks of %zu bytes before NULL", cnt, g_size);
  /* a second failure right away, for each entry point */
  errno = 0;
  void *x = malloc(g_size);
  CHECK(x == NULL && errno == ENOMEM, "malloc(%zu) after exhaustion: %p errno %d", g_size, x, errno);
  for (struct node *b = head; b; b = b->next) node_verify(b);

  /* free every other block */
  size_t freed = 0;
  for (struct node *b = head; b && b->next; b = b->next) {
    struct node *victim = b->next;
    b->next = victim->next;
    free(victim);
    freed++;
  }
  /* allocation works again */
  size_t again = 0;
  struct node *head2 = NULL;
  for (size_t i = 0; i < freed; i++) {
    struct node *b = malloc(g_size);
    if (!b) {
      CHECK(errno == ENOMEM, "errno %d", errno);
      break;
    }
    node_fill(b, g_size, 1000000000ull + i);
    b->next = head2;
    head2 = b;
    again++;
  }
  CHECK(again >= freed / 2, "after freeing %zu blocks of %zu bytes only %zu could be allocated again", freed,
        g_size, again);
  for (struct node *b = head; b; b = b->next) node_verify(b);
  for (struct node *b = head2; b; b = b->next) node_verify(b);
  while (head) {
    struct node *n = head->next;
    free(head);
    head = n;
  }
  while (head2) {
    struct node *n = head2->next;
    free(head2);
    head2 = n;
  }
  CHECK(arena_check() == 0, "arena_check failed after OOM");
  /* the same size still works after freeing everything */
  void *p = malloc(g_size);
  CHECK(p != NULL, "malloc(%zu) failed after freeing everything (errno %d)", g_size, errno);
  free(p);
}

/* Exhaust with g_size blocks, free them all: a block of half the limit must
 * fit again, i.e. memory kept in caches is given back (or reused) when the
 * system refuses a new mapping. */
static void exhaust_free_all_then_big(void) {
  set_limit(LIMIT_EXTRA);
  size_t cnt;
  struct node *head = fill_until_null(&cnt, 5);
  CHECK(cnt * g_size >= LIMIT_EXTRA / 3, "only %zu blocks of %zu bytes before NULL", cnt, g_size);
  while (head) {
    struct node *n = head->next;
    free(head);
    head = n;
  }
  static const size_t sizes[] = {LIMIT_EXTRA / 2, LIMIT_EXTRA / 4, 32 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = 0;
    void *big = malloc(sizes[i]);
    CHECK(big != NULL,
          "malloc(%zu MiB) failed after exhausting memory with %zu-byte blocks and freeing them all "
          "(errno %d): freed memory is not given back under RLIMIT_AS",
          sizes[i] / MiB, g_size, errno);
    memset(big, 1, sizes[i]);
    free(big);
  }
}

static void c_small_48(void) {
  g_size = 48;
  exhaust_and_recover();
}
static void c_small_4000(void) {
  g_size = 4000;
  exhaust_and_recover();
}
static void c_small_32k(void) {
  g_size = 32768;
  exhaust_and_recover();
}
static void c_large_200k(void) {
  g_size = 200 * 1024;
  exhaust_and_recover();
}
static void c_large_1m(void) {
  g_size = 1024 * 1024;
  exhaust_and_recover();
}
static void c_huge_4m(void) {
  g_size = 4 * MiB;
  exhaust_and_recover();
}

static void c_cache_small(void) {
  g_size = 64;
  exhaust_free_all_then_big();
}
static void c_cache_large(void) {
  g_size = 300 * 1024;
  exhaust_free_all_then_big();
}
static void c_cache_huge(void) {
  g_size = 4 * MiB;
  exhaust_free_all_then_big();
}
static void test_oom_freed_small_memory_reusable_for_big(void **s) {
  (void)s;
  run_in_child(c_cache_small);
}
static void test_oom_freed_large_memory_reusable_for_big(void **s) {
  (void)s;
  run_in_child(c_cache_large);
}
static void test_oom_freed_huge_memory_reusable_for_big(void **s) {
  (void)s;
  run_in_child(c_cache_huge);
}

static void test_oom_small_48(void **s) {
  (void)s;
  run_in_child(c_small_48);
}
static void test_oom_small_4000(void **s) {
  (void)s;
  run_in_child(c_small_4000);
}
static void test_oom_small_32k(void **s) {
  (void)s;
  run_in_child(c_small_32k);
}
static void test_oom_large_200k(void **s) {
  (void)s;
  run_in_child(c_large_200k);
}
static void test_oom_large_1m(void **s) {
  (void)s;
  run_in_child(c_large_1m);
}
static void test_oom_huge_4m(void **s) {
  (void)s;
  run_in_child(c_huge_4m);
}

/* Every entry point reports ENOMEM when the system refuses. */
static void c_every_entry_point(void) {
  set_limit(LIMIT_EXTRA);
  g_size = 4 * MiB;
  size_t cnt;
  struct node *head = fill_until_null(&cnt, 7);
  CHECK(head != NULL, "nothing allocated");
  const size_t big = 64 * MiB;
  void *p;
  int r;
#define EXPECT_NULL(expr)                                                                                    \
  do {                                                                                                       \
    errno = 0;                                                                                               \
    p = (expr);                                                                                              \
    CHECK(p == NULL && errno == ENOMEM, "%s = %p, errno %d (%s)", #expr, p, errno, strerror(errno));         \
  } while (0)
  EXPECT_NULL(malloc(launder_size(big)));
  EXPECT_NULL(calloc(1, launder_size(big)));
  EXPECT_NULL(calloc(launder_size(8192), 8192));
  EXPECT_NULL(aligned_alloc(64, launder_size(big)));
  EXPECT_NULL(aligned_alloc(2 * MiB, launder_size(big)));
  EXPECT_NULL(memalign(4096, launder_size(big)));
  EXPECT_NULL(valloc(launder_size(big)));
  EXPECT_NULL(arena_malloc(launder_size(big)));
  EXPECT_NULL(arena_calloc(launder_size(big), 1));
  EXPECT_NULL(arena_aligned_alloc(4096, launder_size(big)));
  /* realloc of a live block: NULL, block intact */
  EXPECT_NULL(realloc(head, launder_size(big)));
  node_verify(head);
  EXPECT_NULL(arena_realloc(head, launder_size(big)));
  node_verify(head);
  EXPECT_NULL(reallocarray(head, launder_size(big), 2));
  node_verify(head);
  void *m = (void *)0x4242;
  r = posix_memalign(&m, 4096, launder_size(big));
  CHECK(r == ENOMEM && m == (void *)0x4242, "posix_memalign = %d, memptr %p", r, m);
  r = arena_posix_memalign(&m, 64, launder_size(big));
  CHECK(r == ENOMEM && m == (void *)0x4242, "arena_posix_memalign = %d, memptr %p", r, m);
  for (struct node *b = head; b; b = b->next) node_verify(b);
  /* release everything: the same requests succeed */
  while (head) {
    struct node *n = head->next;
    free(head);
    head = n;
  }
  const size_t small = 3 * MiB; /* fits where the freed 4 MiB blocks were */
  p = malloc(small);
  CHECK(p != NULL, "malloc(3 MiB) after freeing everything: errno %d", errno);
  free(p);
  p = calloc(1, small);
  CHECK(p != NULL && all_bytes_equal(p, small, 0), "calloc(3 MiB) after freeing everything");
  free(p);
  r = posix_memalign(&m, 4096, small);
  CHECK(r == 0, "posix_memalign(3 MiB) after freeing everything = %d", r);
  free(m);
}

static void test_oom_every_entry_point(void **s) {
  (void)s;
  run_in_child(c_every_entry_point);
}

/* A thread whose first allocations happen when memory is exhausted. */
static int g_go[2];
static void *late_thread(void *arg) {
  (void)arg;
  char c;
  if (read(g_go[0], &c, 1) != 1) return (void *)1;
  static const size_t sizes[] = {16, 100, 5000, 100000, 4 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = 0;
    void *p = malloc(sizes[i]);
    if (p) {
      memset(p, 1, sizes[i]);
      free(p);
    } else if (errno != ENOMEM) {
      fprintf(stderr, "late thread: malloc(%zu) = NULL with errno %d\n", sizes[i], errno);
      return (void *)2;
    }
  }
  /* wait until main has freed memory, then allocation must work */
  if (read(g_go[0], &c, 1) != 1) return (void *)3;
  void *p = malloc(100);
  void *q = malloc(4 * MiB);
  if (!p || !q) {
    fprintf(stderr, "late thread: malloc failed after memory was freed\n");
    return (void *)4;
  }
  free(p);
  free(q);
  return NULL;
}

static void c_thread_starts_when_exhausted(void) {
  CHECK(pipe(g_go) == 0, "pipe");
  pthread_t t;
  CHECK(pthread_create(&t, NULL, late_thread, NULL) == 0, "pthread_create");
  set_limit(LIMIT_EXTRA);
  struct node *lists[3];
  size_t cnt;
  g_size = 4 * MiB;
  lists[0] = fill_until_null(&cnt, 1);
  g_size = 100 * 1024;
  lists[1] = fill_until_null(&cnt, 2);
  g_size = 64;
  lists[2] = fill_until_null(&cnt, 3);
  CHECK(write(g_go[1], "x", 1) == 1, "write");
  /* give the thread time to hit the limit before anything is released */
  usleep(200 * 1000);
  for (int i = 0; i < 3; i++) {
    for (struct node *b = lists[i]; b;) {
      struct node *n = b->next;
      node_verify(b);
      free(b);
      b = n;
    }
  }
  CHECK(write(g_go[1], "y", 1) == 1, "write");
  void *ret;
  CHECK(pthread_join(t, &ret) == 0, "join");
  CHECK(ret == NULL, "late thread failed (%ld)", (long)(intptr_t)ret);
}

static void test_oom_thread_starts_when_exhausted(void **s) {
  (void)s;
  run_in_child(c_thread_starts_when_exhausted);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_oom_small_48),
      cmocka_unit_test(test_oom_small_4000),
      cmocka_unit_test(test_oom_small_32k),
      cmocka_unit_test(test_oom_large_200k),
      cmocka_unit_test(test_oom_large_1m),
      cmocka_unit_test(test_oom_huge_4m),
      cmocka_unit_test(test_oom_every_entry_point),
      cmocka_unit_test(test_oom_freed_small_memory_reusable_for_big),
      cmocka_unit_test(test_oom_freed_large_memory_reusable_for_big),
      cmocka_unit_test(test_oom_freed_huge_memory_reusable_for_big),
      cmocka_unit_test(test_oom_thread_starts_when_exhausted),
  };
  apply_test_filter();
  catch_aborts();
  return cmocka_run_group_tests_name("oom", tests, NULL, NULL);
}
