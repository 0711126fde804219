/* Deliberate leak of libarena blocks: valgrind must report "definitely lost"
 * (tests/test_valgrind.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void leak(void) {
  char *p = malloc(100); /* the only pointer is dropped on return */
  if (p) memset(p, 1, 100);
  char *q = malloc(200000);
  if (q) memset(q, 2, 200000);
}

static void *keep; /* still reachable at exit: not reported as lost */

int main(void) {
  leak();
  keep = malloc(40);
  printf("leaked, kept %p\n", keep);
  return 0;
}
