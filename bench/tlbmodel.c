/* Set-associative TLB model; see tlbmodel.h. */
#include "tlbmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct tlb_config tlb_default_config = {
    .l1_4k = {64, 4},
    .l1_2m = {32, 4},
    .l2 = {1536, 12},
};

static int geometry_ok(const struct tlb_geometry *g) {
  if (g->entries == 0) return 1;
  return g->ways > 0 && g->entries % g->ways == 0;
}

int tlb_config_parse(struct tlb_config *cfg, const char *text) {
  struct tlb_config c = *cfg;
  const char *p = text;
  while (p && *p) {
    char name[8];
    unsigned entries, ways;
    int used = 0;
    if (sscanf(p, "%7[a-z0-9_]=%u:%u%n", name, &entries, &ways, &used) != 3) return -1;
    struct tlb_geometry g = {entries, ways};
    if (strcmp(name, "l1_4k") == 0)
      c.l1_4k = g;
    else if (strcmp(name, "l1_2m") == 0)
      c.l1_2m = g;
    else if (strcmp(name, "l2") == 0)
      c.l2 = g;
    else
      return -1;
    p += used;
    if (*p == ',')
      p++;
    else if (*p)
      return -1;
  }
  if (!geometry_ok(&c.l1_4k) || !geometry_ok(&c.l1_2m) || !geometry_ok(&c.l2)) return -1;
  *cfg = c;
  return 0;
}

static int array_init(struct tlb_array *a, const struct tlb_geometry *g) {
  memset(a, 0, sizeof(*a));
  if (g->entries == 0) return 0;
  a->ways = g->ways;
  a->sets = g->entries / g->ways;
  a->tag = malloc(sizeof(uint64_t) * g->entries);
  a->used = malloc(sizeof(uint64_t) * g->entries);
  return a->tag && a->used ? 0 : -1;
}

static void array_clear(struct tlb_array *a) {
  unsigned n = a->sets * a->ways;
  for (unsigned i = 0; i < n; i++) {
    a->tag[i] = ~0ull;
    a->used[i] = 0;
  }
}

int tlb_model_init(struct tlb_model *m, const struct tlb_config *cfg) {
  memset(m, 0, sizeof(*m));
  if (!geometry_ok(&cfg->l1_4k) || !geometry_ok(&cfg->l1_2m) || !geometry_ok(&cfg->l2)) return -1;
  if (array_init(&m->l1_4k, &cfg->l1_4k) || array_init(&m->l1_2m, &cfg->l1_2m) ||
      array_init(&m->l2, &cfg->l2)) {
    tlb_model_free(m);
    return -1;
  }
  tlb_model_reset(m);
  return 0;
}

void tlb_model_free(struct tlb_model *m) {
  free(m->l1_4k.tag), free(m->l1_4k.used);
  free(m->l1_2m.tag), free(m->l1_2m.used);
  free(m->l2.tag), free(m->l2.used);
  memset(m, 0, sizeof(*m));
}

void tlb_model_reset(struct tlb_model *m) {
  if (m->l1_4k.sets) array_clear(&m->l1_4k);
  if (m->l1_2m.sets) array_clear(&m->l1_2m);
  if (m->l2.sets) array_clear(&m->l2);
  m->clock = 0;
  m->accesses = m->lookups = m->l1_misses = m->walks = m->huge_accesses = 0;
}

/* Looks tag up in its set; on a miss the least recently used way is refilled.
 * Returns 1 on a hit. An array with no sets always misses. */
static int array_lookup(struct tlb_array *a, uint64_t vpn, uint64_t tag, uint64_t now) {
  if (a->sets == 0) return 0;
  unsigned set = (unsigned)(vpn % a->sets);
  uint64_t *t = a->tag + (size_t)set * a->ways;
  uint64_t *u = a->used + (size_t)set * a->ways;
  unsigned victim = 0;
  for (unsigned w = 0; w < a->ways; w++) {
    if (t[w] == tag) {
      u[w] = now;
      return 1;
    }
    if (u[w] < u[victim]) victim = w;
  }
  t[victim] = tag;
  u[victim] = now;
  return 0;
}

void tlb_model_access(struct tlb_model *m, uint64_t addr, unsigned page_shift, uint64_t count) {
  if (count == 0) return;
  int huge = page_shift >= 21;
  uint64_t vpn = addr >> page_shift;
  uint64_t tag = vpn << 1 | (uint64_t)huge; /* the STLB holds both sizes: tag them apart */
  m->accesses += count;
  m->lookups++;
  if (huge) m->huge_accesses += count;
  uint64_t now = ++m->clock;
  if (array_lookup(huge ? &m->l1_2m : &m->l1_4k, vpn, tag, now)) return;
  m->l1_misses++;
  if (array_lookup(&m->l2, vpn, tag, now)) return;
  m->walks++;
}
