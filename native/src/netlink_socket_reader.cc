// NetlinkSocket's readers: the uv_poll reader that drains the socket on the
// event loop's thread (startReading, drainNow, pause, resume), and the
// threaded reader that fills a ring of batches while JS decodes the previous
// one (startThreadedReading).
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "errno_error.h"
#include "netlink_socket.h"

namespace {

// Fairness: after this many full recvmmsg batches in one wakeup, yield to the
// event loop (uv_poll is level-triggered and will wake us again).
constexpr int kMaxRoundsPerWakeup = 8;
constexpr uint32_t kRecordWords = 4;
constexpr uint32_t kFlagTruncated = 1;
constexpr uint32_t kFlagMulticast = 2;

// netlink_dump() queues a dump's last part (NLMSG_DONE) before it marks the
// dump finished (cb_running = false). A recvmsg on another thread in that
// window still sees the dump running, asks for the next part, finds none and
// leaves EINVAL in sk_err, which the next receive reports (seen once in CI on
// 6.18 with the threaded reader). Nothing was lost, so one EINVAL is skipped;
// a second one with no datagram in between is reported as a real error.
bool SkipDumpEndRace(int err, bool* skipped) {
  if (err != EINVAL || *skipped) return false;
  *skipped = true;
  return true;
}

}  // namespace

// startReading(slab, slotSize, records, onData): slab is split into
// slab.length / slotSize slots; records needs 4 words per slot. onData(count,
// errno) runs once per drained batch: count datagrams are described in
// records as [offset, length, flags, senderPortId] (flags: 1 truncated,
// 2 multicast); errno is 0, ENOBUFS (lost
// messages, reading goes on) or a fatal errno (reading has stopped). The slab
// is reused: the callback must copy what it keeps.
Napi::Value NetlinkSocket::StartReading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (reading_) throw Napi::Error::New(env, "startReading: already reading");
  if (info.Length() < 4 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsTypedArray() ||
      !info[3].IsFunction()) {
    throw Napi::TypeError::New(env, "startReading(slab: Buffer, slotSize: number, records: Uint32Array, onData)");
  }
  Napi::Buffer<uint8_t> slab = info[0].As<Napi::Buffer<uint8_t>>();
  size_t slotSize = info[1].As<Napi::Number>().Uint32Value();
  if (info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw Napi::TypeError::New(env, "records must be a Uint32Array");
  }
  Napi::Uint32Array records = info[2].As<Napi::Uint32Array>();
  if (slotSize < 4096 || slab.Length() < slotSize) {
    throw Napi::RangeError::New(env, "slotSize must be >= 4096 and fit in the slab");
  }
  unsigned slots = static_cast<unsigned>(slab.Length() / slotSize);
  if (records.ElementLength() < slots * kRecordWords) {
    throw Napi::RangeError::New(env, "records must hold 4 words per slot");
  }
  slabRef_ = Napi::Persistent(slab);
  recordsRef_ = Napi::Persistent(records);
  onData_ = Napi::Persistent(info[3].As<Napi::Function>());
  slab_ = slab.Data();
  records_ = records.Data();
  slotSize_ = slotSize;
  slots_ = slots;
  msgs_.assign(slots, mmsghdr{});
  iovs_.assign(slots, iovec{});
  addrs_.assign(slots, sockaddr_nl{});
  for (unsigned i = 0; i < slots; i++) {
    iovs_[i].iov_base = slab_ + i * slotSize_;
    iovs_[i].iov_len = slotSize_;
  }
  if (asyncContext_ == nullptr) asyncContext_ = new Napi::AsyncContext(env, "NetlinkSocket");
  poll_ = new uv_poll_t;
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  int rc = uv_poll_init(loop, poll_, fd_);
  if (rc < 0) {
    delete poll_;
    poll_ = nullptr;
    throw ErrnoError(env, "uv_poll_init", -rc);
  }
  poll_->data = this;
  reading_ = true;
  // Holding a reference keeps the object alive while the loop may call into it.
  Napi::ObjectWrap<NetlinkSocket>::Ref();
  if (unref_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  if (!paused_) StartPoll(env);
  return env.Undefined();
}

