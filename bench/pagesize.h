/* Which page size backs an address: 4 KiB or a 2 MiB transparent huge page.
 *
 * With /proc/self/pagemap and /proc/kpageflags readable (root), the answer is
 * exact per 2 MiB region: the region is huge when its 512 pages are present,
 * physically contiguous from a 2 MiB-aligned frame and flagged KPF_THP (or
 * KPF_HUGE). Without kpageflags the answer is an estimate from /proc/self/smaps:
 * a fully present region inside a mapping whose AnonHugePages cover at least
 * half of its Rss counts as huge. The cache is per epoch: a new epoch forgets
 * every answer, because pages are collapsed, split and unmapped over time.
 */
#ifndef BENCH_PAGESIZE_H
#define BENCH_PAGESIZE_H

#include <stdint.h>

enum pagesize_source { PAGESIZE_KPAGEFLAGS, PAGESIZE_SMAPS, PAGESIZE_NONE };

#define PAGESIZE_CACHE 1024

struct smaps_range {
  uint64_t start, end;
  int mostly_huge;
};

struct pagesize_resolver {
  enum pagesize_source source;
  int pagemap_fd, kpageflags_fd;
  uint64_t epoch;
  struct {
    uint64_t region; /* addr >> 21 */
    uint64_t epoch;
    unsigned shift;
  } cache[PAGESIZE_CACHE];
  struct smaps_range *ranges; /* smaps source only, refreshed each epoch */
  int nranges, ranges_epoch_valid;
};

void pagesize_open(struct pagesize_resolver *r);
void pagesize_close(struct pagesize_resolver *r);
void pagesize_new_epoch(struct pagesize_resolver *r);
/* 12 or 21. */
unsigned pagesize_shift(struct pagesize_resolver *r, uint64_t addr);
const char *pagesize_source_name(enum pagesize_source s);

#endif /* BENCH_PAGESIZE_H */
