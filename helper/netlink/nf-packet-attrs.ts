/**
 * Decoders of the per-packet attributes that nfnetlink_queue and
 * nfnetlink_log send with the same layout (struct nf*_msg_packet_hw and
 * _timestamp, the nested VLAN attribute). They live here, below both
 * helper/nfqueue and helper/nflog, so that neither library needs the other.
 * `what` names the attribute in errors (NFQA_HWADDR, NFULA_HWADDR).
 */
import type { AttributeReader, RawAttribute } from './attributes.js';
import { NetlinkDecodeError } from './errors.js';

/** struct nfqnl_msg_packet_hw (== nfulnl_msg_packet_hw): the link-layer source address of an incoming packet. */
export interface HardwareAddress {
  /** hw_addrlen: meaningful bytes of `bytes` (6 for Ethernet). */
  length: number;
  /** The address bytes (a copy, `length` bytes). */
  bytes: Uint8Array;
  /** "aa:bb:cc:dd:ee:ff". */
  text: string;
}

/** struct nfqnl_msg_packet_timestamp (== nfulnl_msg_packet_timestamp; skb->tstamp, CLOCK_REALTIME). */
export interface PacketTimestamp {
  sec: bigint;
  usec: bigint;
  /** Milliseconds since the epoch (Date-compatible). */
  ms: number;
}

/** NFQA_VLAN (== NFULA_VLAN): the skb's VLAN tag (hardware accelerated tags are not in the payload). */
export interface VlanInfo {
  /** VLAN_PROTO: 0x8100 (802.1Q) or 0x88a8 (802.1ad). */
  proto?: number;
  /** VLAN_TCI as sent. */
  tci?: number;
  /** tci & 0x0fff */
  id?: number;
  /** tci >> 13 */
  priority?: number;
}

/** What a queued packet (NFQA_*) and a logged one (NFULA_*) both carry, with the
 * same meaning. Absent attributes are undefined: the kernel omits a mark of 0,
 * an unknown timestamp, ifindexes that do not apply to the hook, the uid/gid of
 * packets without a local socket... */
export interface NfPacketBase {
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
  uid?: number;
  gid?: number;
  /** The conntrack info (enum ip_conntrack_info) that comes with the entry. */
  ctInfo?: number;
  vlan?: VlanInfo;
  /** The link-layer header of a bridged packet (bridge family), a copy. */
  l2hdr?: Uint8Array;
  /** Attributes this library does not know, kept raw. */
  unknown?: RawAttribute[];
}

/** sizeof(struct nfqnl_msg_packet_hw) == sizeof(struct nfulnl_msg_packet_hw) */
const PACKET_HW_LEN = 12;
/** sizeof(struct nfqnl_msg_packet_timestamp) == sizeof(struct nfulnl_msg_packet_timestamp) */
const PACKET_TIMESTAMP_LEN = 16;
/** NFQA_VLAN_PROTO == NFULA_VLAN_PROTO, NFQA_VLAN_TCI == NFULA_VLAN_TCI. */
const VLAN_PROTO = 1;
const VLAN_TCI = 2;

// NFPROTO_* values of the nfgenmsg family.
const NFPROTO_IPV4 = 2;
const NFPROTO_IPV6 = 10;

/** The IP family of a queued or logged packet, for decoding its conntrack
 * entry: from the nfgenmsg family, or for bridge/netdev hooks from the EtherType. */
export function packetIpFamily(family: number, hwProtocol: number): 'ipv4' | 'ipv6' | undefined {
  if (family === NFPROTO_IPV4) return 'ipv4';
  if (family === NFPROTO_IPV6) return 'ipv6';
  if (hwProtocol === 0x0800) return 'ipv4';
  if (hwProtocol === 0x86dd) return 'ipv6';
  return undefined;
}

/** The offset of a fixed struct that must be at least `size` bytes (the
 * kernel may pad; it never sends less). */
export function atLeast(ad: AttributeReader, size: number, what: string): number {
  if (ad.valueLength < size) {
    throw new NetlinkDecodeError(
      `${what} needs ${size} bytes, has ${ad.valueLength}`,
      ad.valueOffset - 4,
    );
  }
  return ad.valueOffset;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

export function decodeHwaddr(ad: AttributeReader, what: string): HardwareAddress {
  const at = atLeast(ad, PACKET_HW_LEN, what);
  const length = ad.view.getUint16(at, false);
  if (length > 8) {
    throw new NetlinkDecodeError(`${what} hw_addrlen ${length} > 8`, at);
  }
  const bytes = new Uint8Array(ad.view.buffer, ad.view.byteOffset + at + 4, length).slice();
  return { length, bytes, text: Array.from(bytes, hex2).join(':') };
}

export function decodeTimestamp(ad: AttributeReader, what: string): PacketTimestamp {
  const at = atLeast(ad, PACKET_TIMESTAMP_LEN, what);
  const sec = ad.view.getBigUint64(at, false);
  const usec = ad.view.getBigUint64(at + 8, false);
  return { sec, usec, ms: Number(sec) * 1000 + Number(usec) / 1000 };
}

/** The nested VLAN attribute; `ad` reads inside the nest. */
export function decodeVlan(ad: AttributeReader): VlanInfo {
  const vlan: VlanInfo = {};
  while (ad.next()) {
    if (ad.type === VLAN_PROTO) vlan.proto = ad.u16be();
    else if (ad.type === VLAN_TCI) {
      const tci = ad.u16be();
      vlan.tci = tci;
      vlan.id = tci & 0x0fff;
      vlan.priority = tci >> 13;
    }
  }
  return vlan;
}
