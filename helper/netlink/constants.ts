/** Netlink and nfnetlink constants, mirrored from the UAPI headers
 * (linux/netlink.h, linux/netfilter/nfnetlink.h) with their C names. */

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NFGENMSG_LEN = 4;

// nlmsg_type values below NLMSG_MIN_TYPE are control messages.
export const NLMSG_NOOP = 0x1;
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;
export const NLMSG_OVERRUN = 0x4;
export const NLMSG_MIN_TYPE = 0x10;

// nlmsg_flags
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
// GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// DELETE requests
export const NLM_F_NONREC = 0x100;
export const NLM_F_BULK = 0x200;
// ACK flags
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// Attribute header bits: the type is the low 14 bits.
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

// enum nlmsgerr_attrs (extended ACK)
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;
export const NLMSGERR_ATTR_COOKIE = 3;
export const NLMSGERR_ATTR_POLICY = 4;
export const NLMSGERR_ATTR_MISS_TYPE = 5;
export const NLMSGERR_ATTR_MISS_NEST = 6;

// Netlink protocols
export const NETLINK_ROUTE = 0;
export const NETLINK_SOCK_DIAG = 4;
export const NETLINK_NETFILTER = 12;

// nfnetlink subsystems: nlmsg_type = (subsys << 8) | message
export const NFNL_SUBSYS_NONE = 0;
export const NFNL_SUBSYS_CTNETLINK = 1;
export const NFNL_SUBSYS_CTNETLINK_EXP = 2;
export const NFNL_SUBSYS_QUEUE = 3;
export const NFNL_SUBSYS_ULOG = 4;
export const NFNL_SUBSYS_OSF = 5;
export const NFNL_SUBSYS_IPSET = 6;
export const NFNL_SUBSYS_ACCT = 7;
export const NFNL_SUBSYS_CTNETLINK_TIMEOUT = 8;
export const NFNL_SUBSYS_CTHELPER = 9;
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_SUBSYS_NFT_COMPAT = 11;
export const NFNL_SUBSYS_HOOK = 12;

export const NFNETLINK_V0 = 0;
/** nfgenmsg.version 1: used by ctnetlink flush to scope it to nfgen_family. */
export const NFNETLINK_V1 = 1;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

/** Builds an nfnetlink message type from subsystem and message. */
export function nfnlMsgType(subsys: number, msg: number): number {
  return ((subsys & 0xff) << 8) | (msg & 0xff);
}
