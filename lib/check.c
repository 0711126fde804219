/* arena_check: walks every chunk, span and free list and verifies the
 * invariants stated in internal.h. Spans owned by other running threads
 * change under us, so for them only what cannot change while they own the
 * span (geometry, page map, kind) is checked; the caller's own spans and
 * abandoned spans are checked block by block. */
#include "internal.h"

struct checker {
  int problems;
  uintptr_t me;
};

static void problem(struct checker *k, const char *what, const void *where) {
  k->problems++;
  report_pointer(what, where);
}

/* Counts a free list, checking every link; returns UINT32_MAX when broken. */
static uint32_t check_list(struct checker *k, struct span *s, uint32_t head) {
  uint32_t n = 0;
  for (uint32_t off = head; off != OFFSET_END; n++) {
    if (n > s->capacity) {
      problem(k, "free list longer than the span (cycle)", s->base);
      return UINT32_MAX;
    }
    if (off >= s->limit || off % s->block_size) {
      problem(k, "free list link outside the span or off a block boundary", s->base);
      return UINT32_MAX;
    }
    const uint64_t *w = (const uint64_t *)(s->base + off);
    if (w[1] != free_mark(s, w)) problem(k, "block on a free list without its free mark", w);
    off = link_decode(s, w);
  }
  return n;
}

static void check_small(struct checker *k, struct span *s) {
  const struct class_info *ci = &classes[s->size_class];
  if (s->size_class >= NUM_CLASSES || s->block_size != ci->block_size || s->npages > ci->span_pages ||
      s->capacity != span_capacity(s->size_class, s->npages) || s->div_magic != ci->div_magic) {
    problem(k, "small span geometry does not match its class", s->base);
    return;
  }
  uintptr_t owner = __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE);
  uint32_t limit = __atomic_load_n(&s->limit, __ATOMIC_RELAXED);
  if (limit > s->capacity * s->block_size || limit % s->block_size)
    problem(k, "span carved past its end or off a block", s->base);
  if (__atomic_load_n(&s->bound, __ATOMIC_RELAXED) !=
      (uint64_t)(limit / s->block_size) * (s->div_magic * s->block_size))
    problem(k, "span's block bound does not match its limit", s->base);
  if (owner != k->me && owner != 0) return; /* another live thread's */
  uint32_t nfree = check_list(k, s, s->free);
  uint32_t nlocal = check_list(k, s, s->local_free);
  if (nfree == UINT32_MAX || nlocal == UINT32_MAX) return;
  if ((uint64_t)nfree + nlocal + span_out(s) != s->limit / s->block_size)
    problem(k, "span block count: free + local_free + blocks out != blocks carved", s->base);
}

static void check_chunk(struct chunk *c, void *arg) {
  struct checker *k = arg;
  if (!map_is_chunk(chunk_map[(uintptr_t)chunk_data(c) >> CHUNK_SHIFT]))
    problem(k, "chunk missing from the chunk map", c);
  uint32_t free_pages = 0, runs = 0;
  bool prev_free = false;
  size_t i = FIRST_PAGE;
  while (i < END_PAGE) {
    struct span *s = c->pagemap[i];
    size_t slot = (size_t)(s - c->spans);
    runs++;
    if (slot == 0 || slot >= c->descriptors_used || slot % 32 == 31) {
      problem(k, "run described by a descriptor slot not handed out", page_addr(c, i));
      return;
    }
    if (s->npages == 0 || i + s->npages > END_PAGE || s->base != page_addr(c, i)) {
      problem(k, "runs do not tile the chunk", c);
      return;
    }
    size_t last = i + s->npages - 1;
    switch (s->kind) {
    case SPAN_FREE:
      if (prev_free) problem(k, "two free runs side by side (not coalesced)", s->base);
      if (c->pagemap[i] != s || c->pagemap[last] != s) problem(k, "free run boundary tags wrong", s->base);
      free_pages += s->npages;
      break;
    case SPAN_SMALL:
    case SPAN_LARGE:
      for (size_t p = i; p <= last; p++)
        if (c->pagemap[p] != s) problem(k, "page map entry of an in-use run is wrong", page_addr(c, p));
      if (s->kind == SPAN_SMALL)
        check_small(k, s);
      else {
        char *user = __atomic_load_n(&s->user, __ATOMIC_ACQUIRE); /* NULL: stashed by a thread */
        if (user && (user < s->base || user >= s->base + s->npages * PAGE_SIZE))
          problem(k, "large block pointer outside its run", s->base);
      }
      break;
    default: problem(k, "run with an invalid kind", s->base); return;
    }
    prev_free = s->kind == SPAN_FREE;
    i += s->npages;
  }
  if (free_pages != c->free_pages) problem(k, "chunk free page count wrong", c);
  /* Every slot handed out describes a run or is spare, never both. */
  uint32_t spares = 0;
  for (struct span *d = c->spare_descriptors; d; d = d->next) {
    if (++spares > DESCRIPTOR_SLOTS || d->kind != SPAN_NONE) {
      problem(k, "spare descriptor list damaged", c);
      return;
    }
  }
  if (1 + runs + spares + c->descriptors_used / 32 != c->descriptors_used)
    problem(k, "descriptors lost or shared: runs + spares do not add up to the slots handed out", c);
}