void NetlinkSocket::StartPoll(Napi::Env env) {
  int rc = uv_poll_start(poll_, UV_READABLE, &NetlinkSocket::OnPoll);
  if (rc < 0) throw ErrnoError(env, "uv_poll_start", -rc);
}

void NetlinkSocket::StopPoll() {
  if (poll_ != nullptr) uv_poll_stop(poll_);
}

Napi::Value NetlinkSocket::Pause(const Napi::CallbackInfo& info) {
  if (threaded_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      paused_ = true;
    }
    WakeThread();
    return info.Env().Undefined();
  }
  paused_ = true;
  if (reading_ && !closed_) StopPoll();
  return info.Env().Undefined();
}

Napi::Value NetlinkSocket::Resume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (threaded_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      paused_ = false;
    }
    cv_.notify_all();
    return env.Undefined();
  }
  if (closed_ || !paused_) return env.Undefined();
  paused_ = false;
  if (reading_) StartPoll(env);
  return env.Undefined();
}

Napi::Value NetlinkSocket::Ref(const Napi::CallbackInfo& info) {
  unref_ = false;
  if (threaded_ && !closed_) tsfn_.Ref(info.Env());
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

Napi::Value NetlinkSocket::Unref(const Napi::CallbackInfo& info) {
  unref_ = true;
  if (threaded_ && !closed_) tsfn_.Unref(info.Env());
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

void NetlinkSocket::OnPoll(uv_poll_t* handle, int status, int /*events*/) {
  static_cast<NetlinkSocket*>(handle->data)->Drain(status);
}

// drainNow(): reads what is queued now, on this thread, as a poll wakeup would
// (the data callback runs before this returns). false when the socket is not
// reading with uv_poll or is paused. It may run inside a Drain() that is in its
// callback's microtasks: the JS wrapper refuses while its data callback still
// reads the slab, and Drain() sets up each round afresh. The helper
// calls it on the DNS log socket before naming a connection's destination: a
// DNS answer logged just before the connection is then already in the cache,
// without waiting a turn of the event loop.
Napi::Value NetlinkSocket::DrainNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (poll_ == nullptr || paused_) return Napi::Boolean::New(env, false);
  Drain(0);
  return Napi::Boolean::New(env, true);
}

void NetlinkSocket::Drain(int status) {
  Napi::Env env = onData_.Env();
  Napi::HandleScope scope(env);
  if (status < 0) {
    // libuv reports EPOLLERR as UV_EBADF and stops the handle. On a netlink
    // socket EPOLLERR means sk_err is set, usually ENOBUFS (lost messages):
    // fetch and clear the real error, report it, and keep reading.
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (SkipDumpEndRace(err, &einvalSkipped_)) err = 0;
    if (err != 0 && err != ENOBUFS) {
      StopPoll();
      Deliver(0, err);
      return;
    }
    if (err == ENOBUFS && !Deliver(0, ENOBUFS)) return;
    if (closed_ || paused_) return;
    int rc = uv_poll_start(poll_, UV_READABLE, &NetlinkSocket::OnPoll);
    if (rc < 0) {
      Deliver(0, -rc);
      return;
    }
  }
  for (int round = 0; round < kMaxRoundsPerWakeup && !closed_ && !paused_; round++) {
    for (unsigned i = 0; i < slots_; i++) {
      msghdr& h = msgs_[i].msg_hdr;
      memset(&h, 0, sizeof(h));
      h.msg_name = &addrs_[i];
      h.msg_namelen = sizeof(sockaddr_nl);
      h.msg_iov = &iovs_[i];
      h.msg_iovlen = 1;
      msgs_[i].msg_len = 0;
    }
    // MSG_TRUNC makes netlink report a datagram's real length, so a cut one is visible.
    int n = recvmmsg(fd_, msgs_.data(), slots_, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (n < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || SkipDumpEndRace(err, &einvalSkipped_)) continue;
      if (err == ENOBUFS) {
        if (!Deliver(0, ENOBUFS)) return;
        continue;
      }
      StopPoll();
      Deliver(0, err);
      return;
    }
    if (n > 0) einvalSkipped_ = false;
    for (int i = 0; i < n; i++) {
      uint32_t* r = records_ + i * kRecordWords;
      size_t real = msgs_[i].msg_len;
      bool truncated = (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || real > slotSize_;
      r[0] = static_cast<uint32_t>(i * slotSize_);
      r[1] = static_cast<uint32_t>(real > slotSize_ ? slotSize_ : real);
      r[2] = (truncated ? kFlagTruncated : 0) | (addrs_[i].nl_groups != 0 ? kFlagMulticast : 0);
      r[3] = addrs_[i].nl_pid;
    }
    if (!Deliver(static_cast<uint32_t>(n), 0)) return;
    if (static_cast<unsigned>(n) < slots_) return;
  }
}

bool NetlinkSocket::Deliver(uint32_t count, int err) {
  Napi::Env env = onData_.Env();
  // The callback may close the socket or drop the last JS reference.
  Napi::ObjectWrap<NetlinkSocket>::Ref();
  try {
    onData_.MakeCallback(Value(), {Napi::Number::New(env, count), Napi::Number::New(env, err)},
                         *asyncContext_);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
  Napi::ObjectWrap<NetlinkSocket>::Unref();
  return !closed_ && !paused_ && (err == 0 || err == ENOBUFS);
}

// startThreadedReading(slab, slotSize, slotsPerBatch, records, onData): like
// startReading, but a reader thread fills a ring of batches (slab.length /
// (slotSize * slotsPerBatch) of them) and onData(batch, count, errno) gets
// the batch index; its records start at batch * slotsPerBatch * 4. A batch
// is handed back to the thread when onData returns.
Napi::Value NetlinkSocket::StartThreadedReading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (reading_) throw Napi::Error::New(env, "startThreadedReading: already reading");
  if (info.Length() < 5 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsTypedArray() || !info[4].IsFunction()) {
    throw Napi::TypeError::New(env,
        "startThreadedReading(slab: Buffer, slotSize: number, slotsPerBatch: number, records: Uint32Array, onData)");
  }
  Napi::Buffer<uint8_t> slab = info[0].As<Napi::Buffer<uint8_t>>();
  size_t slotSize = info[1].As<Napi::Number>().Uint32Value();
  unsigned perBatch = info[2].As<Napi::Number>().Uint32Value();
  if (info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw Napi::TypeError::New(env, "records must be a Uint32Array");
  }
  Napi::Uint32Array records = info[3].As<Napi::Uint32Array>();
  if (slotSize < 4096 || perBatch < 1 || slab.Length() < slotSize * perBatch * 2) {
    throw Napi::RangeError::New(env, "need slotSize >= 4096 and room for at least two batches");
  }
  unsigned batches = static_cast<unsigned>(slab.Length() / (slotSize * perBatch));
  if (records.ElementLength() < batches * perBatch * kRecordWords) {
    throw Napi::RangeError::New(env, "records must hold 4 words per slot");
  }
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) throw ErrnoError(env, "eventfd", errno);
  slabRef_ = Napi::Persistent(slab);
  recordsRef_ = Napi::Persistent(records);
  onData_ = Napi::Persistent(info[4].As<Napi::Function>());
  slab_ = slab.Data();
  records_ = records.Data();
  slotSize_ = slotSize;
  slots_ = perBatch;
  batches_ = batches;
  batchBusy_.assign(batches, false);
  msgs_.assign(static_cast<size_t>(batches) * perBatch, mmsghdr{});
  iovs_.assign(static_cast<size_t>(batches) * perBatch, iovec{});
  addrs_.assign(static_cast<size_t>(batches) * perBatch, sockaddr_nl{});
  for (size_t i = 0; i < iovs_.size(); i++) {
    iovs_[i].iov_base = slab_ + i * slotSize_;
    iovs_[i].iov_len = slotSize_;
  }
  tsfn_ = Napi::TypedThreadSafeFunction<std::nullptr_t, Delivery, &NetlinkSocket::CallJs>::New(
      env, info[4].As<Napi::Function>(), "NetlinkSocketReader", 0, 1);
  if (unref_) tsfn_.Unref(env);
  threaded_ = true;
  reading_ = true;
  stop_ = false;
  Napi::ObjectWrap<NetlinkSocket>::Ref();
  reader_ = std::thread([this] { ReaderLoop(); });
  return env.Undefined();
}

void NetlinkSocket::WakeThread() {
  if (wakeFd_ >= 0) {
    uint64_t one = 1;
    ssize_t ignored = write(wakeFd_, &one, sizeof(one));
    (void)ignored;
  }
}

void NetlinkSocket::StopThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  WakeThread();
  if (reader_.joinable()) reader_.join();
  if (wakeFd_ >= 0) {
    close(wakeFd_);
    wakeFd_ = -1;
  }
}

