/*
 * The Node-API addon behind shared/native/native.ts; shared/native/binding.d.ts is its contract.
 * Every function checks its arguments, then does one syscall's worth of work. System failures
 * throw an Error shaped like Node's own (code = errno name, errno, syscall); bad arguments throw
 * TypeError/RangeError with ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <node_api.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 16
#define MAX_PAYLOAD 4096
#define MAX_SAFE_INTEGER 9007199254740991LL

typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
} fd_control;

/* Node-API calls only fail on exhausted memory or a pending exception; make sure JS sees an error. */
static napi_value napi_failed(napi_env env) {
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

#define CHECK(call)                                 \
  do {                                              \
    if ((call) != napi_ok) return napi_failed(env); \
  } while (0)

/* For helpers returning bool: false means an exception is pending. */
#define CHECK_BOOL(call)                       \
  do {                                         \
    if ((call) != napi_ok) {                   \
      napi_failed(env);                        \
      return false;                            \
    }                                          \
  } while (0)

/* strerrorname_np needs glibc 2.32; mallinfo2 already requires 2.33. */
static const char *errno_name(int err, char *buf, size_t size) {
  const char *name = strerrorname_np(err);
  if (name) return name;
  snprintf(buf, size, "E%d", err);
  return buf;
}

/* Message: "<what was attempted>: <CODE> (<strerror>)", e.g. "tcpListen bind 127.0.0.1:80: EACCES (Permission denied)". */
__attribute__((format(printf, 4, 5)))
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *fmt, ...) {
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

__attribute__((format(printf, 4, 5)))
static void throw_arg(napi_env env, bool range, const char *code, const char *fmt, ...) {
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

static bool get_integer(napi_env env, napi_value value, const char *name, int64_t min, int64_t max,
                        int64_t *out) {
  napi_valuetype type;
  double number;
  CHECK_BOOL(napi_typeof(env, value, &type));
  if (type != napi_number) {
    throw_arg(env, false, "ERR_INVALID_ARG_TYPE", "The \"%s\" argument must be of type number", name);
    return false;
  }
  CHECK_BOOL(napi_get_value_double(env, value, &number));
  /* Written so that NaN fails the range test. */
  if (!(number >= (double)min && number <= (double)max) || number != (double)(int64_t)number) {
    throw_arg(env, true, "ERR_INVALID_ARG_VALUE", "The \"%s\" argument must be an integer from %lld to %lld",
              name, (long long)min, (long long)max);
    return false;
  }
  *out = (int64_t)number;
  return true;
}

static bool get_int(napi_env env, napi_value value, const char *name, int min, int max, int *out) {
  int64_t wide;
  if (!get_integer(env, value, name, min, max, &wide)) return false;
  *out = (int)wide;
  return true;
}

static bool get_bool(napi_env env, napi_value value, const char *name, bool *out) {
  napi_valuetype type;
  CHECK_BOOL(napi_typeof(env, value, &type));
  if (type != napi_boolean) {
    throw_arg(env, false, "ERR_INVALID_ARG_TYPE", "The \"%s\" argument must be of type boolean", name);
    return false;
  }
  CHECK_BOOL(napi_get_value_bool(env, value, out));
  return true;
}

static bool get_fd(napi_env env, napi_value value, const char *name, int *out) {
  return get_int(env, value, name, 0, INT_MAX, out);
}

/* Copies at most size-1 bytes; *len is the full UTF-8 length so callers can report what is too long. */
static bool get_string(napi_env env, napi_value value, const char *name, char *buf, size_t size,
                       size_t *len) {
  napi_valuetype type;
  size_t copied;
  CHECK_BOOL(napi_typeof(env, value, &type));
  if (type != napi_string) {
    throw_arg(env, false, "ERR_INVALID_ARG_TYPE", "The \"%s\" argument must be of type string", name);
    return false;
  }
  CHECK_BOOL(napi_get_value_string_utf8(env, value, NULL, 0, len));
  CHECK_BOOL(napi_get_value_string_utf8(env, value, buf, size, &copied));
  if (strlen(buf) != copied) {
    throw_arg(env, false, "ERR_INVALID_ARG_VALUE", "The \"%s\" argument must not contain NUL bytes", name);
    return false;
  }
  return true;
}

static bool get_fds(napi_env env, napi_value value, int *fds, uint32_t *count) {
  bool is_array;
  char name[16];
  CHECK_BOOL(napi_is_array(env, value, &is_array));
  if (!is_array) {
    throw_arg(env, false, "ERR_INVALID_ARG_TYPE", "The \"fds\" argument must be an array of fds");
    return false;
  }
  CHECK_BOOL(napi_get_array_length(env, value, count));
  if (*count > MAX_FDS) {
    throw_arg(env, true, "ERR_INVALID_ARG_VALUE",
              "The \"fds\" argument holds %u fds; at most %d fit in one message", *count, MAX_FDS);
    return false;
  }
  for (uint32_t i = 0; i < *count; i++) {
    napi_value element;
    CHECK_BOOL(napi_get_element(env, value, i, &element));
    snprintf(name, sizeof name, "fds[%u]", i);
    if (!get_fd(env, element, name, &fds[i])) return false;
  }
  return true;
}

static void attach_fds(struct msghdr *msg, fd_control *control, const int *fds, uint32_t count) {
  struct cmsghdr *cmsg;
  if (count == 0) return;
  memset(control, 0, sizeof *control);
  msg->msg_control = control->buf;
  msg->msg_controllen = CMSG_SPACE(sizeof(int) * count);
  cmsg = CMSG_FIRSTHDR(msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
  memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
}

static void close_all(const int *fds, size_t count) {
  for (size_t i = 0; i < count; i++) close(fds[i]);
}

static bool set_number(napi_env env, napi_value object, const char *key, double number) {
  napi_value value;
  CHECK_BOOL(napi_create_double(env, number, &value));
  CHECK_BOOL(napi_set_named_property(env, object, key, value));
  return true;
}

static bool set_string(napi_env env, napi_value object, const char *key, const char *str, size_t len) {
  napi_value value;
  CHECK_BOOL(napi_create_string_utf8(env, str, len, &value));
  CHECK_BOOL(napi_set_named_property(env, object, key, value));
  return true;
}

/* bind + listen on a fresh socket (unless an earlier step already `failed`); on failure closes it
 * and throws "<fn> <syscall> <target>", otherwise returns the fd. */
static napi_value bind_and_listen(napi_env env, int fd, const struct sockaddr *addr, socklen_t addr_len, int backlog,
                                  const char *failed, const char *fn, const char *target) {
  napi_value result;
  if (!failed && bind(fd, addr, addr_len) < 0)
    failed = "bind";
  else if (!failed && listen(fd, backlog) < 0)
    failed = "listen";
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, failed, "%s %s %s", fn, failed, target);
  }
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

static napi_value js_tcp_listen(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char host[INET6_ADDRSTRLEN], target[INET6_ADDRSTRLEN + 8];
  size_t host_len;
  int port, backlog, fd, one = 1;
  bool v6only;
  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } addr;
  socklen_t addr_len;
  const char *failed = NULL;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_string(env, argv[0], "host", host, sizeof host, &host_len) ||
      !get_int(env, argv[1], "port", 0, 65535, &port) ||
      !get_int(env, argv[2], "backlog", 0, INT_MAX, &backlog) ||
      !get_bool(env, argv[3], "ipv6Only", &v6only))
    return NULL;

  memset(&addr, 0, sizeof addr);
  if (host_len < sizeof host && inet_pton(AF_INET, host, &addr.in.sin_addr) == 1) {
    addr.in.sin_family = AF_INET;
    addr.in.sin_port = htons((uint16_t)port);
    addr_len = sizeof addr.in;
    snprintf(target, sizeof target, "%s:%d", host, port);
  } else if (host_len < sizeof host && inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
    addr.in6.sin6_family = AF_INET6;
    addr.in6.sin6_port = htons((uint16_t)port);
    addr_len = sizeof addr.in6;
    snprintf(target, sizeof target, "[%s]:%d", host, port);
  } else {
    throw_arg(env, false, "ERR_INVALID_ARG_VALUE",
              "The \"host\" argument must be a numeric IPv4 or IPv6 address, got '%.64s'", host);
    return NULL;
  }

  fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", "tcpListen socket %s", target);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    failed = "setsockopt";
  /* Set either way: the default comes from the net.ipv6.bindv6only sysctl. */
  else if (addr.sa.sa_family == AF_INET6 &&
           setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){v6only}, sizeof(int)) < 0)
    failed = "setsockopt";
  return bind_and_listen(env, fd, &addr.sa, addr_len, backlog, failed, "tcpListen", target);
}

