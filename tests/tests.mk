# libarena test suite (included by the top-level Makefile after stress.mk and
# bench.mk, which append to TEST_PROGRAMS and TEST_SCRIPTS).
#
#   make test          build the library and every test program, run them all
#   make tests-build   only build the test programs (under build/tests)
#   make glibc-probe   print what glibc itself does for the corner cases that
#                      test_conformance.c checks (no libarena involved)
#
# To check the tests themselves against another allocator, override how the
# programs get libarena, e.g. TEST_ARENA_LIBS=/path/shim.so TEST_ARENA_DEP= TEST_STATIC=

TEST_BUILD      := $(BUILD)/tests
TEST_CFLAGS     := -std=gnu11 -O1 -g -D_GNU_SOURCE -fno-builtin -Iinclude -Itests $(WARN) $(EXTRA_TEST_CFLAGS)
TEST_CXXFLAGS   := -std=gnu++17 -O1 -g -fno-builtin -Iinclude -Itests $(WARN) $(EXTRA_TEST_CFLAGS)
TEST_ARENA_LIBS ?= -Llib -larena -Wl,-rpath,$(CURDIR)/lib
TEST_ARENA_DEP  ?= lib/libarena.so
# Also run test_conformance linked with lib/libarena.a.
TEST_STATIC     ?= 1

TEST_C_NAMES    := conformance threads death oom
TEST_CMOCKA     := $(TEST_C_NAMES:%=$(TEST_BUILD)/test_%) $(TEST_BUILD)/test_cxx
ifneq ($(TEST_STATIC),)
TEST_CMOCKA     += $(TEST_BUILD)/test_conformance_static
endif
TEST_HELPERS    := $(TEST_BUILD)/cxx_map_prog
TEST_OWN_SCRIPTS := tests/test_real_programs.sh

# Reliability tooling (docs/reliability.md): ASan+UBSan and hardened-build
# cmocka programs, valgrind and fuzzing scripts. The TSan stress programs are
# added to TEST_PROGRAMS by stress/stress.mk.
TEST_CMOCKA      += $(TEST_BUILD)/test_asan $(TEST_BUILD)/test_secure $(TEST_BUILD)/test_internal
TEST_VG_PROGS    := $(TEST_BUILD)/vg_clean $(TEST_BUILD)/vg_uaf $(TEST_BUILD)/vg_leak
TEST_HELPERS     += $(TEST_VG_PROGS) $(BUILD)/fuzz/fuzz_alloc
TEST_OWN_SCRIPTS += tests/test_valgrind.sh tests/fuzz/test_fuzz.sh

.PHONY: test tests-build glibc-probe

test: deps-test all secure tests-build $(TEST_PROGRAMS) $(TEST_CMOCKA_PROGRAMS)
	@TEST_BUILD_DIR=$(CURDIR)/$(TEST_BUILD) ARENA_TEST_SO=$(CURDIR)/lib/libarena.so \
	  tests/run.sh --cmocka $(TEST_CMOCKA) $(TEST_CMOCKA_PROGRAMS) --plain $(TEST_PROGRAMS) \
	  --script $(TEST_OWN_SCRIPTS) $(TEST_SCRIPTS)

tests-build: $(TEST_CMOCKA) $(TEST_HELPERS)

$(TEST_BUILD)/test_%: tests/test_%.c tests/common.h tests/child.h include/arena.h tests/tests.mk $(TEST_ARENA_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $< -o $@ $(TEST_ARENA_LIBS) -lcmocka -lpthread

# Unit tests of the internals: linked with the archive, reading lib/internal.h.
$(TEST_BUILD)/test_internal: tests/test_internal.c include/arena.h lib/internal.h tests/tests.mk lib/libarena.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Ilib $< -o $@ lib/libarena.a -lcmocka -lpthread

$(TEST_BUILD)/test_conformance_static: tests/test_conformance.c tests/common.h tests/child.h include/arena.h tests/tests.mk lib/libarena.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -rdynamic $< -o $@ lib/libarena.a -lcmocka -lpthread

$(TEST_BUILD)/test_cxx: tests/test_cxx.cc tests/common.h tests/child.h include/arena.h tests/tests.mk $(TEST_ARENA_DEP)
	@mkdir -p $(dir $@)
	$(CXX) $(TEST_CXXFLAGS) $< -o $@ $(TEST_ARENA_LIBS) -lcmocka -lpthread

# Built without libarena: test_real_programs.sh runs it with and without LD_PRELOAD.
$(TEST_BUILD)/cxx_map_prog: tests/cxx_map_prog.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=gnu++17 -O2 $(WARN) $< -o $@

glibc-probe: tests/glibc_probe.c
	@mkdir -p $(TEST_BUILD)
	$(CC) -std=gnu11 -O0 -fno-builtin -D_GNU_SOURCE $(WARN) $< -o $(TEST_BUILD)/glibc_probe
	$(TEST_BUILD)/glibc_probe

# ---- reliability: sanitizers, valgrind, hardened build, fuzzing -------------
# (docs/reliability.md). Each is part of `make test`; alone:
#   make test-asan       tests/test_asan.c: ASan+UBSan build over the arena_* API
#   make test-tsan       stress programs + a copy of libarena built with TSan (stress/stress.mk)
#   make test-valgrind   tests/test_valgrind.sh: memcheck clean run, use after free, leak, python3
#   make test-secure     tests/test_secure.c against lib/libarena-secure.so
#   make test-fuzz       short libFuzzer run (tests/fuzz/fuzz.mk); make fuzz for a longer one
.PHONY: test-asan test-valgrind test-secure

TEST_ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
$(TEST_BUILD)/test_asan: tests/test_asan.c tests/common.h tests/child.h include/arena.h tests/tests.mk $(TEST_ARENA_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(TEST_ASAN_FLAGS) $< -o $@ $(TEST_ARENA_LIBS) -lcmocka -lpthread

$(TEST_BUILD)/test_secure: tests/test_secure.c tests/common.h tests/child.h include/arena.h tests/tests.mk lib/libarena-secure.so
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $< -o $@ -Llib -l:libarena-secure.so -Wl,-rpath,$(CURDIR)/lib -lcmocka -lpthread

$(TEST_VG_PROGS): $(TEST_BUILD)/%: tests/valgrind/%.c include/arena.h tests/tests.mk $(TEST_ARENA_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $< -o $@ $(TEST_ARENA_LIBS) -lpthread

test-asan: all $(TEST_BUILD)/test_asan
	@tests/run.sh --cmocka $(TEST_BUILD)/test_asan
test-secure: all secure $(TEST_BUILD)/test_secure
	@tests/run.sh --cmocka $(TEST_BUILD)/test_secure
test-valgrind: all $(TEST_VG_PROGS)
	@TEST_BUILD_DIR=$(CURDIR)/$(TEST_BUILD) tests/run.sh --script tests/test_valgrind.sh

include tests/fuzz/fuzz.mk
