/* librecord.so round trip: record rec_sample, check the trace holds its calls
 * as a/r/f lines with consistent ids, then replay it with the bench program's
 * verifying replay. Programs are found next to this test's executable. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "trace.h"

static char dir[PATH_MAX];
static char trace_path[] = "/tmp/bench-rec-XXXXXX";

static int run(const char *cmd) {
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int setup(void **state) {
  (void)state;
  ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
  if (n <= 0) return -1;
  dir[n] = 0;
  *strrchr(dir, '/') = 0;
  int fd = mkstemp(trace_path);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(trace_path);
  return 0;
}

/* Index of the first request after from with this op and size, or -1. */
static long find(const struct trace *t, size_t from, char op, uint64_t size) {
  for (size_t i = from; i < t->nreq; i++)
    if (t->req[i].op == op && (op == 'f' || t->req[i].size == size)) return (long)i;
  return -1;
}

static void test_record_and_replay(void **state) {
  (void)state;
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "ARENA_TRACE_FILE=%s LD_PRELOAD=%s/librecord.so %s/rec_sample", trace_path, dir,
           dir);
  assert_int_equal(run(cmd), 0);

  struct trace t;
  char err[256];
  if (trace_load(trace_path, &t, err, sizeof err) != 0) fail_msg("%s", err);
  long a100 = find(&t, 0, 'a', 100);
  assert_true(a100 >= 0);
  long a200 = find(&t, (size_t)a100, 'a', 200); /* calloc(10, 20) */
  assert_true(a200 > a100);
  long r400 = find(&t, (size_t)a200, 'r', 400);
  assert_int_equal(r400, a200 + 1);
  assert_int_equal(t.req[r400].id, t.req[a200].id);
  assert_int_equal(t.req[r400 + 1].op, 'f'); /* free(p) */
  assert_int_equal(t.req[r400 + 1].id, t.req[a100].id);
  long a128 = find(&t, (size_t)r400, 'a', 128); /* aligned_alloc */
  assert_int_equal(a128, r400 + 2);
  assert_int_equal(t.req[a128 + 1].op, 'a'); /* posix_memalign */
  assert_int_equal(t.req[a128 + 1].size, 48);
  for (int i = 2; i <= 4; i++) assert_int_equal(t.req[a128 + i].op, 'f');
  assert_int_equal(t.req[a128 + 2].id, t.req[a200].id);
  /* realloc(NULL, 24) is an allocation; realloc(t, 0) that frees is a free. */
  assert_int_equal(t.req[a128 + 5].op, 'a');
  assert_int_equal(t.req[a128 + 5].size, 24);
  assert_int_equal(t.req[a128 + 6].op, 'f');
  assert_int_equal(t.req[a128 + 6].id, t.req[a128 + 5].id);
  /* Both threads' 1000 malloc(777)/free pairs, none lost to a race. */
  int a777 = 0, frees_of_777 = 0;
  int32_t live777[64];
  int nlive = 0;
  for (size_t i = 0; i < t.nreq; i++) {
    if (t.req[i].op == 'a' && t.req[i].size == 777) {
      a777++;
      if (nlive < 64) live777[nlive++] = t.req[i].id;
    } else if (t.req[i].op == 'f') {
      for (int k = 0; k < nlive; k++)
        if (live777[k] == t.req[i].id) {
          frees_of_777++;
          live777[k] = live777[--nlive];
          break;
        }
    }
  }
  assert_int_equal(a777, 2000);
  assert_int_equal(frees_of_777, 2000);
  /* Ids are reused: far fewer ids than allocations. */
  assert_true(t.nids < 100);
  trace_free(&t);

  snprintf(cmd, sizeof cmd, "%s/bench --replay=%s:3 >/dev/null", dir, trace_path);
  assert_int_equal(run(cmd), 0);
}

/* Without ARENA_TRACE_FILE the recorder passes calls through untouched. */
static void test_passthrough(void **state) {
  (void)state;
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "env -u ARENA_TRACE_FILE LD_PRELOAD=%s/librecord.so %s/rec_sample", dir, dir);
  assert_int_equal(run(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_record_and_replay),
                                     cmocka_unit_test(test_passthrough)};
  return cmocka_run_group_tests_name("bench_recorder", tests, setup, teardown);
}
