/*
 * baton-exec EXPECTED_PPID CMD [ARGS...]
 *
 * Every generation is spawned through this shim so that it dies with the supervisor: the death
 * signal is armed before exec (it survives exec), and the parent is re-checked afterwards because
 * a parent that died before prctl() would never deliver it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char *end;
  long expected_ppid;
  int err;

  if (argc < 3) {
    fputs("usage: baton-exec EXPECTED_PPID CMD [ARGS...]\n", stderr);
    return 2;
  }
  errno = 0;
  expected_ppid = strtol(argv[1], &end, 10);
  if (errno != 0 || end == argv[1] || *end != '\0' || expected_ppid <= 0) {
    fprintf(stderr, "baton-exec: EXPECTED_PPID must be a positive integer, got '%s'\n", argv[1]);
    return 2;
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    err = errno;
    fprintf(stderr, "baton-exec: prctl(PR_SET_PDEATHSIG): %s (%s)\n", strerror(err), strerrorname_np(err));
    return 1;
  }
  if (getppid() != (pid_t)expected_ppid) return 1;
  /* systemd socket activation: LISTEN_PID names the process that owns the fds, and exec keeps our pid. */
  if (getenv("LISTEN_FDS")) {
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    if (setenv("LISTEN_PID", pid, 1) != 0) {
      err = errno;
      fprintf(stderr, "baton-exec: setenv(LISTEN_PID): %s (%s)\n", strerror(err), strerrorname_np(err));
      return 1;
    }
  }
  execvp(argv[2], argv + 2);
  err = errno;
  fprintf(stderr, "baton-exec: cannot execute '%s': %s (%s)\n", argv[2], strerror(err),
          strerrorname_np(err) ? strerrorname_np(err) : "unknown errno");
  return err == EACCES || err == ENOEXEC ? 126 : 127;
}
