/*
 * baton-exec EXPECTED_PPID CMD [ARGS...]
 * baton-exec --reap CONTROL_FD GRACE_MS EXPECTED_PPID CMD [ARGS...]
 *
 * Every generation is spawned through this shim so that it dies with the supervisor: the death
 * signal is armed before exec (it survives exec), and the parent is re-checked afterwards because
 * a parent that died before prctl() would never deliver it.
 *
 * With --reap the shim stays, as the generation's reaper (the way tini does for a container), so
 * that what the generation starts ends with it. Why here and not in the supervisor: a subreaper
 * must reap every orphan that lands on it, and Node's libuv reaps only the pids it spawned, so a
 * subreaping supervisor would collect zombies and could not tell one generation's orphans from
 * another's (setsid and double forks erase the process group and session). One reaper per
 * generation makes the attribution structural: whatever re-parents to it belongs to it.
 *
 *  - PR_SET_CHILD_SUBREAPER: descendants whose parent dies re-parent to the shim, not to init.
 *  - CMD runs in a forked child: LISTEN_PID is set there, to CMD's own pid, and CMD gets
 *    PR_SET_PDEATHSIG(SIGKILL) against the shim. The shim writes CMD's pid ("PID\n") on
 *    CONTROL_FD right after the fork, then closes every other descriptor it inherited (the
 *    listeners, the IPC and SCM_RIGHTS channels stay with CMD alone).
 *  - Every signal the shim can catch is forwarded to CMD. A byte 'K' on CONTROL_FD kills CMD and
 *    every descendant with SIGKILL (SIGKILL itself cannot be forwarded). End of file on
 *    CONTROL_FD means the supervisor is gone: everything is killed the same way.
 *  - When CMD exits, every remaining descendant gets SIGTERM, and SIGKILL GRACE_MS later (at once
 *    when CMD itself was killed by SIGKILL); once none is left the shim exits with CMD's status,
 *    re-raising the signal that killed it.
 *
 * Both ways, BATON_CPU_SCHEDULING sets CMD's scheduling policy before exec (set_scheduling).
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "unknown errno";
}

static int fail(const char *what) {
  int err = errno;
  fprintf(stderr, "baton-exec: %s: %s (%s)\n", what, strerror(err), errname(err));
  return 1;
}

static int parse_long(const char *text, const char *what, long *out) {
  char *end;
  errno = 0;
  *out = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || *out < 0) {
    fprintf(stderr, "baton-exec: %s must be a non-negative integer, got '%s'\n", what, text);
    return -1;
  }
  return 0;
}

/* systemd socket activation: LISTEN_PID names the process that owns the fds. */
static int set_listen_pid(void) {
  char pid[24];
  if (!getenv("LISTEN_FDS")) return 0;
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  if (setenv("LISTEN_PID", pid, 1) != 0) return fail("setenv(LISTEN_PID)");
  return 0;
}

/*
 * BATON_CPU_SCHEDULING=batch|idle (the config's cpu-scheduling): the policy is set here, before
 * exec, because it is per thread and a thread inherits its creator's: set in the command's first
 * thread, it covers every thread Node starts. Unset afterwards: it describes the launch, not the app.
 */
static int set_scheduling(void) {
  const char *want = getenv("BATON_CPU_SCHEDULING");
  struct sched_param none = {0};
  int policy;
  if (!want) return 0;
  if (strcmp(want, "batch") == 0) policy = SCHED_BATCH;
  else if (strcmp(want, "idle") == 0) policy = SCHED_IDLE;
  else if (strcmp(want, "other") == 0) policy = SCHED_OTHER;
  else {
    fprintf(stderr, "baton-exec: BATON_CPU_SCHEDULING must be other, batch or idle, got '%s'\n", want);
    return -1;
  }
  if (sched_setscheduler(0, policy, &none) != 0) return fail("sched_setscheduler");
  unsetenv("BATON_CPU_SCHEDULING");
  return 0;
}

static int exec_command(char **argv) {
  int err;
  if (set_scheduling() != 0) return 1;
  execvp(argv[0], argv);
  err = errno;
  fprintf(stderr, "baton-exec: cannot execute '%s': %s (%s)\n", argv[0], strerror(err), errname(err));
  return err == EACCES || err == ENOEXEC ? 126 : 127;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * Signals every live descendant of this process. Read from /proc's parent links rather than from
 * process groups or sessions, which a descendant may leave; a process forked meanwhile is caught
 * by the next round (the caller repeats until none is left).
 */
static void signal_descendants(int sig) {
  enum { MAX = 65536 };
  static pid_t pids[MAX], parents[MAX];
  static char marked[MAX];
  int n = 0, changed = 1;
  DIR *proc = opendir("/proc");
  struct dirent *e;
  if (!proc) return;
  while ((e = readdir(proc)) != NULL && n < MAX) {
    char path[64], buf[512], *close_paren;
    FILE *f;
    pid_t pid = (pid_t)atoi(e->d_name);
    if (pid <= 0) continue;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r"))) continue;
    if (fgets(buf, sizeof buf, f) && (close_paren = strrchr(buf, ')')) != NULL) {
      char state;
      int ppid;
      if (sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 && state != 'Z') {
        pids[n] = pid;
        parents[n] = ppid;
        marked[n] = ppid == getpid();
        n++;
      }
    }
    fclose(f);
  }
  closedir(proc);
  while (changed) {
    changed = 0;
    for (int i = 0; i < n; i++) {
      if (marked[i]) continue;
      for (int j = 0; j < n; j++) {
        if (marked[j] && pids[j] == parents[i]) {
          marked[i] = 1;
          changed = 1;
          break;
        }
      }
    }
  }
  for (int i = 0; i < n; i++) if (marked[i]) kill(pids[i], sig);
}

/* Closes every descriptor from 3 on but `keep1` and `keep2`. */
static void close_inherited(int keep1, int keep2) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int fds[1024], n = 0;
  if (!d) return;
  while ((e = readdir(d)) != NULL && n < 1024) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd > 2 && fd != keep1 && fd != keep2 && fd != dirfd(d)) fds[n++] = fd;
  }
  closedir(d);
  for (int i = 0; i < n; i++) close(fds[i]);
}

