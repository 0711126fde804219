/* librecord.so: records any program's heap calls as a malloc-lab trace.
 *
 *   ARENA_TRACE_FILE=/tmp/prog-%p.rep LD_PRELOAD=build/bench/librecord.so prog args
 *
 * malloc and calloc become "a id size", realloc "r id size" (realloc(NULL, n)
 * is recorded as "a", realloc(p, 0) that frees as "f"), free "f id", and the
 * aligned variants (posix_memalign, aligned_alloc, memalign, valloc, pvalloc)
 * "a". Ids are reused once freed, which keeps the id count near the peak
 * number of live blocks. %p in the file name becomes the process id (use it
 * for programs that exec others, such as gcc). ARENA_TRACE_MAX=N stops
 * recording after N requests, to keep traces small.
 *
 * The body is written with write(2) as a 64 KiB buffer fills, and the header
 * is rewritten in place after each write, so the file is a valid trace even if
 * the program is killed. The recorder never calls malloc itself: its tables
 * live in mmap'd memory. While dlsym looks up the real functions (it may
 * allocate), requests are served from a static bootstrap buffer. A child made
 * by fork stops recording: its trace would interleave with the parent's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define TLS __thread __attribute__((tls_model("initial-exec")))

enum { UNINIT, INITIALIZING, READY, DONE };

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);

static _Atomic int state = UNINIT;
static TLS int in_recorder; /* this thread is inside init or recording */

/* ---- bootstrap buffer: serves allocations made while dlsym runs --------- */

static _Alignas(64) unsigned char boot[256 * 1024];
static _Atomic size_t boot_used;

static void *boot_alloc(size_t n, size_t align) {
  if (align < 16) align = 16;
  size_t need = n + 16 + align;
  size_t at = atomic_fetch_add(&boot_used, need);
  if (at + need > sizeof boot) return NULL;
  uintptr_t p = ((uintptr_t)boot + at + 16 + align - 1) & ~(uintptr_t)(align - 1);
  ((size_t *)p)[-1] = n; /* realloc of a bootstrap block needs its size */
  return (void *)p;
}

static int is_boot(const void *p) {
  return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof boot;
}

/* ---- output ------------------------------------------------------------- */

#define HEADER_LEN (4 * 21) /* four right-aligned 20-digit lines */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int out_fd = -1;
static off_t out_pos = HEADER_LEN;
static char buf[65536];
static size_t buf_len;
static uint64_t nreq, max_req = UINT64_MAX;

/* ---- pointer -> id map (open addressing, backward-shift deletion) -------- */

struct entry {
  uintptr_t ptr; /* 0 = empty */
  uint32_t id;
};
static struct entry *map;
static size_t map_cap, map_used;
static uint32_t *free_ids;
static size_t free_ids_len, free_ids_cap;
static uint32_t next_id;
static uint64_t *id_size; /* requested size per id, for the live payload peak */
static size_t id_size_cap;
static uint64_t live, peak_live;

static void *raw_map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Grows an mmap'd array to at least need elements of size elem. */
static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  void *p = raw_map(n * elem);
  if (!p) return -1;
  if (*arr) {
    memcpy(p, *arr, *cap * elem);
    munmap(*arr, *cap * elem);
  }
  *arr = p;
  *cap = n;
  return 0;
}

