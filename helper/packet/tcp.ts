import { headerEnd, PacketParseError, viewOf } from './errors.js';

export const TCP_MIN_HEADER = 20;

export interface TcpFlags {
  fin: boolean;
  syn: boolean;
  rst: boolean;
  psh: boolean;
  ack: boolean;
  urg: boolean;
  ece: boolean;
  cwr: boolean;
  /** The AE (accurate ECN, formerly NS) bit. */
  ae: boolean;
}

export interface TcpOption {
  kind: number;
  offset: number;
  length: number;
  /** Option data after kind and length (a copy). */
  data: Uint8Array;
}

export interface TcpHeader {
  offset: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Header length in bytes (data offset * 4). */
  headerLength: number;
  /** The 9 flag bits (AE CWR ECE URG ACK PSH RST SYN FIN). */
  flagBits: number;
  flags: TcpFlags;
  window: number;
  checksum: number;
  urgentPointer: number;
  options: TcpOption[];
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  sack?: [number, number][];
  timestamp?: { value: number; echo: number };
  payloadOffset: number;
  payloadLength: number;
}

export function tcpFlagsOf(bits: number): TcpFlags {
  return {
    fin: (bits & 0x001) !== 0,
    syn: (bits & 0x002) !== 0,
    rst: (bits & 0x004) !== 0,
    psh: (bits & 0x008) !== 0,
    ack: (bits & 0x010) !== 0,
    urg: (bits & 0x020) !== 0,
    ece: (bits & 0x040) !== 0,
    cwr: (bits & 0x080) !== 0,
    ae: (bits & 0x100) !== 0,
  };
}

/** "SYN,ACK" style text for display. */
export function tcpFlagsText(bits: number): string {
  const names = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'AE'];
  return names.filter((_, i) => bits & (1 << i)).join(',');
}

export interface TcpParseOptions {
  /**
   * Decode the options (default true). false leaves `options` empty and skips
   * their checks, for callers that need only ports and flags (the helper's
   * verdict loop): a SYN's five options cost more objects than the rest of the
   * packet.
   */
  options?: boolean;
}

/** Parses a TCP header in bytes[offset, offset + length); bounds-checked. */
export function parseTcp(
  bytes: Uint8Array,
  offset = 0,
  length = bytes.byteLength - offset,
  parse: TcpParseOptions = {},
): TcpHeader {
  const end = headerEnd(bytes, offset, length, TCP_MIN_HEADER, 'tcp');
  const v = viewOf(bytes);
  const doff = bytes[offset + 12]! >> 4;
  const headerLength = doff * 4;
  if (doff < 5)
    throw new PacketParseError('BAD_HEADER_LENGTH', 'tcp', offset, `data offset ${doff} < 5`);
  if (offset + headerLength > end) {
    throw new PacketParseError(
      'TRUNCATED',
      'tcp',
      offset,
      `header of ${headerLength} bytes, ${end - offset} present`,
    );
  }
  const flagBits = ((bytes[offset + 12]! & 1) << 8) | bytes[offset + 13]!;
  const h: TcpHeader = {
    offset,
    srcPort: v.getUint16(offset, false),
    dstPort: v.getUint16(offset + 2, false),
    seq: v.getUint32(offset + 4, false),
    ack: v.getUint32(offset + 8, false),
    headerLength,
    flagBits,
    flags: tcpFlagsOf(flagBits),
    window: v.getUint16(offset + 14, false),
    checksum: v.getUint16(offset + 16, false),
    urgentPointer: v.getUint16(offset + 18, false),
    options: [],
    payloadOffset: offset + headerLength,
    payloadLength: end - offset - headerLength,
  };
  if (parse.options === false) return h;
  parseTcpOptions(bytes, h, offset + TCP_MIN_HEADER, offset + headerLength);
  return h;
}

/** Reads the options in bytes[at, optEnd) into h: each kept raw, the known ones also decoded. */
function parseTcpOptions(bytes: Uint8Array, h: TcpHeader, at: number, optEnd: number): void {
  while (at < optEnd) {
    const kind = bytes[at]!;
    if (kind === 0) break; // end of option list
    if (kind === 1) {
      h.options.push({ kind, offset: at, length: 1, data: new Uint8Array(0) });
      at++;
      continue;
    }
    if (optEnd - at < 2)
      throw new PacketParseError('BAD_OPTION', 'tcp', at, `option ${kind} has no length byte`);
    const len = bytes[at + 1]!;
    if (len < 2 || at + len > optEnd)
      throw new PacketParseError(
        'BAD_OPTION',
        'tcp',
        at,
        `option ${kind} length ${len} overruns the header`,
      );
    const data = bytes.slice(at + 2, at + len);
    h.options.push({ kind, offset: at, length: len, data });
    const dv = viewOf(data);
    if (kind === 2 && len === 4) h.mss = dv.getUint16(0, false);
    else if (kind === 3 && len === 3) h.windowScale = data[0]!;
    else if (kind === 4 && len === 2) h.sackPermitted = true;
    else if (kind === 5 && (len - 2) % 8 === 0) {
      h.sack = [];
      for (let i = 0; i < data.length; i += 8)
        h.sack.push([dv.getUint32(i, false), dv.getUint32(i + 4, false)]);
    } else if (kind === 8 && len === 10)
      h.timestamp = { value: dv.getUint32(0, false), echo: dv.getUint32(4, false) };
    at += len;
  }
}
