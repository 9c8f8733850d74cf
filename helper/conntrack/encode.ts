import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  NFNL_SUBSYS_CTNETLINK,
  nfnlMsgType,
} from '../netlink/constants.js';
import type { NetlinkWriter } from '../netlink/writer.js';
import * as C from './constants.js';
import { parseIP } from '../common/ip.js';
import type { Family, NatSpec, Tuple } from './types.js';

export function ctMsgType(msg: number): number {
  return nfnlMsgType(NFNL_SUBSYS_CTNETLINK, msg);
}

export function familyNumber(family: Family | undefined): number {
  if (family === undefined) return AF_UNSPEC;
  return family === 'ipv4' ? AF_INET : AF_INET6;
}

/** A malformed request argument (bad address, port out of range...). */
export class ConntrackArgumentError extends TypeError {
  override readonly name = 'ConntrackArgumentError';
}

export function addressBytes(text: string, family: Family | undefined, what: string): Uint8Array {
  const bytes = parseIP(text);
  if (!bytes) throw new ConntrackArgumentError(`${what}: '${text}' is not an IP address`);
  if (family === 'ipv4' && bytes.length !== 4)
    throw new ConntrackArgumentError(`${what}: '${text}' is not IPv4`);
  if (family === 'ipv6' && bytes.length !== 16)
    throw new ConntrackArgumentError(`${what}: '${text}' is not IPv6`);
  return bytes;
}

/** The family of a tuple's addresses; both must agree. */
export function tupleFamily(t: Partial<Tuple>): Family | undefined {
  let family: Family | undefined;
  for (const a of [t.src, t.dst]) {
    if (a === undefined) continue;
    const bytes = parseIP(a);
    if (!bytes) throw new ConntrackArgumentError(`'${a}' is not an IP address`);
    const f: Family = bytes.length === 4 ? 'ipv4' : 'ipv6';
    if (family && f !== family)
      throw new ConntrackArgumentError('source and destination are of different families');
    family = f;
  }
  return family;
}

function checkPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 0 || p > 65535)
    throw new ConntrackArgumentError(`${what} ${p} out of range 0..65535`);
  return p;
}

function checkU8(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 255)
    throw new ConntrackArgumentError(`${what} ${v} out of range 0..255`);
  return v;
}

function isIcmp(proto: number | undefined): 'v4' | 'v6' | undefined {
  if (proto === C.IPPROTO.icmp) return 'v4';
  if (proto === C.IPPROTO.icmpv6) return 'v6';
  return undefined;
}

/**
 * Writes a tuple nest. Fields that are undefined are left out, which is
 * what filters need; get/delete/create pass complete tuples.
 */
export function writeTuple(
  w: NetlinkWriter,
  type: number,
  t: Partial<Tuple>,
  family: Family | undefined,
): void {
  const nest = w.beginNest(type);
  if (t.src !== undefined || t.dst !== undefined) {
    const ip = w.beginNest(C.CTA_TUPLE_IP);
    if (t.src !== undefined) {
      const b = addressBytes(t.src, family, 'source');
      w.bytes(b.length === 4 ? C.CTA_IP_V4_SRC : C.CTA_IP_V6_SRC, b);
    }
    if (t.dst !== undefined) {
      const b = addressBytes(t.dst, family, 'destination');
      w.bytes(b.length === 4 ? C.CTA_IP_V4_DST : C.CTA_IP_V6_DST, b);
    }
    w.endNest(ip);
  }
  const hasL4 =
    t.proto !== undefined ||
    t.srcPort !== undefined ||
    t.dstPort !== undefined ||
    t.icmpType !== undefined ||
    t.icmpCode !== undefined ||
    t.icmpId !== undefined;
  if (hasL4) {
    const p = w.beginNest(C.CTA_TUPLE_PROTO);
    if (t.proto !== undefined) w.u8(C.CTA_PROTO_NUM, checkU8(t.proto, 'protocol'));
    const icmp = isIcmp(t.proto);
    if (icmp) {
      if (t.icmpId !== undefined)
        w.u16be(
          icmp === 'v4' ? C.CTA_PROTO_ICMP_ID : C.CTA_PROTO_ICMPV6_ID,
          checkPort(t.icmpId, 'icmp id'),
        );
      if (t.icmpType !== undefined)
        w.u8(
          icmp === 'v4' ? C.CTA_PROTO_ICMP_TYPE : C.CTA_PROTO_ICMPV6_TYPE,
          checkU8(t.icmpType, 'icmp type'),
        );
      if (t.icmpCode !== undefined)
        w.u8(
          icmp === 'v4' ? C.CTA_PROTO_ICMP_CODE : C.CTA_PROTO_ICMPV6_CODE,
          checkU8(t.icmpCode, 'icmp code'),
        );
    } else {
      if (t.srcPort !== undefined)
        w.u16be(C.CTA_PROTO_SRC_PORT, checkPort(t.srcPort, 'source port'));
      if (t.dstPort !== undefined)
        w.u16be(C.CTA_PROTO_DST_PORT, checkPort(t.dstPort, 'destination port'));
    }
    w.endNest(p);
  }
  if (t.zone !== undefined) w.u16be(C.CTA_TUPLE_ZONE, checkPort(t.zone, 'zone'));
  w.endNest(nest);
}

