import { formatIPv6 } from '../common/ip.js';
import { headerEnd, PacketParseError, viewOf } from './errors.js';

export const IPV6_HEADER = 40;

export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_AH = 51;
export const IPPROTO_DSTOPTS = 60;

/** A TLV option of a hop-by-hop or destination options header. */
export interface IPv6Option {
  type: number;
  offset: number;
  /** Data bytes (a copy); empty for Pad1. */
  data: Uint8Array;
}

export interface IPv6ExtensionHeader {
  /** Its protocol number: 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options, 51 AH. */
  type: number;
  name: 'hop-by-hop' | 'routing' | 'fragment' | 'destination' | 'ah';
  offset: number;
  length: number;
  nextHeader: number;
  options?: IPv6Option[];
  routing?: { routingType: number; segmentsLeft: number; data: Uint8Array };
  fragment?: { offset: number; more: boolean; identification: number };
  ah?: { spi: number; sequence: number; icv: Uint8Array };
}

export interface IPv6Header {
  version: 6;
  offset: number;
  trafficClass: number;
  flowLabel: number;
  /** The payload length field (the buffer length minus 40 for a jumbogram). */
  declaredPayloadLength: number;
  /** The next header field of the fixed header. */
  nextHeader: number;
  hopLimit: number;
  src: string;
  dst: string;
  extensions: IPv6ExtensionHeader[];
  /** The upper-layer protocol after the extension headers (59: none, 50: ESP, not parsed further). */
  protocol: number;
  /** Offset of the upper-layer header. */
  payloadOffset: number;
  /** Upper-layer bytes present in the buffer. */
  payloadLength: number;
  truncated: boolean;
  /** Not the first fragment: the upper-layer header is not here. */
  laterFragment: boolean;
  /** The payload length came from a hop-by-hop jumbo option or from the buffer (0 in the header). */
  jumbo: boolean;
}

const NAMES: Record<number, IPv6ExtensionHeader['name']> = {
  [IPPROTO_HOPOPTS]: 'hop-by-hop',
  [IPPROTO_ROUTING]: 'routing',
  [IPPROTO_FRAGMENT]: 'fragment',
  [IPPROTO_DSTOPTS]: 'destination',
  [IPPROTO_AH]: 'ah',
};

export function isExtensionHeader(protocol: number): boolean {
  return NAMES[protocol] !== undefined;
}

function parseTlvOptions(bytes: Uint8Array, start: number, end: number): IPv6Option[] {
  const out: IPv6Option[] = [];
  let at = start;
  while (at < end) {
    const type = bytes[at]!;
    if (type === 0) {
      out.push({ type, offset: at, data: new Uint8Array(0) });
      at++;
      continue;
    }
    if (end - at < 2)
      throw new PacketParseError('BAD_OPTION', 'ipv6', at, `option ${type} has no length byte`);
    const len = bytes[at + 1]!;
    if (at + 2 + len > end)
      throw new PacketParseError(
        'BAD_OPTION',
        'ipv6',
        at,
        `option ${type} length ${len} overruns its header`,
      );
    out.push({ type, offset: at, data: bytes.slice(at + 2, at + 2 + len) });
    at += 2 + len;
  }
  return out;
}

