/* Default ThreadSanitizer options of the TSan stress programs (linked into
 * each; TSAN_OPTIONS in the environment still overrides them):
 *   - report every race, keep running, exit 66 at the end if any was found;
 *   - second_deadlock_stack: both stacks of a lock-order inversion;
 *   - suppressions: tests/sanitize/tsan.supp (benign races, each explained). */
#ifndef TSAN_SUPPRESSIONS
#define TSAN_SUPPRESSIONS ""
#endif
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) {
  return "halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=7:suppressions=" TSAN_SUPPRESSIONS;
}
