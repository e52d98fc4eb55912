/* The one process attribute Node has no API for: the signal a process gets when its parent dies. */
#include <errno.h>
#include <limits.h>
#include <sys/prctl.h>

#include "baton.h"

napi_value js_set_pdeathsig(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int sig;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_int(env, argv[0], "signal", 0, INT_MAX, &sig)) return NULL;
  if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0UL, 0UL, 0UL) < 0)
    return throw_errno(env, errno, "prctl", "setPdeathsig prctl PR_SET_PDEATHSIG %d", sig);
  return NULL;
}
