/* Thread arenas: the slow paths behind malloc and free.
 *
 *  refill       a class's current span ran dry: collect remote frees, swap
 *               in local frees, or move to a partial span, an abandoned span
 *               of another thread, or a new span from the back end;
 *  remote free  a block freed by a thread that does not own its span goes on
 *               the owner arena's lock-free list (a CAS push), collected by
 *               the owner in its next refill;
 *  abandon      at thread exit every span is handed to the abandoned lists,
 *               where frees are served under a lock and refills of other
 *               threads reclaim them; the arena struct returns to a pool.
 *
 * Arena structs are never unmapped (type-stable), so a thread that read a
 * span's arena pointer may still push onto that arena after it was recycled;
 * the new owner sees a block of a span it does not own and forwards it. */
#include <errno.h>
#include <string.h>

#include "internal.h"

struct span empty_span = {.free = OFFSET_END, .limit = 0};
struct arena empty_arena = {.direct = {[0 ... DIRECT_ENTRIES - 1] = &empty_span},
                            .current = {[0 ... NUM_CLASSES - 1] = &empty_span}};
__thread struct arena *thread_arena = &empty_arena;
__thread struct arena *fast_arena = &empty_arena;
static __thread bool thread_exiting; /* its arena was abandoned: free must not make another */

struct arena_counters dead_counters;
_Atomic uint64_t stat_abandoned, stat_reclaimed, stat_remote_orphan, stat_generations;

/* Relaxed read-modify-write done as plain load and store: counters have one
 * writer, and stats readers may see them at any moment. */
#define COUNT(x, n) __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

static inline uintptr_t span_owner(struct span *s) { return __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE); }
static inline void set_owner(struct span *s, uintptr_t owner) {
  __atomic_store_n(&s->owner, owner, __ATOMIC_RELEASE);
}
static inline struct span *span_of(void *p) {
  struct chunk *c = chunk_of(p);
  return c->pagemap[page_index(c, p)];
}

/* ---- arena pool ---------------------------------------------------------- */

static pthread_mutex_t arenas_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct arena *arena_pool;  /* recycled arena structs */
static struct arena *live_arenas; /* for stats */
static char *arena_slab;
static size_t arena_slab_left;
static pthread_key_t exit_key;

void arenas_lock(void) { pthread_mutex_lock(&arenas_mutex); }
void arenas_unlock(void) { pthread_mutex_unlock(&arenas_mutex); }

static struct arena *arena_struct_alloc(void) {
  struct arena *a = arena_pool;
  if (a) {
    arena_pool = a->next_in_pool;
    return a;
  }
  size_t size = (sizeof(struct arena) + 63) & ~(size_t)63;
  if (arena_slab_left < size) {
    size_t slab = (size_t)64 << 10;
    arena_slab = os_map(slab, false);
    if (!arena_slab) return NULL;
    arena_slab_left = slab;
  }
  a = (struct arena *)arena_slab;
  arena_slab += size;
  arena_slab_left -= size;
  return a;
}

static void arena_thread_exit(void *value);

void arena_key_create(void) {
  if (pthread_key_create(&exit_key, arena_thread_exit) != 0) report_fatal("pthread_key_create failed");
}

/* The calling thread's arena, created on first use; NULL when out of memory. */
struct arena *arena_get(void) {
  struct arena *a = thread_arena;
  if (likely(a != &empty_arena)) return a;
  if (init_state != 2) global_init();
  arenas_lock();
  a = arena_struct_alloc();
  if (a) {
    memset(a, 0, sizeof(*a));
    for (unsigned c = 0; c < NUM_CLASSES; c++) arena_set_current(a, c, &empty_span);
    a->owner_word = thread_id();
    a->chunks_seen = atomic_load_explicit(&chunks_mapped_ever, memory_order_relaxed);
    a->live = true;
    a->next_in_pool = live_arenas;
    if (live_arenas) live_arenas->prev_live = a;
    live_arenas = a;
  }
  arenas_unlock();
  if (!a) return NULL;
  atomic_fetch_add_explicit(&stat_generations, 1, memory_order_relaxed);
  /* Set before pthread_setspecific, which may itself call calloc. */
  thread_arena = a;
  if (!annotate_mode) fast_arena = a;
  pthread_setspecific(exit_key, a);
  return a;
}

static void arena_release_struct(struct arena *a) {
  arenas_lock();
  if (a->prev_live)
    a->prev_live->next_in_pool = a->next_in_pool;
  else
    live_arenas = a->next_in_pool;
  if (a->next_in_pool) a->next_in_pool->prev_live = a->prev_live;
  a->live = false;
  a->prev_live = NULL;
  a->next_in_pool = arena_pool;
  arena_pool = a;
  arenas_unlock();
}

