/* Spans of small blocks: carving, the owner's lists, and span lists.
 *
 * A span has two lists the owner uses without atomics: `free`, which malloc
 * pops, and `local_free`, which the owner's free pushes. Keeping them apart
 * lets malloc's fast path read one list head and free's write another, and
 * when `free` runs dry the refill path swaps `local_free` in whole. */
#include "internal.h"

/* Carves the span's pages into blocks, every block on `free` in address
 * order (so a fresh span is handed out sequentially) and marked free. */
void span_init_small(struct span *s, unsigned cls, struct arena *a) {
  const struct class_info *ci = &classes[cls];
  s->kind = SPAN_SMALL;
  s->size_class = (uint8_t)cls;
  s->block_size = ci->block_size;
  s->capacity = ci->capacity;
  s->div_magic = ci->div_magic;
  s->limit = ci->span_pages * (uint32_t)PAGE_SIZE;
  s->key = os_random() ^ global_secret;
  s->used = 0;
  s->local_free = OFFSET_END;
  s->arena = a;
  s->list = LIST_NONE;
  uint32_t size = ci->block_size;
  for (uint32_t i = 0, off = 0; i < ci->capacity; i++, off += size) {
    uint64_t *w = (uint64_t *)(s->base + off);
    uint32_t next = i + 1 < ci->capacity ? off + size : OFFSET_END;
    w[0] = next ^ s->key;
    w[1] = free_mark(s, w);
  }
  s->free = 0;
  __atomic_store_n(&s->owner, a->owner_word, __ATOMIC_RELEASE);
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

/* Moves local_free onto the (empty) allocation list. */
bool span_collect_local(struct span *s) {
  if (s->local_free == OFFSET_END) return false;
  s->free = s->local_free;
  s->local_free = OFFSET_END;
  return true;
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
  if (l->head) l->head->prev = s;
  else l->tail = s;
  l->head = s;
  l->count++;
  s->list = id;
}

void span_list_push_tail(struct span_list *l, struct span *s, uint8_t id) {
  s->next = NULL;
  s->prev = l->tail;
  if (l->tail) l->tail->next = s;
  else l->head = s;
  l->tail = s;
  l->count++;
  s->list = id;
}

void span_list_remove(struct span_list *l, struct span *s) {
  if (s->prev) s->prev->next = s->next;
  else l->head = s->next;
  if (s->next) s->next->prev = s->prev;
  else l->tail = s->prev;
  s->next = s->prev = NULL;
  l->count--;
  s->list = LIST_NONE;
}
