#include "netlink_socket.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "errno_error.h"
#include "netlink_socket_internal.h"
#include "netns.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

namespace {

bool OptBool(Napi::Object options, const char* key) {
  Napi::Value v = options.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

}  // namespace

Napi::Function NetlinkSocket::Init(Napi::Env env) {
  return DefineClass(
      env, "NetlinkSocket",
      {
          InstanceAccessor<&NetlinkSocket::GetFd>("fd"),
          InstanceAccessor<&NetlinkSocket::GetPortId>("portId"),
          InstanceAccessor<&NetlinkSocket::GetClosed>("closed"),
          InstanceMethod<&NetlinkSocket::GetReceiveBufferSize>("receiveBufferSize"),
          InstanceMethod<&NetlinkSocket::Send>("send"),
          InstanceMethod<&NetlinkSocket::SendMany>("sendMany"),
          InstanceMethod<&NetlinkSocket::Transact>("transact"),
          InstanceMethod<&NetlinkSocket::DrainNow>("drainNow"),
          InstanceMethod<&NetlinkSocket::SendQueued>("sendQueued"),
          InstanceMethod<&NetlinkSocket::AddMembership>("addMembership"),
          InstanceMethod<&NetlinkSocket::DropMembership>("dropMembership"),
          InstanceMethod<&NetlinkSocket::StartReading>("startReading"),
          InstanceMethod<&NetlinkSocket::StartThreadedReading>("startThreadedReading"),
          InstanceMethod<&NetlinkSocket::Pause>("pause"),
          InstanceMethod<&NetlinkSocket::Resume>("resume"),
          InstanceMethod<&NetlinkSocket::Ref>("ref"),
          InstanceMethod<&NetlinkSocket::Unref>("unref"),
          InstanceMethod<&NetlinkSocket::Close>("close"),
      });
}

// new NetlinkSocket(protocol, options)
NetlinkSocket::NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "NetlinkSocket(protocol, options): protocol must be a number");
  }
  int protocol = info[0].As<Napi::Number>().Int32Value();
  Napi::Object options = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>()
                                                                : Napi::Object::New(env);
  const int type = SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK;
  Napi::Value netns = options.Get("netns");
  if (netns.IsString()) {
    std::string path;
    if (!ResolveNetnsPath(netns.As<Napi::String>().Utf8Value(), &path)) {
      throw Napi::TypeError::New(env, "invalid network namespace name");
    }
    int err = 0;
    const char* stage = "socket";
    fd_ = SocketInNetns(path, AF_NETLINK, type, protocol, &err, &stage);
    if (fd_ < 0) {
      std::string what = std::string(stage) + " " + path;
      Napi::Error e = ErrnoError(env, what.c_str(), err);
      e.Set("netns", Napi::String::New(env, path));
      throw e;
    }
  } else if (!netns.IsUndefined() && !netns.IsNull()) {
    throw Napi::TypeError::New(env, "options.netns must be a string");
  } else {
    fd_ = socket(AF_NETLINK, type, protocol);
    if (fd_ < 0) throw ErrnoError(env, "socket", errno);
  }
  try {
    Configure(env, options);
  } catch (...) {
    close(fd_);
    fd_ = -1;
    closed_ = true;
    throw;
  }
}

NetlinkSocket::~NetlinkSocket() {
  CloseNow();
  delete asyncContext_;
}

void NetlinkSocket::SetIntOption(Napi::Env env, int level, int name, int value, const char* what) {
  if (setsockopt(fd_, level, name, &value, sizeof(value)) < 0) throw ErrnoError(env, what, errno);
}

