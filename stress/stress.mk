# Stress programs (included by the root Makefile).
#
#   build/stress/NAME       linked with -larena (libarena overrides malloc)
#   build/stress/NAME-sys   linked without it: runs on the system allocator, or
#                           on any other with LD_PRELOAD=...; arena_check and
#                           arena_stats_get are then skipped (weak references)
#
# Run without options, every program does its short form (a few seconds);
# `make test` runs those. `make stress` runs the full forms (STRESS_FULL_*).
#   make stress-quick         short forms on libarena
#   make stress-sys           short forms on the system allocator (glibc)
#   make stress-sys STRESS_PRELOAD=/path/lib.so    ... on a preloaded one
#   make stress-full-sys      full forms on the system allocator
# Extra flags (e.g. for ThreadSanitizer): EXTRA_CFLAGS, EXTRA_LDFLAGS.

STRESS_NAMES := transfer prodcons freeonly forkstorm pressure soak
STRESS_DIR   := $(BUILD)/stress
STRESS_BINS  := $(STRESS_NAMES:%=$(STRESS_DIR)/%)
STRESS_SYS   := $(STRESS_NAMES:%=$(STRESS_DIR)/%-sys)
STRESS_CFLAGS := -std=gnu11 -D_GNU_SOURCE -pthread -Iinclude -Istress $(WARN) $(CFLAGS) $(EXTRA_CFLAGS)
STRESS_LIBS  := -Llib -larena -Wl,-rpath,$(CURDIR)/lib -lpthread

# Full forms, run by `make stress`.
STRESS_FULL_transfer  := --threads 8 --rounds 40 --scale 5
STRESS_FULL_prodcons  := --threads 8 --scale 3 --batch 4096
STRESS_FULL_freeonly  := --threads 4 --scale 10
STRESS_FULL_forkstorm := --threads 4 --forks 1000
STRESS_FULL_pressure  := --threads 8 --rounds 40 --limit-mib 512
STRESS_FULL_soak      := --threads 8 --seconds 300 --check 3

TEST_PROGRAMS += $(STRESS_BINS)

.PHONY: stress stress-bins stress-quick stress-sys stress-full-sys
stress-bins: $(STRESS_BINS) $(STRESS_SYS)

$(STRESS_DIR)/%.o: stress/%.c stress/common.h include/arena.h stress/stress.mk
	@mkdir -p $(dir $@)
	$(CC) $(STRESS_CFLAGS) -c $< -o $@

$(STRESS_BINS): $(STRESS_DIR)/%: $(STRESS_DIR)/%.o $(STRESS_DIR)/common.o lib/libarena.so
	$(CC) $(STRESS_CFLAGS) -o $@ $< $(STRESS_DIR)/common.o $(LDFLAGS) $(EXTRA_LDFLAGS) $(STRESS_LIBS)

$(STRESS_SYS): $(STRESS_DIR)/%-sys: $(STRESS_DIR)/%.o $(STRESS_DIR)/common.o
	$(CC) $(STRESS_CFLAGS) -o $@ $< $(STRESS_DIR)/common.o $(LDFLAGS) $(EXTRA_LDFLAGS) -lpthread

stress: all $(STRESS_BINS)
	@fail=0; $(foreach p,$(STRESS_NAMES),echo "== $(STRESS_DIR)/$(p) $(STRESS_FULL_$(p))"; \
	  $(STRESS_DIR)/$(p) $(STRESS_FULL_$(p)) || fail=1;) exit $$fail

stress-quick: all $(STRESS_BINS)
	@fail=0; $(foreach p,$(STRESS_NAMES),echo "== $(STRESS_DIR)/$(p)"; \
	  $(STRESS_DIR)/$(p) || fail=1;) exit $$fail

STRESS_PRELOAD ?=
stress-sys: $(STRESS_SYS)
	@fail=0; $(foreach p,$(STRESS_NAMES),echo "== $(STRESS_DIR)/$(p)-sys"; \
	  LD_PRELOAD=$(STRESS_PRELOAD) $(STRESS_DIR)/$(p)-sys || fail=1;) exit $$fail

stress-full-sys: $(STRESS_SYS)
	@fail=0; $(foreach p,$(STRESS_NAMES),echo "== $(STRESS_DIR)/$(p)-sys $(STRESS_FULL_$(p))"; \
	  LD_PRELOAD=$(STRESS_PRELOAD) $(STRESS_DIR)/$(p)-sys $(STRESS_FULL_$(p)) || fail=1;) exit $$fail

# ---- ThreadSanitizer build: `make test-tsan` --------------------------------
# A copy of libarena built from lib/*.c with LIB_CFLAGS plus -fsanitize=thread
# (build/tsan/libarena-tsan.so) and the stress programs built with TSan and
# linked against it. tests/sanitize/arena_api.h (forced include) sends the
# programs' malloc/free/... to arena_*: the TSan runtime otherwise takes those
# names. tests/sanitize/tsan_options.c sets the runtime's default options
# (report and exit 66 on a race; see docs/reliability.md).
TSAN_DIR      := $(BUILD)/tsan
TSAN_FLAGS    := -fsanitize=thread -fno-omit-frame-pointer
TSAN_LIB_OBJS := $(LIB_SRCS:lib/%.c=$(TSAN_DIR)/lib/%.o)
TSAN_LIB      := $(TSAN_DIR)/libarena-tsan.so
TSAN_BINS     := $(STRESS_NAMES:%=$(TSAN_DIR)/stress/%)
TSAN_STRESS_CFLAGS := $(STRESS_CFLAGS) $(TSAN_FLAGS) -include tests/sanitize/arena_api.h
TEST_PROGRAMS += $(TSAN_BINS)

.PHONY: test-tsan tsan-bins
tsan-bins: $(TSAN_BINS)

$(TSAN_DIR)/lib/%.o: lib/%.c $(LIB_HDRS) Makefile stress/stress.mk
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(TSAN_FLAGS) -c $< -o $@

$(TSAN_LIB): $(TSAN_LIB_OBJS)
	$(CC) -shared $(TSAN_FLAGS) -Wl,-soname,libarena-tsan.so -Wl,-z,now -o $@ $(TSAN_LIB_OBJS) -lpthread

$(TSAN_DIR)/stress/%.o: stress/%.c stress/common.h include/arena.h tests/sanitize/arena_api.h stress/stress.mk
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_STRESS_CFLAGS) -c $< -o $@

$(TSAN_DIR)/stress/tsan_options.o: tests/sanitize/tsan_options.c stress/stress.mk
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_STRESS_CFLAGS) -DTSAN_SUPPRESSIONS='"$(CURDIR)/tests/sanitize/tsan.supp"' -c $< -o $@

$(TSAN_BINS): $(TSAN_DIR)/stress/%: $(TSAN_DIR)/stress/%.o $(TSAN_DIR)/stress/common.o $(TSAN_DIR)/stress/tsan_options.o $(TSAN_LIB)
	$(CC) $(TSAN_STRESS_CFLAGS) -o $@ $< $(TSAN_DIR)/stress/common.o $(TSAN_DIR)/stress/tsan_options.o \
	  $(LDFLAGS) $(EXTRA_LDFLAGS) $(TSAN_LIB) -Wl,-rpath,$(CURDIR)/$(TSAN_DIR) -lpthread

test-tsan: $(TSAN_BINS)
	@tests/run.sh --plain $(TSAN_BINS)
