#include "peer_credentials.h"

#include <errno.h>
#include <sys/socket.h>

#include <vector>

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
  // The supplementary groups the peer had when it connected (Linux 4.13): SO_PEERCRED
  // carries only the primary gid. ERANGE says how much room the list needs.
  std::vector<gid_t> groups(32);
  for (;;) {
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
      groups.resize(glen / sizeof(gid_t));
      break;
    }
    if (errno != ERANGE || glen <= groups.size() * sizeof(gid_t)) {
      throw ErrnoError(env, "getsockopt(SO_PEERGROUPS)", errno);
    }
    groups.resize(glen / sizeof(gid_t));
  }
  Napi::Array list = Napi::Array::New(env, groups.size());
  for (size_t i = 0; i < groups.size(); i++) {
    list.Set(static_cast<uint32_t>(i), Napi::Number::New(env, groups[i]));
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
  result.Set("groups", list);
  return result;
}
