/*
 * sd_notify's datagrams, both ends: sending one as a child does, and the supervisor's receiving
 * socket (a generation's NOTIFY_SOCKET). SO_PASSCRED makes every datagram carry its sender's pid,
 * so the supervisor can tell whose notification it is.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "baton.h"

napi_value js_sd_notify(napi_env env, napi_callback_info info) {
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

napi_value js_dgram_bind(napi_env env, napi_callback_info info) {
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

napi_value js_dgram_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, payload;
  int fd;
  char data[MAX_PAYLOAD];
  received got;
  ssize_t n;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  /* Descriptors sent along (FDSTORE=1) are not kept: a maximum of 0 closes them all on arrival. */
  n = recv_message(fd, data, sizeof data, 0, &got);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return null_value(env);
  if (n < 0) return throw_errno(env, errno, "recvmsg", "dgramRecv recvmsg fd %d", fd);
  if (got.malformed)
    return throw_errno(env, EPROTO, "recvmsg", "dgramRecv recvmsg fd %d (control message overruns its buffer)", fd);
  /* systemd drops notifications longer than its buffer; so do we, but the datagram is consumed. */
  if (got.trunc)
    return throw_errno(env, EMSGSIZE, "recvmsg", "dgramRecv recvmsg fd %d (datagram over %d bytes)", fd, MAX_PAYLOAD);
  CHECK(napi_create_buffer_copy(env, (size_t)n, data, NULL, &payload));
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "payload", payload));
  if (!set_number(env, result, "pid", got.pid)) return NULL;
  return result;
}
