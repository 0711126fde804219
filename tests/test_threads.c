/* Multithreaded behaviour: cross-thread frees, thread exit with live blocks,
 * memory bounds over many thread generations, fork while threads allocate. */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* cmocka's assert_* may only be used on the main thread; workers record
 * failures here and the main thread asserts there were none. */
static atomic_int g_failures;

#define TCHECK(cond, ...)                                                                                    \
  do {                                                                                                       \
    if (!(cond)) {                                                                                           \
      if (atomic_fetch_add(&g_failures, 1) < 10) {                                                           \
        fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                             \
        fprintf(stderr, __VA_ARGS__);                                                                        \
        fprintf(stderr, "\n");                                                                               \
      }                                                                                                      \
    }                                                                                                        \
  } while (0)

static void reset_failures(void) { atomic_store(&g_failures, 0); }
static void assert_no_thread_failures(void) {
  int f = atomic_load(&g_failures);
  if (f) fail_msg("%d check(s) failed in worker threads (see stderr)", f);
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg) {
  int r = pthread_create(t, NULL, fn, arg);
  if (r) fail_msg("pthread_create: %s", strerror(r));
}

/* A block carries its own description: 16-byte header {size, seed} then the
 * pattern. Sizes are >= 16. */
struct hdr {
  size_t n;
  uint64_t seed;
};

static void *blk_new(size_t n, uint64_t seed) {
  if (n < sizeof(struct hdr)) n = sizeof(struct hdr);
  struct hdr *h = malloc(n);
  if (!h) return NULL;
  h->n = n;
  h->seed = seed;
  pat_fill(h + 1, n - sizeof *h, seed);
  return h;
}

/* Verifies (recording failures) and frees. */
static void blk_check_free(void *p, int do_free) {
  struct hdr *h = p;
  size_t off = pat_check(h + 1, h->n - sizeof *h, h->seed);
  TCHECK(off == (size_t)-1, "block %p size %zu seed %llu corrupt at offset %zu", p, h->n,
         (unsigned long long)h->seed, off + sizeof *h);
  TCHECK(malloc_usable_size(p) >= h->n, "usable %zu < %zu", malloc_usable_size(p), h->n);
  if (do_free) free(p);
}

/* Size mix: mostly small, some large (page runs), rare huge. */
static size_t rand_size(uint64_t *rng) {
  uint64_t r = rng_next(rng);
  unsigned sel = r % 1000;
  r >>= 10;
  if (sel < 900) return 16 + r % 497;
  if (sel < 990) return 513 + r % (32768 - 512);
  if (sel < 999) return 32769 + r % (1024 * 1024 - 32769);
  return 1024 * 1024 + 1 + r % (3 * 1024 * 1024);
}

/* ---- producer / consumer ------------------------------------------------- */

enum { QCAP = 4096 };
struct queue {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  void *items[QCAP];
  size_t head, count;
  int producers_left;
};

