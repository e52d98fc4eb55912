/*
 * The SIGBUS guard of the mappings js_mmap makes (memory.c). A shared file another process
 * truncates turns every access past its new end into SIGBUS, and JavaScript cannot catch a
 * signal: a buggy generation cutting the stats segment would kill the supervisor and every
 * generation mapping it. File seals (F_SEAL_SHRINK) would prevent the cut but exist only on
 * memfds, which have no name in /dev/shm for generations and `baton stats` to open. So every
 * mapping is registered here, and a SIGBUS inside one replaces the pages from the faulting one to
 * the mapping's end with private zero pages and lets the access retry: the process survives and
 * reads zeros where the file was cut. mmap is a bare syscall, safe enough in a handler. Any other
 * SIGBUS goes to the previous handler, or ends the process as it would have.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "baton.h"

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
int guard_mapping(void *addr, size_t length) {
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

void unguard_mapping(void *addr) {
  for (size_t i = 0; i < MAX_GUARDED; i++) {
    uintptr_t start = (uintptr_t)addr;
    if (atomic_compare_exchange_strong(&guarded[i].start, &start, 0)) return;
  }
}

napi_value js_bus_faults(napi_env env, napi_callback_info info) {
  napi_value result;
  (void)info;
  CHECK(napi_create_double(env, (double)atomic_load(&bus_faults), &result));
  return result;
}
