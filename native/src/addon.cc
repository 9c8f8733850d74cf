#include <errno.h>
#include <linux/netlink.h>
#include <napi.h>

#include "netlink_socket.h"
#include "peer_credentials.h"
#include "socket_link.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NetlinkSocket", NetlinkSocket::Init(env));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  exports.Set("socketLinkInode", Napi::Function::New(env, SocketLinkInode, "socketLinkInode"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("NETLINK_NETFILTER", NETLINK_NETFILTER);
  c.Set("NETLINK_SOCK_DIAG", NETLINK_SOCK_DIAG);
  c.Set("NETLINK_ROUTE", NETLINK_ROUTE);
  c.Set("ENOBUFS", ENOBUFS);
  c.Set("EAGAIN", EAGAIN);
  c.Set("RECORD_WORDS", 4);
  c.Set("FLAG_TRUNCATED", 1);
  c.Set("FLAG_MULTICAST", 2);
  exports.Set("constants", c);
  return exports;
}

NODE_API_MODULE(portcullis_native, Init)
