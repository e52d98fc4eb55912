/*
 * The addon's glue: module registration and the one error helper every failure goes through.
 * Each JS function lives with its concern (sockets.c, fd-passing.c, notify.c, process.c,
 * memory.c); shared/native/binding.d.ts is the contract.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "baton.h"

/* glibc >= 2.32 only; declared here because musl's <string.h> has no prototype. */
extern const char *strerrorname_np(int errnum) __attribute__((weak));

/* Node-API calls only fail on exhausted memory or a pending exception; make sure JS sees an error. */
napi_value napi_failed(napi_env env) {
  const napi_extended_error_info *info = NULL;
  char message[128];
  bool pending = false;
  napi_get_last_error_info(env, &info);
  snprintf(message, sizeof message, "Node-API call failed: %s",
           info && info->error_message ? info->error_message : "unknown error");
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending)
    napi_throw_error(env, "ERR_NAPI", message);
  return NULL;
}

const char *errno_name(int err, char *buf, size_t size) {
  const char *(*libc_name)(int) = OPTIONAL(strerrorname_np);
  const char *name = libc_name ? libc_name(err) : errno_table_name(err);
  if (name) return name;
  snprintf(buf, size, "E%d", err);
  return buf;
}

napi_value throw_errno(napi_env env, int err, const char *syscall, const char *fmt, ...) {
  char what[PATH_MAX + 64], message[PATH_MAX + 192], unknown[16];
  const char *code = errno_name(err, unknown, sizeof unknown);
  napi_value js_code, js_message, js_errno, js_syscall, error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(message, sizeof message, "%s: %s (%s)", what, code, strerror(err));
  CHECK(napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code));
  CHECK(napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &js_message));
  CHECK(napi_create_int32(env, err, &js_errno));
  CHECK(napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &js_syscall));
  CHECK(napi_create_error(env, js_code, js_message, &error));
  CHECK(napi_set_named_property(env, error, "errno", js_errno));
  CHECK(napi_set_named_property(env, error, "syscall", js_syscall));
  napi_throw(env, error);
  return NULL;
}

void throw_arg(napi_env env, bool range, const char *code, const char *fmt, ...) {
  char message[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  if (range)
    napi_throw_range_error(env, code, message);
  else
    napi_throw_type_error(env, code, message);
}

#ifdef BATON_TEST_NO_GLIBC_EXTRAS
/* Lets the test compare the fallback table with Node's own errno constants. */
napi_value js_errno_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  char unknown[16];
  int err;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_int(env, argv[0], "errno", 0, INT_MAX, &err)) return NULL;
  CHECK(napi_create_string_utf8(env, errno_name(err, unknown, sizeof unknown), NAPI_AUTO_LENGTH, &result));
  return result;
}
#endif

#define FUNCTION(name, cb) {name, NULL, cb, NULL, NULL, NULL, napi_enumerable, NULL}

NAPI_MODULE_INIT() {
  static const napi_property_descriptor functions[] = {
      FUNCTION("tcpListen", js_tcp_listen),
      FUNCTION("unixListen", js_unix_listen),
      FUNCTION("sockName", js_sock_name),
      FUNCTION("socketPair", js_socket_pair),
      FUNCTION("sendFds", js_send_fds),
      FUNCTION("recvFds", js_recv_fds),
      FUNCTION("close", js_close),
      FUNCTION("setCloexec", js_set_cloexec),
      FUNCTION("peerCred", js_peer_cred),
      FUNCTION("setPdeathsig", js_set_pdeathsig),
      FUNCTION("sdNotify", js_sd_notify),
      FUNCTION("dgramBind", js_dgram_bind),
      FUNCTION("dgramRecv", js_dgram_recv),
      FUNCTION("mmap", js_mmap),
      FUNCTION("busFaults", js_bus_faults),
      FUNCTION("mallinfo2", js_mallinfo2),
      FUNCTION("jemallocStats", js_jemalloc_stats),
      FUNCTION("mallocTrim", js_malloc_trim),
      FUNCTION("mallocInfo", js_malloc_info),
      FUNCTION("jemallocPurge", js_jemalloc_purge),
      FUNCTION("residentBytes", js_resident_bytes),
#ifdef BATON_TEST_NO_GLIBC_EXTRAS
      FUNCTION("errnoName", js_errno_name),
#endif
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof *functions, functions) != napi_ok)
    return NULL;
  return exports;
}
