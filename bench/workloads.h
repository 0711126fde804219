/* Registration functions of the workloads, one file each (wl_*.c). */
#ifndef BENCH_WORKLOADS_H
#define BENCH_WORKLOADS_H

#include "shim.h"

void wl_fixed_register(void);
void wl_churn_register(void);
void wl_prodcons_register(void);
void wl_server_register(void);
void wl_threadchurn_register(void);
void wl_realloc_register(void);
void wl_large_register(void);
void wl_falseshare_register(void);
void wl_trace_register(void);
void wl_tlb_register(void);

/* Fill spec->threads with the configured thread counts that are >= min_threads
 * (and even when even is set); when none qualifies, min_threads itself. */
void wl_set_threads(struct shim_spec *spec, int min_threads, int even);

#endif /* BENCH_WORKLOADS_H */
