import type { RawAttribute } from '../netlink/attributes.js';
import type { Flow } from '../conntrack/types.js';
import type { HardwareAddress, PacketTimestamp, VlanInfo } from '../netlink/nf-packet-attrs.js';

export type { HardwareAddress, PacketTimestamp, VlanInfo };

/** NFQA_SKB_INFO bits by name. */
export interface SkbInfo {
  raw: number;
  /** NFQA_SKB_CSUMNOTREADY: checksum not filled in yet (CHECKSUM_PARTIAL); it is not wrong. */
  csumNotReady: boolean;
  /** NFQA_SKB_GSO: a GSO packet (larger than the MTU), sent only with the GSO flag. */
  gso: boolean;
  /** NFQA_SKB_CSUM_NOTVERIFIED: the checksum was not verified by hardware. */
  csumNotVerified: boolean;
}

export type ConntrackInfoName =
  | 'established'
  | 'related'
  | 'new'
  | 'established-reply'
  | 'related-reply'
  | 'untracked'
  | 'unknown';

/** One NFQNL_MSG_PACKET with every attribute the kernel sent. Absent
 * attributes are undefined (the kernel omits a mark of 0, an unknown
 * timestamp, ifindexes that do not apply to the hook...). */
export interface QueuedPacket {
  /** nfgenmsg res_id: the queue the packet came from. */
  queue: number;
  /** nfgenmsg family: NFPROTO_IPV4 (2), NFPROTO_IPV6 (10), NFPROTO_BRIDGE (7)... */
  family: number;
  /** packet_id: u32, wraps. */
  id: number;
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
  /** The packet from the network header on (copy mode 'packet'), up to the
   * copy range. A zero-copy view into the receive buffer: see NfQueuePacket
   * for how long it stays valid. */
  payload?: Uint8Array;
  /** NFQA_CT decoded (needs the CONNTRACK flag and kernel glue). */
  ct?: Flow;
  /** NFQA_CT_INFO: enum ip_conntrack_info. */
  ctInfo?: number;
  /** NFQA_CAP_LEN: the packet's full length when `payload` was cut at the copy range. */
  capLen?: number;
  skbInfo?: SkbInfo;
  uid?: number;
  gid?: number;
  secctx?: string;
  vlan?: VlanInfo;
  /** NFQA_L2HDR: the link-layer header (bridge family), a copy. */
  l2hdr?: Uint8Array;
  /** skb->priority */
  priority?: number;
  /** NFQA_EXP: nested CTA_EXPECT_* attributes, raw (a copy). */
  exp?: Uint8Array;
  /** Attributes this library does not know, kept raw. */
  unknown?: RawAttribute[];
}

/** One line of /proc/net/netfilter/nfnetlink_queue. */
export interface QueueProcStats {
  queue: number;
  /** Netlink port id of the bound socket. */
  portId: number;
  /** Packets waiting for a verdict now. */
  queueTotal: number;
  copyMode: number;
  copyRange: number;
  /** Packets dropped because the queue was full (or the socket could not take them). */
  queueDropped: number;
  /** Packets dropped because the netlink unicast to user space failed (receive buffer full). */
  userDropped: number;
  /** The last packet id handed out. */
  lastId: number;
}
