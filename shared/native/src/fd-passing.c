/*
 * Descriptors over AF_UNIX sockets (SCM_RIGHTS): how listeners reach each generation. Every
 * receive goes through recv_message, which never lets a received fd escape unaccounted: kept in
 * the result for the caller, or closed.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "baton.h"

/* Credentials (SO_PASSCRED receivers) plus MAX_FDS fds; a sender's extra fds up to what is left
 * still arrive, to be counted and closed, and beyond that the kernel reports MSG_CTRUNC. */
typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * MAX_FDS)];
} recv_control;

void attach_fds(struct msghdr *msg, fd_control *control, const int *fds, uint32_t count) {
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

static void take_fds(const unsigned char *data, size_t bytes, size_t max_fds, received *out) {
  for (size_t i = 0; i + sizeof(int) <= bytes; i += sizeof(int)) {
    int fd;
    memcpy(&fd, data + i, sizeof fd);
    if (out->nfds < max_fds) {
      out->fds[out->nfds++] = fd;
    } else {
      close(fd);
      out->dropped++;
    }
  }
}

ssize_t recv_message(int sock, void *data, size_t size, size_t max_fds, received *out) {
  recv_control control;
  struct iovec iov = {data, size};
  struct msghdr msg;
  struct cmsghdr *cmsg;
  const unsigned char *end;
  ssize_t n;

  memset(out, 0, sizeof *out);
  if (max_fds > MAX_FDS) max_fds = MAX_FDS;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return -1;
  out->ctrunc = (msg.msg_flags & MSG_CTRUNC) != 0;
  out->trunc = (msg.msg_flags & MSG_TRUNC) != 0;
  /* The kernel leaves msg_controllen at what it wrote; a length past it is not to be trusted. */
  if (msg.msg_controllen > sizeof control.buf) msg.msg_controllen = sizeof control.buf;
  end = (const unsigned char *)control.buf + msg.msg_controllen;
  for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    size_t bytes;
    if (cmsg->cmsg_len < CMSG_LEN(0) || cmsg->cmsg_len > (size_t)(end - (const unsigned char *)cmsg)) {
      out->malformed = true;
      break;
    }
    bytes = cmsg->cmsg_len - CMSG_LEN(0);
    if (cmsg->cmsg_level != SOL_SOCKET) continue;
    if (cmsg->cmsg_type == SCM_RIGHTS) {
      take_fds(CMSG_DATA(cmsg), bytes, max_fds, out);
    } else if (cmsg->cmsg_type == SCM_CREDENTIALS && bytes >= sizeof(struct ucred)) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(cmsg), sizeof cred);
      out->pid = cred.pid;
    }
  }
  return n;
}

napi_value js_send_fds(napi_env env, napi_callback_info info) {
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

static bool recv_result(napi_env env, const received *got, const char *data, size_t len, napi_value *out) {
  napi_value fd_list, payload;
  if (!fd_array(env, got->fds, got->nfds, &fd_list)) return false;
  CHECK_BOOL(napi_create_buffer_copy(env, len, data, NULL, &payload));
  CHECK_BOOL(napi_create_object(env, out));
  CHECK_BOOL(napi_set_named_property(env, *out, "fds", fd_list));
  CHECK_BOOL(napi_set_named_property(env, *out, "payload", payload));
  return true;
}

/* Each refusal closes every fd received, and the message is consumed either way. */
napi_value js_recv_fds(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int sock;
  char data[MAX_PAYLOAD];
  received got;
  ssize_t n;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_fd(env, argv[0], "sock", &sock)) return NULL;
  n = recv_message(sock, data, sizeof data, MAX_FDS, &got);
  if (n < 0) return throw_errno(env, errno, "recvmsg", "recvFds recvmsg fd %d", sock);
  if (got.malformed || got.ctrunc || got.dropped || got.trunc || n == 0) close_all(got.fds, got.nfds);
  if (got.malformed)
    return throw_errno(env, EPROTO, "recvmsg", "recvFds recvmsg fd %d (control message overruns its buffer)", sock);
  if (got.ctrunc)
    return throw_errno(env, EMSGSIZE, "recvmsg",
                       "recvFds recvmsg fd %d (fds truncated, MSG_CTRUNC: more than fit, or no free fd to take one)",
                       sock);
  if (got.dropped)
    return throw_errno(env, EMSGSIZE, "recvmsg", "recvFds recvmsg fd %d (%zu fds, at most %d accepted)", sock,
                       got.nfds + got.dropped, MAX_FDS);
  if (got.trunc)
    return throw_errno(env, EMSGSIZE, "recvmsg", "recvFds recvmsg fd %d (payload over %d bytes, MSG_TRUNC)", sock,
                       MAX_PAYLOAD);
  if (n == 0) return throw_errno(env, ECONNRESET, "recvmsg", "recvFds recvmsg fd %d (end of stream)", sock);
  if (!recv_result(env, &got, data, (size_t)n, &result)) {
    close_all(got.fds, got.nfds);
    return NULL;
  }
  return result;
}
