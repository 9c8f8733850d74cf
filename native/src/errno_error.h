// Errors carry the errno name (`code`), number (`errno`) and the failing call
// (`syscall`), the same shape Node gives its own system errors.
#pragma once
#include <napi.h>

Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err);
