/* Replays K interleaved copies of a malloc-lab trace R times through the
 * arena_* API, touching blocks as the suite does, and prints the live peak,
 * the back end's peak of in-use pages, the mapped peak and the peak growth
 * of RSS (sampled every 200 requests). With a request number N > 0 it also
 * prints every class's spans, live blocks and capacity at request N of the
 * first pass.
 *
 *   cc -O2 -Iinclude results/big-class-spans/trace_probe.c -Llib -larena \
 *      -Wl,-rpath,$PWD/lib -o /tmp/trace_probe
 *   /tmp/trace_probe bench/traces/gcc-cc1.rep 11 0 3 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"

struct request {
  char kind; /* a, r or f */
  int id;
  size_t size;
};

static long resident_pages(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f && fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
  if (f) fclose(f);
  return resident;
}

/* The probe's own arrays come from mmap and are written before the RSS
 * baseline is read, so that they count neither in the allocator's figures
 * nor in the growth. */
static void *probe_array(size_t bytes) {
  void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) exit(1);
  memset(p, 0, bytes);
  return p;
}

static void touch(unsigned char *c, size_t n) {
  if (!n) return;
  c[0] = 1;
  for (size_t off = 4096 - ((uintptr_t)c & 4095); off < n; off += 4096) c[off] = 1;
  c[n - 1] = 2;
}

static void print_classes(int at, size_t live) {
  static struct arena_stats st = {.version = ARENA_STATS_VERSION, .size = sizeof(struct arena_stats)};
  arena_stats_get(&st);
  printf("at request %d: live %.2f MB, allocated %.2f MB, resident %.2f MB\n", at, live / 1e6,
         st.allocated_bytes / 1e6, st.resident_bytes / 1e6);
  for (int c = 0; c < ARENA_STATS_CLASSES; c++) {
    const struct arena_class_stats *cs = &st.classes[c];
    if (cs->spans)
      printf("  class %2d %6lu B: %4lu spans, %6lu of %6lu blocks live, %.2f of %.2f MB\n", c,
             (unsigned long)cs->block_size, (unsigned long)cs->spans, (unsigned long)cs->live_blocks,
             (unsigned long)cs->capacity, cs->live_blocks * cs->block_size / 1e6,
             cs->capacity * cs->block_size / 1e6);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s TRACE COPIES [REQUEST [PASSES]]\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  int copies = atoi(argv[2]), at = argc > 3 ? atoi(argv[3]) : 0, passes = argc > 4 ? atoi(argv[4]) : 1;
  int weight, nids, nreq, n = 0;
  long ignored;
  if (!f || fscanf(f, "%d %d %d %ld", &weight, &nids, &nreq, &ignored) != 4) return 1;
  struct request *req = probe_array((size_t)nreq * sizeof(*req));
  char kind[4];
  while (n < nreq && fscanf(f, "%3s %d", kind, &req[n].id) == 2) {
    req[n].kind = kind[0];
    if ((kind[0] == 'a' || kind[0] == 'r') && fscanf(f, "%zu", &req[n].size) != 1) return 1;
    n++;
  }
  size_t slots = (size_t)nids * (size_t)copies;
  void **ptr = probe_array(slots * sizeof(void *));
  size_t *size = probe_array(slots * sizeof(size_t));
  long rss0 = resident_pages(), rss_peak = 0;
  size_t live = 0, live_peak = 0;
  for (int pass = 0; pass < passes; pass++) {
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < copies; c++) {
        size_t j = (size_t)c * (size_t)nids + (size_t)req[i].id;
        if (req[i].kind == 'f') {
          arena_free(ptr[j]);
          live -= size[j];
          ptr[j] = NULL, size[j] = 0;
          continue;
        }
        ptr[j] = req[i].kind == 'a' ? arena_malloc(req[i].size) : arena_realloc(ptr[j], req[i].size);
        live += req[i].size - size[j];
        size[j] = req[i].size;
        touch(ptr[j], req[i].size);
      }
      if (live > live_peak) live_peak = live;
      if (i % 200 == 0 && resident_pages() > rss_peak) rss_peak = resident_pages();
      if (pass == 0 && at > 0 && i == at) print_classes(at, live);
    }
    for (size_t j = 0; j < slots; j++) arena_free(ptr[j]), ptr[j] = NULL, live -= size[j], size[j] = 0;
  }
  struct arena_stats st = {.version = ARENA_STATS_VERSION, .size = sizeof(st)};
  arena_stats_get(&st);
  printf("live peak %.2f MB; in-use pages peak %.2f MB; mapped peak %.2f MB; RSS growth peak %.2f MB\n",
         live_peak / 1e6, st.peak_allocated_bytes / 1e6, st.peak_mapped_bytes / 1e6,
         (rss_peak - rss0) * 4096 / 1e6);
  return 0;
}
