/* Producer/consumer at full speed: producers allocate batches of blocks and
 * fill them; consumers verify every block of a batch and free the whole batch
 * (large batches of remote frees, in forward, reverse or shuffled order). The
 * batch descriptor is itself a block freed by the consumer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static struct stress_opts opt = {.threads = 4, .scale = 1, .seed = 1, .batch = 1000, .max_size = 64 << 10};

#define BATCHES_PER_SCALE 3000 /* batches per producer per unit of scale */

struct batch {
  struct batch *next;
  size_t n;
  blk_t b[];
};

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qnotempty = PTHREAD_COND_INITIALIZER, qnotfull = PTHREAD_COND_INITIALIZER;
static struct batch *qhead, *qtail;
static long qlen, qcap, producers_left, max_qlen;
static atomic_ulong batches_done;

static void *producer(void *arg) {
  long id = (long)(intptr_t)arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, (uint64_t)id);
  long nb = BATCHES_PER_SCALE * opt.scale;
  for (long k = 0; k < nb; k++) {
    size_t n = (size_t)opt.batch / 2 + (size_t)rng_below(&r, (uint64_t)opt.batch);
    struct batch *bt = malloc(sizeof *bt + n * sizeof(blk_t));
    if (!bt) stress_die("producer: out of memory");
    bt->n = 0;
    bt->next = NULL;
    for (size_t i = 0; i < n; i++) {
      c.ops++;
      /* mostly small blocks, the remote-free fast path */
      size_t sz =
          rng_pct(&r, 90) ? 1 + (size_t)rng_below(&r, 256) : stress_rand_size(&r, (size_t)opt.max_size);
      if (blk_alloc_any(&bt->b[bt->n], sz, &r, &c)) bt->n++;
    }
    pthread_mutex_lock(&qlock);
    while (qlen >= qcap) pthread_cond_wait(&qnotfull, &qlock);
    if (qtail)
      qtail->next = bt;
    else
      qhead = bt;
    qtail = bt;
    if (++qlen > max_qlen) max_qlen = qlen;
    pthread_cond_signal(&qnotempty);
    pthread_mutex_unlock(&qlock);
  }
  pthread_mutex_lock(&qlock);
  producers_left--;
  pthread_cond_broadcast(&qnotempty);
  pthread_mutex_unlock(&qlock);
  stress_counts_add(&c);
  return NULL;
}

static void *consumer(void *arg) {
  long id = (long)(intptr_t)arg;
  struct stress_counts c = {0};
  rng_t r;
  rng_init(&r, opt.seed, 1000 + (uint64_t)id);
  char who[48];
  snprintf(who, sizeof who, "prodcons consumer %ld", id);
  for (;;) {
    pthread_mutex_lock(&qlock);
    while (!qhead && producers_left > 0) pthread_cond_wait(&qnotempty, &qlock);
    struct batch *bt = qhead;
    if (!bt) {
      pthread_mutex_unlock(&qlock);
      break;
    }
    qhead = bt->next;
    if (!qhead) qtail = NULL;
    qlen--;
    pthread_cond_signal(&qnotfull);
    pthread_mutex_unlock(&qlock);

    size_t n = bt->n;
    uint64_t order = rng_below(&r, 3);
    if (order == 2) /* shuffle */
      for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(&r, i);
        blk_t t = bt->b[i - 1];
        bt->b[i - 1] = bt->b[j];
        bt->b[j] = t;
      }
    for (size_t i = 0; i < n; i++) {
      c.ops++;
      blk_free(&bt->b[order == 1 ? n - 1 - i : i], who, &c);
    }
    free(bt);
    atomic_fetch_add(&batches_done, 1);
  }
  stress_counts_add(&c);
  return NULL;
}

int main(int argc, char **argv) {
  if (STRESS_SANITIZED) opt.batch = 300; /* smaller short form under TSan/ASan */
  stress_parse(argc, argv, &opt, "prodcons",
               "Producers allocate batches, consumers verify and free them (remote frees).\n"
               "threads are split in producers and consumers (at least one each); each\n"
               "producer makes scale * 3000 batches of batch/2 .. 3*batch/2 blocks.");
  double start = stress_now();
  long np = opt.threads / 2 > 0 ? opt.threads / 2 : 1;
  long nc = opt.threads - np > 0 ? opt.threads - np : 1;
  printf("prodcons: %ld producers, %ld consumers, %ld batches of ~%ld blocks each\n", np, nc,
         BATCHES_PER_SCALE * opt.scale, opt.batch);
  stress_print_opts(&opt);
  qcap = 2 * nc + 2;
  producers_left = np;

  struct arena_stats st0, st1;
  bool have_stats = stress_stats(&st0);
  pthread_t *t = calloc((size_t)(np + nc), sizeof *t);
  if (!t) stress_die("out of memory");
  for (long i = 0; i < nc; i++) stress_thread(&t[i], consumer, (void *)(intptr_t)i);
  for (long i = 0; i < np; i++) stress_thread(&t[nc + i], producer, (void *)(intptr_t)i);
  for (long i = 0; i < np + nc; i++) stress_join(t[i]);
  free(t);
  stress_check_heap("at the end");

  char extra[200];
  int len = snprintf(extra, sizeof extra, "%lu batches passed, longest queue %ld", atomic_load(&batches_done),
                     max_qlen);
  if (have_stats && stress_stats(&st1))
    snprintf(extra + len, sizeof extra - (size_t)len, ", libarena remote frees %" PRIu64,
             st1.remote_frees - st0.remote_frees);
  if (stress_total.mallocs + stress_total.callocs + stress_total.aligned != stress_total.frees)
    stress_fail("allocated %" PRIu64 " blocks but freed %" PRIu64,
                stress_total.mallocs + stress_total.callocs + stress_total.aligned, stress_total.frees);
  return stress_report("prodcons", start, extra);
}
