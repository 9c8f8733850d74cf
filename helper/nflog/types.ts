import type { RawAttribute } from '../netlink/attributes.js';
import type { Flow } from '../conntrack/types.js';
import type { HardwareAddress, PacketTimestamp, VlanInfo } from '../netlink/nf-packet-attrs.js';

export type { HardwareAddress, PacketTimestamp, VlanInfo };

/** One NFULNL_MSG_PACKET with every attribute the kernel sent. Absent
 * attributes are undefined: the kernel omits a mark of 0, ifindexes that do
 * not apply to the hook, uid/gid of packets without a local socket, ... */
export interface LoggedPacket {
  /** nfgenmsg res_id: the NFLOG group (`--nflog-group`, nft `log group`). */
  group: number;
  /** nfgenmsg family: NFPROTO_IPV4 (2), NFPROTO_IPV6 (10), NFPROTO_BRIDGE (7)... */
  family: number;
  /** hw_protocol: the EtherType, 0x0800 IPv4, 0x86dd IPv6. */
  hwProtocol: number;
  /** Netfilter hook: 0 PRE_ROUTING, 1 LOCAL_IN, 2 FORWARD, 3 LOCAL_OUT, 4 POST_ROUTING. */
  hook: number;
  mark?: number;
  timestamp?: PacketTimestamp;
  indev?: number;
  outdev?: number;
  physindev?: number;
  physoutdev?: number;
  hwaddr?: HardwareAddress;
  /** The packet from the network header on, up to the copy range. */
  payload?: Uint8Array;
  /** The rule's prefix (`--nflog-prefix`). */
  prefix?: string;
  uid?: number;
  gid?: number;
  /** NFULA_SEQ: this group's packet counter (flag `seq`). */
  seq?: number;
  /** NFULA_SEQ_GLOBAL: the namespace's counter over all groups (flag `seqGlobal`). */
  seqGlobal?: number;
  /** NFULA_HWTYPE: dev->type (ARPHRD_ETHER 1, ARPHRD_LOOPBACK 772, ...). */
  hwType?: number;
  /** NFULA_HWHEADER: the link-layer header (a copy). */
  hwHeader?: Uint8Array;
  /** NFULA_HWLEN: dev->hard_header_len. */
  hwLen?: number;
  /** NFULA_CT decoded (flag `conntrack` and the kernel's glue). */
  ct?: Flow;
  /** NFULA_CT_INFO: enum ip_conntrack_info. */
  ctInfo?: number;
  vlan?: VlanInfo;
  /** NFULA_L2HDR: the link-layer header of a bridged packet (a copy). */
  l2hdr?: Uint8Array;
  /** Attributes this library does not know, kept raw. */
  unknown?: RawAttribute[];
}
