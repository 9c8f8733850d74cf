#pragma once
#include <string>

// Creates a socket inside another network namespace without moving the
// process: a short-lived thread enters the namespace (network namespaces are
// per thread), creates the socket and exits. The socket stays bound to the
// namespace it was created in. Returns the fd, or -1 with *err and *stage set.
int SocketInNetns(const std::string& nsPath, int domain, int type, int protocol, int* err,
                  const char** stage);

// Resolves an `ip netns` name to /run/netns/NAME; a value with a slash is a path.
// Returns false for names that could escape /run/netns.
bool ResolveNetnsPath(const std::string& nameOrPath, std::string* path);
