#pragma once
#include <napi.h>

// socketLinkInode(path): readlink(path) for a /proc/PID/fd/N link, without
// exceptions or strings on the JS side: the inode of "socket:[inode]", 0 when
// the link is anything else, -errno when it cannot be read (the fd closed, the
// process gone, not allowed). Attribution probes fds that are often closed by
// the time they are read; a thrown fs error cost ~5 µs of the ~8 µs such a
// probe took through fs.readlinkSync.
Napi::Value SocketLinkInode(const Napi::CallbackInfo& info);
