/* Statistics and the heap checker. Both are read paths: counters are kept by
 * their single writers (a thread's arena, the back end under its lock) and
 * merged here; span occupancy is read from the spans themselves, so nothing
 * on the fast paths exists for the sake of statistics. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* ---- gathering ----------------------------------------------------------- */

struct gather {
  struct arena_stats *st;
  uint64_t small_live_bytes;
  uint64_t large_blocks, large_bytes, large_requested; /* the arenas' stash deltas */
  uint64_t foreign_blocks[NUM_CLASSES];                /* free, though their spans count them out */
};

static void gather_large(struct gather *g, const struct arena_counters *k) {
  g->large_blocks += __atomic_load_n(&k->large_blocks, __ATOMIC_RELAXED);
  g->large_bytes += __atomic_load_n(&k->large_bytes, __ATOMIC_RELAXED);
  g->large_requested += __atomic_load_n(&k->large_requested, __ATOMIC_RELAXED);
}

static void gather_chunk(struct chunk *c, void *arg) {
  struct gather *g = arg;
  for (size_t i = FIRST_PAGE; i < END_PAGE;) {
    struct span *s = c->pagemap[i];
    if (s->npages == 0) break; /* inconsistent; arena_check reports it */
    if (s->kind == SPAN_SMALL) {
      struct arena_class_stats *cs = &g->st->classes[s->size_class];
      /* racy snapshot: the owner may be moving the bias this instant */
      int64_t out = (int32_t)__atomic_load_n(&s->used, __ATOMIC_RELAXED) +
                    (int64_t)__atomic_load_n(&s->bias, __ATOMIC_RELAXED);
      uint64_t used = out < 0 ? 0 : out > s->capacity ? s->capacity : (uint64_t)out;
      cs->spans++;
      cs->live_blocks += used;
      cs->capacity += s->capacity;
      g->small_live_bytes += used * s->block_size;
    }
    i += s->npages;
  }
  g->st->resident_bytes += os_resident(c, CHUNK_MAPPING);
}

static void gather_huge(struct huge_header *h, void *arg) {
  struct gather *g = arg;
  g->st->resident_bytes += os_resident(h, h->map_size);
}

static void gather_arena(struct arena *a, void *arg) {
  struct gather *g = arg;
  g->st->threads++;
  for (unsigned c = 0; c < NUM_CLASSES; c++)
    g->st->classes[c].mallocs += __atomic_load_n(&a->counters.refills[c], __ATOMIC_RELAXED);
  g->st->remote_frees += __atomic_load_n(&a->counters.remote_frees, __ATOMIC_RELAXED);
  gather_large(g, &a->counters);
  for (unsigned c = 0; c < NUM_CLASSES; c++)
    g->foreign_blocks[c] += __atomic_load_n(&a->foreign[c].count, __ATOMIC_RELAXED);
}

static uint64_t peak_requested_seen;

static int stats_get(struct arena_stats *st);

__attribute__((visibility("default"))) int arena_stats_get(struct arena_stats *st) {
  annotate_enter();
  int r = stats_get(st);
  annotate_leave();
  return r;
}

static int stats_get(struct arena_stats *st) {
  if (!st || st->version != ARENA_STATS_VERSION || st->size != sizeof(*st)) return EINVAL;
  if (init_state != 2) global_init();
  memset((char *)st + 8, 0, sizeof(*st) - 8);
  struct gather g = {st, 0, 0, 0, 0, {0}};
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    st->classes[c].block_size = classes[c].block_size;
    st->classes[c].mallocs = __atomic_load_n(&dead_counters.refills[c], __ATOMIC_RELAXED);
  }
  st->remote_frees =
      __atomic_load_n(&dead_counters.remote_frees, __ATOMIC_RELAXED) + atomic_load(&stat_remote_orphan);
  gather_large(&g, &dead_counters);
  arena_each_live(gather_arena, &g);

  backend_lock();
  struct backend_stats b = backend_stats;
  backend_each_chunk(gather_chunk, &g);
  backend_each_huge(gather_huge, &g);
  uint64_t cached_huge = backend_cached_huge_bytes();
  backend_unlock();
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    struct arena_class_stats *cs = &st->classes[c];
    uint64_t n = g.foreign_blocks[c] < cs->live_blocks ? g.foreign_blocks[c] : cs->live_blocks;
    cs->live_blocks -= n;
    g.small_live_bytes -= n * classes[c].block_size;
  }

  uint64_t large_live = atomic_load_explicit(&large_bytes, memory_order_relaxed) + g.large_bytes;
  st->allocated_bytes = g.small_live_bytes + large_live + b.huge_bytes;
  st->requested_bytes = g.small_live_bytes + atomic_load_explicit(&large_requested, memory_order_relaxed) +
                        g.large_requested + b.huge_requested;
  st->peak_allocated_bytes = b.peak_active;
  if (st->requested_bytes > peak_requested_seen) peak_requested_seen = st->requested_bytes;
  st->peak_requested_bytes = peak_requested_seen;
  st->mapped_bytes = b.mapped;
  st->peak_mapped_bytes = b.peak_mapped;
  (void)cached_huge;
  st->chunks = b.chunks;
  st->cached_chunks = b.cached_chunks;
  st->huge_blocks = b.huge_blocks;
  st->huge_bytes = b.huge_bytes;
  st->large_blocks = atomic_load_explicit(&large_blocks, memory_order_relaxed) + g.large_blocks;
  st->large_bytes = large_live;
  st->hugepage_bytes = b.hugepage_bytes;
  st->hugetlb_fallbacks = b.hugetlb_fallbacks;
  st->abandoned_spans = atomic_load(&stat_abandoned);
  st->reclaimed_spans = atomic_load(&stat_reclaimed);
  st->os_maps = b.os_maps;
  st->os_unmaps = b.os_unmaps;
  st->thread_generations = atomic_load(&stat_generations);
  return 0;
}