void arena_each_live(void (*fn)(struct arena *, void *), void *arg) {
  arenas_lock();
  for (struct arena *a = live_arenas; a; a = a->next_in_pool) fn(a, arg);
  arenas_unlock();
}

void arenas_after_fork_child(void) { pthread_mutex_init(&arenas_mutex, NULL); }

/* ---- abandoned spans ----------------------------------------------------- */

static pthread_mutex_t abandoned_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct span_list abandoned_partial[NUM_CLASSES]; /* some blocks free */
static struct span_list abandoned_full[NUM_CLASSES];
static _Atomic size_t abandoned_partial_count;

void abandoned_lock(void) { pthread_mutex_lock(&abandoned_mutex); }
void abandoned_unlock(void) { pthread_mutex_unlock(&abandoned_mutex); }
void abandoned_after_fork_child(void) { pthread_mutex_init(&abandoned_mutex, NULL); }

static bool span_has_free(const struct span *s) { return span_out(s) < s->capacity; }

static void abandoned_remove(struct span *s) {
  if (s->list == LIST_ABANDONED_FULL) {
    span_list_remove(&abandoned_full[s->size_class], s);
  } else {
    span_list_remove(&abandoned_partial[s->size_class], s);
    atomic_fetch_sub_explicit(&abandoned_partial_count, 1, memory_order_relaxed);
  }
}

static void abandoned_insert(struct span *s) {
  if (span_has_free(s)) {
    span_list_push(&abandoned_partial[s->size_class], s, LIST_ABANDONED);
    atomic_fetch_add_explicit(&abandoned_partial_count, 1, memory_order_relaxed);
  } else {
    span_list_push(&abandoned_full[s->size_class], s, LIST_ABANDONED_FULL);
  }
}

/* A free into an abandoned span; abandoned lock held, block already marked. */
static void abandoned_free(struct span *s, void *p) {
  bool was_full = !span_has_free(s);
  span_push_local(s, p);
  if (s->used == 0) {
    abandoned_remove(s);
    backend_free_span(s);
  } else if (was_full) {
    span_list_remove(&abandoned_full[s->size_class], s);
    abandoned_insert(s);
  }
}

static struct span *reclaim(struct arena *a, unsigned c) {
  if (atomic_load_explicit(&abandoned_partial_count, memory_order_relaxed) == 0) return NULL;
  abandoned_lock();
  struct span *s = abandoned_partial[c].head;
  if (s) {
    abandoned_remove(s);
    span_take_xfree(s, XFREE_EMPTY); /* nothing waits there while abandoned */
    __atomic_store_n(&s->arena, a, __ATOMIC_RELEASE);
    set_owner(s, a->owner_word);
    atomic_fetch_add_explicit(&stat_reclaimed, 1, memory_order_relaxed);
  }
  abandoned_unlock();
  if (s && s->free == OFFSET_END) span_collect_local(s);
  return s;
}

/* ---- remote frees -------------------------------------------------------- */

/* Pushes a marked block of span s to the arena that owns s; when there is
 * none (abandoned), frees it into the span under the abandoned lock. */
static void remote_push(struct span *s, void *p, bool have_abandoned_lock) {
  for (;;) {
    struct arena *a = __atomic_load_n(&s->arena, __ATOMIC_ACQUIRE);
    if (a) {
      uintptr_t head = atomic_load_explicit(&a->remote, memory_order_relaxed);
      while (head != REMOTE_CLOSED) {
        ((uint64_t *)p)[0] = head ^ global_secret;
        if (atomic_compare_exchange_weak_explicit(&a->remote, &head, (uintptr_t)p, memory_order_release,
                                                  memory_order_relaxed))
          return;
      }
    }
    if (!have_abandoned_lock) abandoned_lock();
    bool done = span_owner(s) == 0;
    if (done) abandoned_free(s, p);
    if (!have_abandoned_lock) abandoned_unlock();
    if (done) return;
  }
}

/* Hands an outbox's chain to its arena with one CAS; when that arena has
 * closed (its thread exited), every block takes the abandoned path. */