static size_t slot_of(uintptr_t p, size_t cap) {
  return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static void map_put_raw(struct entry *m, size_t cap, uintptr_t p, uint32_t id) {
  size_t i = slot_of(p, cap);
  while (m[i].ptr) i = (i + 1) & (cap - 1);
  m[i].ptr = p;
  m[i].id = id;
}

static int map_put(uintptr_t p, uint32_t id) {
  if ((map_used + 1) * 2 > map_cap) {
    size_t cap = map_cap ? map_cap * 2 : 65536;
    struct entry *m = raw_map(cap * sizeof(*m));
    if (!m) return -1;
    for (size_t i = 0; i < map_cap; i++)
      if (map[i].ptr) map_put_raw(m, cap, map[i].ptr, map[i].id);
    if (map) munmap(map, map_cap * sizeof(*map));
    map = m;
    map_cap = cap;
  }
  map_put_raw(map, map_cap, p, id);
  map_used++;
  return 0;
}

/* Removes p; returns its id or -1 when p is not a recorded block. */
static int64_t map_take(uintptr_t p) {
  if (!map_cap) return -1;
  size_t i = slot_of(p, map_cap);
  while (map[i].ptr && map[i].ptr != p) i = (i + 1) & (map_cap - 1);
  if (!map[i].ptr) return -1;
  uint32_t id = map[i].id;
  /* Backward shift: pull later entries of the probe run into the hole. */
  size_t hole = i;
  for (size_t j = (i + 1) & (map_cap - 1); map[j].ptr; j = (j + 1) & (map_cap - 1)) {
    size_t home = slot_of(map[j].ptr, map_cap);
    if (((j - home) & (map_cap - 1)) >= ((j - hole) & (map_cap - 1))) {
      map[hole] = map[j];
      hole = j;
    }
  }
  map[hole].ptr = 0;
  map_used--;
  return id;
}

/* ---- trace lines -------------------------------------------------------- */

static void put_header(void) {
  char h[HEADER_LEN + 1];
  uint64_t v[4] = {1, next_id, nreq, peak_live}; /* weight, ids, requests, max payload */
  for (int l = 0; l < 4; l++) {
    char *line = h + l * 21;
    memset(line, ' ', 20);
    uint64_t x = v[l];
    int k = 19;
    do {
      line[k--] = (char)('0' + x % 10);
      x /= 10;
    } while (x && k >= 0);
    line[20] = '\n';
  }
  if (pwrite(out_fd, h, HEADER_LEN, 0) != HEADER_LEN) { /* nothing to do about it */
  }
}

static void flush_locked(void) {
  if (out_fd < 0) return;
  size_t off = 0;
  while (off < buf_len) {
    ssize_t w = pwrite(out_fd, buf + off, buf_len - off, out_pos);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      break;
    }
    off += (size_t)w;
    out_pos += w;
  }
  buf_len = 0;
  put_header();
}

static void put_line(char op, uint32_t id, int with_size, uint64_t size) {
  char line[48];
  int n = 0;
  line[n++] = op;
  line[n++] = ' ';
  char digits[24];
  int d = 0;
  do digits[d++] = (char)('0' + id % 10);
  while ((id /= 10));
  while (d) line[n++] = digits[--d];
  if (with_size) {
    line[n++] = ' ';
    do digits[d++] = (char)('0' + size % 10);
    while ((size /= 10));
    while (d) line[n++] = digits[--d];
  }
  line[n++] = '\n';
  if (buf_len + (size_t)n > sizeof buf) flush_locked();
  memcpy(buf + buf_len, line, (size_t)n);
  buf_len += (size_t)n;
  nreq++;
}

static uint32_t new_id(void) { return free_ids_len ? free_ids[--free_ids_len] : next_id++; }

static void set_size(uint32_t id, uint64_t size) {
  if (grow((void **)&id_size, &id_size_cap, (size_t)id + 1, sizeof(*id_size)) == 0) {
    live += size;
    id_size[id] = size;
    if (live > peak_live) peak_live = live;
  }
}

static void drop_size(uint32_t id) {
  if (id < id_size_cap) live -= id_size[id];
}

static int recording(void) {
  return atomic_load_explicit(&state, memory_order_acquire) == READY && !in_recorder && out_fd >= 0 &&
         nreq < max_req;
}

static void record_alloc(void *p, uint64_t size) {
  if (!p || !recording()) return;
  in_recorder = 1;
  pthread_mutex_lock(&lock);
  uint32_t id = new_id();
  if (map_put((uintptr_t)p, id) == 0) {
    set_size(id, size);
    put_line('a', id, 1, size);
  }
  pthread_mutex_unlock(&lock);
  in_recorder = 0;
}

static void record_free(void *p) {
  if (!p || !recording()) return;
  in_recorder = 1;
  pthread_mutex_lock(&lock);
  int64_t id = map_take((uintptr_t)p);
  if (id >= 0) {
    drop_size((uint32_t)id);
    put_line('f', (uint32_t)id, 0, 0);
    if (grow((void **)&free_ids, &free_ids_cap, free_ids_len + 1, sizeof(*free_ids)) == 0)
      free_ids[free_ids_len++] = (uint32_t)id;
  }
  pthread_mutex_unlock(&lock);
  in_recorder = 0;
}

/* old was realloc'ed into p (both non-NULL). */
static void record_realloc(void *old, void *p, uint64_t size) {
  if (!recording()) return;
  in_recorder = 1;
  pthread_mutex_lock(&lock);
  int64_t id = map_take((uintptr_t)old);
  if (id < 0) { /* a block from before recording began: a new block for us */
    id = new_id();
    put_line('a', (uint32_t)id, 1, size);
  } else {
    drop_size((uint32_t)id);
    put_line('r', (uint32_t)id, 1, size);
  }
  map_put((uintptr_t)p, (uint32_t)id);
  set_size((uint32_t)id, size);
  pthread_mutex_unlock(&lock);
  in_recorder = 0;
}

/* ---- set-up and tear-down ----------------------------------------------- */

static void child_after_fork(void) {
  atomic_store(&state, DONE);
  out_fd = -1; /* the parent's file: leave it to the parent */
}