/* Ends this process the way CMD ended. */
static int exit_like(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    struct rlimit none = {0, 0};
    sigset_t set;
    setrlimit(RLIMIT_CORE, &none); /* CMD dumped its own core, if any: not a second one of the shim */
    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
    return 128 + sig;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int reap(int control, long grace_ms, long expected_ppid, char **argv) {
  sigset_t all, old;
  int sfd, status = 0, done = 0, killed = 0, control_open = 1;
  long deadline = -1;
  pid_t cmd;
  char line[24];

  if (getppid() != (pid_t)expected_ppid) return 1;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return fail("prctl(PR_SET_CHILD_SUBREAPER)");
  sigfillset(&all);
  if (sigprocmask(SIG_BLOCK, &all, &old) != 0) return fail("sigprocmask");
  if ((sfd = signalfd(-1, &all, SFD_CLOEXEC)) < 0) return fail("signalfd");
  cmd = fork();
  if (cmd < 0) return fail("fork");
  if (cmd == 0) {
    pid_t shim = getppid();
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) _exit(fail("prctl(PR_SET_PDEATHSIG)"));
    if (getppid() != shim) _exit(1);
    close(control);
    if (set_listen_pid() != 0) _exit(1);
    _exit(exec_command(argv));
  }
  snprintf(line, sizeof line, "%ld\n", (long)cmd);
  if (write(control, line, strlen(line)) < 0) kill(cmd, SIGKILL);
  close_inherited(control, sfd);

  for (;;) {
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {control, POLLIN, 0}};
    int timeout = -1;
    if (done) {
      pid_t p;
      /* Reaps orphans and, at the end, learns that no descendant is left (ECHILD). */
      while ((p = waitpid(-1, NULL, WNOHANG)) > 0) {}
      if (p < 0 && errno == ECHILD) return exit_like(status);
      if (!killed && now_ms() >= deadline) {
        signal_descendants(SIGKILL);
        killed = 1;
      }
      if (killed) {
        /* A process forked between the scan and the kill: look again soon. */
        signal_descendants(SIGKILL);
        timeout = 50;
      } else {
        timeout = (int)(deadline - now_ms());
      }
    }
    if (poll(fds, control_open ? 2 : 1, timeout) < 0 && errno != EINTR) return fail("poll");
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo info;
      if (read(sfd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo != SIGCHLD) {
          if (!done) kill(cmd, (int)info.ssi_signo);
        } else if (!done) {
          pid_t p;
          int st;
          while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            if (p != cmd) continue;
            done = 1;
            status = st;
            killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
            signal_descendants(killed ? SIGKILL : SIGTERM);
            deadline = now_ms() + grace_ms;
          }
        }
      }
    }
    if (control_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char byte = 0;
      ssize_t n = read(control, &byte, 1);
      if (n <= 0 || byte == 'K') {
        /* Asked to kill, or the supervisor is gone (end of file): nothing of the generation stays. */
        if (!done) kill(cmd, SIGKILL);
        signal_descendants(SIGKILL);
        killed = 1;
      }
      if (n <= 0) control_open = 0;
    }
  }
}

int main(int argc, char **argv) {
  long expected_ppid, control, grace_ms;

  if (argc >= 2 && strcmp(argv[1], "--reap") == 0) {
    if (argc < 6) {
      fputs("usage: baton-exec --reap CONTROL_FD GRACE_MS EXPECTED_PPID CMD [ARGS...]\n", stderr);
      return 2;
    }
    if (parse_long(argv[2], "CONTROL_FD", &control) != 0 || parse_long(argv[3], "GRACE_MS", &grace_ms) != 0 ||
        parse_long(argv[4], "EXPECTED_PPID", &expected_ppid) != 0 || expected_ppid == 0)
      return 2;
    return reap((int)control, grace_ms, expected_ppid, argv + 5);
  }
  if (argc < 3) {
    fputs("usage: baton-exec EXPECTED_PPID CMD [ARGS...]\n", stderr);
    return 2;
  }
  if (parse_long(argv[1], "EXPECTED_PPID", &expected_ppid) != 0) return 2;
  if (expected_ppid == 0) {
    fputs("baton-exec: EXPECTED_PPID must be a positive integer, got '0'\n", stderr);
    return 2;
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return fail("prctl(PR_SET_PDEATHSIG)");
  if (getppid() != (pid_t)expected_ppid) return 1;
  if (set_listen_pid() != 0) return 1;
  return exec_command(argv + 2);
}
