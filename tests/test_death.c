/* Death tests: invalid and double frees must print one line naming the
 * pointer on stderr and abort. Each case runs in a forked child whose stderr
 * is captured through a pipe.
 *
 * Expected messages (keywords, lowercase, anywhere in the line):
 *   double free                -> "double free"
 *   pointer never handed out   -> "invalid"
 *   double free of large/huge  -> "double free" or "invalid"
 *   free_sized size too large  -> "free_sized: size larger"
 * and the line contains the pointer passed to free as 0x<hex>. */
#include "child.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

void free_sized(void *ptr, size_t size);

static int contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == needle[i]) i++;
    if (i == n) return 1;
  }
  return 0;
}

/* Does the text contain 0x<hex> equal to v? */
static int names_pointer(const char *text, uintptr_t v) {
  for (const char *s = text; (s = strstr(s, "0x")) != NULL; s += 2) {
    char *end;
    unsigned long long x = strtoull(s + 2, &end, 16);
    if (end != s + 2 && x == (unsigned long long)v) return 1;
  }
  return 0;
}

/* kw1 or kw2 (kw2 may be NULL) must appear. */
static void expect_abort(void (*fn)(void), const char *kw1, const char *kw2) {
  struct outcome o;
  run_child(fn, &o);
  if (!o.signaled)
    fail_msg("child was not killed by a signal (exit status %d); stderr: \"%s\"", o.status, o.err);
  if (o.sig != SIGABRT)
    fail_msg("child killed by signal %d (%s), expected SIGABRT; stderr: \"%s\"", o.sig, strsignal(o.sig),
             o.err);
  if (!contains_ci(o.err, kw1) && !(kw2 && contains_ci(o.err, kw2)))
    fail_msg("stderr lacks \"%s\"%s%s%s: \"%s\"", kw1, kw2 ? " or \"" : "", kw2 ? kw2 : "", kw2 ? "\"" : "",
             o.err);
  if (!contains_ci(o.err, "libarena")) fail_msg("stderr does not name libarena: \"%s\"", o.err);
  assert_true(o.have_ptr);
  if (!names_pointer(o.err, o.ptr))
    fail_msg("stderr does not name the pointer %#lx: \"%s\"", (unsigned long)o.ptr, o.err);
  /* exactly one line */
  int lines = 0;
  for (size_t i = 0; i < o.errlen; i++) lines += o.err[i] == '\n';
  if (lines != 1 || o.err[o.errlen - 1] != '\n')
    fail_msg("expected exactly one line on stderr, got %d: \"%s\"", lines, o.err);
}

/* ---- the cases ------------------------------------------------------------ */

static void double_free_sized(size_t n) {
  void *p = malloc(n);
  if (!p) _exit(98);
  memset(p, 1, n);
  free(p);
  announce(p);
  free(launder(p));
}

static void c_double_free_16(void) { double_free_sized(16); }
static void c_double_free_64(void) { double_free_sized(64); }
static void c_double_free_3000(void) { double_free_sized(3000); }
static void c_double_free_32k(void) { double_free_sized(32768); }
static void c_double_free_large(void) { double_free_sized(300 * 1024); }
static void c_double_free_huge(void) { double_free_sized(4 * MiB); }

/* double free of a block whose span has emptied: spans of blocks over a page
 * forget their blocks when they empty (the limit drops to 0), so the second
 * free is caught by the limit rather than the mark. 20 KiB: 8 to a span; the
 * ninth block moves the thread to a second span, and freeing the first eight
 * empties the first. */
static void c_double_free_emptied_span(void) {
  void *p[9];
  for (int i = 0; i < 9; i++)
    if (!(p[i] = malloc(20480))) _exit(98);
  for (int i = 0; i < 8; i++) free(p[i]);
  announce(p[3]);
  free(launder(p[3]));
}

/* double free after the heap has moved on (other size classes only, so that
 * p itself cannot have been handed out again) */
static void c_double_free_after_activity(void) {
  void *keep[100];
  void *p = malloc(48);
  if (!p) _exit(98);
  free(p);
  for (int i = 0; i < 100; i++) keep[i] = malloc(i % 2 ? 2000 : 500);
  for (int i = 0; i < 100; i += 2) free(keep[i]);
  announce(p);
  free(launder(p));
}