/* A filesystem path needs room for its NUL; an abstract name ('@' here, '\0' to the kernel) has none. */
static bool unix_address(napi_env env, napi_value value, const char *fn, const char *syscall, bool abstract_ok,
                         char path[PATH_MAX], struct sockaddr_un *addr, socklen_t *addr_len) {
  size_t len;
  bool abstract;
  if (!get_string(env, value, "path", path, PATH_MAX, &len)) return false;
  abstract = abstract_ok && path[0] == '@';
  if (len == 0 || (abstract && len == 1)) {
    throw_arg(env, false, "ERR_INVALID_ARG_VALUE", "The \"path\" argument must name a socket");
    return false;
  }
  if (len > sizeof addr->sun_path - !abstract) {
    throw_errno(env, ENAMETOOLONG, syscall, "%s %s %s", fn, syscall, path);
    return false;
  }
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path, len);
  if (abstract) addr->sun_path[0] = '\0';
  *addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + !abstract);
  return true;
}

static napi_value js_unix_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[PATH_MAX];
  struct sockaddr_un addr;
  socklen_t addr_len;
  int backlog, fd;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!unix_address(env, argv[0], "unixListen", "bind", false, path, &addr, &addr_len) ||
      !get_int(env, argv[1], "backlog", 0, INT_MAX, &backlog))
    return NULL;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", "unixListen socket %s", path);
  return bind_and_listen(env, fd, (struct sockaddr *)&addr, addr_len, backlog, NULL, "unixListen", path);
}

