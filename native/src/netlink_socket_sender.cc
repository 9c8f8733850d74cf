// NetlinkSocket's sender thread (sendQueued): datagrams sent in order with
// sendmmsg off the JS thread.
#include <errno.h>
#include <string.h>

#include "errno_error.h"
#include "netlink_socket.h"
#include "netlink_socket_internal.h"

// sendQueued(buffers, onDone): queues one datagram per buffer for the sender
// thread and returns a job id; onDone(id, sent, errno) runs on the JS thread
// once they are sent (errno 0) or the send failed. Jobs are sent in order.
// The buffers are kept alive until then.
Napi::Value NetlinkSocket::SendQueued(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "sendQueued(buffers: Uint8Array[], onDone)");
  }
  Napi::Array list = info[0].As<Napi::Array>();
  SendJob job;
  job.id = nextJob_++;
  job.iov.resize(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    BufferSpan(env, list.Get(i), &job.iov[i].iov_base, &job.iov[i].iov_len);
  }
  if (!senderStarted_) {
    sendTsfn_ = Napi::TypedThreadSafeFunction<std::nullptr_t, SendDone, &NetlinkSocket::SendDoneJs>::New(
        env, info[1].As<Napi::Function>(), "NetlinkSocketSender", 0, 1);
    // Only outstanding jobs keep the process alive.
    sendTsfn_.Unref(env);
    senderStarted_ = true;
    sendStop_ = false;
    sender_ = std::thread([this] { SenderLoop(); });
  }
  if (sendRefs_.empty()) sendTsfn_.Ref(env);
  sendRefs_.emplace_back(job.id, Napi::Persistent(list.As<Napi::Object>()));
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    sendQueue_.push_back(std::move(job));
  }
  sendCv_.notify_one();
  return Napi::Number::New(env, sendRefs_.back().first);
}

void NetlinkSocket::SenderLoop() {
  sockaddr_nl kernel = KernelAddress();
  for (;;) {
    SendJob job;
    {
      std::unique_lock<std::mutex> lock(sendMu_);
      sendCv_.wait(lock, [this] { return sendStop_ || !sendQueue_.empty(); });
      if (sendStop_) return;
      job = std::move(sendQueue_.front());
      sendQueue_.erase(sendQueue_.begin());
    }
    std::vector<mmsghdr> msgs(job.iov.size());
    for (size_t i = 0; i < job.iov.size(); i++) {
      memset(&msgs[i], 0, sizeof(mmsghdr));
      msgs[i].msg_hdr.msg_name = &kernel;
      msgs[i].msg_hdr.msg_namelen = sizeof(kernel);
      msgs[i].msg_hdr.msg_iov = &job.iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint32_t sent = 0;
    int err = 0;
    while (sent < msgs.size()) {
      int n = sendmmsg(fd_, msgs.data() + sent, static_cast<unsigned>(msgs.size() - sent), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      sent += static_cast<uint32_t>(n);
    }
    sendTsfn_.NonBlockingCall(new SendDone{this, job.id, sent, err});
  }
}

void NetlinkSocket::StopSender() {
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    sendStop_ = true;
    sendQueue_.clear();
  }
  sendCv_.notify_all();
  if (sender_.joinable()) sender_.join();
}

void NetlinkSocket::SendDoneJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, SendDone* d) {
  NetlinkSocket* self = d->self;
  uint32_t id = d->id;
  uint32_t sent = d->sent;
  int err = d->err;
  delete d;
  if (env == nullptr || self->closed_) return;
  auto& refs = self->sendRefs_;
  for (auto it = refs.begin(); it != refs.end(); ++it) {
    if (it->first == id) {
      refs.erase(it);
      break;
    }
  }
  if (refs.empty()) self->sendTsfn_.Unref(env);
  Napi::HandleScope scope(env);
  try {
    fn.Call({Napi::Number::New(env, id), Napi::Number::New(env, sent), Napi::Number::New(env, err)});
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}
