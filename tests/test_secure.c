/* Hardened build (lib/libarena-secure.so, `make secure`): death tests and
 * observable properties. Linked against libarena-secure.so, so malloc/free are
 * the hardened library's.
 *
 *   - a write past the requested size of a small block damages the canary:
 *     free aborts with "libarena: heap overflow: canary after the block
 *     damaged at 0x<block>";
 *   - a write past a large block's usable size hits its guard page (SIGSEGV);
 *     chunks have an inaccessible page at both ends of their pages;
 *   - double frees are still caught (in quarantine and after it);
 *   - the quarantine delays reuse: a freed block is not handed out again
 *     before QUARANTINE_SLOTS (64) more frees by the thread;
 *   - new spans hand out blocks in random order: two fresh processes give
 *     different orders for the first allocations of a class.
 * Zeroing on free is not tested: it is observable only by reading freed
 * memory. */
#include "child.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define QUARANTINE 64

static int names_pointer(const char *text, uintptr_t v) {
  for (const char *s = text; (s = strstr(s, "0x")) != NULL; s += 2) {
    char *end;
    unsigned long long x = strtoull(s + 2, &end, 16);
    if (end != s + 2 && x == (unsigned long long)v) return 1;
  }
  return 0;
}

static void expect_abort(void (*fn)(void), const char *text) {
  struct outcome o;
  run_child(fn, &o);
  if (!o.signaled || o.sig != SIGABRT)
    fail_msg("expected SIGABRT, got %s %d; stderr: \"%s\"", o.signaled ? "signal" : "exit status",
             o.signaled ? o.sig : o.status, o.err);
  if (!strstr(o.err, text)) fail_msg("stderr lacks \"%s\": \"%s\"", text, o.err);
  assert_true(o.have_ptr);
  if (!names_pointer(o.err, o.ptr))
    fail_msg("stderr does not name the pointer %#lx: \"%s\"", (unsigned long)o.ptr, o.err);
}

static void expect_segv(void (*fn)(void)) {
  struct outcome o;
  run_child(fn, &o);
  if (!o.signaled || o.sig != SIGSEGV)
    fail_msg("expected SIGSEGV, got %s %d; stderr: \"%s\"", o.signaled ? "signal" : "exit status",
             o.signaled ? o.sig : o.status, o.err);
}

/* ---- canary ------------------------------------------------------------- */

#define CANARY_MSG "libarena: heap overflow: canary after the block damaged at"

/* Writes `extra` bytes past the requested size n (within the block: the
 * canary sits in the block's last 8 bytes), then frees. */
static void overflow_then_free(size_t n, size_t extra) {
  unsigned char *p = malloc(n);
  if (!p) _exit(98);
  size_t u = malloc_usable_size(p);
  if (u < n) _exit(97);
  memset(p, 0x11, u); /* the usable size itself is fine */
  /* Into the canary; flipping the bits (rather than writing a constant, which
   * the random canary holds by chance once in 256 for a 1-byte overflow)
   * changes it every time. */
  unsigned char *over = launder(p) + u;
  for (size_t i = 0; i < extra; i++) over[i] ^= 0xff;
  announce(p);
  free(p);
}

static void c_canary_16(void) { overflow_then_free(16, 1); }
static void c_canary_100(void) { overflow_then_free(100, 8); }
static void c_canary_1000(void) { overflow_then_free(1000, 1); }
static void c_canary_32k(void) { overflow_then_free(32 * KiB - 8, 3); }

/* The canary of a block freed by another thread is checked too. */
static void *free_in_thread(void *p) {
  free(p);
  return NULL;
}
static void c_canary_remote(void) {
  unsigned char *p = malloc(200);
  if (!p) _exit(98);
  p[malloc_usable_size(p)] ^= 0xff;
  announce(p);
  pthread_t t;
  pthread_create(&t, NULL, free_in_thread, p);
  pthread_join(t, NULL);
}

/* aligned blocks carry a canary as well */
static void c_canary_aligned(void) {
  unsigned char *p = aligned_alloc(256, 300);
  if (!p) _exit(98);
  p[malloc_usable_size(p)] ^= 0x01;
  announce(p);
  free(p);
}

static void test_canary_16(void **s) {
  (void)s;
  expect_abort(c_canary_16, CANARY_MSG);
}
static void test_canary_100(void **s) {
  (void)s;
  expect_abort(c_canary_100, CANARY_MSG);
}
static void test_canary_1000(void **s) {
  (void)s;
  expect_abort(c_canary_1000, CANARY_MSG);
}
static void test_canary_32k(void **s) {
  (void)s;
  expect_abort(c_canary_32k, CANARY_MSG);
}
static void test_canary_remote(void **s) {
  (void)s;
  expect_abort(c_canary_remote, CANARY_MSG);
}
static void test_canary_aligned(void **s) {
  (void)s;
  expect_abort(c_canary_aligned, CANARY_MSG);
}

