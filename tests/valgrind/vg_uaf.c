/* Deliberate use after free of a libarena block: valgrind must report an
 * "Invalid read" (tests/test_valgrind.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  char *p = malloc(64);
  if (!p) return 2;
  memset(p, 'x', 64);
  free(p);
  volatile char *q = p;
  char c = q[10]; /* use after free */
  printf("read %d\n", c);
  return 0;
}