void NetlinkSocket::ReaderLoop() {
  for (;;) {
    unsigned batch = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] {
        if (stop_) return true;
        if (paused_) return false;
        for (bool busy : batchBusy_) if (!busy) return true;
        return false;
      });
      if (stop_) return;
      while (batchBusy_[batch]) batch++;
      batchBusy_[batch] = true;
    }
    auto release = [this, batch] {
      std::lock_guard<std::mutex> lock(mu_);
      batchBusy_[batch] = false;
    };
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    int r = poll(fds, 2, -1);
    if (r < 0 && errno != EINTR) {
      release();
      tsfn_.NonBlockingCall(new Delivery{this, batch, 0, errno});
      return;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      ssize_t ignored = read(wakeFd_, &v, sizeof(v));
      (void)ignored;
    }
    bool pausedNow;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pausedNow = paused_ || stop_;
    }
    if (r <= 0 || pausedNow || !(fds[0].revents & (POLLIN | POLLERR))) {
      release();
      continue;
    }
    size_t base = static_cast<size_t>(batch) * slots_;
    for (unsigned i = 0; i < slots_; i++) {
      msghdr& h = msgs_[base + i].msg_hdr;
      memset(&h, 0, sizeof(h));
      h.msg_name = &addrs_[base + i];
      h.msg_namelen = sizeof(sockaddr_nl);
      h.msg_iov = &iovs_[base + i];
      h.msg_iovlen = 1;
      msgs_[base + i].msg_len = 0;
    }
    int n = recvmmsg(fd_, msgs_.data() + base, slots_, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (n < 0) {
      int err = errno;
      release();
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) continue;
      if (SkipDumpEndRace(err, &einvalSkipped_)) continue;
      tsfn_.NonBlockingCall(new Delivery{this, batch, 0, err});
      if (err == ENOBUFS) continue;
      return;
    }
    if (n > 0) einvalSkipped_ = false;
    for (int i = 0; i < n; i++) {
      uint32_t* rec = records_ + (base + i) * kRecordWords;
      size_t real = msgs_[base + i].msg_len;
      bool truncated = (msgs_[base + i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || real > slotSize_;
      rec[0] = static_cast<uint32_t>((base + i) * slotSize_);
      rec[1] = static_cast<uint32_t>(real > slotSize_ ? slotSize_ : real);
      rec[2] = (truncated ? kFlagTruncated : 0) | (addrs_[base + i].nl_groups != 0 ? kFlagMulticast : 0);
      rec[3] = addrs_[base + i].nl_pid;
    }
    // The batch stays busy until JS has seen it (CallJs releases it).
    tsfn_.NonBlockingCall(new Delivery{this, batch, static_cast<uint32_t>(n), 0});
  }
}

void NetlinkSocket::CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Delivery* d) {
  NetlinkSocket* self = d->self;
  unsigned batch = d->batch;
  uint32_t count = d->count;
  int err = d->err;
  delete d;
  if (env == nullptr || self->closed_) return;
  Napi::HandleScope scope(env);
  try {
    fn.Call({Napi::Number::New(env, batch), Napi::Number::New(env, count), Napi::Number::New(env, err)});
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
  if (count > 0) {
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (batch < self->batchBusy_.size()) self->batchBusy_[batch] = false;
    }
    self->cv_.notify_all();
  }
}
