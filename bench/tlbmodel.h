/* A set-associative TLB model: per-core L1 dTLBs for 4 KiB and 2 MiB pages and
 * a shared second-level TLB (STLB) holding both sizes, all with true LRU.
 *
 * It exists because most virtual machines, this suite's usual home, expose no
 * TLB miss counters. Fed with the addresses a workload touches and the page
 * size really backing each, it estimates the misses a current x86 core would
 * take. It does not see the allocator's own metadata accesses, page-walk
 * caches or prefetching; docs/benchmarks.md states these limits.
 */
#ifndef BENCH_TLBMODEL_H
#define BENCH_TLBMODEL_H

#include <stdint.h>

struct tlb_geometry {
  unsigned entries; /* total entries; 0 disables this array */
  unsigned ways;    /* associativity; entries must be a multiple of it */
};

/* Defaults describe a recent Intel core (Golden Cove / Raptor Lake P-core):
 * L1 dTLB 64 entries 4-way for 4 KiB, 32 entries 4-way for 2 MiB, STLB 1536
 * entries 12-way shared by both sizes. */
struct tlb_config {
  struct tlb_geometry l1_4k;
  struct tlb_geometry l1_2m;
  struct tlb_geometry l2;
};
extern const struct tlb_config tlb_default_config;

/* Parses "l1_4k=64:4,l1_2m=32:4,l2=1536:12" (any subset) over *cfg.
 * Returns 0, or -1 for a malformed string or a geometry that is not
 * entries = sets * ways. */
int tlb_config_parse(struct tlb_config *cfg, const char *text);

struct tlb_array {
  unsigned sets, ways;
  uint64_t *tag;  /* sets*ways tags: virtual page number << 1 | size bit, ~0 = empty */
  uint64_t *used; /* sets*ways last-use stamps for LRU */
};

struct tlb_model {
  struct tlb_array l1_4k, l1_2m, l2;
  uint64_t clock;
  uint64_t accesses;      /* every access, including the repeated ones */
  uint64_t lookups;       /* accesses that were looked up (first in a run of one page) */
  uint64_t l1_misses;     /* missed the L1 dTLB of their page size */
  uint64_t walks;         /* missed the STLB too: a page walk */
  uint64_t huge_accesses; /* accesses to 2 MiB pages */
};

/* Returns 0, or -1 when the configuration is invalid or memory is short. */
int tlb_model_init(struct tlb_model *m, const struct tlb_config *cfg);
void tlb_model_free(struct tlb_model *m);
/* Empties every array and zeroes the statistics. */
void tlb_model_reset(struct tlb_model *m);
/* count accesses in a row to the page holding addr (page_shift 12 or 21):
 * one lookup, then count-1 hits, which is what a real TLB gives for repeated
 * accesses to the page it has just translated. */
void tlb_model_access(struct tlb_model *m, uint64_t addr, unsigned page_shift, uint64_t count);

#endif /* BENCH_TLBMODEL_H */