static void q_push(struct queue *q, void *p) {
  pthread_mutex_lock(&q->mu);
  while (q->count == QCAP) pthread_cond_wait(&q->not_full, &q->mu);
  q->items[(q->head + q->count) % QCAP] = p;
  q->count++;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

static void *q_pop(struct queue *q) { /* NULL when drained and producers done */
  pthread_mutex_lock(&q->mu);
  while (q->count == 0 && q->producers_left > 0) pthread_cond_wait(&q->not_empty, &q->mu);
  void *p = NULL;
  if (q->count) {
    p = q->items[q->head];
    q->head = (q->head + 1) % QCAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
  }
  pthread_mutex_unlock(&q->mu);
  return p;
}

struct pc_arg {
  struct queue *q;
  int id;
  long n;
  long consumed;
};

static void *producer(void *a) {
  struct pc_arg *pa = a;
  uint64_t rng = 0x1234567ull + (uint64_t)pa->id * 7919;
  for (long i = 0; i < pa->n; i++) {
    size_t n = rand_size(&rng);
    void *p = blk_new(n, ((uint64_t)pa->id << 40) ^ (uint64_t)i);
    TCHECK(p != NULL, "malloc(%zu) failed", n);
    if (!p) break;
    q_push(pa->q, p);
  }
  pthread_mutex_lock(&pa->q->mu);
  pa->q->producers_left--;
  pthread_cond_broadcast(&pa->q->not_empty);
  pthread_mutex_unlock(&pa->q->mu);
  return NULL;
}

static void *consumer(void *a) {
  struct pc_arg *pa = a;
  void *p;
  while ((p = q_pop(pa->q)) != NULL) {
    blk_check_free(p, 1);
    pa->consumed++;
  }
  return NULL;
}

static void test_producer_consumer(void **state) {
  (void)state;
  reset_failures();
  enum { P = 2, C = 2, PER = 40000 };
  static struct queue q;
  memset(&q, 0, sizeof q);
  pthread_mutex_init(&q.mu, NULL);
  pthread_cond_init(&q.not_empty, NULL);
  pthread_cond_init(&q.not_full, NULL);
  q.producers_left = P;
  struct pc_arg args[P + C];
  pthread_t t[P + C];
  struct arena_stats s0 = stats_now();
  for (int i = 0; i < P + C; i++) {
    args[i] = (struct pc_arg){&q, i, PER, 0};
    start(&t[i], i < P ? producer : consumer, &args[i]);
  }
  for (int i = 0; i < P + C; i++) pthread_join(t[i], NULL);
  long consumed = 0;
  for (int i = P; i < P + C; i++) consumed += args[i].consumed;
  assert_no_thread_failures();
  assert_int_equal(consumed, (long)P * PER);
  struct arena_stats s1 = stats_now();
  /* at least some of those frees were remote (consumer != producer) */
  assert_true(s1.remote_frees > s0.remote_frees);
  assert_heap_ok();
}

/* ---- thread exit with live blocks, freed later by other threads --------- */

struct batch {
  void **v;
  int n;
  uint64_t seed;
};

static void *alloc_batch_and_exit(void *a) {
  struct batch *b = a;
  uint64_t rng = b->seed;
  for (int i = 0; i < b->n; i++) {
    size_t n = rand_size(&rng);
    if (n > 200000) n = 200000; /* keep this test about spans and page runs */
    b->v[i] = blk_new(n, b->seed * 100003 + (uint64_t)i);
    TCHECK(b->v[i] != NULL, "malloc failed");
  }
  return NULL;
}

static void *free_batch(void *a) {
  struct batch *b = a;
  for (int i = 0; i < b->n; i++)
    if (b->v[i]) blk_check_free(b->v[i], 1);
  return NULL;
}

static void test_thread_exit_live_blocks(void **state) {
  (void)state;
  reset_failures();
  enum { ROUNDS = 150, N = 1000 };
  void **v = calloc(N, sizeof *v);
  assert_non_null(v);
  uint64_t mapped_early = 0;
  size_t rss_early = 0;
  struct arena_stats s_start = stats_now();
  for (int r = 0; r < ROUNDS; r++) {
    struct batch b = {v, N, (uint64_t)r + 1};
    pthread_t t;
    start(&t, alloc_batch_and_exit, &b);
    pthread_join(t, NULL); /* the owner is gone; its blocks are live */
    if (r % 2) {
      start(&t, free_batch, &b); /* freed by another new thread */
      pthread_join(t, NULL);
    } else {
      free_batch(&b); /* or by main */
    }
    assert_no_thread_failures();
    if (r == 20) {
      mapped_early = stats_now().mapped_bytes;
      rss_early = rss_bytes();
    }
  }
  struct arena_stats s = stats_now();
  size_t rss = rss_bytes();
  /* the abandoned spans must be reused: no growth after warm-up */
  if (s.mapped_bytes > mapped_early + 16 * MiB)
    fail_msg("mapped_bytes grew from %llu (round 20) to %llu (round %d): abandoned memory not reused",
             (unsigned long long)mapped_early, (unsigned long long)s.mapped_bytes, ROUNDS);
  if (rss > rss_early + 32 * MiB)
    fail_msg("RSS grew from %zu (round 20) to %zu (round %d)", rss_early, rss, ROUNDS);
  /* the exiting threads left spans with live blocks behind */
  if (s.abandoned_spans <= s_start.abandoned_spans)
    fail_msg("abandoned_spans did not grow (%llu -> %llu) although %d threads exited with live blocks",
             (unsigned long long)s_start.abandoned_spans, (unsigned long long)s.abandoned_spans, ROUNDS);
  free(v);
  assert_heap_ok();
}

/* ---- 1000 thread generations -------------------------------------------- */

enum { GEN_K = 300 };
struct gen {
  void *handed[GEN_K / 2];
  int nhanded;
  int gen;
};

static void *generation(void *a) {
  struct gen *g = a;
  /* verify and free what the previous generation left us */
  for (int i = 0; i < g->nhanded; i++) blk_check_free(g->handed[i], 1);
  uint64_t rng = 0xabcdefull + (uint64_t)g->gen * 31;
  void *mine[GEN_K];
  for (int i = 0; i < GEN_K; i++) {
    size_t n = 16 + rng_next(&rng) % (i % 50 == 0 ? 100000 : 2000);
    mine[i] = blk_new(n, (uint64_t)g->gen * 1000 + (uint64_t)i);
    TCHECK(mine[i] != NULL, "malloc(%zu) failed", n);
  }
  /* free half, hand the other half to the next generation */
  g->nhanded = 0;
  for (int i = 0; i < GEN_K; i++) {
    if (!mine[i]) continue;
    if (i % 2)
      g->handed[g->nhanded++] = mine[i];
    else
      blk_check_free(mine[i], 1);
  }
  return NULL;
}

static void test_thread_generations(void **state) {
  (void)state;
  reset_failures();
  static struct gen g;
  memset(&g, 0, sizeof g);
  struct arena_stats s0 = stats_now();
  size_t rss0 = rss_bytes();
  uint64_t mapped_100 = 0;
  for (int i = 0; i < 1000; i++) {
    g.gen = i;
    pthread_t t;
    start(&t, generation, &g);
    pthread_join(t, NULL);
    if (i == 100) mapped_100 = stats_now().mapped_bytes;
  }
  for (int i = 0; i < g.nhanded; i++) blk_check_free(g.handed[i], 1);
  assert_no_thread_failures();
  struct arena_stats s = stats_now();
  size_t rss = rss_bytes();
  /* earlier tests may leave cached memory behind: bound the growth */
  if (s.mapped_bytes >= s0.mapped_bytes + 64 * MiB)
    fail_msg("mapped_bytes grew from %llu to %llu over 1000 generations (bound +64 MiB)",
             (unsigned long long)s0.mapped_bytes, (unsigned long long)s.mapped_bytes);
  if (s.mapped_bytes > mapped_100 + 16 * MiB)
    fail_msg("mapped_bytes grew from %llu (gen 100) to %llu (gen 1000)", (unsigned long long)mapped_100,
             (unsigned long long)s.mapped_bytes);
  if (rss > rss0 + 64 * MiB) fail_msg("RSS grew from %zu to %zu over 1000 generations", rss0, rss);
  assert_true(s.thread_generations >= s0.thread_generations);
  /* every generation has exited and been joined: only main keeps an arena */
  if (s.threads > 2)
    fail_msg("arena_stats.threads = %llu after all threads exited", (unsigned long long)s.threads);
  assert_heap_ok();
}

/* ---- a thread whose first and only call is free ----------------------- */

static void *only_free(void *a) {
  void **v = a;
  for (int i = 0; v[i]; i++) free(v[i]);
  return NULL;
}

static void test_first_call_is_free(void **state) {
  (void)state;
  static const size_t sizes[] = {16, 100, 3000, 32768, 70000, 900000, 2 * 1024 * 1024};
  enum { NS = sizeof sizes / sizeof sizes[0] };
  for (int round = 0; round < 100; round++) {
    void *v[NS + 1];
    for (int i = 0; i < NS; i++) {
      v[i] = malloc(sizes[i]);
      assert_non_null(v[i]);
      memset(v[i], 0x3c, sizes[i]);
    }
    v[NS] = NULL;
    pthread_t t;
    start(&t, only_free, v);
    pthread_join(t, NULL);
  }
  /* the freed memory is usable again */
  void *p = malloc(100);
  assert_non_null(p);
  free(p);
  assert_heap_ok();
}

/* ---- thread-specific-data destructor that allocates ----------------------- */

static pthread_key_t g_key;
static atomic_int g_dtor_runs;

static void tsd_dtor(void *p) {
  blk_check_free(p, 1);
  void *q = blk_new(333, 9);
  TCHECK(q != NULL, "malloc in TSD destructor failed");
  if (q) blk_check_free(q, 1);
  atomic_fetch_add(&g_dtor_runs, 1);
}

static void *tsd_thread(void *a) {
  (void)a;
  void *p = blk_new(1000, 8);
  pthread_setspecific(g_key, p);
  return NULL;
}

static void test_tsd_destructor_allocates(void **state) {
  (void)state;
  reset_failures();
  assert_int_equal(pthread_key_create(&g_key, tsd_dtor), 0);
  for (int i = 0; i < 50; i++) {
    pthread_t t;
    start(&t, tsd_thread, NULL);
    pthread_join(t, NULL);
  }
  assert_int_equal(atomic_load(&g_dtor_runs), 50);
  pthread_key_delete(g_key);
  assert_no_thread_failures();
  assert_heap_ok();
}

/* ---- 8 threads hammering, with cross-thread exchange --------------------- */

enum { SLOTS = 512 };
static _Atomic(void *) g_slots[SLOTS];
static atomic_int g_stop;

struct hammer_arg {
  int id;
  long ops;
};

static void *hammer(void *a) {
  struct hammer_arg *ha = a;
  uint64_t rng = 0x9999ull * (uint64_t)(ha->id + 1);
  enum { LOCAL = 256 };
  void *local[LOCAL] = {0};
  for (long i = 0; i < ha->ops; i++) {
    uint64_t r = rng_next(&rng);
    int op = (int)(r % 10);
    if (op < 6) { /* local alloc/free */
      int k = (int)((r >> 8) % LOCAL);
      if (local[k]) blk_check_free(local[k], 1);
      local[k] = blk_new(rand_size(&rng) % 70000 + 16, (uint64_t)ha->id << 48 | (uint64_t)i);
      TCHECK(local[k] != NULL, "malloc failed");
    } else if (op < 9) { /* swap a block through a shared slot */
      int k = (int)((r >> 8) % LOCAL), s = (int)((r >> 20) % SLOTS);
      void *mine = local[k];
      void *theirs = atomic_exchange(&g_slots[s], mine);
      local[k] = theirs;
      if (theirs) blk_check_free(theirs, 0); /* verify, keep */
    } else {                                 /* realloc keeps contents */
      int k = (int)((r >> 8) % LOCAL);
      struct hdr *h = local[k];
      if (!h) continue;
      size_t nn = sizeof *h + rng_next(&rng) % 50000;
      size_t keep = (nn < h->n ? nn : h->n) - sizeof *h;
      uint64_t seed = h->seed;
      struct hdr *h2 = realloc(h, nn);
      TCHECK(h2 != NULL, "realloc failed");
      if (!h2) continue;
      size_t off = pat_check(h2 + 1, keep, seed);
      TCHECK(off == (size_t)-1, "realloc lost contents at %zu", off);
      h2->n = nn;
      h2->seed = seed + 1;
      pat_fill(h2 + 1, nn - sizeof *h2, seed + 1);
      local[k] = h2;
    }
  }
  for (int k = 0; k < LOCAL; k++)
    if (local[k]) blk_check_free(local[k], 1);
  return NULL;
}

static void test_hammer_8_threads(void **state) {
  (void)state;
  reset_failures();
  enum { T = 8 };
  pthread_t t[T];
  struct hammer_arg args[T];
  for (int i = 0; i < T; i++) {
    args[i] = (struct hammer_arg){i, 60000};
    start(&t[i], hammer, &args[i]);
  }
  for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
  for (int s = 0; s < SLOTS; s++) {
    void *p = atomic_exchange(&g_slots[s], NULL);
    if (p) blk_check_free(p, 1);
  }
  assert_no_thread_failures();
  assert_heap_ok();
}

/* ---- fork while other threads allocate ------------------------------------ */

static void *background_churn(void *a) {
  int id = *(int *)a;
  uint64_t rng = 777 + (uint64_t)id;
  void *v[64] = {0};
  long i = 0;
  while (!atomic_load(&g_stop)) {
    int k = (int)(rng_next(&rng) % 64);
    if (v[k]) blk_check_free(v[k], 1);
    v[k] = blk_new(rand_size(&rng), (uint64_t)id << 32 | (uint64_t)i++);
  }
  for (int k = 0; k < 64; k++)
    if (v[k]) blk_check_free(v[k], 1);
  return NULL;
}

static int child_after_fork(void *before_small, void *before_large, void *before_huge) {
  alarm(20); /* a deadlocked allocator kills the child with SIGALRM */
  int bad = 0;
  struct hdr *blocks[3] = {before_small, before_large, before_huge};
  for (int i = 0; i < 3; i++) {
    if (pat_check(blocks[i] + 1, blocks[i]->n - sizeof(struct hdr), blocks[i]->seed) != (size_t)-1) bad |= 1;
    free(blocks[i]);
  }
  uint64_t rng = 5;
  void *v[100];
  for (int i = 0; i < 100; i++) {
    v[i] = blk_new(rand_size(&rng), (uint64_t)i);
    if (!v[i]) bad |= 2;
  }
  for (int i = 0; i < 100; i++) {
    struct hdr *h = v[i];
    if (h && pat_check(h + 1, h->n - sizeof *h, h->seed) != (size_t)-1) bad |= 4;
    free(h);
  }
  return bad;
}

static void test_fork_while_allocating(void **state) {
  (void)state;
  reset_failures();
  atomic_store(&g_stop, 0);
  enum { T = 2 };
  pthread_t t[T];
  int ids[T];
  for (int i = 0; i < T; i++) {
    ids[i] = i;
    start(&t[i], background_churn, &ids[i]);
  }
  int failures = 0;
  for (int f = 0; f < 100; f++) {
    void *a = blk_new(200, (uint64_t)f), *b = blk_new(300000, (uint64_t)f + 1),
         *c = blk_new(2 * MiB, (uint64_t)f + 2);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(child_after_fork(a, b, c));
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      if (failures++ < 5)
        fprintf(stderr, "fork %d: child %s %d\n", f, WIFEXITED(st) ? "exited with" : "killed by signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    blk_check_free(a, 1);
    blk_check_free(b, 1);
    blk_check_free(c, 1);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
  if (failures) fail_msg("%d of 100 forked children failed (status above)", failures);
  assert_no_thread_failures();
  assert_heap_ok();
}

/* Mallocs blocks of `size` (a class of REUSE_SPAN blocks to a whole span)
 * into p until `whole` whole spans are full, the last malloc filling the
 * last of them, so that the next malloc of the size refills. first[k] is the
 * index of whole span k's first block; returns the number of blocks, or -1.
 * A class's first spans start small and grow only when the pages after them
 * are free, which depends on what earlier tests left: the statistics tell
 * where each span starts (its first malloc adds one to the class's spans)
 * and whether it is whole (its capacity). */
#define REUSE_SPAN 64
#define FILL_MAX (8 * REUSE_SPAN)
static struct arena_class_stats class_stats(size_t block_size) {
  struct arena_stats st = stats_now();
  for (int i = 0; i < ARENA_STATS_CLASSES; i++)
    if (st.classes[i].block_size == block_size) return st.classes[i];
  return (struct arena_class_stats){0};
}

static int fill_whole_spans(size_t size, int whole, void **p, int *first) {
  int n = 0, done = 0, start = -1;
  while (done < whole && n < FILL_MAX) {
    struct arena_class_stats before = class_stats(size);
    if (!(p[n] = malloc(size))) return -1;
    struct arena_class_stats after = class_stats(size);
    if (after.spans > before.spans) start = after.capacity - before.capacity == REUSE_SPAN ? n : -1;
    n++;
    if (start >= 0 && n - start == REUSE_SPAN) first[done++] = start, start = -1;
  }
  return done == whole ? n : -1;
}

/* Three whole spans of blocks of `size` filled (in a class no earlier test
 * used), then `holes` of the first one's blocks freed. Returns 1 when the
 * next `holes` mallocs reused exactly those holes (the span rejoined), 0 when
 * none did. */
#define REUSE_SIZE 1408
static int holes_reused(size_t size, int holes, const char **err) {
  static void *p[FILL_MAX];
  void *q[REUSE_SPAN];
  int first[3];
  int n = fill_whole_spans(size, 3, p, first);
  if (n < 0) {
    *err = "could not fill three whole spans";
    return -1;
  }
  void **h = p + first[0];
  for (int i = 0; i < holes; i++) free(h[i]);
  int reused = 0;
  for (int j = 0; j < holes; j++) {
    q[j] = malloc(size);
    for (int i = 0; i < holes; i++) reused += q[j] == h[i];
  }
  for (int j = 0; j < holes; j++) free(q[j]);
  for (int i = 0; i < n; i++)
    if (i < first[0] || i >= first[0] + holes) free(p[i]);
  return reused == holes ? 1 : reused == 0 ? 0 : -1;
}

/* A full span takes new blocks again once an eighth of it is free: in a new
 * thread (a fresh arena), 8 holes in the first of three full spans. */
static void *reuse_holes(void *arg) {
  (void)arg;
  const char *err = NULL;
  if (holes_reused(REUSE_SIZE, REUSE_SPAN / 8, &err) != 1 && !err)
    err = "a malloc after an eighth of a full span was freed did not reuse its blocks";
  return (void *)err;
}

/* Maps at least one new chunk (1 MiB blocks until os_maps moves) after the
 * calling thread has an arena (its first small malloc), so that the heap
 * grew while the thread ran. */
static const char *grow_heap(void) {
  free(malloc(16));
  struct arena_stats st = {.version = ARENA_STATS_VERSION, .size = sizeof st};
  if (arena_stats_get(&st) != 0) return "arena_stats_get failed";
  uint64_t maps = st.os_maps;
  void *big[64];
  int n = 0;
  while (n < 64 && st.os_maps == maps) {
    if (!(big[n++] = malloc(1 << 20))) return "malloc(1 MiB) failed";
    arena_stats_get(&st);
  }
  for (int i = 0; i < n; i++) free(big[i]);
  return st.os_maps == maps ? "64 MiB of large blocks mapped nothing new" : NULL;
}

/* While the heap grows, a sixteenth is enough: 4 holes of 64. */
static void *reuse_sixteenth_growing(void *arg) {
  (void)arg;
  const char *err = grow_heap();
  if (!err && holes_reused(1664, REUSE_SPAN / 16, &err) != 1 && !err)
    err = "while the heap grew, a sixteenth of a full span freed was not reused";
  return (void *)err;
}

/* In a heap of steady size a sixteenth is not: after more than GROWTH_PARKS
 * (1024) spans filled with no chunk mapped, 4 holes stay unused. */
static void *keep_sixteenth_steady(void *arg) {
  (void)arg;
  const char *err = NULL;
  static void *p[2 * REUSE_SPAN + 1];
  for (int round = 0; round < 600 && !err; round++) { /* two spans fill per round */
    for (int i = 0; i <= 2 * REUSE_SPAN; i++)
      if (!(p[i] = malloc(1920))) err = "malloc failed";
    for (int i = 0; i <= 2 * REUSE_SPAN; i++) free(p[i]);
  }
  if (!err && holes_reused(1920, REUSE_SPAN / 16, &err) != 0 && !err)
    err = "in a steady heap, a full span took blocks again with only a sixteenth free";
  return (void *)err;
}

/* Of two empty spans kept by the arena, a refill takes the one emptied last,
 * whose pages are the most recently written: three whole spans of 1792-byte
 * blocks (a class no earlier test used) filled, the first emptied, then the
 * second; the next malloc must come from the second. */
static void *reuse_last_emptied(void *arg) {
  (void)arg;
  static void *p[FILL_MAX];
  int first[3];
  int n = fill_whole_spans(1792, 3, p, first);
  if (n < 0) return "could not fill three whole spans";
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < REUSE_SPAN; i++) free(p[first[k] + i]);
  void *q = malloc(1792);
  int second = 0;
  for (int i = 0; i < REUSE_SPAN; i++) second |= q == p[first[1] + i];
  free(q);
  for (int i = 0; i < n; i++)
    if ((i < first[0] || i >= first[0] + REUSE_SPAN) && (i < first[1] || i >= first[1] + REUSE_SPAN))
      free(p[i]);
  return second ? NULL : "a refill took an older empty span than the one emptied last";
}

/* Runs fn on a thread of its own (a fresh arena); fn returns NULL or what went wrong. */
static void run_on_new_thread(void *(*fn)(void *)) {
  pthread_t t;
  void *err = NULL;
  assert_int_equal(pthread_create(&t, NULL, fn, NULL), 0);
  assert_int_equal(pthread_join(t, &err), 0);
  if (err) fail_msg("%s", (const char *)err);
}

static void test_full_span_reused_at_an_eighth(void **state) {
  (void)state;
  run_on_new_thread(reuse_holes);
}

static void test_full_span_reused_at_a_sixteenth_while_growing(void **state) {
  (void)state;
  run_on_new_thread(reuse_sixteenth_growing);
}

static void test_full_span_waits_for_an_eighth_when_steady(void **state) {
  (void)state;
  run_on_new_thread(keep_sixteenth_steady);
}

static void test_last_emptied_span_reused_first(void **state) {
  (void)state;
  run_on_new_thread(reuse_last_emptied);
}

/* Blocks another thread frees into a thread's full spans are used before any
 * new memory: a fresh thread fills four whole spans of 1408-byte blocks, a
 * second thread frees every block, and the first thread's next 256 mallocs
 * of that size (the whole spans' blocks) must all return blocks it had. */
#define REMOTE_REUSE_N (4 * REUSE_SPAN)
static void *remote_p[FILL_MAX];
static int remote_n;
static void *free_all(void *arg) {
  (void)arg;
  for (int i = 0; i < remote_n; i++) free(remote_p[i]);
  return NULL;
}

static void *reuse_remote_frees(void *arg) {
  (void)arg;
  static void *q[REMOTE_REUSE_N];
  int first[4];
  if ((remote_n = fill_whole_spans(REUSE_SIZE, 4, remote_p, first)) < 0)
    return "could not fill four whole spans";
  pthread_t t;
  if (pthread_create(&t, NULL, free_all, NULL) || pthread_join(t, NULL)) return "pthread_create failed";
  if (arena_check() != 0) return "arena_check found a problem after the remote frees";
  const char *err = NULL;
  for (int j = 0; j < REMOTE_REUSE_N; j++) {
    if (!(q[j] = malloc(REUSE_SIZE))) return "malloc failed";
    int old = 0;
    for (int i = 0; i < remote_n; i++) old |= q[j] == remote_p[i];
    if (!old) err = "a malloc took new memory while blocks freed by another thread were waiting";
  }
  for (int j = 0; j < REMOTE_REUSE_N; j++) free(q[j]);
  return (void *)err;
}

static void test_remote_frees_reused_first(void **state) {
  (void)state;
  run_on_new_thread(reuse_remote_frees);
}

/* Blocks of another thread's span that a thread frees, in a class it
 * allocates itself, serve its own mallocs of the class once its current span
 * has run dry (its foreign list), but only blocks of whole cache lines while
 * it has freed few other threads' blocks: a thread freeing the 32-byte blocks
 * handed to it must not get their lines back (the owner writes its other
 * blocks there). Statistics count kept blocks as free, arena_check follows
 * the lists, and thread exit sends them home. */
enum { HANDED = 16 };
struct handed {
  void *line[HANDED], *small[HANDED]; /* 256- and 32-byte blocks of the owner */
  const char *err;
};

static uint64_t blocks_per_span(uint64_t block_size) {
  struct arena_stats st = stats_now();
  for (int i = 0; i < ARENA_STATS_CLASSES; i++)
    if (st.classes[i].block_size == block_size && st.classes[i].spans)
      return st.classes[i].capacity / st.classes[i].spans;
  return 0;
}

/* Takes every block of this thread's current span of the size (a fresh
 * thread's first span), so that the next malloc of it refills. */
static void **drain_current(size_t size) {
  free(malloc(size));
  uint64_t n = blocks_per_span(size);
  void **p = calloc(n + 1, sizeof *p);
  for (uint64_t i = 0; p && i < n; i++) p[i] = malloc(size);
  return p;
}

static void free_all_of(void **p) {
  for (int i = 0; p && p[i]; i++) free(p[i]);
  free(p);
}

static int handed_block(void *p, void *const *from) {
  for (int j = 0; j < HANDED; j++)
    if (p == from[j]) return 1;
  return 0;
}

static void *take_handed(void *arg) {
  struct handed *h = arg;
  void *mine[HANDED];
  void **line_fill = drain_current(256), **small_fill = drain_current(32);
  if (!line_fill || !small_fill) return "malloc failed";
  uint64_t before = stats_now().allocated_bytes;
  for (int i = 0; i < HANDED; i++) free(h->line[i]);
  if (before - stats_now().allocated_bytes != HANDED * 256) h->err = "kept blocks counted as allocated";
  for (int i = 0; i < HANDED; i++) free(h->small[i]); /* on their way home */
  if (arena_check() != 0) h->err = "arena_check found a problem with blocks on the foreign lists";
  for (int i = 0; i < HANDED; i++) {
    if (!(mine[i] = malloc(256))) return "malloc failed";
    memset(mine[i], 0x5a, 256);
    if (!handed_block(mine[i], h->line)) h->err = "a freed block of whole lines did not serve a refill";
  }
  for (int i = 0; i < HANDED; i++) free(mine[i]);
  for (int i = 0; i < HANDED; i++) {
    if (!(mine[i] = malloc(32))) return "malloc failed";
    if (handed_block(mine[i], h->small))
      h->err = "a handed 32-byte block was reused by the thread that freed it";
  }
  for (int i = 0; i < HANDED; i++) free(mine[i]);
  free_all_of(line_fill);
  free_all_of(small_fill);
  return NULL;
}

static void *hand_blocks(void *arg) {
  (void)arg;
  static struct handed h;
  for (int i = 0; i < HANDED; i++) {
    h.line[i] = malloc(256);
    h.small[i] = malloc(32);
    if (!h.line[i] || !h.small[i]) return "malloc failed";
  }
  pthread_t t;
  if (pthread_create(&t, NULL, take_handed, &h) || pthread_join(t, NULL)) return "pthread_create failed";
  if (h.err) return (void *)h.err;
  if (arena_check() != 0) return "arena_check found a problem after the taker exited";
  /* Its exit sent the kept blocks home: within a span's worth and a few more
   * mallocs the owner gets every one of them back. */
  uint64_t n = blocks_per_span(256) + HANDED;
  void **again = calloc(n + 1, sizeof *again);
  int back = 0;
  for (uint64_t i = 0; again && i < n; i++) {
    if (!(again[i] = malloc(256))) break;
    back += handed_block(again[i], h.line);
  }
  free_all_of(again);
  if (back != HANDED) return "blocks a thread kept did not go home when it exited";
  return NULL;
}

static void test_foreign_blocks(void **state) {
  (void)state;
  run_on_new_thread(hand_blocks);
}

/* An arena keeps up to 4 MiB of empty spans while it takes no new span, and
 * gives back all but 1 MiB before it takes one: a fresh thread cycles 64
 * blocks of 64 KiB (sixteen 256 KiB spans) and keeps all sixteen; its first
 * malloc of another size, which needs a new span or a large block from the
 * back end, leaves it with at most five (the current span and 1 MiB). */
static uint64_t spans_of_size(uint64_t block_size) {
  struct arena_stats st = stats_now();
  for (int i = 0; i < ARENA_STATS_CLASSES; i++)
    if (st.classes[i].block_size == block_size) return st.classes[i].spans;
  return 0;
}

/* grow: the size of the malloc that must take new memory. */
static const char *cycle_then_grow(size_t grow) {
  enum { N = 64, SIZE = 65536 };
  void *p[N];
  uint64_t before = spans_of_size(SIZE);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++)
      if (!(p[i] = malloc(SIZE))) return "malloc failed";
    for (int i = 0; i < N; i++) free(p[i]);
  }
  if (spans_of_size(SIZE) - before != N / 4) return "the empty spans of a 4 MiB cycle were not all kept";
  void *q = malloc(grow);
  if (!q) return "malloc failed";
  const char *err = NULL;
  if (spans_of_size(SIZE) - before > 5)
    err = "empty spans beyond 1 MiB were kept while the arena took new memory";
  free(q);
  return err;
}

