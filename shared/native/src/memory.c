/*
 * Memory Node cannot see: shared mappings for the stats segment (guarded against SIGBUS by
 * bus-guard.c), and the allocator's own
 * accounting. The glibc malloc calls are weak references (see OPTIONAL in baton.h), declared here
 * rather than taken from <malloc.h> because musl has none of them; where one is missing its
 * function returns null. mallinfo2 needs glibc 2.33, malloc_info 2.10.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "baton.h"

/* glibc's struct mallinfo2, field for field. */
struct baton_mallinfo2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

extern struct baton_mallinfo2 mallinfo2(void) __attribute__((weak));
extern int malloc_trim(size_t pad) __attribute__((weak));
extern int malloc_info(int options, FILE *stream) __attribute__((weak));
/* jemalloc's: present only when jemalloc is the process's malloc (LD_PRELOAD). */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) __attribute__((weak));

static void unmap(napi_env env, void *data, void *length) {
  (void)env;
  unguard_mapping(data);
  munmap(data, (size_t)(uintptr_t)length);
}

napi_value js_mmap(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  int fd;
  int64_t length, offset;
  void *addr;
  napi_status status;
  int guard_errno;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "fd", &fd) || !get_integer(env, argv[1], "length", 1, MAX_SAFE_INTEGER, &length) ||
      !get_integer(env, argv[2], "offset", 0, MAX_SAFE_INTEGER, &offset))
    return NULL;
  addr = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED)
    return throw_errno(env, errno, "mmap", "mmap fd %d length %lld offset %lld", fd, (long long)length,
                       (long long)offset);
  if ((guard_errno = guard_mapping(addr, (size_t)length)) != 0) {
    munmap(addr, (size_t)length);
    return throw_errno(env, guard_errno, "sigaction", "mmap: cannot guard the mapping against SIGBUS");
  }
  status = napi_create_external_arraybuffer(env, addr, (size_t)length, unmap, (void *)(uintptr_t)length, &result);
  if (status == napi_ok) return result;
  unguard_mapping(addr);
  munmap(addr, (size_t)length);
  if (status == napi_no_external_buffers_allowed) {
    napi_throw_error(env, "ERR_NO_EXTERNAL_BUFFERS",
                     "mmap: this Node.js build forbids external ArrayBuffers (V8 sandbox), so a mapping cannot be "
                     "exposed to JavaScript");
    return NULL;
  }
  return napi_failed(env);
}

napi_value js_mallinfo2(napi_env env, napi_callback_info info) {
  struct baton_mallinfo2 (*libc_mallinfo2)(void) = OPTIONAL(mallinfo2);
  struct baton_mallinfo2 m;
  napi_value result;
  (void)info;
  if (!libc_mallinfo2) return null_value(env);
  m = libc_mallinfo2();
  const struct {
    const char *key;
    size_t value;
  } fields[] = {
      {"arena", m.arena},       {"ordblks", m.ordblks},   {"smblks", m.smblks},     {"hblks", m.hblks},
      {"hblkhd", m.hblkhd},     {"usmblks", m.usmblks},   {"fsmblks", m.fsmblks},   {"uordblks", m.uordblks},
      {"fordblks", m.fordblks}, {"keepcost", m.keepcost},
  };
  CHECK(napi_create_object(env, &result));
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
    if (!set_number(env, result, fields[i].key, (double)fields[i].value)) return NULL;
  return result;
}

/* "epoch" refreshes jemalloc's cached statistics first. */
napi_value js_jemalloc_stats(napi_env env, napi_callback_info info) {
  static const char *const keys[][2] = {
      {"allocated", "stats.allocated"}, {"active", "stats.active"},     {"resident", "stats.resident"},
      {"mapped", "stats.mapped"},       {"retained", "stats.retained"},
  };
  int (*jemalloc_mallctl)(const char *, void *, size_t *, void *, size_t) = &mallctl;
  napi_value result;
  uint64_t epoch = 1;
  size_t len = sizeof epoch;
  (void)info;
  if (!jemalloc_mallctl) return null_value(env);
  int err = jemalloc_mallctl("epoch", &epoch, &len, &epoch, len);
  if (err) return throw_errno(env, err, "mallctl", "jemallocStats mallctl epoch");
  CHECK(napi_create_object(env, &result));
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    size_t value;
    len = sizeof value;
    err = jemalloc_mallctl(keys[i][1], &value, &len, NULL, 0);
    if (err) return throw_errno(env, err, "mallctl", "jemallocStats mallctl %s", keys[i][1]);
    if (!set_number(env, result, keys[i][0], (double)value)) return NULL;
  }
  return result;
}

napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  int (*libc_malloc_trim)(size_t) = OPTIONAL(malloc_trim);
  size_t argc = 1;
  napi_value argv[1], result;
  int64_t pad;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  /* The argument is checked even where the call is missing, so bad callers fail everywhere alike. */
  if (!get_integer(env, argv[0], "pad", 0, MAX_SAFE_INTEGER, &pad)) return NULL;
  if (!libc_malloc_trim) return null_value(env);
  CHECK(napi_get_boolean(env, libc_malloc_trim((size_t)pad) != 0, &result));
  return result;
}

napi_value js_malloc_info(napi_env env, napi_callback_info info) {
  int (*libc_malloc_info)(int, FILE *) = OPTIONAL(malloc_info);
  char *xml = NULL;
  size_t size = 0;
  napi_value result;
  napi_status status;
  FILE *stream;
  (void)info;
  if (!libc_malloc_info) return null_value(env);
  stream = open_memstream(&xml, &size);
  if (!stream) return throw_errno(env, errno, "open_memstream", "mallocInfo open_memstream");
  if (libc_malloc_info(0, stream) != 0) {
    int err = errno;
    fclose(stream);
    free(xml);
    return throw_errno(env, err, "malloc_info", "mallocInfo malloc_info");
  }
  /* The buffer and size are only final once the stream is closed. */
  if (fclose(stream) != 0) {
    int err = errno;
    free(xml);
    return throw_errno(env, err, "fclose", "mallocInfo fclose");
  }
  status = napi_create_string_utf8(env, xml, size, &result);
  free(xml);
  CHECK(status);
  return result;
}

/* jemalloc's MALLCTL_ARENAS_ALL: the pseudo-arena index that addresses every arena at once. */
#define BATON_MALLCTL_ARENAS_ALL 4096

/* Returns every arena's unused dirty and muzzy pages to the kernel; null without jemalloc. */
napi_value js_jemalloc_purge(napi_env env, napi_callback_info info) {
  int (*jemalloc_mallctl)(const char *, void *, size_t *, void *, size_t) = &mallctl;
  char name[64];
  napi_value result;
  (void)info;
  if (!jemalloc_mallctl) return null_value(env);
  snprintf(name, sizeof name, "arena.%d.purge", BATON_MALLCTL_ARENAS_ALL);
  int err = jemalloc_mallctl(name, NULL, NULL, NULL, 0);
  if (err) return throw_errno(env, err, "mallctl", "jemallocPurge mallctl %s", name);
  CHECK(napi_get_boolean(env, true, &result));
  return result;
}

/* Bytes of [start, start + length) resident in RAM (mincore); the range is widened to whole pages. */
napi_value js_resident_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int64_t start, length;
  long page = sysconf(_SC_PAGESIZE);
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_integer(env, argv[0], "start", 0, MAX_SAFE_INTEGER, &start) ||
      !get_integer(env, argv[1], "length", 0, 1LL << 40, &length))
    return NULL;
  uintptr_t first = (uintptr_t)start & ~((uintptr_t)page - 1);
  size_t span = (size_t)((uintptr_t)start + (uintptr_t)length - first);
  size_t pages = (span + (size_t)page - 1) / (size_t)page;
  unsigned char *vec = malloc(pages ? pages : 1);
  if (!vec) return throw_errno(env, ENOMEM, "malloc", "residentBytes malloc %zu", pages);
  if (pages && mincore((void *)first, span, vec) != 0) {
    int err = errno;
    free(vec);
    return throw_errno(env, err, "mincore", "residentBytes mincore 0x%lx length %zu", (unsigned long)first, span);
  }
  size_t resident = 0;
  for (size_t i = 0; i < pages; i++) resident += vec[i] & 1;
  free(vec);
  CHECK(napi_create_double(env, (double)resident * (double)page, &result));
  return result;
}
