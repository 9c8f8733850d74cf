#include "peer_credentials.h"

#include <errno.h>
#include <sys/socket.h>

#include "errno_error.h"

Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "peerCredentials(fd): fd must be a number");
  }
  double raw = info[0].As<Napi::Number>().DoubleValue();
  if (!(raw >= 0 && raw <= 0x7fffffff) || raw != static_cast<int>(raw)) {
    throw Napi::TypeError::New(env, "peerCredentials(fd): fd must be a non-negative integer");
  }
  int fd = static_cast<int>(raw);
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    throw ErrnoError(env, "getsockopt(SO_PEERCRED)", errno);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
  return result;
}
