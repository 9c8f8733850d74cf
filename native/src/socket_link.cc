#include "socket_link.h"

#include <errno.h>
#include <unistd.h>

#include <string>

Napi::Value SocketLinkInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "socketLinkInode(path): path must be a string");
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, "socketLinkInode(path): path contains a NUL byte");
  }
  // "socket:[" + at most 20 digits + "]" is 29 bytes; a longer target is no socket.
  char target[40];
  ssize_t n = readlink(path.c_str(), target, sizeof target);
  if (n < 0) return Napi::Number::New(env, -errno);
  static const char kPrefix[] = "socket:[";
  const ssize_t prefix = sizeof kPrefix - 1;
  if (n >= static_cast<ssize_t>(sizeof target) || n < prefix + 2 ||
      std::string(target, prefix) != kPrefix || target[n - 1] != ']') {
    return Napi::Number::New(env, 0);
  }
  uint64_t inode = 0;
  for (ssize_t i = prefix; i < n - 1; i++) {
    char c = target[i];
    if (c < '0' || c > '9') return Napi::Number::New(env, 0);
    inode = inode * 10 + static_cast<uint64_t>(c - '0');
    // Beyond 2^53 a JS number would round it: not an inode this kernel makes.
    if (inode > (static_cast<uint64_t>(1) << 53)) return Napi::Number::New(env, 0);
  }
  return Napi::Number::New(env, static_cast<double>(inode));
}
