/* Workload 10, TLB-bound: a linked structure of bench_cfg.tlb_bytes of small
 * and mixed-size nodes (hundreds of MiB; less with --quick), built with frees
 * in between so the heap fragments, then walked:
 *   tlb_alloc_order:  in allocation order, where an allocator that packs
 *                     consecutive allocations together keeps neighbours on the
 *                     same pages;
 *   tlb_random_order: in a random order, a pointer chase whose cost is mostly
 *                     TLB misses and cache misses, lower when the heap is
 *                     dense and backed by 2 MiB pages.
 * One op is one node visited; time per access is 1/throughput. The structure
 * is built once per process, before the first timed loop, and kept. */
#include <stdlib.h>

#include "harness.h"
#include "workloads.h"

struct node {
  struct node *next_alloc, *next_rand;
  uint64_t value;
};

static struct node *head_alloc, *head_rand;
static size_t nnodes;

static size_t node_size(struct bench_thread *bt) {
  uint64_t r = bt_rand(bt);
  unsigned p = (unsigned)(r % 100);
  if (p < 70) return 32 + (size_t)((r >> 16) % 33);
  if (p < 90) return 65 + (size_t)((r >> 16) % 192);
  if (p < 98) return 257 + (size_t)((r >> 16) % 768);
  return 1025 + (size_t)((r >> 16) % 3072);
}

static int build(struct bench_thread *bt) {
  size_t cap = 1 << 20, n = 0;
  struct node **all = malloc(cap * sizeof(*all));
  size_t *sizes = malloc(cap * sizeof(*sizes));
  uint64_t live = 0;
  if (!all || !sizes) return -1;
  while (live < bench_cfg.tlb_bytes) {
    if (n == cap) {
      cap *= 2;
      struct node **a = realloc(all, cap * sizeof(*all));
      size_t *s = realloc(sizes, cap * sizeof(*sizes));
      if (!a || !s) return -1;
      all = a, sizes = s;
    }
    sizes[n] = node_size(bt);
    all[n] = malloc(sizes[n]);
    if (!all[n]) return -1;
    bt_touch(bt, all[n], sizes[n]);
    all[n]->value = n;
    live += sizes[n];
    bt_live(bt, (int64_t)sizes[n]);
    n++;
    /* One free per four allocations, of a random earlier node: holes all over
     * the heap, as in a long-running program. */
    if (bt_rand(bt) % 4 == 0) {
      size_t j = (size_t)(bt_rand(bt) % n);
      if (all[j]) {
        free(all[j]);
        all[j] = NULL;
        live -= sizes[j];
        bt_live(bt, -(int64_t)sizes[j]);
      }
    }
    if (n % 65536 == 0) mem_sample();
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (all[i]) all[m++] = all[i];
  for (size_t i = 0; i + 1 < m; i++) all[i]->next_alloc = all[i + 1];
  all[m - 1]->next_alloc = NULL;
  head_alloc = all[0];
  for (size_t i = m - 1; i > 0; i--) { /* Fisher-Yates */
    size_t j = (size_t)(bt_rand(bt) % (i + 1));
    struct node *x = all[i];
    all[i] = all[j], all[j] = x;
  }
  for (size_t i = 0; i + 1 < m; i++) all[i]->next_rand = all[i + 1];
  all[m - 1]->next_rand = NULL;
  head_rand = all[0];
  nnodes = m;
  mem_sample();
  free(all);
  free(sizes);
  return 0;
}

static void walk(shim_state *st, void *arg) {
  int random_order = (int)(intptr_t)arg;
  struct bench_thread bt;
  bt_begin(&bt, st);
  if (!head_alloc && build(&bt) != 0) {
    shim_skip_with_error(st, "could not build the structure");
    bt_end(&bt, 0);
    return;
  }
  uint64_t ops = 0, sum = 0;
  while (bt_keep_running(&bt)) {
    if (random_order) {
      for (struct node *n = head_rand; n; n = n->next_rand) {
        bt_read_note(&bt, n);
        sum += n->value;
      }
    } else {
      for (struct node *n = head_alloc; n; n = n->next_alloc) {
        bt_read_note(&bt, n);
        sum += n->value;
      }
    }
    ops += nnodes;
  }
  bench_escape(&sum);
  bt_end(&bt, (double)ops);
  shim_counter(st, "nodes", (double)nnodes, SHIM_SUM);
}

void wl_tlb_register(void) {
  struct shim_spec s = {0};
  s.fn = walk;
  s.name = "tlb_alloc_order";
  s.arg = (void *)0;
  shim_register(&s);
  s.name = "tlb_random_order";
  s.arg = (void *)1;
  shim_register(&s);
}
