/* Malloc-lab trace parser; see trace.h. */
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Next line of text as [*s, *e) without its CR/LF; returns 0 at the end. */
static int next_line(const char **pos, const char *end, const char **s, const char **e) {
  const char *p = *pos;
  if (p >= end) return 0;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  const char *stop = nl ? nl : end;
  *s = p;
  *e = stop;
  while (*e > *s && ((*e)[-1] == '\r' || (*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
  *pos = nl ? nl + 1 : end;
  return 1;
}

static int blank(const char *s, const char *e) {
  for (; s < e; s++)
    if (*s != ' ' && *s != '\t') return 0;
  return 1;
}

int trace_parse(const char *text, size_t len, struct trace *t, char *err, size_t errlen) {
  memset(t, 0, sizeof(*t));
  const char *pos = text, *end = text + len, *s, *e;
  long long head[4];
  int nhead = 0;
  /* Read header integers until the first request line. */
  const char *after_header = pos;
  while (nhead < 4 && next_line(&pos, end, &s, &e)) {
    if (blank(s, e)) continue;
    char buf[64];
    size_t n = (size_t)(e - s) < sizeof buf - 1 ? (size_t)(e - s) : sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *stop;
    long long v = strtoll(buf, &stop, 10);
    while (*stop == ' ' || *stop == '\t') stop++;
    if (stop == buf || *stop) break; /* a request: the header had fewer lines */
    head[nhead++] = v;
    after_header = pos;
  }
  long long ids, nreq;
  if (nhead == 4 || nhead == 3)
    ids = head[1], nreq = head[2];
  else if (nhead == 2)
    ids = head[0], nreq = head[1];
  else {
    snprintf(err, errlen, "header: expected 2 or 4 integer lines, found %d", nhead);
    return -1;
  }
  if (ids < 0 || nreq < 0 || ids > 100000000 || nreq > 1000000000) {
    snprintf(err, errlen, "header: implausible ids %lld / requests %lld", ids, nreq);
    return -1;
  }
  t->nids = (int)ids;
  t->req = malloc(sizeof(*t->req) * (size_t)(nreq ? nreq : 1));
  if (!t->req) {
    snprintf(err, errlen, "out of memory for %lld requests", nreq);
    return -1;
  }
  pos = after_header;
  size_t lineno = (size_t)nhead;
  while (next_line(&pos, end, &s, &e)) {
    lineno++;
    if (blank(s, e)) continue;
    if ((long long)t->nreq >= nreq) {
      t->warnings++; /* beyond the header's count: ignored, as mdriver does */
      continue;
    }
    char buf[128];
    size_t n = (size_t)(e - s) < sizeof buf - 1 ? (size_t)(e - s) : sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char op;
    long long id, size = 0;
    int got = sscanf(buf, " %c %lld %lld", &op, &id, &size);
    if ((op == 'a' || op == 'r') && got == 3 && id >= 0 && size >= 0) {
    } else if (op == 'f' && got >= 2 && id >= -1) {
      size = 0;
    } else {
      snprintf(err, errlen, "line %zu: bad request \"%s\"", lineno, buf);
      trace_free(t);
      return -1;
    }
    if (id >= t->nids) t->nids = (int)id + 1;
    t->req[t->nreq++] = (struct trace_req){op, (int32_t)id, (uint64_t)size};
  }
  if ((long long)t->nreq < nreq) {
    snprintf(err, errlen, "header promises %lld requests, found %zu", nreq, t->nreq);
    trace_free(t);
    return -1;
  }
  return 0;
}

int trace_load(const char *path, struct trace *t, char *err, size_t errlen) {
  /* The file is mapped, not read into a malloc'd buffer: a buffer freed
   * before the benchmark starts would be reused by the workload and hide
   * heap growth from the utilization measurement. */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0) close(fd);
    snprintf(err, errlen, "%s: cannot open", path);
    return -1;
  }
  size_t len = (size_t)st.st_size;
  void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  if (len && map == MAP_FAILED) {
    snprintf(err, errlen, "%s: cannot map", path);
    return -1;
  }
  int rc = trace_parse(len ? map : "", len, t, err, errlen);
  if (len) munmap(map, len);
  return rc;
}

void trace_free(struct trace *t) {
  free(t->req);
  memset(t, 0, sizeof(*t));
}

uint64_t trace_peak_live(const struct trace *t, int copies) {
  if (copies < 1) copies = 1;
  size_t n = (size_t)t->nids * (size_t)copies;
  uint64_t *size = calloc(n ? n : 1, sizeof(uint64_t));
  char *used = calloc(n ? n : 1, 1);
  if (!size || !used) {
    free(size), free(used);
    return 0;
  }
  uint64_t live = 0, peak = 0;
  for (size_t i = 0; i < t->nreq; i++) {
    const struct trace_req *r = &t->req[i];
    for (int c = 0; c < copies; c++) {
      if (r->id < 0) continue; /* f -1 */
      size_t k = (size_t)c * (size_t)t->nids + (size_t)r->id;
      if (used[k]) live -= size[k];
      used[k] = 0;
      if (r->op == 'a' || (r->op == 'r' && r->size > 0)) {
        used[k] = 1;
        size[k] = r->size;
        live += r->size;
      }
      if (live > peak) peak = live;
    }
  }
  free(size), free(used);
  return peak;
}
