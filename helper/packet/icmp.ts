import { formatIPv4, formatIPv6 } from '../common/ip.js';
import { headerEnd, PacketParseError, viewOf } from './errors.js';

export const ICMP_HEADER = 8;

export interface IcmpHeader {
  offset: number;
  type: number;
  code: number;
  checksum: number;
  /** The 4 bytes after the checksum (meaning depends on the type). */
  rest: number;
  /** Echo request/reply: identifier and sequence. */
  echo?: { id: number; seq: number };
  /** Redirect: the gateway. */
  gateway?: string;
  /** Fragmentation needed / packet too big: the next-hop MTU. */
  mtu?: number;
  /** Parameter problem: the pointer. */
  pointer?: number;
  /** Error messages: offset of the offending packet's IP header. */
  embeddedOffset?: number;
  /** ICMPv6 neighbor solicitation/advertisement: the target address. */
  target?: string;
  payloadOffset: number;
  payloadLength: number;
  name: string;
}

const ICMP_NAMES: Record<number, string> = {
  0: 'echo-reply',
  3: 'destination-unreachable',
  4: 'source-quench',
  5: 'redirect',
  8: 'echo-request',
  9: 'router-advertisement',
  10: 'router-solicitation',
  11: 'time-exceeded',
  12: 'parameter-problem',
  13: 'timestamp-request',
  14: 'timestamp-reply',
};

const ICMPV6_NAMES: Record<number, string> = {
  1: 'destination-unreachable',
  2: 'packet-too-big',
  3: 'time-exceeded',
  4: 'parameter-problem',
  128: 'echo-request',
  129: 'echo-reply',
  130: 'mld-query',
  131: 'mld-report',
  132: 'mld-done',
  133: 'router-solicitation',
  134: 'router-advertisement',
  135: 'neighbor-solicitation',
  136: 'neighbor-advertisement',
  137: 'redirect',
  143: 'mld2-report',
};

function base(bytes: Uint8Array, offset: number, length: number, layer: 'icmp' | 'icmpv6') {
  const end = headerEnd(bytes, offset, length, ICMP_HEADER, layer);
  const v = viewOf(bytes);
  return {
    v,
    end,
    h: {
      offset,
      type: bytes[offset]!,
      code: bytes[offset + 1]!,
      checksum: v.getUint16(offset + 2, false),
      rest: v.getUint32(offset + 4, false),
      payloadOffset: offset + ICMP_HEADER,
      payloadLength: end - offset - ICMP_HEADER,
      name: '',
    } as IcmpHeader,
  };
}

/** Parses an ICMP (IPv4) header in bytes[offset, offset + length). */
export function parseIcmp(
  bytes: Uint8Array,
  offset = 0,
  length = bytes.byteLength - offset,
): IcmpHeader {
  const { v, h } = base(bytes, offset, length, 'icmp');
  h.name = ICMP_NAMES[h.type] ?? `type-${h.type}`;
  switch (h.type) {
    case 0:
    case 8:
    case 13:
    case 14:
      h.echo = { id: v.getUint16(offset + 4, false), seq: v.getUint16(offset + 6, false) };
      break;
    case 5:
      h.gateway = formatIPv4(v, offset + 4);
      h.embeddedOffset = h.payloadOffset;
      break;
    case 3:
      if (h.code === 4) h.mtu = v.getUint16(offset + 6, false);
      h.embeddedOffset = h.payloadOffset;
      break;
    case 12:
      h.pointer = bytes[offset + 4]!;
      h.embeddedOffset = h.payloadOffset;
      break;
    case 4:
    case 11:
      h.embeddedOffset = h.payloadOffset;
      break;
  }
  return h;
}

/** Parses an ICMPv6 header in bytes[offset, offset + length). */
export function parseIcmpv6(
  bytes: Uint8Array,
  offset = 0,
  length = bytes.byteLength - offset,
): IcmpHeader {
  const { v, h, end } = base(bytes, offset, length, 'icmpv6');
  h.name = ICMPV6_NAMES[h.type] ?? `type-${h.type}`;
  switch (h.type) {
    case 128:
    case 129:
      h.echo = { id: v.getUint16(offset + 4, false), seq: v.getUint16(offset + 6, false) };
      break;
    case 2:
      h.mtu = h.rest;
      h.embeddedOffset = h.payloadOffset;
      break;
    case 4:
      h.pointer = h.rest;
      h.embeddedOffset = h.payloadOffset;
      break;
    case 1:
    case 3:
      h.embeddedOffset = h.payloadOffset;
      break;
    case 135:
    case 136:
    case 137:
      if (end - offset < 24)
        throw new PacketParseError('TRUNCATED', 'icmpv6', offset, `${h.name} needs 24 bytes`);
      h.target = formatIPv6(v, offset + 8);
      break;
  }
  return h;
}
