// A netlink socket owned by JS: opened (optionally inside another network
// namespace) and configured in one call, written with send/sendmmsg, and read
// by a uv_poll reader that drains the socket with recvmmsg into a slab the JS
// side owns and calls JS once per batch with (offset, length, flags, port)
// records. All message parsing happens in TypeScript.
#pragma once
#include <linux/netlink.h>
#include <napi.h>
#include <sys/socket.h>
#include <uv.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit NetlinkSocket(const Napi::CallbackInfo& info);
  ~NetlinkSocket() override;

 private:
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetPortId(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetReceiveBufferSize(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value SendMany(const Napi::CallbackInfo& info);
  Napi::Value Transact(const Napi::CallbackInfo& info);
  Napi::Value DrainNow(const Napi::CallbackInfo& info);
  Napi::Value SendQueued(const Napi::CallbackInfo& info);
  Napi::Value AddMembership(const Napi::CallbackInfo& info);
  Napi::Value DropMembership(const Napi::CallbackInfo& info);
  Napi::Value StartReading(const Napi::CallbackInfo& info);
  Napi::Value StartThreadedReading(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void Configure(Napi::Env env, Napi::Object options);
  void SetIntOption(Napi::Env env, int level, int name, int value, const char* what);
  void CheckOpen(Napi::Env env) const;
  void StartPoll(Napi::Env env);
  void StopPoll();
  void CloseNow();
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Drain(int status);
  // Returns false when reading must stop (closed, paused or a fatal error).
  bool Deliver(uint32_t count, int err);

  int fd_ = -1;
  uint32_t portId_ = 0;
  bool closed_ = false;
  bool paused_ = false;
  // Set after one EINVAL was skipped as the kernel's dump-end race (see
  // IsDumpEndRace); cleared by the next datagram. Touched by one thread only:
  // the uv_poll reader or the reader thread, never both.
  bool einvalSkipped_ = false;
  // A transact() timed out: its answer may arrive later and must be dropped.
  bool transactTimedOut_ = false;
  bool reading_ = false;
  bool unref_ = false;
  uv_poll_t* poll_ = nullptr;

  Napi::FunctionReference onData_;
  Napi::Reference<Napi::Buffer<uint8_t>> slabRef_;
  Napi::Reference<Napi::Uint32Array> recordsRef_;
  uint8_t* slab_ = nullptr;
  uint32_t* records_ = nullptr;
  size_t slotSize_ = 0;
  unsigned slots_ = 0;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_nl> addrs_;
  Napi::AsyncContext* asyncContext_ = nullptr;

  // Threaded reader: a thread blocks in poll/recvmmsg and fills a ring of
  // batches while JS decodes the previous one, so the kernel's work in
  // recvmsg (a dump is produced there) overlaps with the decoding.
  struct Delivery {
    NetlinkSocket* self;
    unsigned batch;
    uint32_t count;
    int err;
  };
  void ReaderLoop();
  void StopThread();
  void WakeThread();
  static void CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Delivery* d);
  bool threaded_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> batchBusy_;
  unsigned batches_ = 0;
  bool stop_ = false;
  int wakeFd_ = -1;
  Napi::TypedThreadSafeFunction<std::nullptr_t, Delivery, &NetlinkSocket::CallJs> tsfn_;

  // Sender thread: sendQueued() hands datagrams to a thread that sends them
  // in order with sendmmsg, so that the kernel's work for a batch (it runs
  // inside the send call) overlaps with encoding the next one in JS.
  struct SendJob {
    uint32_t id;
    std::vector<iovec> iov;
  };
  struct SendDone {
    NetlinkSocket* self;
    uint32_t id;
    uint32_t sent;
    int err;
  };
  void SenderLoop();
  void StopSender();
  static void SendDoneJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, SendDone* d);
  std::thread sender_;
  std::mutex sendMu_;
  std::condition_variable sendCv_;
  std::vector<SendJob> sendQueue_;
  bool sendStop_ = false;
  bool senderStarted_ = false;
  uint32_t nextJob_ = 1;
  std::vector<std::pair<uint32_t, Napi::ObjectReference>> sendRefs_;
  Napi::TypedThreadSafeFunction<std::nullptr_t, SendDone, &NetlinkSocket::SendDoneJs> sendTsfn_;
};