/* ---- printing ------------------------------------------------------------ */

struct field {
  const char *name;
  size_t offset;
};
#define FIELD(f)                                                                                             \
  { #f, offsetof(struct arena_stats, f) }
static const struct field fields[] = {
    FIELD(allocated_bytes),   FIELD(peak_allocated_bytes),
    FIELD(requested_bytes),   FIELD(peak_requested_bytes),
    FIELD(mapped_bytes),      FIELD(peak_mapped_bytes),
    FIELD(resident_bytes),    FIELD(chunks),
    FIELD(cached_chunks),     FIELD(huge_blocks),
    FIELD(huge_bytes),        FIELD(large_blocks),
    FIELD(large_bytes),       FIELD(hugepage_bytes),
    FIELD(hugetlb_fallbacks), FIELD(remote_frees),
    FIELD(abandoned_spans),   FIELD(reclaimed_spans),
    FIELD(os_maps),           FIELD(os_unmaps),
    FIELD(threads),           FIELD(thread_generations),
};

static void stderr_sink(void *arg, const char *s, size_t n) {
  (void)arg;
  write_all(2, s, n);
}

__attribute__((visibility("default"))) void arena_stats_print(void (*write_cb)(void *, const char *, size_t),
                                                              void *cbarg, enum arena_stats_format format) {
  struct arena_stats st = {.version = ARENA_STATS_VERSION, .size = sizeof(st)};
  arena_stats_get(&st);
  struct text t = {.len = 0, .flush = write_cb ? write_cb : stderr_sink, .arg = cbarg};
  bool json = format == ARENA_STATS_JSON;
  text_str(&t, json ? "{\"libarena\": \"" ARENA_VERSION_STRING "\""
                    : "libarena stats (" ARENA_VERSION_STRING ")\n");
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    text_str(&t, json ? ", \"" : "  ");
    text_str(&t, fields[i].name);
    text_str(&t, json ? "\": " : " ");
    text_u64(&t, *(const uint64_t *)((const char *)&st + fields[i].offset));
    if (!json) text_str(&t, "\n");
  }
  text_str(&t, json ? ", \"classes\": [" : "  class block_size spans live_blocks capacity refills\n");
  bool first = true;
  for (unsigned c = 0; c < NUM_CLASSES; c++) {
    const struct arena_class_stats *cs = &st.classes[c];
    if (cs->spans == 0 && cs->mallocs == 0) continue;
    const uint64_t v[] = {c, cs->block_size, cs->spans, cs->live_blocks, cs->capacity, cs->mallocs};
    static const char *const names[] = {"class", "block_size", "spans", "live_blocks", "capacity", "refills"};
    text_str(&t, json ? (first ? "{" : ", {") : "  ");
    for (int k = 0; k < 6; k++) {
      if (json) {
        text_str(&t, k ? ", \"" : "\"");
        text_str(&t, names[k]);
        text_str(&t, "\": ");
      } else if (k) {
        text_str(&t, " ");
      }
      text_u64(&t, v[k]);
    }
    text_str(&t, json ? "}" : "\n");
    first = false;
  }
  text_str(&t, json ? "]}\n" : "");
  text_flush(&t);
}