/* Using the whole usable size never trips the canary. */
static void test_usable_size_is_safe(void **state) {
  (void)state;
  for (size_t n = 0; n <= 33000; n += (n < 512 ? 1 : 97)) {
    unsigned char *p = malloc(n);
    assert_non_null(p);
    size_t u = malloc_usable_size(p);
    assert_true(u >= n);
    memset(p, 0xee, u);
    free(p);
  }
  assert_heap_ok();
}

/* ---- guard pages ---------------------------------------------------------- */

static void overflow_large(size_t n) {
  unsigned char *p = malloc(n);
  if (!p) _exit(98);
  size_t u = malloc_usable_size(p);
  memset(p, 1, u);
  ((volatile unsigned char *)launder(p))[u] = 1; /* first byte of the guard page */
  _exit(0);
}
static void c_guard_large_70k(void) { overflow_large(70 * KiB); }
static void c_guard_large_300k(void) { overflow_large(300 * KiB + 5); }
static void c_guard_large_1m(void) { overflow_large(1 * MiB); }
static void c_guard_large_aligned(void) {
  unsigned char *p = aligned_alloc(64 * KiB, 100 * KiB);
  if (!p) _exit(98);
  ((volatile unsigned char *)launder(p))[malloc_usable_size(p)] = 1;
  _exit(0);
}

static void test_guard_large_70k(void **s) {
  (void)s;
  expect_segv(c_guard_large_70k);
}
static void test_guard_large_300k(void **s) {
  (void)s;
  expect_segv(c_guard_large_300k);
}
static void test_guard_large_1m(void **s) {
  (void)s;
  expect_segv(c_guard_large_1m);
}
static void test_guard_large_aligned(void **s) {
  (void)s;
  expect_segv(c_guard_large_aligned);
}

/* Permissions of the mapping that holds address a, from /proc/self/maps
 * ("rw-p", "---p", ...); 0 when not found. */
static int perms_at(uintptr_t a, char out[5]) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  char line[512];
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && a >= lo && a < hi) {
      memcpy(out, perms, 5);
      found = 1;
      break;
    }
  }
  fclose(f);
  return found;
}

/* The chunk holding a small block: its first and last pages are
 * inaccessible, and its header, in the pages just below it, is not. */
static void test_chunk_guard_pages(void **state) {
  (void)state;
  void *p = malloc(64);
  assert_non_null(p);
  uintptr_t chunk = (uintptr_t)p & ~(uintptr_t)(2 * MiB - 1);
  char perms[5];
  assert_true(perms_at(chunk + 2 * MiB - 4096, perms));
  if (strcmp(perms, "---p") != 0)
    fail_msg("last page of chunk %#lx is %s, expected ---p", (unsigned long)chunk, perms);
  assert_true(perms_at(chunk, perms));
  if (strcmp(perms, "---p") != 0)
    fail_msg("first page of chunk %#lx is %s, expected ---p", (unsigned long)chunk, perms);
  assert_true(perms_at(chunk - 4096, perms));
  if (strcmp(perms, "---p") == 0)
    fail_msg("chunk header page below %#lx is inaccessible", (unsigned long)chunk);
  free(p);
}

/* A large block's guard page is visible in /proc/self/maps, and freeing the
 * block makes the page usable again (the run may be carved into spans). */
static void test_large_guard_mapping(void **state) {
  (void)state;
  unsigned char *p = malloc(100 * KiB);
  assert_non_null(p);
  size_t u = malloc_usable_size(p);
  char perms[5];
  assert_true(perms_at((uintptr_t)p + u, perms));
  assert_string_equal(perms, "---p");
  assert_true(perms_at((uintptr_t)p + u - 1, perms));
  assert_string_equal(perms, "rw-p");
  free(p);
  assert_heap_ok();
}

/* ---- double free ----------------------------------------------------------- */

static void c_double_free_quarantined(void) {
  void *p = malloc(64);
  if (!p) _exit(98);
  free(p);
  announce(p);
  free(launder(p)); /* still in quarantine */
}

static void c_double_free_after_quarantine(void) {
  void *p = malloc(64);
  if (!p) _exit(98);
  free(p);
  /* push p out of the quarantine with frees of another class */
  for (int i = 0; i < 3 * QUARANTINE; i++) free(malloc(500));
  announce(p);
  free(launder(p));
}

static void c_double_free_large(void) {
  void *p = malloc(200 * KiB);
  if (!p) _exit(98);
  free(p);
  announce(p);
  free(launder(p));
}