static void outbox_flush(struct outbox *o, bool have_abandoned_lock) {
  void *head = o->head, *tail = o->tail;
  struct arena *dest = o->dest;
  o->head = o->tail = NULL;
  o->count = 0;
  o->dest = NULL;
  if (!head) return;
  uintptr_t h = atomic_load_explicit(&dest->remote, memory_order_relaxed);
  while (h != REMOTE_CLOSED) {
    ((uint64_t *)tail)[0] = h ^ global_secret;
    if (atomic_compare_exchange_weak_explicit(&dest->remote, &h, (uintptr_t)head, memory_order_release,
                                              memory_order_relaxed))
      return;
  }
  ((uint64_t *)tail)[0] = global_secret; /* terminate the chain (NULL ^ secret) */
  while (head) {
    void *p = head;
    head = (void *)(uintptr_t)(((uint64_t *)p)[0] ^ global_secret);
    remote_push(span_of(p), p, have_abandoned_lock);
  }
}

static void outboxes_flush(struct arena *a, bool have_abandoned_lock) {
  for (int i = 0; i < OUTBOXES; i++)
    if (a->outbox[i].head) outbox_flush(&a->outbox[i], have_abandoned_lock);
}

/* Queues a marked block of span s for the arena that owns s. */
static void remote_free(struct arena *me, struct span *s, void *p) {
  /* Straight into the span's own list, one CAS, unless a flag says otherwise. */
  uint32_t off = (uint32_t)((char *)p - s->base);
  uint64_t h = atomic_load_explicit(span_xfree(s), memory_order_relaxed);
  while (!(h & (XFREE_DELAYED | XFREE_ABANDONED))) {
    ((uint64_t *)p)[0] = (uint32_t)h ^ s->key;
    uint64_t next = ((h & XFREE_COUNT_MASK) + XFREE_COUNT_ONE) | off;
    if (atomic_compare_exchange_weak_explicit(span_xfree(s), &h, next, memory_order_release,
                                              memory_order_relaxed))
      return;
  }
  struct arena *dest = __atomic_load_n(&s->arena, __ATOMIC_ACQUIRE);
  if (!dest || me == &empty_arena || (h & XFREE_ABANDONED)) {
    remote_push(s, p, false);
    return;
  }
  struct outbox *o = NULL;
  for (int i = 0; i < OUTBOXES; i++)
    if (me->outbox[i].dest == dest) o = &me->outbox[i];
  if (!o) {
    o = &me->outbox[(uintptr_t)dest / 64 % OUTBOXES];
    outbox_flush(o, false);
    o->dest = dest;
  }
  ((uint64_t *)p)[0] = (uintptr_t)o->head ^ global_secret;
  if (!o->head) o->tail = p;
  o->head = p;
  if (++o->count >= REMOTE_BATCH) outbox_flush(o, false);
}

/* A span whose blocks are all out leaves the current slot for the arena's
 * `filled` list until an eighth of it is free again, or a sixteenth while
 * the heap grows: rejoining the partial list with one or two free blocks
 * would send the next malloc straight back to refill, while waiting longer
 * leaves the holes of a heap that frees here and there unused (TLB walk
 * build, one free per four mallocs: a quarter kept a tenth of every span
 * idle, 9% more RSS; an eighth still 2.5% more than a sixteenth, whose
 * holes make its walk in allocation order 6% slower). Holes cost
 * most while the heap grows, since each one left idle is new memory taken
 * instead; in a heap of steady size, a sixteenth only took 1.6x the refills
 * (server at one thread: 67 -> 110 per 1,000 ops, 6.5% more instructions
 * on results/server-misses/server_replica.c). So the first
 * GROWTH_PARKS spans to fill after a chunk was mapped (by any thread) wait
 * for a sixteenth, the rest for an eighth.
 * No atomic operation here: other threads' frees still land in the span's
 * xfree, and settle_filled parks the span before the arena takes memory from
 * anywhere else. A locked instruction waits for every store before it to
 * drain, and after a batch of writes to cold blocks that was 40% of the time
 * of 64 mallocs and frees of 16 KiB (one park per eight blocks). */
#define GROWTH_PARKS 1024
static void span_retire_full(struct arena *a, struct span *s) {
  span_list_push(&a->filled, s, LIST_FILLED);
  uint64_t mapped = atomic_load_explicit(&chunks_mapped_ever, memory_order_relaxed);
  if (mapped != a->chunks_seen) {
    a->chunks_seen = mapped;
    a->growth_parks = GROWTH_PARKS;
  }
  uint32_t back = (s->capacity + 7) / 8;
  if (a->growth_parks) {
    a->growth_parks--;
    back = (s->capacity + 15) / 16;
  }
  span_set_bias(s, (int32_t)(s->capacity - back));
}

/* Takes the blocks other threads freed into a span of ours that is on no
 * list, then puts it on its partial list, or, if it is empty, lets
 * span_event keep or release it. */