static void *cycle_then_small(void *arg) {
  (void)arg;
  return (void *)cycle_then_grow(1000); /* needs a new span */
}

static void *cycle_then_large(void *arg) {
  (void)arg;
  return (void *)cycle_then_grow(200000); /* a large block from the back end */
}

static void test_empty_spans_released_before_growth(void **state) {
  (void)state;
  run_on_new_thread(cycle_then_small);
  run_on_new_thread(cycle_then_large);
}

/* arena_check and arena_stats_get while other threads run. */
static void test_check_concurrent(void **state) {
  (void)state;
  reset_failures();
  atomic_store(&g_stop, 0);
  enum { T = 2 };
  pthread_t t[T];
  int ids[T];
  for (int i = 0; i < T; i++) {
    ids[i] = 10 + i;
    start(&t[i], background_churn, &ids[i]);
  }
  for (int i = 0; i < 200; i++) {
    struct arena_stats s = stats_now();
    assert_true(s.mapped_bytes >= s.allocated_bytes);
    if (i % 20 == 0) assert_heap_ok();
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
  assert_no_thread_failures();
  assert_heap_ok();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_span_reused_at_an_eighth), /* first: no other test's spans of its class */
      cmocka_unit_test(test_full_span_reused_at_a_sixteenth_while_growing),
      cmocka_unit_test(test_full_span_waits_for_an_eighth_when_steady),
      cmocka_unit_test(test_last_emptied_span_reused_first),
      cmocka_unit_test(test_remote_frees_reused_first),
      cmocka_unit_test(test_foreign_blocks),
      cmocka_unit_test(test_empty_spans_released_before_growth),
      cmocka_unit_test(test_producer_consumer),
      cmocka_unit_test(test_thread_exit_live_blocks),
      cmocka_unit_test(test_thread_generations),
      cmocka_unit_test(test_first_call_is_free),
      cmocka_unit_test(test_tsd_destructor_allocates),
      cmocka_unit_test(test_hammer_8_threads),
      cmocka_unit_test(test_fork_while_allocating),
      cmocka_unit_test(test_check_concurrent),
  };
  apply_test_filter();
  catch_aborts();
  return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
