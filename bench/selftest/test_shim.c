/* The C shim over Google Benchmark: a tiny benchmark registered from C must
 * run, and its counters (a plain sum and a rate) must reach the JSON output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shim.h"

static int runs, saw_arg = -1, saw_threads;

static void tiny(shim_state *st, void *arg) {
  int *calls = arg;
  uint64_t n = 0;
  while (shim_keep_running(st)) n++;
  __sync_fetch_and_add(calls, 1);
  saw_arg = (int)shim_range(st, 0);
  if (shim_threads(st) > saw_threads) saw_threads = shim_threads(st);
  shim_counter(st, "ops", (double)n, SHIM_RATE);
  shim_counter(st, "answer", 42, SHIM_AVG_THREADS);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void test_counters_reach_json(void **state) {
  (void)state;
  char out[] = "/tmp/bench-shim-XXXXXX";
  int fd = mkstemp(out);
  assert_true(fd >= 0);
  close(fd);
  char flag[64];
  snprintf(flag, sizeof flag, "--benchmark_out=%s", out);
  char *argv[] = {"test_shim",
                  flag,
                  "--benchmark_out_format=json",
                  "--benchmark_min_time=0.01",
                  "--benchmark_filter=^tiny/",
                  NULL};
  int argc = 5;
  shim_init(&argc, argv);
  shim_context("suite", "selftest");
  static const int64_t vals[] = {7};
  struct shim_spec s = {0};
  s.name = "tiny";
  s.fn = tiny;
  s.arg = &runs;
  s.nargs = 1;
  s.args[0].name = "n";
  s.args[0].list = vals;
  s.args[0].nlist = 1;
  s.nthreads = 1;
  s.threads[0] = 2;
  assert_int_equal(shim_register(&s), 0);
  struct shim_spec bad = {0};
  assert_int_equal(shim_register(&bad), -1);
  assert_int_equal(shim_run(), 1);
  assert_true(runs >= 2);
  assert_int_equal(saw_arg, 7);
  assert_int_equal(saw_threads, 2);
  char *json = slurp(out);
  unlink(out);
  assert_non_null(json);
  assert_non_null(strstr(json, "\"name\": \"tiny/n:7/real_time/threads:2\""));
  assert_non_null(strstr(json, "\"suite\": \"selftest\""));
  assert_non_null(strstr(json, "\"answer\": 4.2000000000000000e+01"));
  char *ops = strstr(json, "\"ops\": ");
  assert_non_null(ops);
  double rate = strtod(ops + 7, NULL);
  assert_true(rate > 1000); /* a rate: loop iterations per second, not a count */
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_counters_reach_json)};
  return cmocka_run_group_tests_name("bench_shim", tests, NULL, NULL);
}
