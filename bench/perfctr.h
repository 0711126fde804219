/* Hardware and software counters of the calling thread through
 * perf_event_open(2), opened one event at a time so that an event the machine
 * lacks (no PMU in most VMs) is recorded as unsupported while the rest still
 * count. Events are opened with inherit set, so threads the workload creates
 * after perfctr_open() are counted too once they exit.
 */
#ifndef BENCH_PERFCTR_H
#define BENCH_PERFCTR_H

#include <stdint.h>

enum perfctr_event {
  PERFCTR_DTLB_LOAD_MISSES,
  PERFCTR_DTLB_STORE_MISSES,
  PERFCTR_ITLB_MISSES,
  PERFCTR_PAGE_FAULTS,
  PERFCTR_CYCLES,
  PERFCTR_INSTRUCTIONS,
  PERFCTR_N
};

/* Counter names as they appear in the benchmark JSON (prefixed "perf_"). */
extern const char *const perfctr_names[PERFCTR_N];

struct perfctr {
  int fd[PERFCTR_N];       /* -1 when the event could not be opened */
  int error[PERFCTR_N];    /* errno of the failed open, 0 when open */
  double value[PERFCTR_N]; /* scaled count of the last start/stop interval */
  int counted[PERFCTR_N];  /* 1 when value is valid (the event ran) */
  int user_only;           /* some events count user space only (perf_event_paranoid) */
};

void perfctr_open(struct perfctr *p);
void perfctr_start(struct perfctr *p);
void perfctr_stop(struct perfctr *p);
void perfctr_close(struct perfctr *p);

#endif /* BENCH_PERFCTR_H */
