#include "errno_error.h"

#include <string.h>
#include <uv.h>

#include <string>

Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err) {
  const char* name = uv_err_name(-err);
  std::string message = std::string(name) + ": " + strerror(err) + ", " + syscall;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, name));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}
