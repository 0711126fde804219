/* Machine topology through hwloc: recorded in every result, and used to pin
 * worker threads one per core. */
#ifndef BENCH_TOPO_H
#define BENCH_TOPO_H

#include <stddef.h>

/* Loads the topology once; later calls do nothing. Returns 0 or -1. */
int topo_init(void);
int topo_cores(void);
/* JSON object describing packages, cores, PUs, caches and NUMA nodes. */
void topo_describe_json(char *buf, size_t len);
/* Binds the calling thread to core index % cores. Returns 0 or -1. */
int topo_pin(int index);

#endif /* BENCH_TOPO_H */
