/* A program with known heap calls, recorded by test_recorder under
 * librecord.so. It avoids stdio, whose buffers would add calls. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define THREAD_BLOCKS 1000

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < THREAD_BLOCKS; i++) {
    char *p = malloc(777);
    memset(p, 1, 777);
    free(p);
  }
  return NULL;
}

int main(void) {
  char *p = malloc(100);
  char *q = calloc(10, 20);
  char *q2 = realloc(q, 400);
  if (!q2) {
    free(p);
    free(q);
    return 1;
  }
  free(p);
  void *r = aligned_alloc(64, 128);
  void *s = NULL;
  if (posix_memalign(&s, 32, 48) != 0) {
    free(q2);
    free(r);
    return 1;
  }
  free(q2);
  free(r);
  free(s);
  char *t = realloc(NULL, 24);
  char *t2 = realloc(t, 0); /* frees t under glibc and returns NULL */
  free(t2);
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, worker, NULL);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  return 0;
}
