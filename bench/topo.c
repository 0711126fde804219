/* hwloc topology and thread pinning; see topo.h. */
#include "topo.h"

#include <hwloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static hwloc_topology_t topology;
static int loaded;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int topo_init(void) {
  pthread_mutex_lock(&lock);
  if (!loaded && hwloc_topology_init(&topology) == 0) {
    if (hwloc_topology_load(topology) == 0)
      loaded = 1;
    else
      hwloc_topology_destroy(topology);
  }
  pthread_mutex_unlock(&lock);
  return loaded ? 0 : -1;
}

static int count(hwloc_obj_type_t t) {
  if (!loaded) return 0;
  int n = hwloc_get_nbobjs_by_type(topology, t);
  return n < 0 ? 0 : n;
}

int topo_cores(void) {
  int n = count(HWLOC_OBJ_CORE);
  return n > 0 ? n : 1;
}

void topo_describe_json(char *buf, size_t len) {
  if (topo_init() != 0) {
    snprintf(buf, len, "{\"error\":\"hwloc topology unavailable\"}");
    return;
  }
  static const struct {
    hwloc_obj_type_t type;
    const char *name;
  } caches[] = {{HWLOC_OBJ_L1CACHE, "l1d"}, {HWLOC_OBJ_L2CACHE, "l2"}, {HWLOC_OBJ_L3CACHE, "l3"}};
  int n = snprintf(buf, len, "{\"packages\":%d,\"cores\":%d,\"pus\":%d,\"numa_nodes\":%d",
                   count(HWLOC_OBJ_PACKAGE), count(HWLOC_OBJ_CORE), count(HWLOC_OBJ_PU),
                   count(HWLOC_OBJ_NUMANODE));
  for (size_t i = 0; i < sizeof caches / sizeof caches[0] && n > 0 && (size_t)n < len; i++) {
    hwloc_obj_t o = hwloc_get_obj_by_type(topology, caches[i].type, 0);
    unsigned long long size = o && o->attr ? (unsigned long long)o->attr->cache.size : 0;
    n += snprintf(buf + n, len - (size_t)n, ",\"%s_count\":%d,\"%s_bytes\":%llu", caches[i].name,
                  count(caches[i].type), caches[i].name, size);
  }
  hwloc_obj_t pkg = hwloc_get_obj_by_type(topology, HWLOC_OBJ_PACKAGE, 0);
  const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
  if (n > 0 && (size_t)n < len) {
    n += snprintf(buf + n, len - (size_t)n, ",\"cpu_model\":\"");
    for (const char *c = model ? model : "unknown"; *c && (size_t)n + 3 < len; c++)
      if (*c != '"' && *c != '\\') buf[n++] = *c;
    snprintf(buf + n, len - (size_t)n, "\"}");
  }
}

int topo_pin(int index) {
  if (topo_init() != 0) return -1;
  int cores = topo_cores();
  hwloc_obj_t core = hwloc_get_obj_by_type(topology, HWLOC_OBJ_CORE, (unsigned)(index % cores));
  if (!core || !core->cpuset) return -1;
  hwloc_bitmap_t set = hwloc_bitmap_dup(core->cpuset);
  hwloc_bitmap_singlify(set); /* one PU of the core: no migration between siblings */
  int rc = hwloc_set_cpubind(topology, set, HWLOC_CPUBIND_THREAD);
  hwloc_bitmap_free(set);
  return rc;
}
