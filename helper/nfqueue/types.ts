import type { Flow } from '../conntrack/types.js';
import type { NfPacketBase } from '../netlink/nf-packet-attrs.js';

export type { HardwareAddress, PacketTimestamp, VlanInfo } from '../netlink/nf-packet-attrs.js';

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

/** One NFQNL_MSG_PACKET with every attribute the kernel sent (the fields it
 * shares with a logged packet are described in NfPacketBase). */
export interface QueuedPacket extends NfPacketBase {
  /** nfgenmsg res_id: the queue the packet came from. */
  queue: number;
  /** packet_id: u32, wraps. */
  id: number;
  /** The packet from the network header on (copy mode 'packet'), up to the
   * copy range. A zero-copy view into the receive buffer: see NfQueuePacket
   * for how long it stays valid. */
  payload?: Uint8Array;
  /** NFQA_CT decoded (needs the CONNTRACK flag and kernel glue). */
  ct?: Flow;
  /** NFQA_CAP_LEN: the packet's full length when `payload` was cut at the copy range. */
  capLen?: number;
  skbInfo?: SkbInfo;
  secctx?: string;
  /** skb->priority */
  priority?: number;
  /** NFQA_EXP: nested CTA_EXPECT_* attributes, raw (a copy). */
  exp?: Uint8Array;
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