/** Parses an IPv6 header and its extension headers at `offset`; bounds-checked. */
export function parseIPv6(bytes: Uint8Array, offset = 0): IPv6Header {
  const avail = headerEnd(bytes, offset, bytes.byteLength - offset, IPV6_HEADER, 'ipv6') - offset;
  const v = viewOf(bytes);
  const w0 = v.getUint32(offset, false);
  if (w0 >>> 28 !== 6)
    throw new PacketParseError('BAD_VERSION', 'ipv6', offset, `version ${w0 >>> 28}`);
  let payloadLength = v.getUint16(offset + 4, false);
  const nextHeader = bytes[offset + 6]!;
  let jumbo = false;
  if (payloadLength === 0 && nextHeader === IPPROTO_HOPOPTS) {
    // A jumbogram (or a BIG TCP GSO packet): the length is not in the header.
    jumbo = true;
    payloadLength = avail - IPV6_HEADER;
  }
  const end = offset + IPV6_HEADER + Math.min(payloadLength, avail - IPV6_HEADER);
  const h: IPv6Header = {
    version: 6,
    offset,
    trafficClass: (w0 >>> 20) & 0xff,
    flowLabel: w0 & 0xfffff,
    declaredPayloadLength: payloadLength,
    nextHeader,
    hopLimit: bytes[offset + 7]!,
    src: formatIPv6(v, offset + 8),
    dst: formatIPv6(v, offset + 24),
    extensions: [],
    protocol: nextHeader,
    payloadOffset: offset + IPV6_HEADER,
    payloadLength: 0,
    truncated: payloadLength > avail - IPV6_HEADER,
    laterFragment: false,
    jumbo,
  };
  let at = offset + IPV6_HEADER;
  let proto = nextHeader;
  // Each extension header takes at least 8 bytes, so this ends; the cap guards against silly chains.
  for (let n = 0; isExtensionHeader(proto) && n < 64; n++) {
    if (end - at < 8) {
      throw new PacketParseError(
        h.truncated ? 'TRUNCATED' : 'BAD_OPTION',
        'ipv6',
        at,
        `${NAMES[proto]} header needs 8 bytes, ${end - at} left`,
      );
    }
    const next = bytes[at]!;
    let length: number;
    if (proto === IPPROTO_FRAGMENT) length = 8;
    else if (proto === IPPROTO_AH) length = (bytes[at + 1]! + 2) * 4;
    else length = (bytes[at + 1]! + 1) * 8;
    // AH's fixed part (next header, length, reserved, SPI, sequence) is 12 bytes.
    const least = proto === IPPROTO_AH ? 12 : 8;
    if (length < least || at + length > end) {
      throw new PacketParseError(
        h.truncated ? 'TRUNCATED' : 'BAD_OPTION',
        'ipv6',
        at,
        `${NAMES[proto]} header of ${length} bytes overruns the packet`,
      );
    }
    const ext: IPv6ExtensionHeader = {
      type: proto,
      name: NAMES[proto]!,
      offset: at,
      length,
      nextHeader: next,
    };
    if (readExtensionBody(bytes, v, ext)) h.laterFragment = true;
    h.extensions.push(ext);
    at += length;
    proto = next;
    if (h.laterFragment) break;
  }
  h.protocol = proto;
  h.payloadOffset = at;
  h.payloadLength = end - at;
  return h;
}

/** Decodes the body of an extension header the parser knows; true for a fragment
 * header of a later fragment (whose upper layer is not in this packet). */
function readExtensionBody(bytes: Uint8Array, v: DataView, ext: IPv6ExtensionHeader): boolean {
  const at = ext.offset;
  const end = at + ext.length;
  switch (ext.type) {
    case IPPROTO_HOPOPTS:
    case IPPROTO_DSTOPTS:
      ext.options = parseTlvOptions(bytes, at + 2, end);
      break;
    case IPPROTO_ROUTING:
      ext.routing = {
        routingType: bytes[at + 2]!,
        segmentsLeft: bytes[at + 3]!,
        data: bytes.slice(at + 4, end),
      };
      break;
    case IPPROTO_FRAGMENT: {
      const fo = v.getUint16(at + 2, false);
      ext.fragment = {
        offset: (fo >> 3) * 8,
        more: (fo & 1) !== 0,
        identification: v.getUint32(at + 4, false),
      };
      return ext.fragment.offset !== 0;
    }
    case IPPROTO_AH:
      ext.ah = {
        spi: v.getUint32(at + 4, false),
        sequence: v.getUint32(at + 8, false),
        icv: bytes.slice(at + 12, end),
      };
      break;
  }
  return false;
}

/** The destination the upper layer's pseudo-header uses: the final one of a
 * routing header that still has segments left (types 0 and 2: the last
 * address; type 4, SRH: segment 0), else the header's. */
export function finalDestination(bytes: Uint8Array, h: IPv6Header): Uint8Array {
  for (const ext of h.extensions) {
    const r = ext.routing;
    if (!r || r.segmentsLeft === 0) continue;
    // Routing data starts 4 bytes into the header; addresses 8 bytes in.
    const addrs = ext.offset + 8;
    const count = Math.floor((ext.length - 8) / 16);
    if (count === 0) continue;
    if (r.routingType === 0 || r.routingType === 2)
      return bytes.slice(addrs + (count - 1) * 16, addrs + count * 16);
    if (r.routingType === 4) return bytes.slice(addrs, addrs + 16);
  }
  return bytes.slice(h.offset + 24, h.offset + 40);
}