static void span_rejoin(struct arena *a, struct span *s) {
  span_set_bias(s, 0);
  span_take_xfree(s, XFREE_EMPTY);
  span_list_push(&a->partial[s->size_class], s, LIST_PARTIAL);
  if (s->used == 0) span_event(a, s);
}

/* Runs before a refill takes a span from elsewhere than its partial list,
 * so that blocks other threads freed into filled spans are used first: each
 * filled span either has some (it rejoins its partial list) or is parked
 * (XFREE_DELAYED, set with a CAS: from then on other threads' frees go to the
 * arena's remote list, whose collection can move it back). Every span is
 * settled once per time it fills, so this costs no more than parking at once,
 * and nothing when the program's partial lists keep up with it. */
static void settle_filled(struct arena *a) {
  struct span *s;
  while ((s = a->filled.head)) {
    span_list_remove(&a->filled, s);
    uint64_t empty = XFREE_EMPTY;
    if (atomic_compare_exchange_strong_explicit(span_xfree(s), &empty, XFREE_DELAYED, memory_order_acq_rel,
                                                memory_order_relaxed))
      span_list_push(&a->full[s->size_class], s, LIST_FULL);
    else
      span_rejoin(a, s);
  }
}

/* A span of ours whose counter reached 0 (the current span never does): a
 * filled or parked span has its share of blocks back and rejoins the
 * partial list; a partial span is empty. An empty span stays at the tail of
 * its partial list while the arena's cache of empty spans has room, so that
 * a program cycling through a few spans' worth of blocks does not re-carve
 * them each time; otherwise it goes back to the back end. */
void span_event(struct arena *a, struct span *s) {
  struct span_list *partial = &a->partial[s->size_class];
  if (s->list != LIST_PARTIAL) { /* filled or parked: an eighth (or sixteenth) is back */
    if (s->list == LIST_FULL) {
      span_list_remove(&a->full[s->size_class], s);
      /* While XFREE_DELAYED is set no other thread writes xfree (their
       * frees see the flag and go elsewhere), so a plain store lifts it. */
      atomic_store_explicit(span_xfree(s), XFREE_EMPTY, memory_order_release);
    } else {
      span_list_remove(&a->filled, s);
    }
    span_set_bias(s, 0);
    span_list_push(partial, s, LIST_PARTIAL);
    if (s->used) return;
    /* A span of one block (bias 0 while full) is empty when it comes back. */
  }
  span_list_remove(partial, s);
  size_t bytes = (size_t)s->npages * PAGE_SIZE;
  /* A span that stayed small (capped) is not kept: its class, used past
   * it, takes whole spans now, and its pages serve them better in the back
   * end (64 blocks of 64 KiB would hold 4 MiB and one span, one more than
   * the cache keeps, and cycle that one through the back end). */
  if (s->capacity == classes[s->size_class].capacity && a->empty_bytes + bytes <= ARENA_EMPTY_CACHE_MAX) {
    a->empty_bytes += bytes;
    span_relink(s);
    span_list_push_tail(partial, s, LIST_PARTIAL);
    return;
  }
  backend_free_span(s); /* retires the descriptor under the back-end lock */
}

/* Takes one block freed by another thread into the owner's lists. */
static void remote_receive(struct arena *a, void *p, bool have_abandoned_lock) {
  struct span *s = span_of(p);
  uintptr_t owner = span_owner(s);
  if (owner != a->owner_word) {
    remote_push(s, p, have_abandoned_lock); /* recycled arena: forward */
    return;
  }
  span_push_local(s, p);
  if (s->used == 0) span_event(a, s);
}

static void collect_remote(struct arena *a, bool have_abandoned_lock) {
  if (atomic_load_explicit(&a->remote, memory_order_relaxed) == 0) return;
  uintptr_t head = atomic_exchange_explicit(&a->remote, 0, memory_order_acquire);
  while (head) {
    void *p = (void *)head;
    head = (uintptr_t)(((uint64_t *)p)[0] ^ global_secret);
    __builtin_prefetch((void *)head, 1); /* overlap the next block's miss with this one's work */
    remote_receive(a, p, have_abandoned_lock);
  }
}

/* ---- refill -------------------------------------------------------------- */

static bool release_empty_spans(struct arena *a, size_t keep);

void arena_set_current(struct arena *a, unsigned cls, struct span *s) {
  a->current[cls] = s;
  for (unsigned i = classes[cls].direct_first; i < DIRECT_ENTRIES && class_of_size[i] == cls; i++)
    a->direct[i] = s;
}

/* The newest block of class c this thread freed from another thread's span,
 * or NULL. Its span still counts it out. */
