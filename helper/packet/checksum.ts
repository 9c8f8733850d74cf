import { PacketParseError, viewOf } from './errors.js';
import { parseIPv4 } from './ipv4.js';
import { finalDestination, IPPROTO_FRAGMENT, parseIPv6 } from './ipv6.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './parse.js';

/** The 16-bit big-endian words of bytes[start, end) added up (an odd last
 * byte is padded with zero), plus `initial`; not folded. */
export function sum16(bytes: Uint8Array, start = 0, end = bytes.byteLength, initial = 0): number {
  if (start < 0 || end > bytes.byteLength || start > end) {
    throw new RangeError(`range [${start}, ${end}) outside ${bytes.byteLength} bytes`);
  }
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

/** Folds a sum to 16 bits with end-around carry. */
export function fold16(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** RFC 1071: the one's complement of the one's complement sum. */
export function internetChecksum(
  bytes: Uint8Array,
  start = 0,
  end = bytes.byteLength,
  initial = 0,
): number {
  return ~fold16(sum16(bytes, start, end, initial)) & 0xffff;
}

/** The IPv4 header checksum the header at `offset` should carry (its own checksum field counted as 0). */
export function ipv4HeaderChecksum(bytes: Uint8Array, offset = 0): number {
  const ip = parseIPv4(bytes, offset);
  const stored = viewOf(bytes).getUint16(offset + 10, false);
  // sum16 does not fold, so taking the stored field out again is exact.
  return ~fold16(sum16(bytes, offset, offset + ip.headerLength) - stored) & 0xffff;
}

/** The IPv4 pseudo-header sum (src, dst, protocol, upper-layer length). */
export function pseudoHeaderSumV4(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  length: number,
): number {
  return sum16(src) + sum16(dst) + protocol + length;
}

/** The IPv6 pseudo-header sum (src, dst, upper-layer length as 32 bits, next header). */
export function pseudoHeaderSumV6(
  src: Uint8Array,
  dst: Uint8Array,
  nextHeader: number,
  length: number,
): number {
  return sum16(src) + sum16(dst) + Math.floor(length / 0x10000) + (length & 0xffff) + nextHeader;
}

/** Where the transport checksum lives and what it covers. */
interface TransportSpan {
  protocol: number;
  /** Offset of the checksum field. */
  field: number;
  start: number;
  end: number;
  /** Pseudo-header sum (0 for ICMPv4). */
  pseudo: number;
  /** UDP: a computed 0 is sent as 0xffff. */
  udp: boolean;
  /** UDP over IPv4: a stored 0 means "no checksum". */
  optional: boolean;
}

/** Where an IP packet's transport segment lies, and what its pseudo-header sums. */
interface IpSpan {
  protocol: number;
  start: number;
  end: number;
  src: Uint8Array;
  dst: Uint8Array;
  v6: boolean;
}

/** Whether the transport segment of this IP packet can be summed: not for a
 * fragment; for a truncated packet, not when verifying, else an error. */
function summable(
  ip: { truncated: boolean },
  fragment: boolean,
  offset: number,
  verifying: boolean,
): boolean {
  if (fragment) return false;
  if (!ip.truncated) return true;
  if (verifying) return false;
  throw new PacketParseError('UNSUPPORTED', 'packet', offset, 'checksum of a truncated packet');
}

function span(
  ip: { protocol: number; payloadOffset: number; payloadLength: number },
  src: Uint8Array,
  dst: Uint8Array,
  v6: boolean,
): IpSpan {
  const start = ip.payloadOffset;
  return { protocol: ip.protocol, start, end: start + ip.payloadLength, src, dst, v6 };
}

/** The IP layer of transportSpan: undefined for a fragment (no whole segment to sum). */
function ipSpan(bytes: Uint8Array, offset: number, verifying: boolean): IpSpan | undefined {
  const version = bytes[offset]! >> 4;
  if (version === 4) {
    const ip = parseIPv4(bytes, offset);
    if (!summable(ip, ip.laterFragment || ip.moreFragments, offset, verifying)) return undefined;
    return span(
      ip,
      bytes.subarray(offset + 12, offset + 16),
      bytes.subarray(offset + 16, offset + 20),
      false,
    );
  }
  if (version === 6) {
    const ip = parseIPv6(bytes, offset);
    const fragment = ip.laterFragment || ip.extensions.some((e) => e.type === IPPROTO_FRAGMENT);
    if (!summable(ip, fragment, offset, verifying)) return undefined;
    return span(ip, bytes.subarray(offset + 8, offset + 24), finalDestination(bytes, ip), true);
  }
  throw new PacketParseError('BAD_VERSION', 'packet', offset, `IP version ${version}`);
}

function transportSpan(
  bytes: Uint8Array,
  offset: number,
  verifying = false,
): TransportSpan | undefined {
  const ip = ipSpan(bytes, offset, verifying);
  if (ip === undefined) return undefined;
  const { protocol, start, end, src, dst, v6 } = ip;
  const length = end - start;
  const pseudo = (p: number) =>
    v6 ? pseudoHeaderSumV6(src, dst, p, length) : pseudoHeaderSumV4(src, dst, p, length);
  switch (protocol) {
    case IPPROTO_TCP:
      if (length < 20) throw new PacketParseError('TRUNCATED', 'tcp', start, `${length} bytes`);
      return {
        protocol,
        field: start + 16,
        start,
        end,
        pseudo: pseudo(protocol),
        udp: false,
        optional: false,
      };
    case IPPROTO_UDP:
      if (length < 8) throw new PacketParseError('TRUNCATED', 'udp', start, `${length} bytes`);
      return {
        protocol,
        field: start + 6,
        start,
        end,
        pseudo: pseudo(protocol),
        udp: true,
        optional: !v6,
      };
    case IPPROTO_ICMP:
      if (v6) return undefined;
      if (length < 8) throw new PacketParseError('TRUNCATED', 'icmp', start, `${length} bytes`);
      return { protocol, field: start + 2, start, end, pseudo: 0, udp: false, optional: false };
    case IPPROTO_ICMPV6:
      if (!v6) return undefined;
      if (length < 8) throw new PacketParseError('TRUNCATED', 'icmpv6', start, `${length} bytes`);
      return {
        protocol,
        field: start + 2,
        start,
        end,
        pseudo: pseudo(protocol),
        udp: false,
        optional: false,
      };
    default:
      return undefined;
  }
}

export interface ChecksumResult {
  /** The new IPv4 header checksum (IPv4 only). */
  ipv4Header?: number;
  /** The new transport checksum, if the protocol has one this library knows. */
  transport?: number;
  /** Why the transport checksum was left alone. */
  skipped?: 'fragment' | 'protocol';
}

export interface RecomputeOptions {
  /** Set IPv4 total length, IPv6 payload length and UDP length from the
   * buffer's size first (for a payload that grew or shrank). Default true. */
  fixLengths?: boolean;
}

/**
 * Recomputes the checksums of an IP packet in place (after changing it, and
 * before handing it back with a verdict): the transport checksum (TCP, UDP,
 * ICMP, ICMPv6, with the pseudo-header; the final destination of a routing
 * header for IPv6) and then the IPv4 header checksum. The buffer must hold
 * the whole packet from the IP header on. Fragments keep their transport
 * checksum (it covers the reassembled datagram).
 */
export function recomputeChecksums(
  packet: Uint8Array,
  options: RecomputeOptions = {},
): ChecksumResult {
  const v = viewOf(packet);
  if (packet.byteLength < 1) throw new PacketParseError('TRUNCATED', 'packet', 0, 'empty');
  const version = packet[0]! >> 4;
  if (options.fixLengths ?? true) {
    if (version === 4) {
      parseIPv4(packet, 0);
      if (packet.byteLength > 0xffff)
        throw new PacketParseError('BAD_LENGTH', 'ipv4', 0, `${packet.byteLength} bytes > 65535`);
      v.setUint16(2, packet.byteLength, false);
    } else if (version === 6) {
      const ip = parseIPv6(packet, 0);
      if (!ip.jumbo) {
        if (packet.byteLength - 40 > 0xffff)
          throw new PacketParseError('BAD_LENGTH', 'ipv6', 0, 'payload > 65535');
        v.setUint16(4, packet.byteLength - 40, false);
      }
    }
  }
  const result: ChecksumResult = {};
  const span = transportSpan(packet, 0);
  if (span) {
    if (span.udp && (options.fixLengths ?? true)) {
      const len = span.end - span.start;
      v.setUint16(span.start + 4, len > 0xffff ? 0 : len, false);
    }
    v.setUint16(span.field, 0, false);
    let sum = internetChecksum(packet, span.start, span.end, span.pseudo);
    if (span.udp && sum === 0) sum = 0xffff;
    v.setUint16(span.field, sum, false);
    result.transport = sum;
  } else {
    result.skipped = isFragment(packet) ? 'fragment' : 'protocol';
  }
  if (version === 4) {
    const ip = parseIPv4(packet, 0);
    v.setUint16(10, 0, false);
    const sum = internetChecksum(packet, 0, ip.headerLength);
    v.setUint16(10, sum, false);
    result.ipv4Header = sum;
  }
  return result;
}

function isFragment(packet: Uint8Array): boolean {
  if (packet[0]! >> 4 === 4) {
    const ip = parseIPv4(packet, 0);
    return ip.laterFragment || ip.moreFragments;
  }
  const ip = parseIPv6(packet, 0);
  return ip.extensions.some((e) => e.type === IPPROTO_FRAGMENT);
}

export interface ChecksumCheck {
  /** IPv4 only. */
  ipv4Header?: boolean;
  /** undefined when not checkable (fragment, unknown protocol); UDP/IPv4 with checksum 0 counts as valid. */
  transport?: boolean;
}

/** Verifies the checksums of an IP packet without changing it. */
export function verifyChecksums(packet: Uint8Array, offset = 0): ChecksumCheck {
  const out: ChecksumCheck = {};
  if (packet.byteLength <= offset)
    throw new PacketParseError('TRUNCATED', 'packet', offset, 'empty');
  if (packet[offset]! >> 4 === 4) {
    const ip = parseIPv4(packet, offset);
    out.ipv4Header = fold16(sum16(packet, offset, offset + ip.headerLength)) === 0xffff;
  }
  const span = transportSpan(packet, offset, true);
  if (span) {
    const stored = viewOf(packet).getUint16(span.field, false);
    if (span.optional && stored === 0) out.transport = true;
    else out.transport = fold16(sum16(packet, span.start, span.end, span.pseudo)) === 0xffff;
  }
  return out;
}
