/*
 * What the addon's files share: Node-API error plumbing, argument readers and the SCM_RIGHTS
 * helpers. shared/native/binding.d.ts is the JS contract; module.c registers the functions.
 * System failures throw an Error shaped like Node's own (code = errno name, errno, syscall); bad
 * arguments throw TypeError/RangeError with ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE.
 */
#ifndef BATON_H
#define BATON_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#define MAX_FDS 16
#define MAX_PAYLOAD 4096
#define MAX_SAFE_INTEGER 9007199254740991LL

/* Throws ERR_NAPI unless an exception is already pending; returns NULL for the callback to return. */
napi_value napi_failed(napi_env env);

#define CHECK(call)                                 \
  do {                                              \
    if ((call) != napi_ok) return napi_failed(env); \
  } while (0)

/* For helpers returning bool: false means an exception is pending. */
#define CHECK_BOOL(call)     \
  do {                       \
    if ((call) != napi_ok) { \
      napi_failed(env);      \
      return false;          \
    }                        \
  } while (0)

/* glibc-only functions are declared weak, so a libc without one (musl, old glibc) leaves its
 * address NULL instead of failing to load the addon. The test build pretends all are missing. */
#ifdef BATON_TEST_NO_GLIBC_EXTRAS
#define OPTIONAL(fn) ((__typeof__(&fn))NULL)
#else
#define OPTIONAL(fn) (&fn)
#endif

/* "EADDRINUSE" for EADDRINUSE; "E<n>" (written into buf) for a number nobody named. */
const char *errno_name(int err, char *buf, size_t size);

/* The same lookup in the table of our own, for libcs without strerrorname_np (musl, glibc < 2.32). */
const char *errno_table_name(int err);

/* Throws an Error: message "<what was attempted>: <CODE> (<strerror>)", e.g.
 * "tcpListen bind 127.0.0.1:80: EACCES (Permission denied)". Returns NULL. */
__attribute__((format(printf, 4, 5)))
napi_value throw_errno(napi_env env, int err, const char *syscall, const char *fmt, ...);

__attribute__((format(printf, 4, 5)))
void throw_arg(napi_env env, bool range, const char *code, const char *fmt, ...);

/* Argument readers: false means a TypeError/RangeError is pending. */
bool get_integer(napi_env env, napi_value value, const char *name, int64_t min, int64_t max, int64_t *out);
bool get_int(napi_env env, napi_value value, const char *name, int min, int max, int *out);
bool get_bool(napi_env env, napi_value value, const char *name, bool *out);
bool get_fd(napi_env env, napi_value value, const char *name, int *out);
/* Copies at most size-1 bytes; *len is the full UTF-8 length so callers can report what is too long. */
bool get_string(napi_env env, napi_value value, const char *name, char *buf, size_t size, size_t *len);
/* An array of at most MAX_FDS fds. */
bool get_fds(napi_env env, napi_value value, int *fds, uint32_t *count);

bool set_number(napi_env env, napi_value object, const char *key, double number);
bool set_string(napi_env env, napi_value object, const char *key, const char *str, size_t len);
bool fd_array(napi_env env, const int *fds, size_t count, napi_value *out);
napi_value null_value(napi_env env);

void close_all(const int *fds, size_t count);

/* An AF_UNIX address from a JS path; '@' starts an abstract name where abstract_ok. Too long a path
 * throws ENAMETOOLONG as "<fn> <syscall> <path>". */
bool unix_address(napi_env env, napi_value value, const char *fn, const char *syscall, bool abstract_ok,
                  char *path /* PATH_MAX */, struct sockaddr_un *addr, socklen_t *addr_len);

/* Room for MAX_FDS descriptors, aligned for a cmsghdr. */
typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
} fd_control;

/* Puts count fds (count <= MAX_FDS) into msg as one SCM_RIGHTS message; nothing when count is 0. */
void attach_fds(struct msghdr *msg, fd_control *control, const int *fds, uint32_t count);

/* What recv_message took off a socket besides the payload. */
typedef struct {
  int fds[MAX_FDS];
  size_t nfds;      /* kept in fds, the caller's to close */
  size_t dropped;   /* beyond the caller's maximum: already closed */
  bool ctrunc;      /* MSG_CTRUNC: the kernel had more control data (fds) than fitted */
  bool trunc;       /* MSG_TRUNC: the payload was longer than the buffer */
  bool malformed;   /* a control message whose length runs outside the control buffer */
  pid_t pid;        /* SCM_CREDENTIALS sender, 0 when none came */
} received;

/* One recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC) into data[size]: keeps up to max_fds received fds
 * (max_fds <= MAX_FDS) and closes the rest, so none leaks whatever the caller does next. Returns
 * the payload length, or -1 with errno set (then nothing was received). */
ssize_t recv_message(int sock, void *data, size_t size, size_t max_fds, received *out);

/* Registers [addr, addr + length) with the SIGBUS guard (installed on first use); 0 or an errno. */
int guard_mapping(void *addr, size_t length); /* bus-guard.c */
/* Forgets a mapping registered by guard_mapping, before it is unmapped. */
void unguard_mapping(void *addr);

/* The JS functions, one group per file. */
napi_value js_tcp_listen(napi_env env, napi_callback_info info);    /* sockets.c */
napi_value js_unix_listen(napi_env env, napi_callback_info info);
napi_value js_sock_name(napi_env env, napi_callback_info info);
napi_value js_socket_pair(napi_env env, napi_callback_info info);
napi_value js_close(napi_env env, napi_callback_info info);
napi_value js_set_cloexec(napi_env env, napi_callback_info info);
napi_value js_peer_cred(napi_env env, napi_callback_info info);
napi_value js_send_fds(napi_env env, napi_callback_info info);      /* fd-passing.c */
napi_value js_recv_fds(napi_env env, napi_callback_info info);
napi_value js_sd_notify(napi_env env, napi_callback_info info);     /* notify.c */
napi_value js_dgram_bind(napi_env env, napi_callback_info info);
napi_value js_dgram_recv(napi_env env, napi_callback_info info);
napi_value js_set_pdeathsig(napi_env env, napi_callback_info info); /* process.c */
napi_value js_mmap(napi_env env, napi_callback_info info);          /* memory.c */
napi_value js_bus_faults(napi_env env, napi_callback_info info);    /* bus-guard.c */
napi_value js_mallinfo2(napi_env env, napi_callback_info info);
napi_value js_jemalloc_stats(napi_env env, napi_callback_info info);
napi_value js_malloc_trim(napi_env env, napi_callback_info info);
napi_value js_malloc_info(napi_env env, napi_callback_info info);
napi_value js_jemalloc_purge(napi_env env, napi_callback_info info);
napi_value js_resident_bytes(napi_env env, napi_callback_info info);
#ifdef BATON_TEST_NO_GLIBC_EXTRAS
napi_value js_errno_name(napi_env env, napi_callback_info info);    /* module.c, test build only */
#endif

#endif
