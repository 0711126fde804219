/* Trace parsing and peak utilization on hand-made traces whose answers are
 * worked out by hand in the comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "memstat.h"
#include "replay.h"
#include "trace.h"

/* live after each request: 100, 300, 500 (peak), 300, 350, 390, 340, 340, 0 */
static const char hand[] = "1\r\n3\r\n9\r\n1\r\n"
                           "a 0 100\r\n"
                           "a 1 200\r\n"
                           "r 0 300\r\n"
                           "f 1\r\n"
                           "a 2 50\r\n"
                           "r 1 40\r\n" /* realloc(NULL, 40) */
                           "r 2 0\r\n"  /* frees id 2 */
                           "f -1\r\n"   /* free(NULL) */
                           "f 0\r\n"
                           "a 9 9\r\n"; /* beyond the header's 9 requests: ignored */

static struct trace parse_ok(const char *text) {
  struct trace t;
  char err[256] = "";
  int rc = trace_parse(text, strlen(text), &t, err, sizeof err);
  if (rc != 0) fail_msg("parse failed: %s", err);
  return t;
}

static void test_parse_hand_trace(void **state) {
  (void)state;
  struct trace t = parse_ok(hand);
  assert_int_equal(t.nids, 3);
  assert_int_equal(t.nreq, 9);
  assert_int_equal(t.warnings, 1);
  assert_int_equal(t.req[2].op, 'r');
  assert_int_equal(t.req[2].size, 300);
  assert_int_equal(t.req[7].id, -1);
  trace_free(&t);
}

static void test_two_line_header(void **state) {
  (void)state;
  struct trace t = parse_ok("2\n2\na 0 10\na 1 20\n");
  assert_int_equal(t.nids, 2);
  assert_int_equal(t.nreq, 2);
  assert_int_equal(trace_peak_live(&t, 1), 30);
  trace_free(&t);
}

static void test_parse_errors(void **state) {
  (void)state;
  struct trace t;
  char err[256];
  const char *bad_line = "1\n1\n1\n1\nx 0 1\n";
  assert_int_equal(trace_parse(bad_line, strlen(bad_line), &t, err, sizeof err), -1);
  const char *short_trace = "1\n1\n2\n1\na 0 1\n";
  assert_int_equal(trace_parse(short_trace, strlen(short_trace), &t, err, sizeof err), -1);
}

static void test_peak_live(void **state) {
  (void)state;
  struct trace t = parse_ok(hand);
  assert_int_equal(trace_peak_live(&t, 1), 500);
  /* Interleaved copies all reach their peak at the same request. */
  assert_int_equal(trace_peak_live(&t, 4), 2000);
  trace_free(&t);
}

static void test_utilization_formula(void **state) {
  (void)state;
  assert_true(mem_utilization(500, 1000) == 0.5);
  assert_true(mem_utilization(3, 4) == 0.75);
  assert_true(mem_utilization(1, 0) < 0); /* no heap growth: undefined */
}

/* Replaying the hand trace through malloc with a sample after every request
 * makes the sampled live peak exact, so the reported utilization is the known
 * peak over whatever heap growth the allocator caused. */
static void test_replay_measures_known_peak(void **state) {
  (void)state;
  struct trace t = parse_ok(hand);
  struct bench_thread bt;
  mem_init();
  bt_begin_worker(&bt, 0);
  bt.is_sampler = 1;
  bt.sample_every = 1;
  assert_int_equal(replay_run(&t, 2, &bt, 1), 18);
  bt_end_worker(&bt);
  struct mem_report r;
  mem_report(&r);
  assert_int_equal(r.live_peak, 1000);
  assert_int_equal(atomic_load(&mem_slots[0].live), 0); /* everything freed */
  if (r.heap_peak > 0) assert_true(mem_utilization(r.live_peak, r.heap_peak) > 0);
  trace_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_hand_trace),    cmocka_unit_test(test_two_line_header),
      cmocka_unit_test(test_parse_errors),        cmocka_unit_test(test_peak_live),
      cmocka_unit_test(test_utilization_formula), cmocka_unit_test(test_replay_measures_known_peak),
  };
  return cmocka_run_group_tests_name("bench_utilization", tests, NULL, NULL);
}