static napi_value js_sock_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int fd;
  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
    struct sockaddr_storage storage;
  } addr;
  socklen_t len = sizeof addr;
  char text[INET6_ADDRSTRLEN];
  size_t path_len;
  bool ok;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (getsockname(fd, &addr.sa, &len) < 0)
    return throw_errno(env, errno, "getsockname", "sockName getsockname fd %d", fd);
  CHECK(napi_create_object(env, &result));
  switch (addr.sa.sa_family) {
    case AF_INET:
      inet_ntop(AF_INET, &addr.in.sin_addr, text, sizeof text);
      ok = set_string(env, result, "family", "IPv4", NAPI_AUTO_LENGTH) &&
           set_string(env, result, "address", text, NAPI_AUTO_LENGTH) &&
           set_number(env, result, "port", ntohs(addr.in.sin_port));
      break;
    case AF_INET6:
      inet_ntop(AF_INET6, &addr.in6.sin6_addr, text, sizeof text);
      ok = set_string(env, result, "family", "IPv6", NAPI_AUTO_LENGTH) &&
           set_string(env, result, "address", text, NAPI_AUTO_LENGTH) &&
           set_number(env, result, "port", ntohs(addr.in6.sin6_port));
      break;
    case AF_UNIX:
      /* An unnamed socket's length covers only the family. */
      path_len = len - offsetof(struct sockaddr_un, sun_path);
      if (path_len > 0 && addr.un.sun_path[0] == '\0')
        addr.un.sun_path[0] = '@'; /* same spelling sdNotify accepts */
      else
        path_len = strnlen(addr.un.sun_path, path_len);
      ok = set_string(env, result, "family", "unix", NAPI_AUTO_LENGTH) &&
           set_string(env, result, "address", addr.un.sun_path, path_len) &&
           set_number(env, result, "port", 0);
      break;
    default:
      return throw_errno(env, EAFNOSUPPORT, "getsockname", "sockName getsockname fd %d (family %d)", fd,
                         addr.sa.sa_family);
  }
  return ok ? result : NULL;
}

