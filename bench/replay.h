/* Replays a malloc-lab trace against whatever malloc the process uses. */
#ifndef BENCH_REPLAY_H
#define BENCH_REPLAY_H

#include <stdint.h>

#include "harness.h"
#include "trace.h"

/* Runs every request of copies interleaved copies of t (request i of every
 * copy before request i+1 of any), then frees what is still live. Blocks are
 * written as bt_touch does. With check set, every block also carries a tag in
 * its first and last byte that is verified before each realloc and free.
 * Returns the number of requests performed, or -1 when an allocation failed
 * or a tag was damaged (message on stderr). */
int64_t replay_run(const struct trace *t, int copies, struct bench_thread *bt, int check);

#endif /* BENCH_REPLAY_H */
