/* Process-wide set-up, fork handling and the exit report.
 *
 * Initialisation runs on the first allocation or from the library
 * constructor, whichever comes first, and allocates nothing itself. Fork
 * takes every allocator lock in the parent before the fork, so the child
 * inherits them unlocked and consistent. */
#include <sched.h>

#include "internal.h"

_Atomic int init_state;
uint64_t global_secret;

static void fork_prepare(void) {
  arenas_lock();
  abandoned_lock();
  backend_lock();
}

static void fork_parent(void) {
  backend_unlock();
  abandoned_unlock();
  arenas_unlock();
}

static void fork_child(void) {
  backend_after_fork_child();
  abandoned_after_fork_child();
  arenas_after_fork_child();
}

void global_init(void) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&init_state, &expected, 1)) {
    global_secret = os_random();
    annotate_init();
    options_init();
    size_classes_init();
    arena_key_create();
    atomic_store(&init_state, 2);
    /* After the state is 2: glibc may allocate while registering. */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    return;
  }
  while (atomic_load(&init_state) != 2) sched_yield();
}

__attribute__((constructor)) static void library_init(void) {
  if (init_state != 2) global_init();
}

static void stats_to_stderr(void *arg, const char *s, size_t n) {
  (void)arg;
  write_all(2, s, n);
}

__attribute__((destructor)) static void library_exit(void) {
  if (init_state == 2 && options.show_stats) arena_stats_print(stats_to_stderr, NULL, ARENA_STATS_TEXT);
}
