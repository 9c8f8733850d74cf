#include "bpf_owners.h"

#include <errno.h>
#include <linux/types.h>

#include "../bpf/owners.h"
#include "errno_error.h"

namespace {

Napi::Uint8Array BufferArg(const Napi::CallbackInfo& info, size_t i, size_t size,
                           const char* what) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Uint8Array");
  }
  Napi::Uint8Array array = info[i].As<Napi::Uint8Array>();
  if (array.ByteLength() != size) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be " +
                                                std::to_string(size) + " bytes");
  }
  return array;
}

}  // namespace

Napi::Function BpfOwners::Init(Napi::Env env) {
  return DefineClass(env, "BpfOwners",
                     {
                         InstanceMethod<&BpfOwners::Programs>("programs"),
                         InstanceMethod<&BpfOwners::ProgramIds>("programIds"),
                         InstanceMethod<&BpfOwners::LookupFlow>("lookupFlow"),
                         InstanceMethod<&BpfOwners::LookupExec>("lookupExec"),
                         InstanceMethod<&BpfOwners::Counters>("counters"),
                         InstanceMethod<&BpfOwners::Close>("close"),
                         InstanceAccessor<&BpfOwners::IsClosed>("closed"),
                         StaticValue("FLOW_KEY_SIZE", Napi::Number::New(env, sizeof(flow_key))),
                         StaticValue("OWNER_SIZE", Napi::Number::New(env, sizeof(owner))),
                         StaticValue("EXEC_SIZE", Napi::Number::New(env, sizeof(exec_rec))),
                         StaticValue("FLOWS_MAX", Napi::Number::New(env, FLOWS_MAX)),
                         StaticValue("EXECS_MAX", Napi::Number::New(env, EXECS_MAX)),
                         StaticValue("PENDING_MAX", Napi::Number::New(env, PENDING_MAX)),
                     });
}

// new BpfOwners(cgroupRoot, disable?: string[])
BpfOwners::BpfOwners(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfOwners>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "BpfOwners(cgroupRoot): cgroupRoot must be a path");
  }
  std::set<std::string> disable;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "BpfOwners: disable must be an array");
    Napi::Array list = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      if (!v.IsString()) throw Napi::TypeError::New(env, "BpfOwners: disable lists program names");
      disable.insert(v.As<Napi::String>().Utf8Value());
    }
  }
  std::string stage, detail;
  int err = loader_.Open(info[0].As<Napi::String>().Utf8Value(), disable, &stage, &detail);
  if (err != 0) {
    Napi::Error error = ErrnoError(env, stage.c_str(), err);
    error.Set("detail", Napi::String::New(env, detail));
    if (!detail.empty()) {
      std::string message = error.Message() + " (" + detail + ")";
      error.Set("message", Napi::String::New(env, message));
    }
    throw error;
  }
}

Napi::Value BpfOwners::Programs(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  for (const auto& [name, state] : loader_.Programs()) out.Set(name, state);
  return out;
}

Napi::Value BpfOwners::ProgramIds(const Napi::CallbackInfo& info) {
  const auto& ids = loader_.ProgramIds();
  Napi::Array out = Napi::Array::New(info.Env(), ids.size());
  for (size_t i = 0; i < ids.size(); i++) out.Set(static_cast<uint32_t>(i), ids[i]);
  return out;
}

// lookupFlow(key: 32 bytes, value: 56 bytes): whether a record was copied.
Napi::Value BpfOwners::LookupFlow(const Napi::CallbackInfo& info) {
  Napi::Uint8Array key = BufferArg(info, 0, sizeof(flow_key), "lookupFlow: key");
  Napi::Uint8Array value = BufferArg(info, 1, sizeof(owner), "lookupFlow: value");
  int err = loader_.Lookup(BpfLoader::kFlows, key.Data(), key.ByteLength(), value.Data(),
                           value.ByteLength());
  if (err != 0 && err != ENOENT) throw ErrnoError(info.Env(), "bpf_map_lookup_elem(flows)", err);
  return Napi::Boolean::New(info.Env(), err == 0);
}

// lookupExec(tgid, value: 552 bytes): whether a record was copied.
Napi::Value BpfOwners::LookupExec(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "lookupExec: tgid must be a number");
  }
  __u32 tgid = info[0].As<Napi::Number>().Uint32Value();
  Napi::Uint8Array value = BufferArg(info, 1, sizeof(exec_rec), "lookupExec: value");
  int err =
      loader_.Lookup(BpfLoader::kExecs, &tgid, sizeof(tgid), value.Data(), value.ByteLength());
  if (err != 0 && err != ENOENT) throw ErrnoError(info.Env(), "bpf_map_lookup_elem(execs)", err);
  return Napi::Boolean::New(info.Env(), err == 0);
}

Napi::Value BpfOwners::Counters(const Napi::CallbackInfo& info) {
  std::vector<unsigned long long> values;
  int err = loader_.Counters(&values);
  if (err != 0) throw ErrnoError(info.Env(), "bpf_map_lookup_elem(counters)", err);
  Napi::Array out = Napi::Array::New(info.Env(), values.size());
  for (size_t i = 0; i < values.size(); i++) {
    out.Set(static_cast<uint32_t>(i), static_cast<double>(values[i]));
  }
  return out;
}

Napi::Value BpfOwners::Close(const Napi::CallbackInfo& info) {
  loader_.Close();
  return info.Env().Undefined();
}

Napi::Value BpfOwners::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !loader_.IsOpen());
}

// netnsCookie(nsPath?): bigint
Napi::Value NetnsCookieJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "netnsCookie(nsPath?): a path");
    path = info[0].As<Napi::String>().Utf8Value();
  }
  int err = 0;
  const char* stage = "";
  unsigned long long cookie = NetnsCookie(path, &err, &stage);
  if (err != 0) throw ErrnoError(env, stage, err);
  return Napi::BigInt::New(env, static_cast<uint64_t>(cookie));
}
