/* Spans of small blocks: carving, the owner's lists, and span lists.
 *
 * A span has two lists the owner uses without atomics: `free`, which malloc
 * pops, and `local_free`, which the owner's free pushes. Keeping them apart
 * lets malloc's fast path read one list head and free's write another, and
 * when `free` runs dry the refill path swaps `local_free` in whole. */
#include "internal.h"

/* The descriptor's identity and geometry, set while the back end still holds
 * its lock (backend_alloc_span), so that a heap walk never sees a half-made
 * span: it is owned by the requesting thread from the first moment. No block
 * is carved yet (limit == 0). */
void span_describe_small(struct span *s, unsigned cls, uintptr_t owner) {
  const struct class_info *ci = &classes[cls];
  s->kind = SPAN_SMALL;
  s->size_class = (uint8_t)cls;
  s->block_size = ci->block_size;
  s->capacity = span_capacity(cls, s->npages);
  s->div_magic = ci->div_magic;
  span_set_limit(s, 0);
  s->carved_max = 0;
  s->free = s->local_free = OFFSET_END;
  s->used = 0;
  s->bias = 0;
  s->recarve = 0;
  s->capped = s->capacity == ci->capacity;
  atomic_store_explicit(span_xfree(s), XFREE_EMPTY, memory_order_relaxed);
  s->list = LIST_NONE;
  __atomic_store_n(&s->owner, owner, __ATOMIC_RELEASE);
}

/* Gives a described span its key and arena and carves its first blocks
 * (outside any lock). */
void span_init_small(struct span *s, struct arena *a) {
  s->key = mix64(global_secret ^ (uintptr_t)s->base ^ os_now_ms());
  __atomic_store_n(&s->arena, a, __ATOMIC_RELEASE);
  span_carve(s);
}

/* Atomic stores: other threads freeing or resizing their blocks of this span
 * read both (they only ever see them grow past their own block). */
void span_set_limit(struct span *s, uint32_t limit) {
  uint64_t bound =
      s->kind == SPAN_SMALL ? (uint64_t)(limit / s->block_size) * (s->div_magic * s->block_size) : 0;
  __atomic_store_n(&s->limit, limit, __ATOMIC_RELAXED);
  __atomic_store_n(&s->bound, bound, __ATOMIC_RELAXED);
}

/* Carving is lazy: each call turns the next page's worth of the span (at
 * least one block) into free blocks on the (empty) `free` list, so a class
 * used a few times costs a page, not a span. Blocks past `limit` were never
 * handed out, and free refuses them. Returns false when all is carved. */
bool span_carve(struct span *s) {
  uint32_t size = s->block_size;
  uint32_t first = s->limit / size;
  uint32_t n = (uint32_t)PAGE_SIZE / size;
  /* A bigger block's link would touch a page of its own: one block at a time
   * while the span is new, all of them once it was carved before (its pages
   * are resident): carving 8 blocks of 16 KiB one refill at a time cost a
   * refill per malloc, half the time of a batch of them. */
  if (n == 0) n = s->recarve ? s->capacity : 1;
  if (first + n > s->capacity && !s->capped) /* grown by doubling: a few lock round trips */
    backend_grow_span(s, first + n > 2 * s->capacity ? first + n : 2 * s->capacity);
  if (n > s->capacity - first) n = s->capacity - first;
  if (n == 0) return false;
#ifdef ARENA_SECURE
  /* Random order within the batch (Fisher-Yates; a batch has <= 256 blocks). */
  uint16_t order[256];
  uint64_t x = s->key ^ first;
  for (uint32_t i = 0; i < n; i++) order[i] = (uint16_t)(first + i);
  for (uint32_t i = n - 1; i > 0; i--) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint32_t j = (uint32_t)(x % (i + 1));
    uint16_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
#define BLOCK_AT(i) ((uint32_t)order[i] * size)
#else
#define BLOCK_AT(i) ((first + (i)) * size) /* address order: handed out sequentially */
#endif
  for (uint32_t i = 0; i < n; i++) {
    uint64_t *w = (uint64_t *)(s->base + BLOCK_AT(i));
    uint32_t next = i + 1 < n ? BLOCK_AT(i + 1) : OFFSET_END;
    w[0] = next ^ s->key;
    w[1] = free_mark(s, w);
  }
  s->free = BLOCK_AT(0);
#undef BLOCK_AT
  if (first + n == s->capacity) s->recarve = 0;
  span_set_limit(s, (first + n) * size);
  if (s->limit > s->carved_max) s->carved_max = s->limit;
  return true;
}

/* A free by the owner, or by a holder of the abandoned lock, that did not
 * take the inline path. The block is known valid and not marked. */