static void *thread_free(void *p) {
  announce(p);
  free(launder(p));
  return NULL;
}

static void c_double_free_other_thread(void) {
  void *p = malloc(64);
  if (!p) _exit(98);
  free(p);
  pthread_t t;
  pthread_create(&t, NULL, thread_free, p);
  pthread_join(t, NULL);
}

/* A block another thread freed and keeps on its foreign list (the thread
 * allocates 256-byte blocks itself, so it keeps them): a second free by that
 * thread, or one by the owner, is still a double free. */
static void *free_foreign_twice(void *p) {
  free(malloc(256)); /* this thread allocates the class */
  free(p);
  announce(p);
  free(launder(p));
  return NULL;
}

static void c_double_free_foreign(void) {
  void *p = malloc(256);
  if (!p) _exit(98);
  pthread_t t;
  pthread_create(&t, NULL, free_foreign_twice, p);
  pthread_join(t, NULL);
}

static void *free_foreign_and_wait(void *p) {
  free(malloc(256));
  free(p);
  pause(); /* the owner's second free ends the process */
  return NULL;
}

static void c_double_free_foreign_by_owner(void) {
  void *p = malloc(256);
  if (!p) _exit(98);
  pthread_t t;
  pthread_create(&t, NULL, free_foreign_and_wait, p);
  for (int i = 0; i < 1000 && ((volatile uint64_t *)p)[1] == 0; i++) usleep(1000); /* its mark: freed */
  announce(p);
  free(launder(p));
}

static void c_free_stack(void) {
  char buf[256];
  memset(buf, 0, sizeof buf);
  void *p = launder(buf + 64);
  announce(p);
  free(p);
}

static char g_static_buf[4096] __attribute__((aligned(64)));
static void c_free_static(void) {
  void *p = launder(g_static_buf + 64);
  announce(p);
  free(p);
}

static void c_free_mmap(void) {
  void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(98);
  announce(p);
  free(p);
}

static void interior(size_t n, size_t off) {
  char *p = malloc(n);
  if (!p) _exit(98);
  void *q = launder(p + off);
  announce(q);
  free(q);
}

static void c_interior_16(void) { interior(64, 16); }
static void c_interior_8(void) { interior(64, 8); }
static void c_misaligned_1(void) { interior(64, 1); }
static void c_large_interior_page(void) { interior(256 * 1024, 4096); }
static void c_large_interior_64(void) { interior(256 * 1024, 64); }
static void c_huge_interior_page(void) { interior(4 * MiB, 4096); }
static void c_huge_interior_16(void) { interior(4 * MiB, 16); }

static void c_realloc_stack(void) {
  char buf[128];
  memset(buf, 0, sizeof buf);
  void *p = launder(buf + 32);
  announce(p);
  void *q = realloc(p, 1000);
  (void)q;
}

static void c_realloc_interior(void) {
  char *p = malloc(64);
  if (!p) _exit(98);
  void *q = launder(p + 16);
  announce(q);
  void *r = realloc(q, 1000);
  (void)r;
}

static void c_free_sized_wrong(void) {
  void *p = malloc(64);
  if (!p) _exit(98);
  announce(p);
  free_sized(p, launder_size(100000));
}

static void c_arena_free_sized_wrong(void) {
  void *p = arena_malloc(32);
  if (!p) _exit(98);
  announce(p);
  arena_free_sized(p, launder_size(20000));
}

/* Control: correct use does not abort and prints nothing. */
static void c_valid_use(void) {
  void *p = malloc(64), *q = malloc(300000), *r = malloc(4 * MiB);
  free(p);
  free(q);
  free(r);
  free_sized(malloc(100), 100);
}

/* ---- cmocka wrappers -------------------------------------------------------- */

#define DEATH(name, fn, kw1, kw2)                                                                            \
  static void name(void **state) {                                                                           \
    (void)state;                                                                                             \
    expect_abort(fn, kw1, kw2);                                                                              \
  }