static void check_huge(struct huge_header *h, void *arg) {
  struct checker *k = arg;
  if (h->magic != (HUGE_MAGIC ^ (uintptr_t)h) || !h->live) problem(k, "huge block header damaged", h);
  for (size_t off = 0; off < h->map_size; off += CHUNK_SIZE)
    if (chunk_map[((uintptr_t)h + off) >> CHUNK_SHIFT] != MAP_HUGE)
      problem(k, "huge block missing from the chunk map", h);
}

/* The caller's foreign list of class c: marked, carved blocks of class c of
 * spans this thread does not own (or did not when it freed them), as many as
 * the count says. */
static void check_foreign(struct checker *k, const struct arena *a, unsigned c) {
  uint32_t n = 0;
  for (const uint64_t *w = a->foreign[c].head; w;
       w = (const uint64_t *)(uintptr_t)(w[0] ^ global_secret), n++) {
    uintptr_t u = (uintptr_t)w;
    if (n >= classes[c].foreign_limit) {
      problem(k, "foreign list longer than its limit (cycle)", w);
      return;
    }
    struct span *s = NULL;
    if (!(u >> ADDRESS_BITS) && map_is_chunk(chunk_map[u >> CHUNK_SHIFT]))
      s = chunk_of(w)->pagemap[page_index(chunk_of(w), w)];
    if (!s || s->kind != SPAN_SMALL || s->size_class != c || !span_holds_block(s, u - (uintptr_t)s->base)) {
      problem(k, "foreign list holds a pointer that is no carved block of its class", w);
      return;
    }
    if (w[1] != free_mark(s, w)) problem(k, "block on a foreign list without its free mark", w);
  }
  if (n != a->foreign[c].count)
    problem(k, "foreign list count does not match its blocks", a->foreign[c].head);
}

static void check_own_arena(struct checker *k) {
  struct arena *a = thread_arena;
  if (a == &empty_arena) return;
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    check_foreign(k, a, c);
    struct span *s = a->current[c];
    if (s != &empty_span && (s->kind != SPAN_SMALL || s->size_class != c || s->owner != a->owner_word))
      problem(k, "current span of the wrong class or owner", s->base);
    for (s = a->partial[c].head; s; s = s->next)
      if (s->owner != a->owner_word || s->size_class != c)
        problem(k, "partial span of the wrong class or owner", s->base);
    for (s = a->full[c].head; s; s = s->next)
      if (s->owner != a->owner_word || s->bias < 0 || (s->bias == 0 && s->capacity > 1)) /* 0: one block */
        problem(k, "full span of the wrong owner or unbiased", s->base);
  }
  for (struct span *s = a->filled.head; s; s = s->next)
    if (s->owner != a->owner_word || s->bias <= 0 || s->list != LIST_FILLED)
      problem(k, "filled span of the wrong owner or unbiased", s->base);
}

__attribute__((visibility("default"))) int arena_check(void) {
  if (init_state != 2) global_init();
  struct checker k = {0, thread_id()};
  annotate_enter();
  abandoned_lock();
  backend_lock();
  backend_each_chunk(check_chunk, &k);
  backend_each_huge(check_huge, &k);
  backend_unlock();
  abandoned_unlock();
  check_own_arena(&k);
  annotate_leave();
  return k.problems;
}
