# libFuzzer harness (included by tests/tests.mk). Needs clang and
# libclang-rt-14-dev (scripts/deps.sh test).
#
#   make fuzz         fuzz for FUZZ_TIME seconds (default 60); new inputs go to
#                     build/fuzz/corpus, crashes to build/fuzz/crash-*
#   make test-fuzz    a short run (FUZZ_SHORT_TIME, default 20 s; make test runs it)
#
# The library objects are compiled by clang with coverage instrumentation only
# (-fsanitize=fuzzer-no-link, no sanitizer), combined into one object whose
# only global definitions are the arena_* API (malloc, free, ... become local,
# so ASan's allocator keeps serving the harness and libFuzzer), and whose weak
# references to ASan's poisoning hooks are renamed away (no annotate mode: the
# real fast paths run).
FUZZ_CC         ?= clang
FUZZ_DIR        := $(BUILD)/fuzz
FUZZ_TIME       ?= 60
FUZZ_SHORT_TIME ?= 20
FUZZ_LIB_CFLAGS := $(filter-out -fno-tree-slp-vectorize,$(LIB_CFLAGS)) -Wno-unknown-attributes -fsanitize=fuzzer-no-link
FUZZ_LIB_OBJS   := $(LIB_SRCS:lib/%.c=$(FUZZ_DIR)/lib/%.o)
FUZZ_ARGS       := -max_len=1024 -rss_limit_mb=3072 -timeout=20 -print_final_stats=1

.PHONY: fuzz test-fuzz fuzz-build
fuzz-build: $(FUZZ_DIR)/fuzz_alloc

$(FUZZ_DIR)/lib/%.o: lib/%.c $(LIB_HDRS) Makefile tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_LIB_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/arena.o: $(FUZZ_LIB_OBJS) tests/fuzz/fuzz.mk
	ld -r -o $(FUZZ_DIR)/arena-all.o $(FUZZ_LIB_OBJS)
	objcopy --wildcard --keep-global-symbol='arena_*' \
	  --redefine-sym __asan_poison_memory_region=libarena_fuzz_no_asan_poison \
	  --redefine-sym __asan_unpoison_memory_region=libarena_fuzz_no_asan_unpoison \
	  $(FUZZ_DIR)/arena-all.o $@

$(FUZZ_DIR)/fuzz_alloc: tests/fuzz/fuzz_alloc.c include/arena.h $(FUZZ_DIR)/arena.o
	$(FUZZ_CC) -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -Iinclude $(WARN) $< $(FUZZ_DIR)/arena.o -o $@ -lpthread

fuzz: $(FUZZ_DIR)/fuzz_alloc
	@mkdir -p $(FUZZ_DIR)/corpus
	cd $(FUZZ_DIR) && ./fuzz_alloc $(FUZZ_ARGS) -max_total_time=$(FUZZ_TIME) corpus $(CURDIR)/tests/fuzz/corpus

test-fuzz: $(FUZZ_DIR)/fuzz_alloc
	@FUZZ_TIME=$(FUZZ_SHORT_TIME) tests/fuzz/test_fuzz.sh $(FUZZ_DIR)
