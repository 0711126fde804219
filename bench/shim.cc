// The only C++ file of the suite: adapts Google Benchmark to the C API in
// shim.h. Benchmarks use wall-clock time (UseRealTime) because allocator
// throughput with several threads is about elapsed time, not CPU time summed
// over threads.
#include "shim.h"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

// shim_state stays an incomplete type: a shim_state* is a benchmark::State*.
static benchmark::State &S(shim_state *st) { return *reinterpret_cast<benchmark::State *>(st); }
static const benchmark::State &S(const shim_state *st) {
  return *reinterpret_cast<const benchmark::State *>(st);
}

extern "C" void shim_init(int *argc, char **argv) { benchmark::Initialize(argc, argv); }

static std::vector<int64_t> arg_values(const shim_arg &a) {
  if (a.list && a.nlist > 0) return std::vector<int64_t>(a.list, a.list + a.nlist);
  std::vector<int64_t> v;
  int64_t mult = a.mult > 1 ? a.mult : 2;
  for (int64_t x = a.lo; x < a.hi; x *= mult) {
    v.push_back(x);
    if (x <= 0) break; // a zero or negative start cannot grow geometrically
  }
  v.push_back(a.hi);
  return v;
}

extern "C" int shim_register(const shim_spec *spec) {
  if (!spec || !spec->name || !spec->fn || spec->nargs < 0 || spec->nargs > SHIM_MAX_ARGS ||
      spec->nthreads < 0 || spec->nthreads > SHIM_MAX_THREAD_COUNTS)
    return -1;
  shim_fn fn = spec->fn;
  void *arg = spec->arg;
  benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(
      spec->name, [fn, arg](benchmark::State &st) { fn(reinterpret_cast<shim_state *>(&st), arg); });
  if (spec->nargs > 0) {
    std::vector<std::vector<int64_t>> lists;
    std::vector<std::string> names;
    bool named = false;
    for (int i = 0; i < spec->nargs; i++) {
      lists.push_back(arg_values(spec->args[i]));
      names.push_back(spec->args[i].name ? spec->args[i].name : "");
      named = named || spec->args[i].name;
    }
    b->ArgsProduct(lists);
    if (named) b->ArgNames(names);
  }
  // Without thread counts Google Benchmark runs one thread and leaves
  // "threads:" out of the name, which the workloads that create their own
  // threads rely on.
  for (int i = 0; i < spec->nthreads; i++) b->Threads(spec->threads[i]);
  if (spec->iterations > 0)
    b->Iterations(spec->iterations);
  else if (spec->min_time > 0)
    b->MinTime(spec->min_time);
  b->UseRealTime();
  return 0;
}

extern "C" int shim_run(void) {
  size_t n = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return static_cast<int>(n);
}

extern "C" void shim_context(const char *key, const char *value) {
  benchmark::AddCustomContext(key, value ? value : "");
}

extern "C" bool shim_keep_running(shim_state *st) { return S(st).KeepRunning(); }
extern "C" int64_t shim_range(const shim_state *st, int index) { return S(st).range(index); }
extern "C" int shim_thread_index(const shim_state *st) { return S(st).thread_index(); }
extern "C" int shim_threads(const shim_state *st) { return S(st).threads(); }
extern "C" void shim_pause(shim_state *st) { S(st).PauseTiming(); }
extern "C" void shim_resume(shim_state *st) { S(st).ResumeTiming(); }
extern "C" void shim_skip_with_error(shim_state *st, const char *message) { S(st).SkipWithError(message); }
extern "C" void shim_label(shim_state *st, const char *label) { S(st).SetLabel(label); }

extern "C" void shim_counter(shim_state *st, const char *name, double value, unsigned flags) {
  int f = benchmark::Counter::kDefaults;
  if (flags & SHIM_RATE) f |= benchmark::Counter::kIsRate;
  if (flags & SHIM_AVG_THREADS) f |= benchmark::Counter::kAvgThreads;
  if (flags & SHIM_AVG_ITERATIONS) f |= benchmark::Counter::kAvgIterations;
  S(st).counters[name] = benchmark::Counter(value, static_cast<benchmark::Counter::Flags>(f));
}
