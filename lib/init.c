/* Process-wide set-up, fork handling and the exit report.
 *
 * Initialisation runs on the first allocation or from the library
 * constructor, whichever comes first, and allocates nothing itself. Fork
 * takes every allocator lock in the parent before the fork, so the child
 * inherits them unlocked and consistent. */
#include <fcntl.h>
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
    options_init();
    annotate_init();
    size_classes_init();
    arena_key_create();
    atomic_store(&init_state, 2);
    /* After the state is 2: glibc may allocate while registering. */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    return;
  }
  while (atomic_load(&init_state) != 2) sched_yield();
}

/* The exit report goes to a copy of stderr taken at start: programs such as
 * sort close fd 2 in their own exit handlers, before library destructors. */
static int stats_fd = -1;

static void stats_to_fd(void *arg, const char *s, size_t n) {
  (void)arg;
  write_all(stats_fd, s, n);
}

__attribute__((constructor)) static void library_init(void) {
  if (init_state != 2) global_init();
  if (options.show_stats) stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
}

__attribute__((destructor)) static void library_exit(void) {
  if (init_state == 2 && options.show_stats && stats_fd >= 0)
    arena_stats_print(stats_to_fd, NULL, ARENA_STATS_TEXT);
}
