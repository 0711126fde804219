/* Process-wide memory accounting for peak utilization and RSS.
 *
 * Workloads report the payload bytes they hold (mem_live_add, one padded slot
 * per thread so that counting costs no shared cache line). mem_sample() reads
 * /proc/self/statm and records the maxima of live payload, of resident
 * anonymous memory grown since mem_init() ("heap") and of mapped memory grown
 * since then. Peak utilization is the CS:APP one: max live / heap high-water.
 * mem_init() also resets VmHWM (clear_refs 5) so that the kernel's own peak
 * RSS catches the peaks between samples.
 */
#ifndef BENCH_MEMSTAT_H
#define BENCH_MEMSTAT_H

#include <stdatomic.h>
#include <stdint.h>

#define MEM_SLOTS 256

struct mem_slot {
  _Atomic int64_t live;
  char pad[64 - sizeof(int64_t)];
};
extern struct mem_slot mem_slots[MEM_SLOTS];

/* Only the thread owning the slot writes it; the sampler only reads. */
static inline void mem_live_add(unsigned slot, int64_t delta) {
  _Atomic int64_t *v = &mem_slots[slot % MEM_SLOTS].live;
  atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + delta, memory_order_relaxed);
}

struct mem_report {
  uint64_t live_peak;   /* bytes requested and not yet freed, maximum seen */
  uint64_t heap_peak;   /* max(resident anonymous growth sampled, VmHWM - RSS at start) */
  uint64_t mapped_peak; /* maximum growth of the mapped address space */
  uint64_t rss_peak;    /* VmHWM: peak resident set of the process, bytes */
  uint64_t rss_anon;    /* RssAnon now */
  uint64_t anon_huge;   /* AnonHugePages now */
  uint64_t samples;
};

/* Takes the baseline: call it when set-up is done, right before the work
 * to be measured. Calling it again takes a new baseline. */
void mem_init(void);
void mem_sample(void);
void mem_report(struct mem_report *r);
/* Forget every maximum (between independent benchmarks in one process). */
void mem_reset_peaks(void);
/* live_peak / heap_peak, or -1 when the heap did not grow measurably. */
double mem_utilization(uint64_t live_peak, uint64_t heap_peak);

#endif /* BENCH_MEMSTAT_H */
