import type { Flow } from '../conntrack/types.js';
import type { NfPacketBase } from '../netlink/nf-packet-attrs.js';

export type { HardwareAddress, PacketTimestamp, VlanInfo } from '../netlink/nf-packet-attrs.js';

/** One NFULNL_MSG_PACKET with every attribute the kernel sent (the fields it
 * shares with a queued packet are described in NfPacketBase). */
export interface LoggedPacket extends NfPacketBase {
  /** nfgenmsg res_id: the NFLOG group (`--nflog-group`, nft `log group`). */
  group: number;
  /** The packet from the network header on, up to the copy range. */
  payload?: Uint8Array;
  /** The rule's prefix (`--nflog-prefix`). */
  prefix?: string;
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
}