void NetlinkSocket::Configure(Napi::Env env, Napi::Object options) {
  Napi::Value rcvbuf = options.Get("rcvbuf");
  if (rcvbuf.IsNumber()) {
    int size = rcvbuf.As<Napi::Number>().Int32Value();
    // SO_RCVBUFFORCE passes rmem_max but needs CAP_NET_ADMIN; without it the
    // plain option still gives as much as the sysctl allows.
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0) {
      if (errno != EPERM) throw ErrnoError(env, "setsockopt(SO_RCVBUFFORCE)", errno);
      SetIntOption(env, SOL_SOCKET, SO_RCVBUF, size, "setsockopt(SO_RCVBUF)");
    }
  }
  Napi::Value sndbuf = options.Get("sndbuf");
  if (sndbuf.IsNumber()) {
    int size = sndbuf.As<Napi::Number>().Int32Value();
    if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0) {
      if (errno != EPERM) throw ErrnoError(env, "setsockopt(SO_SNDBUFFORCE)", errno);
      SetIntOption(env, SOL_SOCKET, SO_SNDBUF, size, "setsockopt(SO_SNDBUF)");
    }
  }
  if (OptBool(options, "noEnobufs"))
    SetIntOption(env, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, "setsockopt(NETLINK_NO_ENOBUFS)");
  if (OptBool(options, "capAck"))
    SetIntOption(env, SOL_NETLINK, NETLINK_CAP_ACK, 1, "setsockopt(NETLINK_CAP_ACK)");
  if (OptBool(options, "extAck"))
    SetIntOption(env, SOL_NETLINK, NETLINK_EXT_ACK, 1, "setsockopt(NETLINK_EXT_ACK)");
  if (OptBool(options, "broadcastError"))
    SetIntOption(env, SOL_NETLINK, NETLINK_BROADCAST_ERROR, 1,
                 "setsockopt(NETLINK_BROADCAST_ERROR)");
  if (OptBool(options, "strictCheck"))
    SetIntOption(env, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1, "setsockopt(NETLINK_GET_STRICT_CHK)");

  struct sockaddr_nl local;
  memset(&local, 0, sizeof(local));
  local.nl_family = AF_NETLINK;
  Napi::Value port = options.Get("portId");
  if (port.IsNumber()) local.nl_pid = port.As<Napi::Number>().Uint32Value();
  if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
    throw ErrnoError(env, "bind", errno);
  }
  Napi::Value groups = options.Get("groups");
  if (groups.IsArray()) {
    Napi::Array list = groups.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value g = list.Get(i);
      if (!g.IsNumber()) throw Napi::TypeError::New(env, "options.groups must hold numbers");
      SetIntOption(env, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g.As<Napi::Number>().Int32Value(),
                   "setsockopt(NETLINK_ADD_MEMBERSHIP)");
    }
  }
  socklen_t len = sizeof(local);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len) < 0) {
    throw ErrnoError(env, "getsockname", errno);
  }
  portId_ = local.nl_pid;
}

void NetlinkSocket::CheckOpen(Napi::Env env) const {
  if (closed_) throw ErrnoError(env, "netlink socket is closed", EBADF);
}

Napi::Value NetlinkSocket::GetFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value NetlinkSocket::GetPortId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), portId_);
}

Napi::Value NetlinkSocket::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), closed_);
}

Napi::Value NetlinkSocket::GetReceiveBufferSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &value, &len) < 0) {
    throw ErrnoError(env, "getsockopt(SO_RCVBUF)", errno);
  }
  return Napi::Number::New(env, value);
}

// send(buffer): one datagram to the kernel; returns the bytes sent.
Napi::Value NetlinkSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1) throw Napi::TypeError::New(env, "send(buffer): buffer is required");
  void* data;
  size_t len;
  BufferSpan(env, info[0], &data, &len);
  sockaddr_nl kernel = KernelAddress();
  ssize_t n;
  do {
    n = sendto(fd_, data, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw ErrnoError(env, "sendto", errno);
  return Napi::Number::New(env, static_cast<double>(n));
}

// transact(request, reply, timeoutMs): sends one request and reads, on this
// thread, the first datagram whose first message carries the request's
// sequence number into `reply`; returns its real length (more than
// reply.length when cut), or -1 after timeoutMs. Others (late answers to an
// earlier request that timed out) are dropped. For requests the kernel answers
// inside sendmsg, such as an exact sock_diag lookup: a round trip through the
// event loop cost 71 µs at p50 in the helper, this 30 µs (both under load). Only on a
// socket that is not reading (startReading would race for the datagrams).
Napi::Value NetlinkSocket::Transact(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (poll_ != nullptr || reader_.joinable()) {
    throw Napi::Error::New(env, "transact: the socket is reading; use a socket of its own");
  }
  if (info.Length() < 3 || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "transact(request, reply, timeoutMs)");
  }
  void* req;
  size_t reqLen;
  BufferSpan(env, info[0], &req, &reqLen);
  void* out;
  size_t outLen;
  BufferSpan(env, info[1], &out, &outLen);
  if (reqLen < 16 || outLen < 16) throw Napi::RangeError::New(env, "transact: buffers must hold a nlmsghdr");
  double timeout = info[2].As<Napi::Number>().DoubleValue();
  if (!(timeout >= 0 && timeout <= 60000)) throw Napi::RangeError::New(env, "transact: timeoutMs 0..60000");
  uint32_t seq;
  memcpy(&seq, static_cast<uint8_t*>(req) + 8, sizeof(seq));
  // After a timeout its answer may still come: drop what is queued first (only
  // then; otherwise nothing can be, and the recv would cost every lookup a syscall).
  if (transactTimedOut_) {
    transactTimedOut_ = false;
    for (;;) {
      ssize_t n = recv(fd_, out, outLen, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
    }
  }
  sockaddr_nl kernel = KernelAddress();
  ssize_t sent;
  do {
    sent = sendto(fd_, req, reqLen, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) throw ErrnoError(env, "sendto", errno);
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    ssize_t n = recv(fd_, out, outLen, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n >= 16) {
      uint32_t got;
      memcpy(&got, static_cast<uint8_t*>(out) + 8, sizeof(got));
      if (got == seq) return Napi::Number::New(env, static_cast<double>(n));
      continue;
    }
    if (n >= 0) continue;  // a runt datagram: not ours
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      int err = errno;
      transactTimedOut_ = true;  // the answer may still be queued
      throw ErrnoError(env, "recv", err);
    }
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = (now.tv_sec - start.tv_sec) * 1e3 + (now.tv_nsec - start.tv_nsec) / 1e6;
    if (elapsed >= timeout) {
      transactTimedOut_ = true;
      return Napi::Number::New(env, -1);
    }
    pollfd pfd = {fd_, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(timeout - elapsed) + 1);
    if (r < 0 && errno != EINTR) throw ErrnoError(env, "poll", errno);
  }
}

