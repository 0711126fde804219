/* The loop whose instructions callgrind counts for the fast-path figures:
 *   fastpath pair  SIZE N   N times: p = malloc(SIZE); free(p);
 *   fastpath batch SIZE N   N/64 times: 64 mallocs, then the 64 frees.
 * Run once with N and once with 2N; the difference divided by N is the cost
 * of one malloc+free pair with start-up cancelled out (bench/fastpath/run.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s pair|batch SIZE N\n", argv[0]);
    return 2;
  }
  size_t size = strtoul(argv[2], NULL, 10);
  long n = strtol(argv[3], NULL, 10);
  void *volatile sink;
  void *batch[64];
  /* Warm up: the first calls take the slow path once per size class. */
  for (int i = 0; i < 64; i++) batch[i] = malloc(size);
  for (int i = 0; i < 64; i++) free(batch[i]);
  if (!strcmp(argv[1], "pair")) {
    for (long i = 0; i < n; i++) {
      void *p = malloc(size);
      sink = p;
      free(p);
    }
  } else {
    for (long i = 0; i < n / 64; i++) {
      for (int j = 0; j < 64; j++) batch[j] = malloc(size);
      sink = batch[0];
      for (int j = 0; j < 64; j++) free(batch[j]);
    }
  }
  (void)sink;
  return 0;
}
