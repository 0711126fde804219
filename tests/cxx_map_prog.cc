// A real C++ program for test_real_programs.sh: std::map/std::string/vector
// churn with a deterministic digest on stdout. Built without libarena and run
// with and without LD_PRELOAD; the outputs must be identical.
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

static uint64_t rng = 88172645463325252ull;
static uint64_t next() {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

int main() {
  std::map<std::string, std::vector<int>> m;
  std::unordered_map<uint64_t, std::string> u;
  std::vector<std::unique_ptr<std::string>> owned;
  uint64_t digest = 1469598103934665603ull;
  auto mix = [&](uint64_t v) { digest = (digest ^ v) * 1099511628211ull; };
  for (int i = 0; i < 400000; i++) {
    uint64_t r = next();
    std::string key = "k" + std::to_string(r % 50000) + std::string(r % 23, 'z');
    switch (r % 5) {
    case 0: m.erase(key); break;
    case 1: u[r % 30000] = key + key; break;
    case 2:
      owned.emplace_back(new std::string(r % 2000, 'a' + (char)(r % 26)));
      if (owned.size() > 5000) owned.erase(owned.begin(), owned.begin() + 2500);
      break;
    default: {
      auto &v = m[key];
      v.resize((r >> 16) % 100);
      for (size_t k = 0; k < v.size(); k++) v[k] = (int)(k * 31 + (r & 0xff));
    }
    }
  }
  for (auto &kv : m) {
    for (char c : kv.first) mix((uint8_t)c);
    for (int x : kv.second) mix((uint32_t)x);
  }
  uint64_t usum = 0;
  for (auto &kv : u) usum += kv.first * kv.second.size();
  size_t olen = 0;
  for (auto &s : owned) olen += s->size();
  std::printf("map %zu entries, digest %016llx\n", m.size(), (unsigned long long)digest);
  std::printf("unordered %zu entries, sum %llu\n", u.size(), (unsigned long long)usum);
  std::printf("owned %zu strings, %zu bytes\n", owned.size(), olen);
  return 0;
}
