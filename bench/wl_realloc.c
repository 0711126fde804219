/* Workload 6, realloc growth: VECS growing buffers are kept side by side (so
 * growing one in place is not free: its neighbours sit behind it) and grown
 * round-robin until they reach their final size, then freed.
 *   realloc_vector: capacity doubles from 16 B to 1 MiB (std::vector style);
 *                   the new half is written, as a vector's push_back would;
 *   realloc_string: capacity doubles from 16 B to 64 KiB, then the string is
 *                   shrunk to fit (realloc to its length) as many string
 *                   builders do before handing the result over;
 *   realloc_step:   grows by 16 bytes at a time to 4 KiB (append-one-field
 *                   code), the case where in-place growth matters most.
 * One op is one realloc. */
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

#define VECS 8

enum kind { VECTOR, STRING, STEP };

static size_t next_size(enum kind k, size_t cur) { return k == STEP ? cur + 16 : cur * 2; }

static void grow(shim_state *st, void *arg) {
  enum kind k = (enum kind)(intptr_t)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  size_t start = 16, limit = k == VECTOR ? (1u << 20) : k == STRING ? (64u << 10) : 4096;
  bt_warm(64, 64);
  uint64_t ops = 0;
  while (bt_keep_running(&bt)) {
    void *v[VECS];
    size_t size[VECS];
    for (int i = 0; i < VECS; i++) {
      size[i] = start;
      v[i] = malloc(start);
      bt_touch(&bt, v[i], start);
      bt_live(&bt, (int64_t)start);
    }
    for (int done = 0; !done;) {
      done = 1;
      for (int i = 0; i < VECS; i++) {
        if (size[i] >= limit) continue;
        done = 0;
        size_t n = next_size(k, size[i]);
        unsigned char *p = realloc(v[i], n);
        bt_touch(&bt, p + size[i], n - size[i]); /* write the new part */
        bt_live(&bt, (int64_t)(n - size[i]));
        v[i] = p;
        size[i] = n;
        bt_tick(&bt);
        ops++;
      }
    }
    for (int i = 0; i < VECS; i++) {
      if (k == STRING) { /* shrink to a "length" of three quarters */
        size_t len = size[i] / 4 * 3;
        v[i] = realloc(v[i], len);
        bt_live(&bt, -(int64_t)(size[i] - len));
        size[i] = len;
        ops++;
      }
      bench_escape(v[i]);
      free(v[i]);
      bt_live(&bt, -(int64_t)size[i]);
    }
  }
  bt_end(&bt, (double)ops);
}

void wl_realloc_register(void) {
  static const struct {
    const char *name;
    enum kind k;
  } kinds[] = {{"realloc_vector", VECTOR}, {"realloc_string", STRING}, {"realloc_step", STEP}};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    struct shim_spec s = {0};
    s.name = kinds[i].name;
    s.fn = grow;
    s.arg = (void *)(intptr_t)kinds[i].k;
    wl_set_threads(&s, 1, 0);
    shim_register(&s);
  }
}
