#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

int SocketInNetns(const std::string& nsPath, int domain, int type, int protocol, int* err,
                  const char** stage) {
  int fd = -1;
  std::thread worker([&] {
    int nsfd = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
      *err = errno;
      *stage = "open netns";
      return;
    }
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      *err = errno;
      *stage = "setns";
      close(nsfd);
      return;
    }
    close(nsfd);
    fd = socket(domain, type, protocol);
    if (fd < 0) {
      *err = errno;
      *stage = "socket";
    }
  });
  worker.join();
  return fd;
}

bool ResolveNetnsPath(const std::string& nameOrPath, std::string* path) {
  if (nameOrPath.empty()) return false;
  if (nameOrPath.find('/') != std::string::npos) {
    *path = nameOrPath;
    return true;
  }
  if (nameOrPath == "." || nameOrPath == "..") return false;
  *path = "/run/netns/" + nameOrPath;
  return true;
}
