#pragma once
#include <napi.h>

// peerCredentials(fd): {pid, uid, gid} of the process at the other end of a
// connected Unix socket (SO_PEERCRED), for authenticating IPC clients.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info);