static void *foreign_pop(struct arena *a, unsigned c) {
  struct foreign_list *f = &a->foreign[c];
  uint64_t *block = f->head;
  if (!block) return NULL;
  f->head = (void *)(uintptr_t)(block[0] ^ global_secret);
  __atomic_store_n(&f->count, f->count - 1, __ATOMIC_RELAXED);
#ifndef ARENA_UNCHECKED
  block[1] = 0; /* clear the free mark */
#endif
  return block;
}

static void *refill(size_t size) {
  struct arena *a = arena_get();
  if (unlikely(!a)) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned c = size_class(size);
  void *p = foreign_pop(a, c);
  if (p) return p;
  collect_remote(a, false);
  struct span *s = a->current[c];
  if (s != &empty_span) {
    if (s->free != OFFSET_END && s->free >= s->limit) report_invalid("corrupted free list in span", s->base);
    if (s->free != OFFSET_END || span_collect_local(s) || span_collect_xfree(s) || span_carve(s))
      return small_pop(a, size);
    span_retire_full(a, s);
    arena_set_current(a, c, &empty_span);
  }
  if (!a->partial[c].head) settle_filled(a);
  s = a->partial[c].head;
  if (s && s->used == 0) s = a->partial[c].tail; /* only empty spans: the one emptied last, warmest */
  if (!s && a->empty_bytes > ARENA_EMPTY_CACHE) release_empty_spans(a, ARENA_EMPTY_CACHE);
  if (s) {
    span_list_remove(&a->partial[c], s);
    if (s->used == 0) a->empty_bytes -= (size_t)s->npages * PAGE_SIZE;
    if (s->free == OFFSET_END) span_collect_local(s);
  } else {
    if (!(s = reclaim(a, c))) {
      /* A class's first two spans in this arena start at their first carve
       * and grow into the pages after them (span_carve): a thread that uses
       * a class a little then holds a few pages, placed where earlier
       * threads wrote. Two, because a thread that fills one span often
       * needs only a few blocks of the next. Later spans, of classes the
       * thread keeps using, are whole. */
      uint32_t pages =
          a->counters.refills[c] >= SMALL_FIRST_SPANS ? classes[c].span_pages : span_first_pages(c);
      s = backend_alloc_span(c, pages, a->owner_word, false);
      if (!s && arena_trim(false)) s = backend_alloc_span(c, pages, a->owner_word, false);
      if (!s) s = backend_alloc_span(c, pages, a->owner_word, true);
      if (!s && arena_trim(true)) s = backend_alloc_span(c, pages, a->owner_word, true);
      if (!s) {
        errno = ENOMEM;
        return NULL;
      }
      span_init_small(s, a);
    }
  }
  span_set_bias(s, -1); /* current: free's counter never reaches 0 here */
  /* An emptied span of big blocks forgot them (span_relink): carving here
   * spares the pop below a second pass through refill. */
  if (s->free == OFFSET_END && !span_collect_xfree(s)) span_carve(s);
  arena_set_current(a, c, s);
  COUNT(a->counters.refills[c], 1);
  return small_pop(a, size);
}

noinline void *arena_alloc_refill(size_t size) {
  if (likely(!annotate_mode)) return refill(size);
  annotate_enter();
  void *p = refill(size);
  annotate_leave();
  if (p) annotate_alloc(p, classes[size_class(size)].block_size, false);
  return p;
}

/* ---- free slow path ------------------------------------------------------ */

static void release_small(struct span *s, void *p);

#ifdef ARENA_SECURE
/* Holds p back for QUARANTINE_SLOTS frees; returns the block that leaves the
 * quarantine, or NULL. */
static void *quarantine_swap(struct arena *a, void *p) {
  if (a == &empty_arena) return p;
  unsigned slot = (a->quarantine_next + a->quarantine_count) % QUARANTINE_SLOTS;
  if (a->quarantine_count < QUARANTINE_SLOTS) {
    a->quarantine[slot] = p;
    a->quarantine_count++;
    return NULL;
  }
  void *old = a->quarantine[a->quarantine_next];
  a->quarantine[a->quarantine_next] = p;
  a->quarantine_next = (a->quarantine_next + 1) % QUARANTINE_SLOTS;
  return old;
}

static void quarantine_flush(struct arena *a) {
  while (a->quarantine_count) {
    void *p = a->quarantine[a->quarantine_next];
    a->quarantine_next = (a->quarantine_next + 1) % QUARANTINE_SLOTS;
    a->quarantine_count--;
    release_small(span_of(p), p);
  }
}
#endif

/* A small block whose span is known: validated (double free; in the hardened
 * build the canary), then released locally or to its owner. */
