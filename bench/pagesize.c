/* Page size per address from pagemap + kpageflags, or smaps; see pagesize.h. */
#include "pagesize.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PM_PRESENT (1ull << 63)
#define PM_PFN_MASK ((1ull << 55) - 1)
#define KPF_HUGE 17
#define KPF_THP 22
#define REGION_PAGES 512

void pagesize_open(struct pagesize_resolver *r) {
  memset(r, 0, sizeof(*r));
  r->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  r->kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  r->epoch = 1;
  if (r->pagemap_fd >= 0 && r->kpageflags_fd >= 0) {
    /* An unprivileged reader gets zero frame numbers: kpageflags is useless. */
    uint64_t e = 0;
    uint64_t probe = (uint64_t)(uintptr_t)&e;
    if (pread(r->pagemap_fd, &e, 8, (off_t)(probe >> 12) * 8) == 8 && (e & PM_PFN_MASK) != 0) {
      r->source = PAGESIZE_KPAGEFLAGS;
      return;
    }
  }
  if (r->kpageflags_fd >= 0) close(r->kpageflags_fd);
  r->kpageflags_fd = -1;
  FILE *f = fopen("/proc/self/smaps", "r");
  r->source = f ? PAGESIZE_SMAPS : PAGESIZE_NONE;
  if (f) fclose(f);
}

void pagesize_close(struct pagesize_resolver *r) {
  if (r->pagemap_fd >= 0) close(r->pagemap_fd);
  if (r->kpageflags_fd >= 0) close(r->kpageflags_fd);
  free(r->ranges);
  memset(r, 0, sizeof(*r));
}

void pagesize_new_epoch(struct pagesize_resolver *r) {
  r->epoch++;
  r->ranges_epoch_valid = 0;
}

const char *pagesize_source_name(enum pagesize_source s) {
  switch (s) {
  case PAGESIZE_KPAGEFLAGS: return "pagemap+kpageflags";
  case PAGESIZE_SMAPS: return "smaps";
  default: return "none";
  }
}

/* All 512 entries of the region present? Fills pfns when asked. */
static int region_present(struct pagesize_resolver *r, uint64_t region, uint64_t *entries) {
  if (r->pagemap_fd < 0) return 0;
  off_t off = (off_t)(region * REGION_PAGES) * 8;
  if (pread(r->pagemap_fd, entries, REGION_PAGES * 8, off) != REGION_PAGES * 8) return 0;
  for (int i = 0; i < REGION_PAGES; i++)
    if (!(entries[i] & PM_PRESENT)) return 0;
  return 1;
}

static unsigned resolve_kpageflags(struct pagesize_resolver *r, uint64_t region) {
  uint64_t e[REGION_PAGES];
  if (!region_present(r, region, e)) return 12;
  uint64_t pfn0 = e[0] & PM_PFN_MASK;
  if (pfn0 % REGION_PAGES != 0) return 12;
  for (int i = 1; i < REGION_PAGES; i++)
    if ((e[i] & PM_PFN_MASK) != pfn0 + (uint64_t)i) return 12;
  uint64_t flags = 0;
  if (pread(r->kpageflags_fd, &flags, 8, (off_t)pfn0 * 8) != 8) return 12;
  return (flags & (1ull << KPF_THP | 1ull << KPF_HUGE)) ? 21 : 12;
}

static void load_smaps(struct pagesize_resolver *r) {
  free(r->ranges);
  r->ranges = NULL;
  r->nranges = 0;
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return;
  char line[512];
  int cap = 0;
  uint64_t start = 0, end = 0, rss = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long long a, b, kb;
    if (sscanf(line, "%llx-%llx ", &a, &b) == 2 && strchr(line, ' ') > strchr(line, '-')) {
      start = a, end = b, rss = 0;
    } else if (sscanf(line, "Rss: %llu kB", &kb) == 1) {
      rss = kb;
    } else if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1 && kb > 0 && kb * 2 >= rss) {
      if (r->nranges == cap) {
        cap = cap ? cap * 2 : 64;
        struct smaps_range *n = realloc(r->ranges, sizeof(*n) * (size_t)cap);
        if (!n) break;
        r->ranges = n;
      }
      r->ranges[r->nranges++] = (struct smaps_range){start, end, 1};
    }
  }
  fclose(f);
}

static unsigned resolve_smaps(struct pagesize_resolver *r, uint64_t region) {
  if (!r->ranges_epoch_valid) {
    load_smaps(r);
    r->ranges_epoch_valid = 1;
  }
  uint64_t lo = region << 21, hi = lo + (2u << 20);
  for (int i = 0; i < r->nranges; i++) {
    if (r->ranges[i].start <= lo && hi <= r->ranges[i].end) {
      uint64_t e[REGION_PAGES];
      return region_present(r, region, e) ? 21 : 12;
    }
  }
  return 12;
}

unsigned pagesize_shift(struct pagesize_resolver *r, uint64_t addr) {
  uint64_t region = addr >> 21;
  unsigned slot = (unsigned)(region % PAGESIZE_CACHE);
  if (r->cache[slot].epoch == r->epoch && r->cache[slot].region == region) return r->cache[slot].shift;
  unsigned shift = 12;
  if (r->source == PAGESIZE_KPAGEFLAGS)
    shift = resolve_kpageflags(r, region);
  else if (r->source == PAGESIZE_SMAPS)
    shift = resolve_smaps(r, region);
  r->cache[slot].region = region;
  r->cache[slot].epoch = r->epoch;
  r->cache[slot].shift = shift;
  return shift;
}
