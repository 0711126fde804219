/* Runs a test case in a forked child and collects how it ended and what it
 * wrote on stderr: the death tests (a misuse must end in SIGABRT or SIGSEGV
 * with libarena's one-line message, or in a sanitizer's report). */
#ifndef TESTS_CHILD_H
#define TESTS_CHILD_H

#include <sys/resource.h>
#include <sys/wait.h>

#include "common.h"

struct outcome {
  int signaled, sig, exited, status;
  char err[16384];
  size_t errlen;
  uintptr_t ptr; /* the pointer the child announced before the bad call */
  int have_ptr;
};

static int g_info_fd = -1;

/* Tells the parent which pointer is about to be misused. */
static inline void announce(const void *p) {
  uintptr_t v = (uintptr_t)p;
  if (write(g_info_fd, &v, sizeof v) != (ssize_t)sizeof v) _exit(99);
}

static inline void run_child(void (*fn)(void), struct outcome *o) {
  memset(o, 0, sizeof *o);
  int errp[2], infop[2];
  assert_int_equal(pipe(errp), 0);
  assert_int_equal(pipe(infop), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    signal(SIGABRT, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    alarm(30);
    close(errp[0]);
    close(infop[0]);
    dup2(errp[1], 2);
    close(errp[1]);
    g_info_fd = infop[1];
    fn();
    _exit(0);
  }
  close(errp[1]);
  close(infop[1]);
  for (;;) {
    ssize_t r = read(errp[0], o->err + o->errlen, sizeof o->err - 1 - o->errlen);
    if (r <= 0) break;
    o->errlen += (size_t)r;
  }
  o->err[o->errlen] = 0;
  uintptr_t v;
  if (read(infop[0], &v, sizeof v) == (ssize_t)sizeof v) {
    o->ptr = v;
    o->have_ptr = 1;
  }
  close(errp[0]);
  close(infop[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  o->signaled = WIFSIGNALED(st);
  o->sig = o->signaled ? WTERMSIG(st) : 0;
  o->exited = WIFEXITED(st);
  o->status = o->exited ? WEXITSTATUS(st) : 0;
}

#endif