void free_small_checked(struct span *s, void *p) {
#ifndef ARENA_UNCHECKED
  if (((uint64_t *)p)[1] == free_mark(s, p))
    report_invalid("double free (or free of a block never allocated) of", p);
#endif
#ifdef ARENA_SECURE
  if (*(uint64_t *)((char *)p + s->block_size - CANARY_SIZE) != canary_value(s, p))
    report_invalid("heap overflow: canary after the block damaged at", p);
  memset(p, 0, s->block_size);
#endif
  if (unlikely(annotate_mode)) annotate_free(p, s->block_size - CANARY_SIZE);
#ifdef ARENA_SECURE
  ((uint64_t *)p)[1] = free_mark(s, p); /* free from now on: a second free is caught in quarantine too */
  p = quarantine_swap(thread_arena, p);
  if (!p) return;
  s = span_of(p);
#endif
  release_small(s, p);
}

/* Whether this thread keeps a block of another thread's span s on its
 * foreign list. A block of an exited thread's span has no owner to go back to
 * but through the abandoned lock, and no owner writing its other blocks:
 * kept. Otherwise only for a class this thread allocates (it has a current
 * span; a thread that only frees would hold its lists full for nothing), and,
 * for a block smaller than a cache line, only once this thread frees others'
 * blocks steadily (past FOREIGN_AFTER of them): reused here, such a block
 * shares its line with blocks the owner may be writing, and a thread that
 * frees the few blocks handed to it and allocates its own would get the
 * handed lines back (passive false sharing). A consumer's blocks travel
 * between cores whatever the allocator does. */
static bool foreign_keeps(struct arena *a, const struct span *s, uintptr_t owner) {
  unsigned c = s->size_class;
  if (a->foreign[c].count >= classes[c].foreign_limit) return false;
  if (owner == 0) return true;
  if (a->current[c] == &empty_span) return false;
  if (a->remote_freed < FOREIGN_AFTER) a->remote_freed++;
  return s->block_size % 64 == 0 || a->remote_freed >= FOREIGN_AFTER;
}

/* Puts a validated small block back: into our own span, onto our foreign
 * list (keep_foreign), or to its owner. */
static void release_block(struct span *s, void *p, bool keep_foreign) {
  uint64_t *w = p;
  uintptr_t me = thread_id();
  uintptr_t owner = span_owner(s);
  struct arena *a = thread_arena;
  if (owner == me && a != &empty_arena) {
    span_push_local(s, p);
    if (s->used == 0) span_event(a, s);
    return;
  }
  w[1] = free_mark(s, p);
  if (keep_foreign && a != &empty_arena && !annotate_mode && foreign_keeps(a, s, owner)) {
    struct foreign_list *f = &a->foreign[s->size_class];
    w[0] = (uintptr_t)f->head ^ global_secret;
    f->head = p;
    __atomic_store_n(&f->count, f->count + 1, __ATOMIC_RELAXED); /* statistics read it */
    return;
  }
  /* A thread that only frees gets an arena for its outboxes. */
  if (a == &empty_arena && !thread_exiting) a = arena_get();
  if (!a) a = &empty_arena;
  if (a != &empty_arena)
    COUNT(a->counters.remote_frees, 1);
  else
    atomic_fetch_add_explicit(&stat_remote_orphan, 1, memory_order_relaxed);
  remote_free(a, s, p);
}

static void release_small(struct span *s, void *p) { release_block(s, p, true); }

/* Sends every foreign block home (trim, thread exit). */
void foreign_flush(struct arena *a) {
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    struct foreign_list *f = &a->foreign[c];
    void *p = f->head;
    f->head = NULL;
    __atomic_store_n(&f->count, 0, __ATOMIC_RELAXED);
    while (p) {
      void *next = (void *)(uintptr_t)(*(uint64_t *)p ^ global_secret);
      release_block(span_of(p), p, false);
      p = next;
    }
  }
}

static void free_classified(void *p);

/* ---- large-block stash ---------------------------------------------------- */

static void large_note(struct arena *a, int64_t blocks, int64_t bytes, int64_t requested) {
  COUNT(a->counters.large_blocks, (uint64_t)blocks);
  COUNT(a->counters.large_bytes, (uint64_t)bytes);
  COUNT(a->counters.large_requested, (uint64_t)requested);
}

