/* Runs clean under valgrind memcheck (tests/test_valgrind.sh): a few thousand
 * mixed allocations through the overridden malloc family (linked with
 * -larena), four threads with cross-thread frees, every byte written and
 * checked, everything freed, arena_check() == 0. Exit 0 on success. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define SLOTS 200
#define NTHREADS 4

struct slot {
  unsigned char *p;
  size_t n;
  unsigned char v;
};

static uint64_t next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static size_t pick(uint64_t *r) {
  uint64_t x = next(r) % 100;
  if (x < 70) return next(r) % 600;
  if (x < 90) return next(r) % 32768;
  if (x < 98) return 32768 + next(r) % (1 << 20);
  return (1 << 20) + next(r) % (3 << 20);
}

static int check(const struct slot *s) {
  for (size_t i = 0; i < s->n; i++)
    if (s->p[i] != s->v) {
      fprintf(stderr, "vg_clean: byte %zu of %p changed\n", i, (void *)s->p);
      return 1;
    }
  return 0;
}

static int churn(struct slot *t, int ops, uint64_t seed) {
  uint64_t r = seed;
  for (int i = 0; i < ops; i++) {
    struct slot *s = &t[next(&r) % SLOTS];
    if (s->p) {
      if (check(s)) return 1;
      if (next(&r) % 4 == 0) {
        size_t n = pick(&r) + 1;
        unsigned char *q = realloc(s->p, n);
        if (!q) return 1;
        s->p = q;
        if (n < s->n) s->n = n;
        if (check(s)) return 1;
        s->n = n;
      } else {
        free(s->p);
        s->p = NULL;
        continue;
      }
    } else {
      size_t n = pick(&r);
      switch (next(&r) % 4) {
      case 0: s->p = malloc(n); break;
      case 1:
        s->p = calloc(1, n);
        if (s->p)
          for (size_t k = 0; k < n; k++)
            if (s->p[k]) return 1;
        break;
      case 2: s->p = aligned_alloc((size_t)16 << (next(&r) % 8), n); break;
      default: {
        void *q = NULL;
        if (posix_memalign(&q, (size_t)8 << (next(&r) % 10), n)) return 1;
        s->p = q;
      }
      }
      if (!s->p) return 1;
      s->n = n;
    }
    s->v = (unsigned char)next(&r);
    memset(s->p, s->v, s->n);
    /* the usable size is ours too */
    size_t u = malloc_usable_size(s->p);
    if (u < s->n) return 1;
    memset(s->p + s->n, s->v, u - s->n);
    s->n = u;
  }
  return 0;
}

static struct slot tables[NTHREADS][SLOTS];
static pthread_barrier_t barrier;

static void *worker(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  if (churn(tables[id], 1500, 0x9e3779b97f4a7c15ull * (id + 1))) return (void *)1;
  pthread_barrier_wait(&barrier);
  /* free the neighbour's first half: cross-thread frees */
  struct slot *t = tables[(id + 1) % NTHREADS];
  for (int i = 0; i < SLOTS / 2; i++)
    if (t[i].p) {
      if (check(&t[i])) return (void *)1;
      free(t[i].p);
      t[i].p = NULL;
    }
  return NULL;
}

int main(void) {
  static struct slot main_table[SLOTS];
  if (churn(main_table, 3000, 12345)) return 1;
  pthread_barrier_init(&barrier, NULL, NTHREADS);
  pthread_t th[NTHREADS];
  for (uintptr_t i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, worker, (void *)i);
  int bad = 0;
  for (int i = 0; i < NTHREADS; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    bad |= ret != NULL;
  }
  for (int i = 0; i < NTHREADS; i++)
    for (int j = 0; j < SLOTS; j++)
      if (tables[i][j].p) {
        bad |= check(&tables[i][j]);
        free(tables[i][j].p);
      }
  for (int j = 0; j < SLOTS; j++)
    if (main_table[j].p) {
      bad |= check(&main_table[j]);
      free(main_table[j].p);
    }
  if (arena_check() != 0) bad = 1;
  printf("vg_clean: %s\n", bad ? "FAILED" : "ok");
  return bad;
}
