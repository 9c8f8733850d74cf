// The socket-owner BPF programs as a JS class (BpfOwners) and the netns
// cookie of a namespace (netnsCookie). Raw records only: the helper decodes
// them (helper/attribution/ebpf/records.ts).
#pragma once
#include <napi.h>

#include "bpf_loader.h"

class BpfOwners : public Napi::ObjectWrap<BpfOwners> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit BpfOwners(const Napi::CallbackInfo& info);

 private:
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value ProgramIds(const Napi::CallbackInfo& info);
  Napi::Value LookupFlow(const Napi::CallbackInfo& info);
  Napi::Value LookupExec(const Napi::CallbackInfo& info);
  Napi::Value Counters(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);

  BpfLoader loader_;
};

Napi::Value NetnsCookieJs(const Napi::CallbackInfo& info);