static void large_free(struct span *s) {
  struct arena *a = thread_arena;
  size_t bytes = (size_t)s->npages * PAGE_SIZE;
  if (a == &empty_arena || bytes > LARGE_STASH_BYTES || s->user != s->base) {
    backend_free_large(s);
    return;
  }
  backend_large_stash(s);
  large_note(a, -1, -(int64_t)bytes, -(int64_t)s->requested);
  while (a->large_stashed == LARGE_STASH || a->large_stash_bytes + bytes > LARGE_STASH_BYTES) {
    struct span *old = a->large_stash[0];
    a->large_stash_bytes -= (size_t)old->npages * PAGE_SIZE;
    memmove(a->large_stash, a->large_stash + 1, --a->large_stashed * sizeof(a->large_stash[0]));
    backend_free_stashed(old);
  }
  a->large_stash[a->large_stashed++] = s;
  a->large_stash_bytes += bytes;
}

static void large_stash_flush(struct arena *a);

/* A stashed run of at least the pages needed and at most a quarter more. On
 * a miss the program has moved on to other sizes: the stash goes back to the
 * back end, where its pages (written, so they take no fault) merge with their
 * neighbours and can serve this request, instead of staying resident unused
 * while the request faults in fresh pages. */
void *arena_large_from_stash(size_t size, bool zero) {
  struct arena *a = thread_arena;
  if (a == &empty_arena)
    return NULL; /* a thread without an arena has nothing to give, and
                    empty_arena, shared by all such threads, is not written */
  uint32_t need = (uint32_t)((size + PAGE_SIZE - 1) / PAGE_SIZE) + GUARD_PAGES;
  for (unsigned i = a->large_stashed; i-- > 0;) {
    struct span *s = a->large_stash[i];
    if (s->npages < need || s->npages > need + need / 4) continue;
    a->large_stash_bytes -= (size_t)s->npages * PAGE_SIZE;
    memmove(a->large_stash + i, a->large_stash + i + 1, (--a->large_stashed - i) * sizeof(a->large_stash[0]));
    large_note(a, 1, (int64_t)s->npages * (int64_t)PAGE_SIZE, (int64_t)size);
    return backend_large_unstash(s, size, zero);
  }
  large_stash_flush(a);
  /* The back end will take pages for this block: first the arena's empty
   * spans beyond ARENA_EMPTY_CACHE go back, as before a refill takes a span. */
  if (a->empty_bytes > ARENA_EMPTY_CACHE) release_empty_spans(a, ARENA_EMPTY_CACHE);
  return NULL;
}

static void large_stash_flush(struct arena *a) {
  while (a->large_stashed) backend_free_stashed(a->large_stash[--a->large_stashed]);
  a->large_stash_bytes = 0;
}

/* Gives the back end empty spans (from the tails of the partial lists) until
 * the arena keeps at most `keep` bytes of them. Returns whether it gave any. */
static bool release_empty_spans(struct arena *a, size_t keep) {
  bool any = false;
  for (unsigned c = 0; c < NUM_CLASSES && a->empty_bytes > keep; c++) {
    struct span_list *l = &a->partial[c];
    while (a->empty_bytes > keep && l->tail && span_out(l->tail) == 0) { /* empty spans sit at the tail */
      struct span *s = l->tail;
      span_list_remove(l, s);
      a->empty_bytes -= (size_t)s->npages * PAGE_SIZE;
      backend_free_span(s);
      any = true;
    }
  }
  return any;
}

/* Before the heap grows: gives the back end every empty span and stashed
 * large block this thread keeps, and each current span found empty by this
 * call and the one before (all of them when `all`: out of memory). Returns
 * whether there was any. Without this a program whose big blocks come and go
 * holds an empty span of each class it used, up to 256 KiB each (512 KiB
 * then): gcc's trace kept 6 MiB of them while the heap grew beside. A
 * current span is empty for a moment in a program that cycles through it (a
 * vector growing through the classes frees its last block just before it
 * takes the next), hence the second look. */
bool arena_trim(bool all) {
  struct arena *a = thread_arena;
  if (a == &empty_arena) return false;
  bool any = a->large_stashed != 0;
  foreign_flush(a);
  large_stash_flush(a);
  settle_filled(a);
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    struct span *s = a->current[c];
    bool empty = s != &empty_span && span_out(s) == 0;
    bool seen = a->idle[c] == s;
    a->idle[c] = empty ? s : NULL;
    if (!empty || !(seen || all)) continue;
    arena_set_current(a, c, &empty_span);
    span_set_bias(s, 0);
    backend_free_span(s);
    any = true;
  }
  return release_empty_spans(a, 0) || any;
}

noinline void free_slow(void *p) {
  if (!p) return;
  if (likely(!annotate_mode)) {
    free_classified(p);
    return;
  }
  annotate_enter();
  free_classified(p);
  annotate_leave();
}

