/* sort's pattern of huge buffers, as in bench/traces/sort.rep: a 16 MiB + 32
 * byte buffer written and freed, then two of 8 MiB + 32 written, then both
 * freed, PASSES times. Prints the resident set's growth (VmRSS) and its
 * peak (VmHWM) in KiB after each step.
 *
 *   cc -O2 -o /tmp/sort_buffers results/huge-placement/sort_buffers.c
 *   LD_PRELOAD=$PWD/lib/libarena.so /tmp/sort_buffers 3 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, field, strlen(field))) v = atol(line + strlen(field));
  if (f) fclose(f);
  return v;
}

static void touch(char *p, size_t n) {
  for (size_t o = 0; o < n; o += 4096) p[o] = 1;
  p[n - 1] = 1;
}

int main(int argc, char **argv) {
  int passes = argc > 1 ? atoi(argv[1]) : 1;
  const size_t whole = ((size_t)16 << 20) + 32, half = ((size_t)8 << 20) + 32;
  long r0 = status_kb("VmRSS:");
  for (int k = 0; k < passes; k++) {
    char *a = malloc(whole);
    touch(a, whole);
    printf("pass %d: 16 MiB: rss %ld hwm %ld\n", k, status_kb("VmRSS:") - r0, status_kb("VmHWM:") - r0);
    free(a);
    char *b = malloc(half), *c;
    touch(b, half);
    c = malloc(half);
    touch(c, half);
    printf("pass %d: 2 x 8 MiB: rss %ld hwm %ld\n", k, status_kb("VmRSS:") - r0, status_kb("VmHWM:") - r0);
    free(c);
    free(b);
  }
  return 0;
}
