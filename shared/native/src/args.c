/*
 * Reading JS arguments and building JS results. A reader returning false has left a TypeError or
 * RangeError pending, named after the argument, before any syscall ran.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "baton.h"

bool get_integer(napi_env env, napi_value value, const char *name, int64_t min, int64_t max, int64_t *out) {
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

bool get_int(napi_env env, napi_value value, const char *name, int min, int max, int *out) {
  int64_t wide;
  if (!get_integer(env, value, name, min, max, &wide)) return false;
  *out = (int)wide;
  return true;
}

bool get_bool(napi_env env, napi_value value, const char *name, bool *out) {
  napi_valuetype type;
  CHECK_BOOL(napi_typeof(env, value, &type));
  if (type != napi_boolean) {
    throw_arg(env, false, "ERR_INVALID_ARG_TYPE", "The \"%s\" argument must be of type boolean", name);
    return false;
  }
  CHECK_BOOL(napi_get_value_bool(env, value, out));
  return true;
}

bool get_fd(napi_env env, napi_value value, const char *name, int *out) {
  return get_int(env, value, name, 0, INT_MAX, out);
}

bool get_string(napi_env env, napi_value value, const char *name, char *buf, size_t size, size_t *len) {
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

bool get_fds(napi_env env, napi_value value, int *fds, uint32_t *count) {
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

bool set_number(napi_env env, napi_value object, const char *key, double number) {
  napi_value value;
  CHECK_BOOL(napi_create_double(env, number, &value));
  CHECK_BOOL(napi_set_named_property(env, object, key, value));
  return true;
}

bool set_string(napi_env env, napi_value object, const char *key, const char *str, size_t len) {
  napi_value value;
  CHECK_BOOL(napi_create_string_utf8(env, str, len, &value));
  CHECK_BOOL(napi_set_named_property(env, object, key, value));
  return true;
}

bool fd_array(napi_env env, const int *fds, size_t count, napi_value *out) {
  CHECK_BOOL(napi_create_array_with_length(env, count, out));
  for (size_t i = 0; i < count; i++) {
    napi_value fd;
    CHECK_BOOL(napi_create_int32(env, fds[i], &fd));
    CHECK_BOOL(napi_set_element(env, *out, (uint32_t)i, fd));
  }
  return true;
}

napi_value null_value(napi_env env) {
  napi_value result;
  CHECK(napi_get_null(env, &result));
  return result;
}

void close_all(const int *fds, size_t count) {
  for (size_t i = 0; i < count; i++) close(fds[i]);
}
