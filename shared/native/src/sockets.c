/*
 * Sockets Node cannot make or inspect itself: listeners created before any generation exists
 * (so they can be handed over), socket names, SEQPACKET pairs, close-on-exec and peer credentials.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "baton.h"

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

napi_value js_tcp_listen(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  char host[INET6_ADDRSTRLEN], target[INET6_ADDRSTRLEN + 8];
  size_t host_len;
  int port, backlog, fd, one = 1;
  bool v6only, reuse_port = false;
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
      !get_bool(env, argv[3], "ipv6Only", &v6only) ||
      (argc > 4 && !get_bool(env, argv[4], "reusePort", &reuse_port)))
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
  /* One socket per worker on the same port: the kernel spreads connections across them. */
  else if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    failed = "setsockopt";
  /* Set either way: the default comes from the net.ipv6.bindv6only sysctl. */
  else if (addr.sa.sa_family == AF_INET6 &&
           setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){v6only}, sizeof(int)) < 0)
    failed = "setsockopt";
  return bind_and_listen(env, fd, &addr.sa, addr_len, backlog, failed, "tcpListen", target);
}

/* A filesystem path needs room for its NUL; an abstract name ('@' here, '\0' to the kernel) has none. */
bool unix_address(napi_env env, napi_value value, const char *fn, const char *syscall, bool abstract_ok,
                  char *path, struct sockaddr_un *addr, socklen_t *addr_len) {
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

napi_value js_unix_listen(napi_env env, napi_callback_info info) {
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

napi_value js_sock_name(napi_env env, napi_callback_info info) {
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

napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  int pair[2];
  napi_value result;
  (void)info;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
    return throw_errno(env, errno, "socketpair", "socketPair socketpair AF_UNIX SOCK_SEQPACKET");
  if (!fd_array(env, pair, 2, &result)) {
    close_all(pair, 2);
    return NULL;
  }
  return result;
}

napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  /* Linux frees the fd even when close reports EINTR; retrying could close a reused number. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close", "close fd %d", fd);
  return NULL;
}

napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
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

napi_value js_peer_cred(napi_env env, napi_callback_info info) {
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
