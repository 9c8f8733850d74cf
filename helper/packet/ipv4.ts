import { formatIPv4 } from '../common/ip.js';
import { headerEnd, PacketParseError, viewOf } from './errors.js';

export const IPV4_MIN_HEADER = 20;

export interface IPv4Option {
  /** The option type byte (copied flag, class, number). */
  type: number;
  copied: boolean;
  optionClass: number;
  number: number;
  /** Bytes of the whole option (1 for EOL/NOP). */
  length: number;
  /** Offset of the option in the packet. */
  offset: number;
  /** The option's data after type and length (a copy). */
  data: Uint8Array;
}

export interface IPv4Header {
  version: 4;
  /** Offset of the header in the buffer. */
  offset: number;
  headerLength: number;
  dscp: number;
  ecn: number;
  totalLength: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Fragment offset in bytes. */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  src: string;
  dst: string;
  options: IPv4Option[];
  /** Offset of the payload (upper layer) in the buffer. */
  payloadOffset: number;
  /** Payload bytes present in the buffer. */
  payloadLength: number;
  /** The buffer holds less than totalLength (a copy range cut it). */
  truncated: boolean;
  /** Not the first fragment: the upper-layer header is not here. */
  laterFragment: boolean;
}

const EOL = 0;
const NOP = 1;

function parseOptions(bytes: Uint8Array, start: number, end: number): IPv4Option[] {
  const out: IPv4Option[] = [];
  let at = start;
  while (at < end) {
    const type = bytes[at]!;
    const base = {
      type,
      copied: (type & 0x80) !== 0,
      optionClass: (type >> 5) & 3,
      number: type & 0x1f,
    };
    if (type === EOL) {
      out.push({ ...base, length: 1, offset: at, data: new Uint8Array(0) });
      break; // the rest is padding
    }
    if (type === NOP) {
      out.push({ ...base, length: 1, offset: at, data: new Uint8Array(0) });
      at++;
      continue;
    }
    if (end - at < 2)
      throw new PacketParseError('BAD_OPTION', 'ipv4', at, `option ${type} has no length byte`);
    const length = bytes[at + 1]!;
    if (length < 2 || at + length > end) {
      throw new PacketParseError(
        'BAD_OPTION',
        'ipv4',
        at,
        `option ${type} length ${length} overruns the header`,
      );
    }
    out.push({ ...base, length, offset: at, data: bytes.slice(at + 2, at + length) });
    at += length;
  }
  return out;
}

/** Parses an IPv4 header (with options) at `offset`; bounds-checked. */
export function parseIPv4(bytes: Uint8Array, offset = 0): IPv4Header {
  const avail =
    headerEnd(bytes, offset, bytes.byteLength - offset, IPV4_MIN_HEADER, 'ipv4') - offset;
  const v = viewOf(bytes);
  const b0 = bytes[offset]!;
  if (b0 >> 4 !== 4)
    throw new PacketParseError('BAD_VERSION', 'ipv4', offset, `version ${b0 >> 4}`);
  const headerLength = (b0 & 0x0f) * 4;
  if (headerLength < IPV4_MIN_HEADER) {
    throw new PacketParseError('BAD_HEADER_LENGTH', 'ipv4', offset, `IHL ${headerLength / 4} < 5`);
  }
  if (headerLength > avail) {
    throw new PacketParseError(
      'TRUNCATED',
      'ipv4',
      offset,
      `header of ${headerLength} bytes, ${avail} present`,
    );
  }
  let totalLength = v.getUint16(offset + 2, false);
  // BIG TCP (GSO packets over 64 KiB) sends total length 0: the buffer is the packet.
  const declared = totalLength === 0 ? avail : totalLength;
  if (declared < headerLength) {
    throw new PacketParseError(
      'BAD_LENGTH',
      'ipv4',
      offset,
      `total length ${totalLength} < header ${headerLength}`,
    );
  }
  if (totalLength === 0) totalLength = avail;
  const frag = v.getUint16(offset + 6, false);
  const payloadOffset = offset + headerLength;
  const fragmentOffset = (frag & 0x1fff) * 8;
  return {
    version: 4,
    offset,
    headerLength,
    dscp: bytes[offset + 1]! >> 2,
    ecn: bytes[offset + 1]! & 3,
    totalLength,
    identification: v.getUint16(offset + 4, false),
    dontFragment: (frag & 0x4000) !== 0,
    moreFragments: (frag & 0x2000) !== 0,
    fragmentOffset,
    ttl: bytes[offset + 8]!,
    protocol: bytes[offset + 9]!,
    checksum: v.getUint16(offset + 10, false),
    src: formatIPv4(v, offset + 12),
    dst: formatIPv4(v, offset + 16),
    options: headerLength > IPV4_MIN_HEADER ? parseOptions(bytes, offset + 20, payloadOffset) : [],
    payloadOffset,
    payloadLength: Math.min(declared, avail) - headerLength,
    truncated: declared > avail,
    laterFragment: fragmentOffset !== 0,
  };
}