static void test_double_free_quarantined(void **s) {
  (void)s;
  expect_abort(c_double_free_quarantined, "double free");
}
static void test_double_free_after_quarantine(void **s) {
  (void)s;
  expect_abort(c_double_free_after_quarantine, "double free");
}
static void test_double_free_large(void **s) {
  (void)s;
  expect_abort(c_double_free_large, "libarena");
}

/* ---- quarantine ------------------------------------------------------------ */

static void test_quarantine_delays_reuse(void **state) {
  (void)state;
  for (size_t n = 16; n <= 4096; n *= 4) {
    void *p = malloc(n);
    assert_non_null(p);
    free(p);
    /* No frees in between: p stays quarantined however much is allocated. */
    void *held[4 * QUARANTINE];
    for (int i = 0; i < 4 * QUARANTINE; i++) {
      held[i] = malloc(n);
      assert_non_null(held[i]);
      if (held[i] == p) fail_msg("block %p (size %zu) reused after %d allocations without frees", p, n, i);
    }
    for (int i = 0; i < 4 * QUARANTINE; i++) free(held[i]);
  }
  /* Fewer than QUARANTINE frees after p's: p is still held back. */
  void *p = malloc(48);
  assert_non_null(p);
  free(p);
  for (int i = 0; i < QUARANTINE / 2; i++) free(malloc(3000));
  void *held[2 * QUARANTINE];
  for (int i = 0; i < 2 * QUARANTINE; i++) {
    held[i] = malloc(48);
    assert_non_null(held[i]);
    if (held[i] == p) fail_msg("block reused while still in quarantine (after %d allocations)", i);
  }
  for (int i = 0; i < 2 * QUARANTINE; i++) free(held[i]);
  assert_heap_ok();
}

/* ---- random order ---------------------------------------------------------- */

#define ORDER_N 32
#define ORDER_SIZE 1000 /* class of 1024 bytes: 32 blocks per span */

/* Child mode: print the positions of the first ORDER_N blocks of the class,
 * relative to the lowest, in allocation order. Runs before cmocka touches the
 * heap; a fresh process means fresh spans. */
static int print_order(void) {
  uintptr_t a[ORDER_N], lo = UINTPTR_MAX;
  for (int i = 0; i < ORDER_N; i++) {
    a[i] = (uintptr_t)malloc(ORDER_SIZE);
    if (a[i] < lo) lo = a[i];
  }
  for (int i = 0; i < ORDER_N; i++) printf("%lu ", (unsigned long)((a[i] - lo) / 1024));
  printf("\n");
  return 0;
}

static void order_of_fresh_process(char *out, size_t cap) {
  char cmd[4200];
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  assert_true(n > 0);
  self[n] = 0;
  snprintf(cmd, sizeof cmd, "'%s' --print-order", self);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  if (!fgets(out, (int)cap, f)) out[0] = 0;
  assert_int_equal(pclose(f), 0);
  assert_true(strlen(out) > ORDER_N);
}

static void test_random_order(void **state) {
  (void)state;
  char a[1024], b[1024], sorted[1024];
  order_of_fresh_process(a, sizeof a);
  order_of_fresh_process(b, sizeof b);
  size_t len = 0;
  for (int i = 0; i < ORDER_N; i++) len += (size_t)snprintf(sorted + len, sizeof sorted - len, "%d ", i);
  snprintf(sorted + len, sizeof sorted - len, "\n");
  if (strcmp(a, sorted) == 0 && strcmp(b, sorted) == 0) fail_msg("blocks handed out in address order: %s", a);
  if (strcmp(a, b) == 0) fail_msg("two fresh processes gave the same order: %s", a);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--print-order") == 0) return print_order();
  apply_test_filter();
  catch_aborts();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_canary_16),
      cmocka_unit_test(test_canary_100),
      cmocka_unit_test(test_canary_1000),
      cmocka_unit_test(test_canary_32k),
      cmocka_unit_test(test_canary_remote),
      cmocka_unit_test(test_canary_aligned),
      cmocka_unit_test(test_usable_size_is_safe),
      cmocka_unit_test(test_guard_large_70k),
      cmocka_unit_test(test_guard_large_300k),
      cmocka_unit_test(test_guard_large_1m),
      cmocka_unit_test(test_guard_large_aligned),
      cmocka_unit_test(test_chunk_guard_pages),
      cmocka_unit_test(test_large_guard_mapping),
      cmocka_unit_test(test_double_free_quarantined),
      cmocka_unit_test(test_double_free_after_quarantine),
      cmocka_unit_test(test_double_free_large),
      cmocka_unit_test(test_quarantine_delays_reuse),
      cmocka_unit_test(test_random_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
