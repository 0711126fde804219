/* Where a process's resident chunk pages are, printed at exit when ZZ_PROBE
 * is set: page map, descriptors and xfree of the headers, carved and uncarved
 * pages of small spans (and carved pages per class), large blocks, free runs.
 * A measurement build only: copy it into lib/, `make lib/libarena.so`, copy
 * the library elsewhere and remove the file again. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "internal.h"
struct probe {
  unsigned long pm, desc, xf, carved, uncarved, large, freer, chunks;
  unsigned long cls[NUM_CLASSES];
};
static void probe_chunk(struct chunk *c, void *arg) {
  struct probe *pr = arg;
  unsigned char vec[CHUNK_PAGES];
  if (mincore(c, CHUNK_SIZE, vec)) return;
  pr->chunks++;
  for (size_t i = 0; i < CHUNK_PAGES; i++) {
    if (!(vec[i] & 1)) continue;
    uintptr_t off = i * PAGE_SIZE;
    if (i < FIRST_PAGE) {
      if (off < __builtin_offsetof(struct chunk, spans))
        pr->pm++;
      else if (off < __builtin_offsetof(struct chunk, xfree))
        pr->desc++;
      else
        pr->xf++;
      continue;
    }
    struct span *s = c->pagemap[i];
    if (s->kind == SPAN_SMALL) {
      size_t o = (i - span_page(s)) * PAGE_SIZE;
      if (o < s->limit) {
        pr->carved++;
        pr->cls[s->size_class]++;
      } else
        pr->uncarved++;
    } else if (s->kind == SPAN_LARGE)
      pr->large++;
    else
      pr->freer++;
  }
}
__attribute__((destructor(200))) static void zz(void) {
  if (!getenv("ZZ_PROBE")) return;
  struct probe pr = {0};
  backend_lock();
  backend_each_chunk(probe_chunk, &pr);
  backend_unlock();
  char buf[4096];
  int n = snprintf(
      buf, sizeof buf,
      "probe chunks %lu pages: pagemap %lu desc %lu xfree %lu carved %lu uncarved %lu large %lu free %lu\n",
      pr.chunks, pr.pm, pr.desc, pr.xf, pr.carved, pr.uncarved, pr.large, pr.freer);
  for (unsigned c = 0; c < NUM_CLASSES; c++)
    if (pr.cls[c])
      n += snprintf(buf + n, sizeof buf - n, " c%u(%u):%lu", c, classes[c].block_size, pr.cls[c]);
  buf[n++] = '\n';
  if (write(2, buf, n)) {
  }
}
