# Benchmark suite (docs/benchmarks.md). Included by the root Makefile.
#   make bench        full suite, every allocator, report in results/
#   make bench-quick  every workload briefly (CI); under 10 minutes on 2 cores;
#                     its report goes to build/bench/quick/, leaving results/ alone
#   make bench-tlb    perf stat TLB counters per allocator, side by side
#   make bench-small  peak RSS of small everyday programs per allocator
# Options go through BENCH_ARGS, e.g.
#   make bench BENCH_ARGS="--allocators=glibc,jemalloc,mine=/opt/lib/libmine.so --threads=1,4"

BENCH_BUILD := $(BUILD)/bench
BENCH_CFLAGS := -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) $(OPT) -g \
                -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc
BENCH_CXXFLAGS := -std=c++17 -pthread $(WARN) $(OPT) -g
BENCH_ARGS ?=

# The bench program: every workload plus the harness, linked with the C++ shim.
BENCH_CORE := harness memstat perfctr pagesize tlbmodel topo trace replay
BENCH_WL := wl_fixed wl_churn wl_prodcons wl_server wl_threadchurn wl_realloc wl_large \
            wl_falseshare wl_trace wl_tlb
BENCH_OBJS := $(patsubst %,$(BENCH_BUILD)/%.o,bench $(BENCH_CORE) $(BENCH_WL)) $(BENCH_BUILD)/shim.o
BENCH_HDRS := $(wildcard bench/*.h)

$(BENCH_BUILD)/%.o: bench/%.c $(BENCH_HDRS) bench/bench.mk
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -c $< -o $@
$(BENCH_BUILD)/shim.o: bench/shim.cc bench/shim.h bench/bench.mk
	@mkdir -p $(dir $@)
	$(CXX) $(BENCH_CXXFLAGS) -c $< -o $@
$(BENCH_BUILD)/bench: $(BENCH_OBJS)
	$(CXX) -pthread -o $@ $(BENCH_OBJS) -lbenchmark -lhwloc -ldl

# The trace recorder, an LD_PRELOAD library.
$(BENCH_BUILD)/librecord.so: bench/recorder.c bench/bench.mk
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE -fPIC -shared -pthread $(WARN) $(OPT) -g -fno-builtin \
	  -fvisibility=hidden -o $@ $< -ldl

# Self-tests (cmocka), run by make test.
$(BENCH_BUILD)/selftest/%.o: bench/selftest/%.c $(BENCH_HDRS) bench/bench.mk
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -Ibench -c $< -o $@
$(BENCH_BUILD)/test_tlbmodel: $(BENCH_BUILD)/selftest/test_tlbmodel.o $(BENCH_BUILD)/tlbmodel.o
	$(CC) -pthread -o $@ $^ -lcmocka
$(BENCH_BUILD)/test_utilization: $(BENCH_BUILD)/selftest/test_utilization.o $(BENCH_BUILD)/trace.o \
    $(patsubst %,$(BENCH_BUILD)/%.o,replay harness memstat perfctr pagesize tlbmodel topo) $(BENCH_BUILD)/shim.o
	$(CXX) -pthread -o $@ $^ -lcmocka -lbenchmark -lhwloc
$(BENCH_BUILD)/test_shim: $(BENCH_BUILD)/selftest/test_shim.o $(BENCH_BUILD)/shim.o
	$(CXX) -pthread -o $@ $^ -lcmocka -lbenchmark
$(BENCH_BUILD)/rec_sample: $(BENCH_BUILD)/selftest/rec_sample.o
	$(CC) -pthread -o $@ $^
$(BENCH_BUILD)/test_recorder: $(BENCH_BUILD)/selftest/test_recorder.o $(BENCH_BUILD)/trace.o \
    $(BENCH_BUILD)/librecord.so $(BENCH_BUILD)/rec_sample $(BENCH_BUILD)/bench
	$(CC) -pthread -o $@ $(BENCH_BUILD)/selftest/test_recorder.o $(BENCH_BUILD)/trace.o -lcmocka

BENCH_TESTS := $(BENCH_BUILD)/test_tlbmodel $(BENCH_BUILD)/test_utilization $(BENCH_BUILD)/test_shim \
               $(BENCH_BUILD)/test_recorder
TEST_CMOCKA_PROGRAMS += $(BENCH_TESTS)

.PHONY: bench bench-quick bench-tlb bench-small bench-build bench-selftest bench-deps
bench-build: $(BENCH_BUILD)/bench $(BENCH_BUILD)/librecord.so
bench-selftest: $(BENCH_TESTS)
	@for t in $(BENCH_TESTS); do $$t || exit 1; done

# deps-bench installs what is missing when run as root; otherwise it names the
# missing packages and fails, and the suite still runs with what is there
# (run.py skips absent allocators with one line each).
bench-deps:
	@$(MAKE) --no-print-directory -s deps-bench || \
	  echo "bench: some packages are missing (see above); continuing with what is installed"

bench: bench-deps
	@$(MAKE) --no-print-directory -s all bench-build
	python3 bench/run.py $(BENCH_ARGS)
bench-quick: bench-deps
	@$(MAKE) --no-print-directory -s all bench-build
	python3 bench/run.py --quick --out $(BENCH_BUILD)/quick $(BENCH_ARGS)
bench-tlb: bench-deps
	@$(MAKE) --no-print-directory -s all bench-build
	bench/perf-tlb.sh $(BENCH_ARGS)
bench-small: bench-deps
	@$(MAKE) --no-print-directory -s all
	bench/small-programs.sh $(BENCH_ARGS)
