/* perf_event_open counters; see perfctr.h. */
#include "perfctr.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *const perfctr_names[PERFCTR_N] = {
    "dtlb_load_misses", "dtlb_store_misses", "itlb_misses", "page_faults", "cycles", "instructions",
};

static void event_attr(enum perfctr_event e, struct perf_event_attr *a) {
  memset(a, 0, sizeof(*a));
  a->size = sizeof(*a);
  a->disabled = 1;
  a->inherit = 1;
  a->exclude_hv = 1;
  a->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  const uint64_t miss = (uint64_t)PERF_COUNT_HW_CACHE_RESULT_MISS << 16;
  switch (e) {
  case PERFCTR_DTLB_LOAD_MISSES:
    a->type = PERF_TYPE_HW_CACHE;
    a->config = PERF_COUNT_HW_CACHE_DTLB | (uint64_t)PERF_COUNT_HW_CACHE_OP_READ << 8 | miss;
    break;
  case PERFCTR_DTLB_STORE_MISSES:
    a->type = PERF_TYPE_HW_CACHE;
    a->config = PERF_COUNT_HW_CACHE_DTLB | (uint64_t)PERF_COUNT_HW_CACHE_OP_WRITE << 8 | miss;
    break;
  case PERFCTR_ITLB_MISSES:
    a->type = PERF_TYPE_HW_CACHE;
    a->config = PERF_COUNT_HW_CACHE_ITLB | (uint64_t)PERF_COUNT_HW_CACHE_OP_READ << 8 | miss;
    break;
  case PERFCTR_PAGE_FAULTS:
    a->type = PERF_TYPE_SOFTWARE;
    a->config = PERF_COUNT_SW_PAGE_FAULTS;
    break;
  case PERFCTR_CYCLES:
    a->type = PERF_TYPE_HARDWARE;
    a->config = PERF_COUNT_HW_CPU_CYCLES;
    break;
  default:
    a->type = PERF_TYPE_HARDWARE;
    a->config = PERF_COUNT_HW_INSTRUCTIONS;
    break;
  }
}

void perfctr_open(struct perfctr *p) {
  p->user_only = 0;
  for (int e = 0; e < PERFCTR_N; e++) {
    struct perf_event_attr a;
    event_attr((enum perfctr_event)e, &a);
    p->fd[e] = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (p->fd[e] < 0 && (errno == EACCES || errno == EPERM)) {
      /* perf_event_paranoid >= 2 lets unprivileged users count user space
       * only: count that, and say so. */
      a.exclude_kernel = 1;
      p->fd[e] = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
      if (p->fd[e] >= 0) p->user_only = 1;
    }
    p->error[e] = p->fd[e] < 0 ? errno : 0;
    p->value[e] = 0;
    p->counted[e] = 0;
  }
}

void perfctr_start(struct perfctr *p) {
  for (int e = 0; e < PERFCTR_N; e++) {
    if (p->fd[e] < 0) continue;
    ioctl(p->fd[e], PERF_EVENT_IOC_RESET, 0);
    ioctl(p->fd[e], PERF_EVENT_IOC_ENABLE, 0);
  }
}

void perfctr_stop(struct perfctr *p) {
  for (int e = 0; e < PERFCTR_N; e++) {
    if (p->fd[e] < 0) continue;
    ioctl(p->fd[e], PERF_EVENT_IOC_DISABLE, 0);
    uint64_t v[3];
    p->counted[e] = 0;
    /* value, time enabled, time running: scale when the PMU was multiplexed;
     * an event that never ran was not counted, which is not the same as 0. */
    if (read(p->fd[e], v, sizeof v) == (ssize_t)sizeof v && v[2] > 0) {
      p->value[e] = (double)v[0] * ((double)v[1] / (double)v[2]);
      p->counted[e] = 1;
    }
  }
}

void perfctr_close(struct perfctr *p) {
  for (int e = 0; e < PERFCTR_N; e++) {
    if (p->fd[e] >= 0) close(p->fd[e]);
    p->fd[e] = -1;
  }
}