static void free_classified(void *p) {
  uintptr_t u = (uintptr_t)p;
  uint8_t kind =
      (u >> ADDRESS_BITS) ? MAP_NONE : __atomic_load_n(&chunk_map[u >> CHUNK_SHIFT], __ATOMIC_ACQUIRE);
  if (map_is_chunk(kind)) {
    struct span *s = span_of(p);
    if (s->kind == SPAN_SMALL) {
      uint64_t off = u - (uintptr_t)s->base;
      /* The limit first: a page of a free run may map to a span that does
       * not hold it (see carve in backend.c), and off then lies past it.
       * An empty span of big blocks forgets them (span_relink), so a second
       * free of one of those lands here too. */
      if (off >= __atomic_load_n(&s->limit, __ATOMIC_RELAXED))
        report_invalid("invalid free (or double free): no block in use at", p);
      if (off * s->div_magic >= s->div_magic)
        report_invalid("invalid free: pointer inside a block, not its start:", p);
      free_small_checked(s, p);
      return;
    }
    if (s->kind == SPAN_LARGE && s->user == p) {
      if (unlikely(annotate_mode)) annotate_free(p, large_usable(s));
      large_free(s);
      return;
    }
    report_invalid("invalid free (or double free of a large block):", p);
  }
  if (kind == MAP_HUGE) {
    struct huge_header *h = huge_header_of(p);
    if (h) {
      if (unlikely(annotate_mode)) annotate_free(p, huge_usable(h));
      backend_free_huge(h);
      return;
    }
    report_invalid("invalid free (or double free of a huge block):", p);
  }
  report_invalid("invalid free: not a block libarena handed out:", p);
}

/* ---- thread exit --------------------------------------------------------- */

static void abandon_span(struct span *s) {
  set_owner(s, 0);
  __atomic_store_n(&s->arena, NULL, __ATOMIC_RELEASE);
  span_set_bias(s, 0);                 /* abandoned spans count plainly: used == blocks out */
  span_take_xfree(s, XFREE_ABANDONED); /* from now on frees take the abandoned lock */
  if (s->used == 0) {
    backend_free_span(s);
    return;
  }
  abandoned_insert(s);
  atomic_fetch_add_explicit(&stat_abandoned, 1, memory_order_relaxed);
}

static void abandon_list(struct span_list *l) {
  while (l->head) {
    struct span *s = l->head;
    span_list_remove(l, s);
    abandon_span(s);
  }
}

static void merge_counters(struct arena_counters *dst, const struct arena_counters *src) {
  for (unsigned c = 0; c < NUM_CLASSES; c++) COUNT(dst->refills[c], src->refills[c]);
  COUNT(dst->remote_frees, src->remote_frees);
  COUNT(dst->large_blocks, src->large_blocks);
  COUNT(dst->large_bytes, src->large_bytes);
  COUNT(dst->large_requested, src->large_requested);
}

static void arena_abandon(struct arena *a) {
  abandoned_lock();
  /* Closing the remote list first: from here on, frees into our spans take
   * the abandoned path, which waits for this lock. */
  outboxes_flush(a, true);
  uintptr_t head = atomic_exchange_explicit(&a->remote, REMOTE_CLOSED, memory_order_acquire);
  while (head) {
    void *p = (void *)head;
    head = (uintptr_t)(((uint64_t *)p)[0] ^ global_secret);
    remote_receive(a, p, true);
  }
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    struct span *s = a->current[c];
    arena_set_current(a, c, &empty_span);
    if (s != &empty_span) {
      abandon_span(s);
    }
    abandon_list(&a->partial[c]);
    abandon_list(&a->full[c]);
  }
  abandon_list(&a->filled);
  merge_counters(&dead_counters, &a->counters);
  abandoned_unlock();
}

static void arena_thread_exit(void *value) {
  struct arena *a = value;
  if (!a || a == &empty_arena) return;
#ifdef ARENA_SECURE
  quarantine_flush(a);
#endif
  foreign_flush(a); /* while the arena is ours: blocks of our own spans go straight to them */
  thread_arena = fast_arena = &empty_arena;
  thread_exiting = true;
  annotate_enter();
  large_stash_flush(a);
  arena_abandon(a);
  arena_release_struct(a);
  annotate_leave();
}

/* Walk of the abandoned lists for the checker and stats (lock taken here). */
void abandoned_each(void (*fn)(struct span *, void *), void *arg) {
  abandoned_lock();
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    for (struct span *s = abandoned_partial[c].head; s; s = s->next) fn(s, arg);
    for (struct span *s = abandoned_full[c].head; s; s = s->next) fn(s, arg);
  }
  abandoned_unlock();
}
