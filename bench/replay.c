/* Trace replay; see replay.h. */
#include "replay.h"

#include <stdio.h>
#include <stdlib.h>

struct block {
  unsigned char *p;
  uint64_t size;
};

static unsigned char tag_of(size_t k) { return (unsigned char)(k * 31 + 7); }

static void put_tag(unsigned char *p, uint64_t size, unsigned char tag) {
  if (size == 0) return;
  p[0] = tag;
  p[size - 1] = tag;
}

static int tag_ok(const unsigned char *p, uint64_t size, unsigned char tag) {
  return size == 0 || (p[0] == tag && p[size - 1] == tag);
}

static int drop(struct block *b, size_t k, struct bench_thread *bt, int check) {
  if (!b->p && b->size == 0) return 0;
  if (check && !tag_ok(b->p, b->size, tag_of(k))) {
    fprintf(stderr, "replay: block %zu (%llu bytes) was overwritten\n", k, (unsigned long long)b->size);
    return -1;
  }
  free(b->p);
  bt_live(bt, -(int64_t)b->size);
  b->p = NULL;
  b->size = 0;
  return 0;
}

static int fill(struct block *b, size_t k, uint64_t size, struct bench_thread *bt, int check) {
  if (size > 0) bt_touch(bt, b->p, size);
  if (check) put_tag(b->p, size, tag_of(k));
  b->size = size;
  bt_live(bt, (int64_t)size);
  return 0;
}

static int request(const struct trace_req *r, struct block *b, size_t k, struct bench_thread *bt, int check) {
  if (r->op == 'f') return drop(b, k, bt, check);
  if (r->op == 'a' || !b->p) {
    /* "a" on a live id frees the old block first (a recorded trace never
     * does this; hand-made ones may); "r" on an empty id is realloc(NULL). */
    if (drop(b, k, bt, check)) return -1;
    if (r->op == 'r' && r->size == 0) return 0;
    b->p = r->op == 'a' ? malloc(r->size) : realloc(NULL, r->size);
    if (!b->p) goto oom;
    return fill(b, k, r->size, bt, check);
  }
  if (r->size == 0) return drop(b, k, bt, check); /* r id 0 frees */
  if (check && !tag_ok(b->p, b->size, tag_of(k))) {
    fprintf(stderr, "replay: block %zu was overwritten before realloc\n", k);
    return -1;
  }
  unsigned char *p = realloc(b->p, r->size);
  if (!p) goto oom;
  if (check && p[0] != tag_of(k)) {
    fprintf(stderr, "replay: realloc lost the contents of block %zu\n", k);
    return -1;
  }
  bt_live(bt, -(int64_t)b->size);
  b->p = p;
  return fill(b, k, r->size, bt, check);
oom:
  fprintf(stderr, "replay: allocation of %llu bytes failed\n", (unsigned long long)r->size);
  return -1;
}

int64_t replay_run(const struct trace *t, int copies, struct bench_thread *bt, int check) {
  if (copies < 1) copies = 1;
  size_t n = (size_t)t->nids * (size_t)copies;
  struct block *b = calloc(n ? n : 1, sizeof(*b));
  if (!b) return -1;
  int64_t done = 0;
  int failed = 0;
  for (size_t i = 0; i < t->nreq && !failed; i++) {
    const struct trace_req *r = &t->req[i];
    for (int c = 0; c < copies; c++) {
      if (r->id < 0) {
        free(NULL);
      } else {
        size_t k = (size_t)c * (size_t)t->nids + (size_t)r->id;
        if (request(r, &b[k], k, bt, check)) {
          failed = 1;
          break;
        }
      }
      done++;
      bt_tick(bt);
    }
  }
  mem_sample();
  for (size_t k = 0; k < n; k++)
    if (drop(&b[k], k, bt, check)) failed = 1;
  free(b);
  return failed ? -1 : done;
}
