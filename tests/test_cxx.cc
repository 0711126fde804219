// C++ operators new/delete served by libarena (cmocka compiled as C++).
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "common.h"

// ---- every operator is libarena's ------------------------------------------

static const char *const cxx_symbols[] = {
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv",
    "_ZdaPv",
    "_ZdlPvm",
    "_ZdaPvm",
    "_ZdlPvRKSt9nothrow_t",
    "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

static void test_operators_resolve_to_libarena(void **) {
  for (const char *name : cxx_symbols) {
    void *sym = dlsym(RTLD_DEFAULT, name);
    if (!sym) fail_msg("%s not found", name);
    Dl_info info;
    if (!dladdr(sym, &info) || !info.dli_fname) fail_msg("dladdr(%s) failed", name);
    if (!strstr(info.dli_fname, "libarena"))
      fail_msg("%s resolves to %s, not libarena", name, info.dli_fname);
  }
}

// ---- containers --------------------------------------------------------------

static std::vector<int> value_for(const std::string &key, size_t len) {
  std::vector<int> v(len);
  int h = (int)std::hash<std::string>{}(key);
  for (size_t i = 0; i < len; i++) v[i] = h + (int)i * 7;
  return v;
}

static void test_map_churn(void **) {
  struct arena_stats s0 = stats_now();
  uint64_t rng = 12345;
  std::map<std::string, std::vector<int>> m;
  std::map<std::string, size_t> lens;
  for (int i = 0; i < 150000; i++) {
    uint64_t r = rng_next(&rng);
    std::string key = "key-" + std::to_string(r % 20000) + std::string(r % 40, 'x');
    if (r % 3 == 0) {
      m.erase(key);
      lens.erase(key);
    } else {
      size_t len = (r >> 20) % (r % 97 == 0 ? 20000 : 60);
      m[key] = value_for(key, len);
      lens[key] = len;
    }
    if (i == 100000) {
      struct arena_stats s1 = stats_now();
      if (s1.allocated_bytes <= s0.allocated_bytes)
        fail_msg("allocated_bytes did not grow (%llu -> %llu) while the map is full",
                 (unsigned long long)s0.allocated_bytes, (unsigned long long)s1.allocated_bytes);
    }
  }
  assert_int_equal(m.size(), lens.size());
  for (auto &kv : m) {
    if (kv.second != value_for(kv.first, lens[kv.first]))
      fail_msg("map value for %s corrupted", kv.first.c_str());
  }
  m.clear();
  lens.clear();
  assert_heap_ok();
}

// ---- new/delete forms --------------------------------------------------------------

struct alignas(64) A64 {
  char c[100];
};
struct alignas(4096) A4096 {
  char c[5000];
};
struct alignas(1 << 16) A64K {
  int x;
};

static void test_new_delete_forms(void **) {
  for (int round = 0; round < 100; round++) {
    int *i = (int *)launder(new int(round)); // launder: no new/delete elision
    assert_int_equal(*i, round);
    delete i;

    size_t n = 10 + (size_t)round * 1000;
    int *arr = (int *)launder(new int[n]);
    for (size_t k = 0; k < n; k++) arr[k] = (int)k;
    for (size_t k = 0; k < n; k++) assert_int_equal(arr[k], (int)k);
    delete[] arr;

    char *nt = (char *)launder(new (std::nothrow) char[n]);
    assert_non_null(nt);
    memset(nt, 1, n);
    delete[] nt;

    void *raw = ::operator new(n);
    memset(raw, 2, n);
    ::operator delete(raw, n); // sized
    raw = ::operator new[](n);
    ::operator delete[](raw, n);

    A64 *a = (A64 *)launder(new A64);
    assert_aligned(a, 64);
    memset(a->c, 3, sizeof a->c);
    delete a;
    A64 *aa = (A64 *)launder(new A64[7]);
    assert_aligned(aa, 64);
    delete[] aa;
    A4096 *b = (A4096 *)launder(new A4096);
    assert_aligned(b, 4096);
    memset(b->c, 4, sizeof b->c);
    delete b;
    A4096 *bb = (A4096 *)launder(new A4096[3]);
    assert_aligned(bb, 4096);
    delete[] bb;
    A64K *c = (A64K *)launder(new A64K);
    assert_aligned(c, 1 << 16);
    c->x = 5;
    delete c;

    for (size_t al = 16; al <= (1u << 20); al <<= 2) {
      void *p = ::operator new(n, std::align_val_t(al));
      assert_aligned(p, al);
      memset(p, 5, n);
      if (round % 2)
        ::operator delete(p, n, std::align_val_t(al));
      else
        ::operator delete(p, std::align_val_t(al));
      p = ::operator new[](n, std::align_val_t(al), std::nothrow);
      assert_non_null(p);
      assert_aligned(p, al);
      ::operator delete[](p, std::align_val_t(al));
    }
  }
  assert_heap_ok();
}

static void test_new_huge_and_large_counted(void **) {
  struct arena_stats s0 = stats_now();
  char *h = (char *)launder(new char[3 * MiB]);
  memset(h, 1, 3 * MiB);
  char *l = (char *)launder(new char[200 * KiB]);
  memset(l, 1, 200 * KiB);
  struct arena_stats s1 = stats_now();
  if (s1.huge_blocks < s0.huge_blocks + 1) fail_msg("new char[3 MiB] not counted as a huge block");
  if (s1.large_blocks < s0.large_blocks + 1) fail_msg("new char[200 KiB] not counted as a large block");
  if (s1.allocated_bytes < s0.allocated_bytes + 3 * MiB + 200 * KiB)
    fail_msg("allocated_bytes grew by %llu only",
             (unsigned long long)(s1.allocated_bytes - s0.allocated_bytes));
  assert_true(arena_usable_size(h) >= 3 * MiB);
  assert_true(arena_usable_size(l) >= 200 * KiB);
  delete[] h;
  delete[] l;
  struct arena_stats s2 = stats_now();
  assert_int_equal(s2.huge_blocks, s1.huge_blocks - 1);
  assert_int_equal(s2.large_blocks, s1.large_blocks - 1);
  assert_true(s1.thread_generations >= 1);
}

// ---- failure ------------------------------------------------------------------

static void test_impossible_new_throws(void **) {
  size_t huge = launder_size(SIZE_MAX / 2);
  bool thrown = false;
  try {
    void *p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  assert_true(thrown);
  thrown = false;
  try {
    char *p = (char *)launder(new char[huge]);
    delete[] p;
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  assert_true(thrown);
  thrown = false;
  try {
    void *p = ::operator new(huge, std::align_val_t(4096));
    ::operator delete(p, std::align_val_t(4096));
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  assert_true(thrown);
  thrown = false;
  try {
    void *p = ::operator new[](launder_size(SIZE_MAX), std::align_val_t(64));
    ::operator delete[](p, std::align_val_t(64));
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  assert_true(thrown);

  assert_null(::operator new(huge, std::nothrow));
  assert_null(::operator new[](huge, std::nothrow));
  assert_null(::operator new(huge, std::align_val_t(64), std::nothrow));
  assert_null(::operator new[](huge, std::align_val_t(4096), std::nothrow));
  char *p = (char *)launder(new (std::nothrow) char[huge]);
  assert_null(p);
}

static int g_handler_calls;
static void counting_handler() {
  g_handler_calls++;
  std::set_new_handler(nullptr); // next attempt throws
}

// operator new calls the new_handler before giving up.
static void test_new_handler_called(void **) {
  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  bool thrown = false;
  try {
    void *p = ::operator new(launder_size(SIZE_MAX / 2));
    ::operator delete(p);
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  std::set_new_handler(nullptr);
  assert_true(thrown);
  assert_int_equal(g_handler_calls, 1);

  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  void *q = ::operator new(launder_size(SIZE_MAX / 2), std::nothrow);
  std::set_new_handler(nullptr);
  assert_null(q);
  assert_int_equal(g_handler_calls, 1);
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_operators_resolve_to_libarena),
      cmocka_unit_test(test_map_churn),
      cmocka_unit_test(test_new_delete_forms),
      cmocka_unit_test(test_new_huge_and_large_counted),
      cmocka_unit_test(test_impossible_new_throws),
      cmocka_unit_test(test_new_handler_called),
  };
  apply_test_filter();
  catch_aborts();
  return cmocka_run_group_tests_name("cxx", tests, NULL, NULL);
}
