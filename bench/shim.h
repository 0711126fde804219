/* A C interface to Google Benchmark, so that every workload is written in C.
 *
 * Only this header and shim.cc know about C++. A workload registers a function
 * with shim_register(); Google Benchmark calls it once per run and thread with
 * an opaque state, and the function loops while shim_keep_running() is true.
 * Code before the first shim_keep_running() call and after the last is not
 * timed, which is where workloads warm up and clean up.
 */
#ifndef BENCH_SHIM_H
#define BENCH_SHIM_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shim_state shim_state;
typedef void (*shim_fn)(shim_state *st, void *arg);

#define SHIM_MAX_ARGS 4
#define SHIM_MAX_THREAD_COUNTS 16

/* One argument: either an explicit list of values (list/nlist) or the
 * geometric range lo, lo*mult, ... up to hi (hi always included). */
struct shim_arg {
  const char *name; /* shown in the benchmark name as name:value; may be NULL */
  const int64_t *list;
  int nlist;
  int64_t lo, hi;
  int mult;
};

struct shim_spec {
  const char *name;
  shim_fn fn;
  void *arg; /* passed to fn unchanged */
  int nargs; /* the benchmark runs for every combination of argument values */
  struct shim_arg args[SHIM_MAX_ARGS];
  int nthreads; /* Google Benchmark thread counts; 0 means 1 */
  int threads[SHIM_MAX_THREAD_COUNTS];
  int64_t iterations; /* fixed iteration count; 0 lets Google Benchmark decide */
  double min_time;    /* seconds; 0 uses --benchmark_min_time */
};

/* Initialise Google Benchmark from the command line; its own flags are removed
 * from argv and the rest is left for the caller. */
void shim_init(int *argc, char **argv);
/* Register a benchmark. Returns 0, or -1 when the spec is malformed. */
int shim_register(const struct shim_spec *spec);
/* Run the benchmarks selected by --benchmark_filter; returns how many ran. */
int shim_run(void);
/* Key/value pair stored in the "context" object of the JSON output. */
void shim_context(const char *key, const char *value);

bool shim_keep_running(shim_state *st);
int64_t shim_range(const shim_state *st, int index);
int shim_thread_index(const shim_state *st);
int shim_threads(const shim_state *st);
void shim_pause(shim_state *st);
void shim_resume(shim_state *st);
void shim_skip_with_error(shim_state *st, const char *message);
void shim_label(shim_state *st, const char *label);

/* Counter flags. Values from all threads of a run are summed unless
 * SHIM_AVG_THREADS is given; SHIM_RATE divides by the run's wall time. */
enum {
  SHIM_SUM = 0,
  SHIM_RATE = 1 << 0,
  SHIM_AVG_THREADS = 1 << 1,
  SHIM_AVG_ITERATIONS = 1 << 2,
};
void shim_counter(shim_state *st, const char *name, double value, unsigned flags);

#ifdef __cplusplus
}
#endif

#endif /* BENCH_SHIM_H */
