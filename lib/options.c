/* Options from the environment. getenv() may not be called from inside an
 * allocator (some libcs allocate in it, and it may run before libc is set
 * up), so environ is walked directly, once, at initialisation. */
#include <string.h>

#include "internal.h"

extern char **environ;

struct options options = {
    .hugepages = HUGEPAGES_ON,
    .hugepage_after = (uint64_t)64 << 20,
    .decay_ms = 1000,
    .chunk_cache = 1,
    .huge_cache = (uint64_t)256 << 20,
    .show_stats = false,
    .verbose = false,
};

enum option_type { OPT_BOOL, OPT_U64, OPT_MB, OPT_HUGEPAGES };

struct option_desc {
  const char *name;
  enum option_type type;
  void *value;
};

static const struct option_desc option_table[] = {
    {"LIBARENA_HUGEPAGES", OPT_HUGEPAGES, &options.hugepages},
    {"LIBARENA_HUGEPAGE_AFTER_MB", OPT_MB, &options.hugepage_after},
    {"LIBARENA_DECAY_MS", OPT_U64, &options.decay_ms},
    {"LIBARENA_CHUNK_CACHE", OPT_U64, &options.chunk_cache},
    {"LIBARENA_HUGE_CACHE_MB", OPT_MB, &options.huge_cache},
    {"LIBARENA_SHOW_STATS", OPT_BOOL, &options.show_stats},
    {"LIBARENA_VERBOSE", OPT_BOOL, &options.verbose},
};
#define NUM_OPTIONS (sizeof(option_table) / sizeof(option_table[0]))

static bool parse_u64(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (*s == 0) return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return true;
}

/* Returns false when the text is malformed; the default then stays. */
static bool parse_option(const struct option_desc *o, const char *text) {
  uint64_t v;
  switch (o->type) {
  case OPT_BOOL:
    if (strcmp(text, "0") && strcmp(text, "1")) return false;
    *(bool *)o->value = text[0] == '1';
    return true;
  case OPT_U64:
    if (!parse_u64(text, &v)) return false;
    *(uint64_t *)o->value = v;
    return true;
  case OPT_MB:
    if (!parse_u64(text, &v) || v > ((uint64_t)1 << 44)) return false;
    *(uint64_t *)o->value = v << 20;
    return true;
  case OPT_HUGEPAGES:
    if (!strcmp(text, "0"))
      *(int *)o->value = HUGEPAGES_OFF;
    else if (!strcmp(text, "1"))
      *(int *)o->value = HUGEPAGES_ON;
    else if (!strcmp(text, "hugetlb"))
      *(int *)o->value = HUGEPAGES_HUGETLB;
    else
      return false;
    return true;
  }
  return false;
}

static void print_option(const struct option_desc *o) {
  static const char *const hugepage_names[] = {"0", "1", "hugetlb"};
  char digits[24];
  const char *val = digits;
  uint64_t num = 0;
  switch (o->type) {
  case OPT_BOOL: val = *(bool *)o->value ? "1" : "0"; break;
  case OPT_U64: num = *(uint64_t *)o->value; break;
  case OPT_MB: num = *(uint64_t *)o->value >> 20; break;
  case OPT_HUGEPAGES: val = hugepage_names[*(int *)o->value]; break;
  }
  if (val == digits) {
    int i = (int)sizeof(digits) - 1;
    digits[i] = 0;
    do digits[--i] = (char)('0' + num % 10);
    while ((num /= 10) != 0 && i > 0);
    val = digits + i;
  }
  char line[96];
  size_t n = strlen(o->name), m = strlen(val);
  if (n + m + 2 > sizeof(line)) return;
  memcpy(line, o->name, n);
  line[n] = '=';
  memcpy(line + n + 1, val, m + 1);
  warn("option ", line, NULL);
}

void options_init(void) {
  if (environ) {
    for (char **e = environ; *e; e++) {
      /* valgrind's memcheck preloads its own library into the program; other
       * valgrind tools (callgrind, cachegrind) need no annotations. */
      if (!strncmp(*e, "LD_PRELOAD=", 11) && strstr(*e, "vgpreload_memcheck")) options.memcheck = true;
      if (strncmp(*e, "LIBARENA_", 9) != 0) continue;
      const char *eq = strchr(*e, '=');
      if (!eq) continue;
      size_t len = (size_t)(eq - *e);
      const struct option_desc *o = NULL;
      for (size_t i = 0; i < NUM_OPTIONS; i++)
        if (strlen(option_table[i].name) == len && !strncmp(option_table[i].name, *e, len))
          o = &option_table[i];
      if (!o) {
        warn("unknown option ", *e, " (ignored)");
        continue;
      }
      if (!parse_option(o, eq + 1)) warn("malformed value ", *e, ", default used");
    }
  }
  if (options.verbose)
    for (size_t i = 0; i < NUM_OPTIONS; i++) print_option(&option_table[i]);
}