void span_push_local(struct span *s, void *block) {
  uint64_t *w = block;
  w[0] = s->local_free ^ s->key;
  w[1] = free_mark(s, block);
  s->local_free = (uint32_t)((char *)block - s->base);
  s->used--;
}

/* Makes an empty span's blocks ready for their next pass. Blocks below a
 * page are relinked in address order: left in the order of their frees, they
 * would send the next pass over the span through memory at random, which
 * neither the caches nor the prefetchers follow. Blocks of more than a page
 * are forgotten instead (limit 0) and carved again, all at once when the
 * span is next used: carving writes the links just before malloc reads them
 * back, where popping a kept list waits for one cold block after another (64
 * blocks of 64 KiB, more than L2 holds: half the time on that load). Blocks
 * of 4 KiB are relinked: carving them again, one block per carve, cost more
 * than that wait (0.9x on 64 of them). The hardened build keeps its random
 * order; annotate mode leaves freed blocks alone. */
void span_relink(struct span *s) {
#ifndef ARENA_SECURE
  uint32_t size = s->block_size, end = s->limit;
  if (annotate_mode || end == 0) return;
  s->free = s->local_free = OFFSET_END;
  if (size > PAGE_SIZE) {
    span_set_limit(s, 0); /* no block is out: nobody can hold one past it */
    s->recarve = end == s->capacity * size;
    return;
  }
  for (uint32_t off = 0; off < end; off += size)
    *(uint64_t *)(s->base + off) = (off + size < end ? off + size : OFFSET_END) ^ s->key;
  s->free = 0;
#else
  (void)s;
#endif
}

/* Moves local_free onto the (empty) allocation list. */
bool span_collect_local(struct span *s) {
  if (s->local_free == OFFSET_END) return false;
  s->free = s->local_free;
  s->local_free = OFFSET_END;
  return true;
}

/* Moves the blocks other threads freed into this span onto the (empty)
 * allocation list in one exchange: the list is already linked for it. Only
 * for a span whose xfree carries no flag (current or partial). */
bool span_collect_xfree(struct span *s) {
  if ((uint32_t)atomic_load_explicit(span_xfree(s), memory_order_relaxed) == OFFSET_END) return false;
  uint64_t h = atomic_exchange_explicit(span_xfree(s), XFREE_EMPTY, memory_order_acquire);
  s->free = (uint32_t)h;
  s->used -= (uint32_t)((h & XFREE_COUNT_MASK) >> 32);
  return true;
}

/* Sets the xfree flags (or clears them, flags == XFREE_EMPTY's), moving any
 * blocks that were waiting there onto local_free; returns how many. */
uint32_t span_take_xfree(struct span *s, uint64_t flags) {
  uint64_t h = atomic_exchange_explicit(span_xfree(s), flags, memory_order_acquire);
  uint32_t n = (uint32_t)((h & XFREE_COUNT_MASK) >> 32);
  for (uint32_t off = (uint32_t)h, i = 0; i < n; i++) {
    char *block = s->base + off;
    off = link_decode(s, block);
    ((uint64_t *)block)[0] = s->local_free ^ s->key;
    s->local_free = (uint32_t)(block - s->base);
  }
  s->used -= n;
  return n;
}

static bool list_contains(const struct span *s, uint32_t head, uint32_t off) {
  for (uint32_t n = 0, x = head; x != OFFSET_END && n <= s->capacity; n++) {
    if (x == off) return true;
    if (x >= s->limit) return false;
    x = link_decode(s, s->base + x);
  }
  return false;
}

/* Whether block p is on one of the owner's lists (the checker and the
 * double-free confirmation; O(capacity)). */
bool span_contains_free(struct span *s, const void *p) {
  uint32_t off = (uint32_t)((const char *)p - s->base);
  return list_contains(s, s->free, off) || list_contains(s, s->local_free, off);
}

void span_list_push(struct span_list *l, struct span *s, uint8_t id) {
  s->prev = NULL;
  s->next = l->head;
  if (l->head)
    l->head->prev = s;
  else
    l->tail = s;
  l->head = s;
  l->count++;
  s->list = id;
}

void span_list_push_tail(struct span_list *l, struct span *s, uint8_t id) {
  s->next = NULL;
  s->prev = l->tail;
  if (l->tail)
    l->tail->next = s;
  else
    l->head = s;
  l->tail = s;
  l->count++;
  s->list = id;
}

void span_list_remove(struct span_list *l, struct span *s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    l->head = s->next;
  if (s->next)
    s->next->prev = s->prev;
  else
    l->tail = s->prev;
  s->next = s->prev = NULL;
  l->count--;
  s->list = LIST_NONE;
}
