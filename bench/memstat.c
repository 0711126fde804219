/* Memory accounting from /proc/self; see memstat.h. */
#include "memstat.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mem_slot mem_slots[MEM_SLOTS];

static int statm_fd = -1;
static long page_size;
static uint64_t start_anon, start_mapped, start_rss, start_shared;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t peak_live, peak_anon, peak_mapped, nsamples;

/* statm: size resident shared text lib data dt, in pages. Anonymous resident
 * memory is resident minus shared (file-backed and shmem) pages. */
static int read_statm_shared(uint64_t *mapped, uint64_t *anon, uint64_t *rss, uint64_t *shared_out) {
  char buf[256];
  ssize_t n = pread(statm_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = 0;
  unsigned long long size, resident, shared;
  if (sscanf(buf, "%llu %llu %llu", &size, &resident, &shared) != 3) return -1;
  *mapped = size * (uint64_t)page_size;
  *anon = (resident - shared) * (uint64_t)page_size;
  *rss = resident * (uint64_t)page_size;
  if (shared_out) *shared_out = shared * (uint64_t)page_size;
  return 0;
}

static int read_statm(uint64_t *mapped, uint64_t *anon, uint64_t *rss) {
  return read_statm_shared(mapped, anon, rss, NULL);
}

/* A "Key:   N kB" line of a /proc file, in bytes; 0 when absent. */
static uint64_t proc_kb(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[256];
  size_t klen = strlen(key);
  uint64_t v = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      v = strtoull(line + klen + 1, NULL, 10) * 1024;
      break;
    }
  }
  fclose(f);
  return v;
}

void mem_init(void) {
  page_size = sysconf(_SC_PAGESIZE);
  if (statm_fd < 0) statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  uint64_t rss;
  if (read_statm_shared(&start_mapped, &start_anon, &rss, &start_shared) != 0)
    start_mapped = start_anon = start_shared = 0;
  /* Reset VmHWM to the current RSS (Linux 4.0+); without it VmHWM would
   * include whatever start-up touched. */
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "5", 1) != 1) { /* old kernel: VmHWM then covers start-up too */
    }
    close(fd);
  }
  start_rss = proc_kb("/proc/self/status", "VmRSS");
  mem_reset_peaks();
}

static uint64_t live_now(void) {
  int64_t sum = 0;
  for (int i = 0; i < MEM_SLOTS; i++) sum += atomic_load_explicit(&mem_slots[i].live, memory_order_relaxed);
  return sum > 0 ? (uint64_t)sum : 0;
}

void mem_sample(void) {
  uint64_t mapped, anon, rss;
  if (statm_fd < 0 || read_statm(&mapped, &anon, &rss) != 0) return;
  uint64_t live = live_now();
  pthread_mutex_lock(&lock);
  if (live > peak_live) peak_live = live;
  if (anon > start_anon && anon - start_anon > peak_anon) peak_anon = anon - start_anon;
  if (mapped > start_mapped && mapped - start_mapped > peak_mapped) peak_mapped = mapped - start_mapped;
  nsamples++;
  pthread_mutex_unlock(&lock);
}

void mem_reset_peaks(void) {
  pthread_mutex_lock(&lock);
  peak_live = peak_anon = peak_mapped = nsamples = 0;
  pthread_mutex_unlock(&lock);
}

void mem_report(struct mem_report *r) {
  mem_sample();
  memset(r, 0, sizeof(*r));
  r->rss_peak = proc_kb("/proc/self/status", "VmHWM");
  r->rss_anon = proc_kb("/proc/self/status", "RssAnon");
  r->anon_huge = proc_kb("/proc/self/smaps_rollup", "AnonHugePages");
  pthread_mutex_lock(&lock);
  r->live_peak = peak_live;
  r->heap_peak = peak_anon;
  /* VmHWM catches peaks between samples, but counts file pages too: take off
   * the file-backed growth (statm's shared pages rarely shrink). */
  uint64_t mapped, anon, rss, shared = start_shared;
  if (read_statm_shared(&mapped, &anon, &rss, &shared) != 0) shared = start_shared;
  uint64_t file_growth = shared > start_shared ? shared - start_shared : 0;
  if (r->rss_peak > start_rss + file_growth && r->rss_peak - start_rss - file_growth > r->heap_peak)
    r->heap_peak = r->rss_peak - start_rss - file_growth;
  r->mapped_peak = peak_mapped;
  r->samples = nsamples;
  pthread_mutex_unlock(&lock);
}

double mem_utilization(uint64_t live_peak, uint64_t heap_peak) {
  if (heap_peak == 0) return -1;
  return (double)live_peak / (double)heap_peak;
}
