# libarena: build, test, bench, install.
#   make            lib/libarena.so (override build) and lib/libarena.a
#   make test       every test (installs missing packages when run as root)
#   make bench      the full benchmark suite; make bench-quick for a short run
#   make stress     the full stress programs
#   make install PREFIX=/usr/local DESTDIR=
#   make format / make lint

VERSION   := 1.0.0
SOVERSION := 1
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include

CC      ?= cc
CXX     ?= c++
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Werror
# The allocator is built without the compiler's knowledge of malloc so that it
# cannot turn an internal loop into a call to memset/calloc/malloc.
LIB_CFLAGS := -std=gnu11 -fPIC -fvisibility=hidden -ftls-model=initial-exec \
              -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
              -fno-plt -fno-semantic-interposition -fno-tree-slp-vectorize -D_GNU_SOURCE -Iinclude -Ilib $(WARN) $(CFLAGS) $(EXTRA_CFLAGS)

BUILD     := build
LIB_SRCS  := $(sort $(wildcard lib/*.c))
LIB_OBJS  := $(LIB_SRCS:lib/%.c=$(BUILD)/lib/%.o)
LIB_HDRS  := include/arena.h $(wildcard lib/*.h)

SO_NAME   := libarena.so.$(SOVERSION)
SO_FILE   := lib/libarena.so.$(VERSION)

.PHONY: all clean install format lint deps-test deps-bench secure
all: lib/libarena.so lib/libarena.a lib/libarena.pc $(if $(SECURE),secure)

$(BUILD)/lib/%.o: lib/%.c $(LIB_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(SO_FILE): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,$(SO_NAME) -Wl,-z,now -Wl,--no-undefined -o $@ $(LIB_OBJS) -lpthread
lib/$(SO_NAME): $(SO_FILE)
	ln -sf $(notdir $<) $@
lib/libarena.so: lib/$(SO_NAME)
	ln -sf $(notdir $<) $@
# The hardened build (make SECURE=1, or make secure): lib/libarena-secure.so.
SECURE_OBJS := $(LIB_SRCS:lib/%.c=$(BUILD)/secure/%.o)
$(BUILD)/secure/%.o: lib/%.c $(LIB_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -DARENA_SECURE -c $< -o $@
lib/libarena-secure.so: $(SECURE_OBJS)
	$(CC) -shared -Wl,-soname,libarena-secure.so -Wl,-z,now -Wl,--no-undefined -o $@ $(SECURE_OBJS) -lpthread
secure: lib/libarena-secure.so

# A build without the default checks, only to measure their cost (docs/reliability.md).
UNCHECKED_OBJS := $(LIB_SRCS:lib/%.c=$(BUILD)/unchecked/%.o)
$(BUILD)/unchecked/%.o: lib/%.c $(LIB_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -DARENA_UNCHECKED -c $< -o $@
lib/libarena-unchecked.so: $(UNCHECKED_OBJS)
	$(CC) -shared -Wl,-soname,libarena-unchecked.so -Wl,-z,now -Wl,--no-undefined -o $@ $(UNCHECKED_OBJS) -lpthread
.PHONY: unchecked
unchecked: lib/libarena-unchecked.so

lib/libarena.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $(LIB_OBJS)
lib/libarena.pc: scripts/libarena.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' $< > $@

install: all
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 644 include/arena.h $(DESTDIR)$(INCDIR)/arena.h
	install -m 755 $(SO_FILE) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SO_FILE)) $(DESTDIR)$(LIBDIR)/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(LIBDIR)/libarena.so
	install -m 644 lib/libarena.a $(DESTDIR)$(LIBDIR)/libarena.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' scripts/libarena.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libarena.pc

# Instructions per malloc+free pair (callgrind), every allocator: results/fastpath.md
FASTPATH_LIBS := libarena=$(CURDIR)/lib/libarena.so glibc=- \
  jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 mimalloc=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 \
  tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
$(BUILD)/fastpath: bench/fastpath/fastpath.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -o $@ $<
.PHONY: fastpath
fastpath: deps-bench all $(BUILD)/fastpath
	bench/fastpath/run.sh $(BUILD)/fastpath $(FASTPATH_LIBS) > $(BUILD)/fastpath.table
	{ sed -n '1,/^<!-- table -->/p' results/fastpath.md; cat $(BUILD)/fastpath.table; \
	  sed -n '/^<!-- end -->/,$$p' results/fastpath.md; } > $(BUILD)/fastpath.md
	mv $(BUILD)/fastpath.md results/fastpath.md
	@cat $(BUILD)/fastpath.table

deps-test:
	@scripts/deps.sh test
deps-bench:
	@scripts/deps.sh bench

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' '*.cc' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
lint: all
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -D__x86_64__ -D__GNUC__ -Iinclude -Ilib lib

clean:
	rm -rf $(BUILD) lib/libarena.so* lib/libarena.a lib/libarena.pc lib/libarena-secure.so* lib/libarena-unchecked.so

# Test, stress and bench rules live beside their sources. stress.mk and
# bench.mk append to TEST_PROGRAMS (judged by exit status), TEST_CMOCKA_PROGRAMS
# (cmocka, counted test by test) and TEST_SCRIPTS; tests.mk runs them all.
TEST_PROGRAMS :=
TEST_CMOCKA_PROGRAMS :=
TEST_SCRIPTS :=
-include stress/stress.mk
-include bench/bench.mk
-include tests/tests.mk