static bool fd_array(napi_env env, const int *fds, size_t count, napi_value *out) {
  CHECK_BOOL(napi_create_array_with_length(env, count, out));
  for (size_t i = 0; i < count; i++) {
    napi_value fd;
    CHECK_BOOL(napi_create_int32(env, fds[i], &fd));
    CHECK_BOOL(napi_set_element(env, *out, (uint32_t)i, fd));
  }
  return true;
}

static napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  int pair[2];
  napi_value result;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
    return throw_errno(env, errno, "socketpair", "socketPair socketpair AF_UNIX SOCK_SEQPACKET");
  if (!fd_array(env, pair, 2, &result)) {
    close_all(pair, 2);
    return NULL;
  }
  return result;
}

static napi_value js_send_fds(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3];
  int sock, fds[MAX_FDS];
  uint32_t nfds;
  bool is_buffer;
  void *data;
  fd_control control;
  struct iovec iov;
  struct msghdr msg;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "sock", &sock) || !get_fds(env, argv[1], fds, &nfds)) return NULL;
  CHECK(napi_is_buffer(env, argv[2], &is_buffer));
  if (!is_buffer) {
    throw_arg(env, false, "ERR_INVALID_ARG_TYPE", "The \"payload\" argument must be a Buffer");
    return NULL;
  }
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  /* Empty is refused because the receiver reads 0 bytes as the peer having closed. */
  if (len == 0 || len > MAX_PAYLOAD) {
    throw_arg(env, true, "ERR_INVALID_ARG_VALUE", "The \"payload\" argument must hold 1 to %d bytes, got %zu",
              MAX_PAYLOAD, len);
    return NULL;
  }
  iov.iov_base = data;
  iov.iov_len = len;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  attach_fds(&msg, &control, fds, nfds);
  if (sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    return throw_errno(env, errno, "sendmsg", "sendFds sendmsg fd %d", sock);
  return NULL;
}

static bool recv_result(napi_env env, const int *fds, size_t nfds, const char *data, size_t len,
                        napi_value *out) {
  napi_value fd_list, payload;
  if (!fd_array(env, fds, nfds, &fd_list)) return false;
  CHECK_BOOL(napi_create_buffer_copy(env, len, data, NULL, &payload));
  CHECK_BOOL(napi_create_object(env, out));
  CHECK_BOOL(napi_set_named_property(env, *out, "fds", fd_list));
  CHECK_BOOL(napi_set_named_property(env, *out, "payload", payload));
  return true;
}