DEATH(test_double_free_small_16, c_double_free_16, "double free", NULL)
DEATH(test_double_free_small_64, c_double_free_64, "double free", NULL)
DEATH(test_double_free_small_3000, c_double_free_3000, "double free", NULL)
DEATH(test_double_free_small_32k, c_double_free_32k, "double free", NULL)
DEATH(test_double_free_emptied_span, c_double_free_emptied_span, "double free", NULL)
DEATH(test_double_free_after_activity, c_double_free_after_activity, "double free", NULL)
DEATH(test_double_free_other_thread, c_double_free_other_thread, "double free", NULL)
DEATH(test_double_free_foreign, c_double_free_foreign, "double free", NULL)
DEATH(test_double_free_foreign_by_owner, c_double_free_foreign_by_owner, "double free", NULL)
DEATH(test_double_free_large, c_double_free_large, "double free", "invalid")
DEATH(test_double_free_huge, c_double_free_huge, "double free", "invalid")
DEATH(test_free_stack_pointer, c_free_stack, "invalid", NULL)
DEATH(test_free_static_pointer, c_free_static, "invalid", NULL)
DEATH(test_free_foreign_mmap, c_free_mmap, "invalid", NULL)
DEATH(test_free_interior_p16, c_interior_16, "invalid", NULL)
DEATH(test_free_interior_p8, c_interior_8, "invalid", NULL)
DEATH(test_free_misaligned_p1, c_misaligned_1, "invalid", NULL)
DEATH(test_free_large_interior_page, c_large_interior_page, "invalid", NULL)
DEATH(test_free_large_interior_64, c_large_interior_64, "invalid", NULL)
DEATH(test_free_huge_interior_page, c_huge_interior_page, "invalid", NULL)
DEATH(test_free_huge_interior_16, c_huge_interior_16, "invalid", NULL)
DEATH(test_realloc_stack_pointer, c_realloc_stack, "invalid", NULL)
DEATH(test_realloc_interior_pointer, c_realloc_interior, "invalid", NULL)
DEATH(test_free_sized_wrong_size, c_free_sized_wrong, "free_sized: size larger", NULL)
DEATH(test_arena_free_sized_wrong_size, c_arena_free_sized_wrong, "free_sized: size larger", NULL)

static void test_control_valid_use_survives(void **state) {
  (void)state;
  struct outcome o;
  run_child(c_valid_use, &o);
  if (!o.exited || o.status != 0)
    fail_msg("valid use: child %s %d; stderr: \"%s\"", o.exited ? "exited" : "killed by signal",
             o.exited ? o.status : o.sig, o.err);
  assert_int_equal(o.errlen, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_control_valid_use_survives),
      cmocka_unit_test(test_double_free_small_16),
      cmocka_unit_test(test_double_free_small_64),
      cmocka_unit_test(test_double_free_small_3000),
      cmocka_unit_test(test_double_free_small_32k),
      cmocka_unit_test(test_double_free_emptied_span), /* caught by the limit, not the mark */
      cmocka_unit_test(test_double_free_after_activity),
      cmocka_unit_test(test_double_free_other_thread),
      cmocka_unit_test(test_double_free_foreign),
      cmocka_unit_test(test_double_free_foreign_by_owner),
      cmocka_unit_test(test_double_free_large),
      cmocka_unit_test(test_double_free_huge),
      cmocka_unit_test(test_free_stack_pointer),
      cmocka_unit_test(test_free_static_pointer),
      cmocka_unit_test(test_free_foreign_mmap),
      cmocka_unit_test(test_free_interior_p16),
      cmocka_unit_test(test_free_interior_p8),
      cmocka_unit_test(test_free_misaligned_p1),
      cmocka_unit_test(test_free_large_interior_page),
      cmocka_unit_test(test_free_large_interior_64),
      cmocka_unit_test(test_free_huge_interior_page),
      cmocka_unit_test(test_free_huge_interior_16),
      cmocka_unit_test(test_realloc_stack_pointer),
      cmocka_unit_test(test_realloc_interior_pointer),
      cmocka_unit_test(test_free_sized_wrong_size),
      cmocka_unit_test(test_arena_free_sized_wrong_size),
  };
  apply_test_filter();
  catch_aborts();
  return cmocka_run_group_tests_name("death", tests, NULL, NULL);
}
