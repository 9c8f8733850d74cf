#include <napi.h>

#include "bpf_owners.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("BpfOwners", BpfOwners::Init(env));
  exports.Set("netnsCookie", Napi::Function::New(env, NetnsCookieJs, "netnsCookie"));
  return exports;
}

NODE_API_MODULE(portcullis_bpf, Init)