static void open_output(void) {
  const char *name = getenv("ARENA_TRACE_FILE");
  if (!name || !*name) return;
  char path[4096];
  size_t n = 0;
  for (const char *c = name; *c && n < sizeof path - 24; c++) {
    if (c[0] == '%' && c[1] == 'p') {
      char digits[16];
      int d = 0;
      for (unsigned pid = (unsigned)getpid(); pid || !d; pid /= 10) digits[d++] = (char)('0' + pid % 10);
      while (d) path[n++] = digits[--d];
      c++;
    } else {
      path[n++] = *c;
    }
  }
  path[n] = 0;
  const char *max = getenv("ARENA_TRACE_MAX");
  if (max && *max) max_req = strtoull(max, NULL, 10);
  out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd >= 0) put_header();
}

static void init(void) {
  int expected = UNINIT;
  if (atomic_compare_exchange_strong(&state, &expected, INITIALIZING)) {
    in_recorder = 1;
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    real_valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
    open_output();
    pthread_atfork(NULL, NULL, child_after_fork);
    in_recorder = 0;
    atomic_store_explicit(&state, READY, memory_order_release);
    return;
  }
  /* Another thread is initialising: wait for it (this thread's own nested
   * calls never get here, they take the bootstrap path). */
  while (atomic_load_explicit(&state, memory_order_acquire) == INITIALIZING) sched_yield();
}

/* True when the real functions are usable; false means bootstrap. */
static int ready(void) {
  int s = atomic_load_explicit(&state, memory_order_acquire);
  if (s >= READY) return 1;
  if (s == INITIALIZING && in_recorder) return 0;
  init();
  return atomic_load_explicit(&state, memory_order_acquire) >= READY;
}

__attribute__((constructor)) static void recorder_start(void) { ready(); }

__attribute__((destructor)) static void recorder_stop(void) {
  if (atomic_load(&state) != READY) return;
  pthread_mutex_lock(&lock);
  atomic_store(&state, DONE);
  flush_locked();
  if (out_fd >= 0) close(out_fd);
  out_fd = -1;
  pthread_mutex_unlock(&lock);
}

/* ---- the interposed functions -------------------------------------------- */

EXPORT void *malloc(size_t n) {
  if (!ready()) return boot_alloc(n, 16);
  void *p = real_malloc(n);
  record_alloc(p, n);
  return p;
}

EXPORT void *calloc(size_t count, size_t size) {
  if (!ready()) {
    if (size && count > SIZE_MAX / size) return NULL;
    return boot_alloc(count * size, 16); /* static memory is zeroed */
  }
  void *p = real_calloc(count, size);
  record_alloc(p, (uint64_t)count * size);
  return p;
}

EXPORT void free(void *p) {
  if (!p || is_boot(p)) return;
  if (!ready()) return; /* cannot happen for a real block: it came after init */
  record_free(p);
  real_free(p);
}

EXPORT void *realloc(void *old, size_t n) {
  if (!ready() || is_boot(old)) {
    void *p = ready() ? malloc(n) : boot_alloc(n, 16);
    if (p && old) {
      size_t was = ((size_t *)old)[-1];
      memcpy(p, old, was < n ? was : n);
    }
    return p;
  }
  if (!old) {
    void *p = real_realloc(NULL, n);
    record_alloc(p, n);
    return p;
  }
  if (n == 0) {
    /* Recorded before the call: once the block is freed its address may be
     * handed to another thread and recorded under a new id. */
    record_free(old);
    void *p = real_realloc(old, 0);
    record_alloc(p, 0);
    return p;
  }
  void *p = real_realloc(old, n);
  if (p) record_realloc(old, p, n);
  return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  if (!ready()) {
    *out = boot_alloc(n, align);
    return *out ? 0 : ENOMEM;
  }
  int rc = real_posix_memalign(out, align, n);
  if (rc == 0) record_alloc(*out, n);
  return rc;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
  if (!ready()) return boot_alloc(n, align);
  void *p = real_aligned_alloc(align, n);
  record_alloc(p, n);
  return p;
}

EXPORT void *memalign(size_t align, size_t n) {
  if (!ready()) return boot_alloc(n, align);
  void *p = real_memalign(align, n);
  record_alloc(p, n);
  return p;
}

EXPORT void *valloc(size_t n) {
  if (!ready()) return boot_alloc(n, 4096);
  void *p = real_valloc(n);
  record_alloc(p, n);
  return p;
}

EXPORT void *pvalloc(size_t n) {
  if (!ready()) return boot_alloc(n, 4096);
  void *p = real_pvalloc(n);
  record_alloc(p, n);
  return p;
}