static napi_value js_recv_fds(napi_env env, napi_callback_info info) {
  size_t argc = 1, nfds = 0;
  napi_value argv[1], result;
  int sock, fds[MAX_FDS];
  char data[MAX_PAYLOAD];
  fd_control control;
  struct iovec iov = {data, sizeof data};
  struct msghdr msg;
  struct cmsghdr *cmsg;
  ssize_t n;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "sock", &sock)) return NULL;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return throw_errno(env, errno, "recvmsg", "recvFds recvmsg fd %d", sock);
  /* control has room for MAX_FDS ints in all, so fds cannot overflow. */
  for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
      size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(fds + nfds, CMSG_DATA(cmsg), count * sizeof(int));
      nfds += count;
    }
  }
  if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
    close_all(fds, nfds);
    return throw_errno(env, EMSGSIZE, "recvmsg", "recvFds recvmsg fd %d (message or fds truncated)", sock);
  }
  if (n == 0) {
    close_all(fds, nfds);
    return throw_errno(env, ECONNRESET, "recvmsg", "recvFds recvmsg fd %d (end of stream)", sock);
  }
  if (!recv_result(env, fds, nfds, data, (size_t)n, &result)) {
    close_all(fds, nfds);
    return NULL;
  }
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  /* Linux frees the fd even when close reports EINTR; retrying could close a reused number. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close", "close fd %d", fd);
  return NULL;
}

static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd, flags;
  bool on;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    throw_arg(env, false, "ERR_INVALID_ARG_TYPE", "The \"on\" argument must be of type boolean");
    return NULL;
  }
  flags = fcntl(fd, F_GETFD);
  if (flags < 0) return throw_errno(env, errno, "fcntl", "setCloexec fcntl F_GETFD fd %d", fd);
  flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (fcntl(fd, F_SETFD, flags) < 0) return throw_errno(env, errno, "fcntl", "setCloexec fcntl F_SETFD fd %d", fd);
  return NULL;
}

static napi_value js_peer_cred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return throw_errno(env, errno, "getsockopt", "peerCred getsockopt SO_PEERCRED fd %d", fd);
  CHECK(napi_create_object(env, &result));
  if (!set_number(env, result, "pid", cred.pid) || !set_number(env, result, "uid", cred.uid) ||
      !set_number(env, result, "gid", cred.gid))
    return NULL;
  return result;
}

static napi_value js_set_pdeathsig(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int sig;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_int(env, argv[0], "signal", 0, INT_MAX, &sig)) return NULL;
  if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0UL, 0UL, 0UL) < 0)
    return throw_errno(env, errno, "prctl", "setPdeathsig prctl PR_SET_PDEATHSIG %d", sig);
  return NULL;
}

static napi_value js_sd_notify(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3];
  char path[PATH_MAX], message[MAX_PAYLOAD + 1];
  struct sockaddr_un addr;
  socklen_t addr_len;
  int fds[MAX_FDS], fd, err = 0;
  uint32_t nfds;
  fd_control control;
  struct iovec iov;
  struct msghdr msg;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!unix_address(env, argv[0], "sdNotify", "sendmsg", true, path, &addr, &addr_len) ||
      !get_string(env, argv[1], "message", message, sizeof message, &len) || !get_fds(env, argv[2], fds, &nfds))
    return NULL;
  /* systemd reads notifications into a PIPE_BUF-sized buffer and drops longer ones. */
  if (len > MAX_PAYLOAD) {
    throw_arg(env, true, "ERR_INVALID_ARG_VALUE", "The \"message\" argument must be at most %d bytes, got %zu",
              MAX_PAYLOAD, len);
    return NULL;
  }
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", "sdNotify socket %s", path);
  iov.iov_base = message;
  iov.iov_len = len;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &addr;
  msg.msg_namelen = addr_len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  attach_fds(&msg, &control, fds, nfds);
  /* MSG_DONTWAIT: a manager with a full queue yields EAGAIN instead of stalling the event loop. */
  if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) err = errno;
  close(fd);
  if (err) return throw_errno(env, err, "sendmsg", "sdNotify sendmsg %s", path);
  return NULL;
}

/* The receiving end of a generation's NOTIFY_SOCKET. SO_PASSCRED makes every datagram carry its
 * sender's pid, so the supervisor can tell whose notification it is. */
static napi_value js_dgram_bind(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  char path[PATH_MAX];
  struct sockaddr_un addr;
  socklen_t addr_len;
  int fd, one = 1, err;
  const char *failed = NULL;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!unix_address(env, argv[0], "dgramBind", "bind", false, path, &addr, &addr_len)) return NULL;
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", "dgramBind socket %s", path);
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
    failed = "setsockopt";
  else if (bind(fd, (struct sockaddr *)&addr, addr_len) < 0)
    failed = "bind";
  if (failed) {
    err = errno;
    close(fd);
    return throw_errno(env, err, failed, "dgramBind %s %s", failed, path);
  }
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * MAX_FDS)];
} cred_control;

