// What the files of NetlinkSocket share besides its class: the kernel's
// address and the byte span of a JS buffer argument.
#pragma once
#include <linux/netlink.h>
#include <napi.h>
#include <string.h>
#include <sys/socket.h>

inline sockaddr_nl KernelAddress() {
  sockaddr_nl kernel;
  memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  return kernel;
}

inline void BufferSpan(Napi::Env env, Napi::Value value, void** data, size_t* len) {
  if (!value.IsTypedArray()) throw Napi::TypeError::New(env, "expected a Buffer or Uint8Array");
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "expected a Buffer or Uint8Array");
  }
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  *data = bytes.Data();
  *len = bytes.ByteLength();
}