// sendMany(buffers): one datagram per buffer with sendmmsg; returns how many
// were sent. An error after a partial send carries `sent`.
Napi::Value NetlinkSocket::SendMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsArray()) {
    throw Napi::TypeError::New(env, "sendMany(buffers): buffers must be an array");
  }
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t count = list.Length();
  std::vector<iovec> iov(count);
  std::vector<mmsghdr> msgs(count);
  sockaddr_nl kernel = KernelAddress();
  for (uint32_t i = 0; i < count; i++) {
    BufferSpan(env, list.Get(i), &iov[i].iov_base, &iov[i].iov_len);
    memset(&msgs[i], 0, sizeof(mmsghdr));
    msgs[i].msg_hdr.msg_name = &kernel;
    msgs[i].msg_hdr.msg_namelen = sizeof(kernel);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint32_t sent = 0;
  while (sent < count) {
    int n = sendmmsg(fd_, msgs.data() + sent, count - sent, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      Napi::Error e = ErrnoError(env, "sendmmsg", errno);
      e.Set("sent", Napi::Number::New(env, sent));
      throw e;
    }
    sent += static_cast<uint32_t>(n);
  }
  return Napi::Number::New(env, sent);
}

Napi::Value NetlinkSocket::AddMembership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "group must be a number");
  SetIntOption(env, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, info[0].As<Napi::Number>().Int32Value(),
               "setsockopt(NETLINK_ADD_MEMBERSHIP)");
  return env.Undefined();
}

Napi::Value NetlinkSocket::DropMembership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "group must be a number");
  SetIntOption(env, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, info[0].As<Napi::Number>().Int32Value(),
               "setsockopt(NETLINK_DROP_MEMBERSHIP)");
  return env.Undefined();
}
static void FreePoll(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

void NetlinkSocket::CloseNow() {
  if (closed_) return;
  closed_ = true;
  // The reader and sender threads must be gone before their fd and buffers are.
  if (threaded_) StopThread();
  if (senderStarted_) StopSender();
  if (poll_ != nullptr) {
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

// close(): idempotent; safe inside the onData callback (the reader checks
// `closed_` after every callback and never touches the fd again).
Napi::Value NetlinkSocket::Close(const Napi::CallbackInfo& info) {
  if (closed_) return info.Env().Undefined();
  CloseNow();
  if (threaded_) tsfn_.Release();
  if (senderStarted_) {
    sendTsfn_.Release();
    sendRefs_.clear();
  }
  if (reading_) {
    reading_ = false;
    onData_.Reset();
    slabRef_.Reset();
    recordsRef_.Reset();
    slab_ = nullptr;
    records_ = nullptr;
    Napi::ObjectWrap<NetlinkSocket>::Unref();
  }
  return info.Env().Undefined();
}
