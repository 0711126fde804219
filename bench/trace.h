/* Malloc-lab traces (.rep): parsing and exact payload accounting.
 * Format: docs/benchmarks.md and /work/shared/malloc-lab-trace-format.md.
 */
#ifndef BENCH_TRACE_H
#define BENCH_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct trace_req {
  char op;    /* 'a', 'r' or 'f' */
  int32_t id; /* -1 only for "f -1" (free(NULL)) */
  uint64_t size;
};

struct trace {
  int nids; /* distinct ids, from the header (raised if requests use more) */
  size_t nreq;
  struct trace_req *req;
  int warnings; /* lines beyond the header's count, unknown lines */
};

/* Parses a whole trace held in memory (LF or CRLF; 2- or 4-line header).
 * Returns 0, or -1 with a message in err. */
int trace_parse(const char *text, size_t len, struct trace *t, char *err, size_t errlen);
int trace_load(const char *path, struct trace *t, char *err, size_t errlen);
void trace_free(struct trace *t);

/* Maximum over the trace of the live requested payload, following mdriver:
 * a re-allocated id replaces its size, "r id 0" frees, "f -1" does nothing,
 * "r" on an empty id allocates. With copies > 1 the copies are interleaved
 * request by request, as the replay does. */
uint64_t trace_peak_live(const struct trace *t, int copies);

#endif /* BENCH_TRACE_H */