static napi_value js_dgram_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, payload;
  int fd;
  pid_t pid = 0;
  char data[MAX_PAYLOAD];
  cred_control control;
  struct iovec iov = {data, sizeof data};
  struct msghdr msg;
  struct cmsghdr *cmsg;
  ssize_t n;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  if (n < 0) return throw_errno(env, errno, "recvmsg", "dgramRecv recvmsg fd %d", fd);
  /* Descriptors sent along (FDSTORE=1) are not kept: close them before anything can fail. */
  for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET) continue;
    if (cmsg->cmsg_type == SCM_RIGHTS)
      close_all((const int *)CMSG_DATA(cmsg), (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    else if (cmsg->cmsg_type == SCM_CREDENTIALS && cmsg->cmsg_len >= CMSG_LEN(sizeof(struct ucred)))
      pid = ((const struct ucred *)CMSG_DATA(cmsg))->pid;
  }
  /* systemd drops notifications longer than its buffer; so do we, but the datagram is consumed. */
  if (msg.msg_flags & MSG_TRUNC)
    return throw_errno(env, EMSGSIZE, "recvmsg", "dgramRecv recvmsg fd %d (datagram over %d bytes)", fd, MAX_PAYLOAD);
  CHECK(napi_create_buffer_copy(env, (size_t)n, data, NULL, &payload));
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "payload", payload));
  if (!set_number(env, result, "pid", pid)) return NULL;
  return result;
}

/*
 * A shared file another process truncates turns every access past its new end into SIGBUS, and
 * JavaScript cannot catch a signal: a buggy generation cutting the stats segment would kill the
 * supervisor and every generation mapping it. File seals (F_SEAL_SHRINK) would prevent the cut
 * but exist only on memfds, which have no name in /dev/shm for generations and `baton stats` to
 * open. So every mapping made here is registered, and a SIGBUS inside one replaces the pages from
 * the faulting one to the mapping's end with private zero pages and lets the access retry: the
 * process survives and reads zeros where the file was cut. mmap is a bare syscall, safe enough in
 * a handler. Any other SIGBUS goes to the previous handler, or ends the process as it would have.
 */
#define MAX_GUARDED 4096
static struct {
  _Atomic uintptr_t start;
  _Atomic uintptr_t end;
} guarded[MAX_GUARDED];
static _Atomic uint64_t bus_faults;
static _Atomic int bus_installed;
static struct sigaction previous_bus;
static uintptr_t page_mask;

static void on_sigbus(int sig, siginfo_t *si, void *ctx) {
  int saved = errno;
  uintptr_t addr = (uintptr_t)si->si_addr;
  for (size_t i = 0; i < MAX_GUARDED; i++) {
    uintptr_t start = atomic_load(&guarded[i].start), end = atomic_load(&guarded[i].end);
    if (start == 0 || addr < start || addr >= end) continue;
    uintptr_t page = addr & ~page_mask;
    if (mmap((void *)page, end - page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
      atomic_fetch_add(&bus_faults, 1);
      errno = saved;
      return;
    }
    break;
  }
  errno = saved;
  if (previous_bus.sa_flags & SA_SIGINFO) {
    previous_bus.sa_sigaction(sig, si, ctx);
  } else if (previous_bus.sa_handler != SIG_DFL && previous_bus.sa_handler != SIG_IGN) {
    previous_bus.sa_handler(sig);
  } else {
    signal(SIGBUS, SIG_DFL); /* the access faults again and the default action applies */
  }
}

/* Registers [addr, addr + length) with the SIGBUS guard, installing it on first use; errno on failure. */
static int guard_mapping(void *addr, size_t length) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&bus_installed, &expected, 1)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    page_mask = (uintptr_t)sysconf(_SC_PAGESIZE) - 1;
    if (sigaction(SIGBUS, &sa, &previous_bus) != 0) {
      atomic_store(&bus_installed, 0);
      return errno;
    }
  }
  for (size_t i = 0; i < MAX_GUARDED; i++) {
    uintptr_t free_slot = 0;
    if (atomic_load(&guarded[i].start) != 0) continue;
    atomic_store(&guarded[i].end, (uintptr_t)addr + length);
    if (atomic_compare_exchange_strong(&guarded[i].start, &free_slot, (uintptr_t)addr)) return 0;
  }
  return EMFILE;
}