/** The reply tuple of a flow without NAT: addresses and ports swapped. */
export function invertTuple(t: Tuple): Tuple {
  const r: Tuple = { src: t.dst, dst: t.src, proto: t.proto };
  if (t.srcPort !== undefined) r.dstPort = t.srcPort;
  if (t.dstPort !== undefined) r.srcPort = t.dstPort;
  if (t.icmpId !== undefined) r.icmpId = t.icmpId;
  if (t.icmpType !== undefined) {
    // An echo request (8 / 128) is answered by an echo reply (0 / 129).
    const v6 = t.proto === C.IPPROTO.icmpv6;
    const replies: Record<number, number> = v6
      ? { 128: 129, 129: 128 }
      : { 8: 0, 0: 8, 13: 14, 15: 16, 17: 18 };
    r.icmpType = replies[t.icmpType] ?? t.icmpType;
  }
  if (t.icmpCode !== undefined) r.icmpCode = t.icmpCode;
  if (t.zone !== undefined) r.zone = t.zone;
  return r;
}

/** The flags of CTA_FILTER_*_FLAGS for the fields a partial tuple sets. */
export function filterFlags(t: Partial<Tuple>): number {
  const l4 = t.srcPort ?? t.dstPort ?? t.icmpType ?? t.icmpCode ?? t.icmpId;
  if (l4 !== undefined && t.proto === undefined) {
    // The kernel parses ports and ICMP fields per protocol (EINVAL otherwise).
    throw new ConntrackArgumentError('filtering by port or ICMP field needs a protocol (proto)');
  }
  let f = 0;
  if (t.src !== undefined) f |= C.CTA_FILTER_FLAG_CTA_IP_SRC;
  if (t.dst !== undefined) f |= C.CTA_FILTER_FLAG_CTA_IP_DST;
  if (t.zone !== undefined) f |= C.CTA_FILTER_FLAG_CTA_TUPLE_ZONE;
  if (t.proto !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_NUM;
  const icmp = isIcmp(t.proto);
  if (icmp === 'v4') {
    if (t.icmpType !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_ICMP_TYPE;
    if (t.icmpCode !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_ICMP_CODE;
    if (t.icmpId !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_ICMP_ID;
  } else if (icmp === 'v6') {
    if (t.icmpType !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_TYPE;
    if (t.icmpCode !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_CODE;
    if (t.icmpId !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_ID;
  } else {
    if (t.srcPort !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_SRC_PORT;
    if (t.dstPort !== undefined) f |= C.CTA_FILTER_FLAG_CTA_PROTO_DST_PORT;
  }
  return f;
}

export function writeNat(w: NetlinkWriter, type: number, nat: NatSpec, family: Family): void {
  const n = w.beginNest(type);
  const v4 = family === 'ipv4';
  if (nat.minIp !== undefined)
    w.bytes(
      v4 ? C.CTA_NAT_V4_MINIP : C.CTA_NAT_V6_MINIP,
      addressBytes(nat.minIp, family, 'NAT address'),
    );
  if (nat.maxIp !== undefined)
    w.bytes(
      v4 ? C.CTA_NAT_V4_MAXIP : C.CTA_NAT_V6_MAXIP,
      addressBytes(nat.maxIp, family, 'NAT address'),
    );
  if (nat.minPort !== undefined || nat.maxPort !== undefined) {
    const p = w.beginNest(C.CTA_NAT_PROTO);
    const min = nat.minPort ?? nat.maxPort!;
    w.u16be(C.CTA_PROTONAT_PORT_MIN, checkPort(min, 'NAT port'));
    w.u16be(C.CTA_PROTONAT_PORT_MAX, checkPort(nat.maxPort ?? min, 'NAT port'));
    w.endNest(p);
  }
  w.endNest(n);
}

/** Status given by names or as raw bits. */
export function statusBits(status: number | readonly C.StatusFlag[]): number {
  if (typeof status === 'number') return status >>> 0;
  let bits = 0;
  for (const name of status) {
    const bit = C.STATUS_BITS[name];
    if (bit === undefined) throw new ConntrackArgumentError(`unknown status flag '${name}'`);
    bits |= bit;
  }
  return bits >>> 0;
}

export function tcpStateNumber(state: C.TcpState): number {
  const n = C.TCP_STATES.indexOf(state);
  if (n < 0) throw new ConntrackArgumentError(`unknown TCP state '${state}'`);
  return n;
}

export function labelsBytes(labels: Uint8Array | readonly number[]): Uint8Array {
  if (labels instanceof Uint8Array) {
    if (labels.length !== 16)
      throw new ConntrackArgumentError('labels must be 16 bytes (128 bits)');
    return labels;
  }
  const out = new Uint8Array(16);
  for (const b of labels) {
    if (!Number.isInteger(b) || b < 0 || b > 127)
      throw new ConntrackArgumentError(`label ${b} out of range 0..127`);
    out[b >> 3]! |= 1 << (b & 7);
  }
  return out;
}
