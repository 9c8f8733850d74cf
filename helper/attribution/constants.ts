/** sock_diag / inet_diag constants, mirrored from the UAPI headers
 * (linux/sock_diag.h, linux/inet_diag.h, net/tcp_states.h) with their C names. */

// linux/sock_diag.h: message types on NETLINK_SOCK_DIAG.
export const SOCK_DIAG_BY_FAMILY = 20;
export const SOCK_DESTROY = 21;

// IP protocol numbers (linux/in.h) used as sdiag_protocol.
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_UDPLITE = 136;
export const IPPROTO_RAW = 255;

// struct sizes (linux/inet_diag.h).
/** struct inet_diag_sockid: sport, dport (be16), src[4], dst[4] (be32), if, cookie[2]. */
export const INET_DIAG_SOCKID_LEN = 48;
/** struct inet_diag_req_v2: family, protocol, ext, pad (u8), states (u32), sockid. */
export const INET_DIAG_REQ_V2_LEN = 56;
/** struct inet_diag_msg: family, state, timer, retrans (u8), sockid, expires,
 * rqueue, wqueue, uid, inode (u32). */
export const INET_DIAG_MSG_LEN = 72;
/** idiag_cookie[0] and [1] both set: "do not check the cookie". */
export const INET_DIAG_NOCOOKIE = 0xffffffff;

// enum inet_diag_req_attrs (request attributes after inet_diag_req_v2).
export const INET_DIAG_REQ_NONE = 0;
export const INET_DIAG_REQ_BYTECODE = 1;
export const INET_DIAG_REQ_SK_BPF_STORAGES = 2;
export const INET_DIAG_REQ_PROTOCOL = 3;

// Reply attributes (the unnamed enum in inet_diag.h).
export const INET_DIAG_NONE = 0;
export const INET_DIAG_MEMINFO = 1;
export const INET_DIAG_INFO = 2;
export const INET_DIAG_VEGASINFO = 3;
export const INET_DIAG_CONG = 4;
export const INET_DIAG_TOS = 5;
export const INET_DIAG_TCLASS = 6;
export const INET_DIAG_SKMEMINFO = 7;
export const INET_DIAG_SHUTDOWN = 8;
export const INET_DIAG_DCTCPINFO = 9;
export const INET_DIAG_PROTOCOL = 10;
export const INET_DIAG_SKV6ONLY = 11;
export const INET_DIAG_LOCALS = 12;
export const INET_DIAG_PEERS = 13;
export const INET_DIAG_PAD = 14;
/** Only sent to CAP_NET_ADMIN. */
export const INET_DIAG_MARK = 15;
export const INET_DIAG_BBRINFO = 16;
export const INET_DIAG_CLASS_ID = 17;
export const INET_DIAG_MD5SIG = 18;
export const INET_DIAG_ULP_INFO = 19;
export const INET_DIAG_SK_BPF_STORAGES = 20;
export const INET_DIAG_CGROUP_ID = 21;
export const INET_DIAG_SOCKOPT = 22;

/** idiag_ext bit asking for reply attribute `attr` (1 << (attr - 1)). */
export function diagExtBit(attr: number): number {
  return 1 << (attr - 1);
}

// net/tcp_states.h. UDP sockets report TCP_CLOSE when unconnected and
// TCP_ESTABLISHED when connected.
export const TCP_STATES = [
  'UNKNOWN', // 0: not a state
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'NEW_SYN_RECV',
  'BOUND_INACTIVE',
] as const;

export type SocketState = Exclude<(typeof TCP_STATES)[number], 'UNKNOWN'>;

/** Every state: the idiag_states mask of a dump that wants all sockets. */
export const ALL_STATES = 0xffffffff;

/** The idiag_states bit mask for these states. */
export function stateMask(states: readonly SocketState[]): number {
  let mask = 0;
  for (const s of states) {
    const n = TCP_STATES.indexOf(s);
    if (n <= 0) throw new RangeError(`unknown socket state ${String(s)}`);
    mask |= 1 << n;
  }
  return mask >>> 0;
}
