/* Known-answer tests of the TLB model: strided passes over N pages, whose
 * misses follow from the geometry alone (LRU, sets = entries / ways, page
 * number modulo sets picks the set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tlbmodel.h"

#define K4 4096ull
#define M2 (2ull << 20)

/* passes sequential passes over n pages of 1 << shift bytes, one access each. */
static void sweep(struct tlb_model *m, uint64_t base, uint64_t n, unsigned shift, int passes) {
  for (int p = 0; p < passes; p++)
    for (uint64_t i = 0; i < n; i++) tlb_model_access(m, base + (i << shift), shift, 1);
}

static struct tlb_model fresh(void) {
  struct tlb_model m;
  assert_int_equal(tlb_model_init(&m, &tlb_default_config), 0);
  return m;
}

/* 64 pages fit the 64-entry L1: only the first pass misses, at both levels. */
static void test_4k_fits_l1(void **state) {
  (void)state;
  struct tlb_model m = fresh();
  sweep(&m, 0x10000000, 64, 12, 3);
  assert_int_equal(m.accesses, 192);
  assert_int_equal(m.l1_misses, 64);
  assert_int_equal(m.walks, 64);
  tlb_model_free(&m);
}

/* 128 pages: 8 per 4-way L1 set, cyclic LRU misses every time; the STLB
 * (1536 entries) holds them all, so walks are only the compulsory 128. */
static void test_4k_thrashes_l1_fits_l2(void **state) {
  (void)state;
  struct tlb_model m = fresh();
  sweep(&m, 0x10000000, 128, 12, 3);
  assert_int_equal(m.l1_misses, 384);
  assert_int_equal(m.walks, 128);
  tlb_model_free(&m);
}

/* 2048 pages: 16 per 12-way STLB set, every access walks. */
static void test_4k_thrashes_both(void **state) {
  (void)state;
  struct tlb_model m = fresh();
  sweep(&m, 0x10000000, 2048, 12, 2);
  assert_int_equal(m.l1_misses, 4096);
  assert_int_equal(m.walks, 4096);
  tlb_model_free(&m);
}

/* Exactly the STLB's capacity, 1536 pages: second pass has no walks. */
static void test_4k_exact_l2_capacity(void **state) {
  (void)state;
  struct tlb_model m = fresh();
  sweep(&m, 0, 1536, 12, 2);
  assert_int_equal(m.walks, 1536);
  assert_int_equal(m.l1_misses, 3072);
  tlb_model_free(&m);
}

/* 2 MiB pages: 32 fit the 32-entry L1; 64 thrash it but fit the STLB. */
static void test_2m(void **state) {
  (void)state;
  struct tlb_model m = fresh();
  sweep(&m, 0x40000000, 32, 21, 3);
  assert_int_equal(m.l1_misses, 32);
  assert_int_equal(m.walks, 32);
  assert_int_equal(m.huge_accesses, 96);
  tlb_model_reset(&m);
  sweep(&m, 0x40000000, 64, 21, 3);
  assert_int_equal(m.l1_misses, 192);
  assert_int_equal(m.walks, 64);
  tlb_model_free(&m);
}

/* The same 64 MiB touched every 4 KiB: 16384 4 KiB pages walk on every
 * access; backed by 2 MiB pages only the 32 compulsory misses remain. */
static void test_same_region_both_sizes(void **state) {
  (void)state;
  struct tlb_model m = fresh();
  uint64_t base = 0x80000000ull, n = (64ull << 20) / K4;
  for (int p = 0; p < 2; p++)
    for (uint64_t i = 0; i < n; i++) tlb_model_access(&m, base + i * K4, 12, 1);
  assert_int_equal(m.walks, 2 * n);
  tlb_model_reset(&m);
  for (int p = 0; p < 2; p++)
    for (uint64_t i = 0; i < n; i++) tlb_model_access(&m, base + i * K4, 21, 1);
  assert_int_equal(m.walks, (64ull << 20) / M2);
  assert_int_equal(m.l1_misses, 32);
  tlb_model_free(&m);
}

/* Repeated accesses to one page count as accesses, not lookups. */
static void test_runs_count_as_hits(void **state) {
  (void)state;
  struct tlb_model m = fresh();
  tlb_model_access(&m, 0x1000, 12, 100);
  tlb_model_access(&m, 0x1008, 12, 1);
  assert_int_equal(m.accesses, 101);
  assert_int_equal(m.lookups, 2);
  assert_int_equal(m.l1_misses, 1);
  tlb_model_free(&m);
}

/* A 4 KiB page and the 2 MiB page with the same number are different
 * translations in the shared STLB. */
static void test_sizes_do_not_alias(void **state) {
  (void)state;
  struct tlb_model m = fresh();
  tlb_model_access(&m, 5ull << 12, 12, 1);
  tlb_model_access(&m, 5ull << 21, 21, 1);
  assert_int_equal(m.walks, 2);
  tlb_model_free(&m);
}

static void test_config_parse(void **state) {
  (void)state;
  struct tlb_config c = tlb_default_config;
  assert_int_equal(tlb_config_parse(&c, "l1_4k=48:12,l2=2048:16"), 0);
  assert_int_equal(c.l1_4k.entries, 48);
  assert_int_equal(c.l1_4k.ways, 12);
  assert_int_equal(c.l1_2m.entries, 32);
  assert_int_equal(c.l2.entries, 2048);
  assert_int_equal(tlb_config_parse(&c, "l1_4k=50:4"), -1); /* not sets * ways */
  assert_int_equal(tlb_config_parse(&c, "l3=1:1"), -1);
  assert_int_equal(tlb_config_parse(&c, "l2=1536"), -1);
  /* A smaller custom geometry changes the answer as expected: 8 pages fit an
   * 8-entry fully associative L1, 9 thrash it. */
  struct tlb_config small = {{8, 8}, {0, 0}, {0, 0}};
  struct tlb_model m;
  assert_int_equal(tlb_model_init(&m, &small), 0);
  sweep(&m, 0, 8, 12, 2);
  assert_int_equal(m.l1_misses, 8);
  tlb_model_reset(&m);
  sweep(&m, 0, 9, 12, 2);
  assert_int_equal(m.l1_misses, 18);
  assert_int_equal(m.walks, 18); /* no STLB configured: every L1 miss walks */
  tlb_model_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_4k_fits_l1),
      cmocka_unit_test(test_4k_thrashes_l1_fits_l2),
      cmocka_unit_test(test_4k_thrashes_both),
      cmocka_unit_test(test_4k_exact_l2_capacity),
      cmocka_unit_test(test_2m),
      cmocka_unit_test(test_same_region_both_sizes),
      cmocka_unit_test(test_runs_count_as_hits),
      cmocka_unit_test(test_sizes_do_not_alias),
      cmocka_unit_test(test_config_parse),
  };
  return cmocka_run_group_tests_name("bench_tlbmodel", tests, NULL, NULL);
}