static void unguard_mapping(void *addr) {
  for (size_t i = 0; i < MAX_GUARDED; i++) {
    uintptr_t start = (uintptr_t)addr;
    if (atomic_compare_exchange_strong(&guarded[i].start, &start, 0)) return;
  }
}

static void unmap(napi_env env, void *data, void *length) {
  (void)env;
  unguard_mapping(data);
  munmap(data, (size_t)(uintptr_t)length);
}

static napi_value js_bus_faults(napi_env env, napi_callback_info info) {
  napi_value result;
  (void)info;
  CHECK(napi_create_double(env, (double)atomic_load(&bus_faults), &result));
  return result;
}

static napi_value js_mmap(napi_env env, napi_callback_info info) {
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

static napi_value js_mallinfo2(napi_env env, napi_callback_info info) {
  struct mallinfo2 m = mallinfo2();
  const struct {
    const char *key;
    size_t value;
  } fields[] = {
      {"arena", m.arena},       {"ordblks", m.ordblks},   {"smblks", m.smblks},     {"hblks", m.hblks},
      {"hblkhd", m.hblkhd},     {"usmblks", m.usmblks},   {"fsmblks", m.fsmblks},   {"uordblks", m.uordblks},
      {"fordblks", m.fordblks}, {"keepcost", m.keepcost},
  };
  napi_value result;
  CHECK(napi_create_object(env, &result));
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
    if (!set_number(env, result, fields[i].key, (double)fields[i].value)) return NULL;
  return result;
}

/* jemalloc's mallctl, looked up at run time: present only when jemalloc is the process's malloc
 * (LD_PRELOAD), and null otherwise. "epoch" refreshes the cached statistics first. */
typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static napi_value js_jemalloc_stats(napi_env env, napi_callback_info info) {
  static const char *const keys[][2] = {
      {"allocated", "stats.allocated"}, {"active", "stats.active"},     {"resident", "stats.resident"},
      {"mapped", "stats.mapped"},       {"retained", "stats.retained"},
  };
  mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
  napi_value result;
  uint64_t epoch = 1;
  size_t len = sizeof epoch;
  (void)info;
  if (!mallctl) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  int err = mallctl("epoch", &epoch, &len, &epoch, len);
  if (err) return throw_errno(env, err, "mallctl", "jemallocStats mallctl epoch");
  CHECK(napi_create_object(env, &result));
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    size_t value;
    len = sizeof value;
    err = mallctl(keys[i][1], &value, &len, NULL, 0);
    if (err) return throw_errno(env, err, "mallctl", "jemallocStats mallctl %s", keys[i][1]);
    if (!set_number(env, result, keys[i][0], (double)value)) return NULL;
  }
  return result;
}

static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int64_t pad;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_integer(env, argv[0], "pad", 0, MAX_SAFE_INTEGER, &pad)) return NULL;
  CHECK(napi_get_boolean(env, malloc_trim((size_t)pad) != 0, &result));
  return result;
}

static napi_value js_malloc_info(napi_env env, napi_callback_info info) {
  char *xml = NULL;
  size_t size = 0;
  napi_value result;
  napi_status status;
  FILE *stream = open_memstream(&xml, &size);
  if (!stream) return throw_errno(env, errno, "open_memstream", "mallocInfo open_memstream");
  if (malloc_info(0, stream) != 0) {
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
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof *functions, functions) != napi_ok)
    return NULL;
  return exports;
}
