import { headerEnd, PacketParseError, viewOf } from './errors.js';

export const UDP_HEADER = 8;

export interface UdpHeader {
  offset: number;
  srcPort: number;
  dstPort: number;
  /** The length field (header + data); 0 only in an IPv6 jumbogram. */
  length: number;
  checksum: number;
  payloadOffset: number;
  /** Payload bytes present in the buffer. */
  payloadLength: number;
  /** The buffer holds less than the length field says (a copy range cut it). */
  truncated: boolean;
}

/**
 * Parses a UDP header in bytes[offset, offset + available). `truncated`
 * says the IP layer knows the capture was cut, so a length field beyond the
 * buffer is expected rather than an error.
 */
export function parseUdp(
  bytes: Uint8Array,
  offset = 0,
  available = bytes.byteLength - offset,
  truncated = false,
): UdpHeader {
  const end = headerEnd(bytes, offset, available, UDP_HEADER, 'udp');
  const v = viewOf(bytes);
  const length = v.getUint16(offset + 4, false);
  let dataEnd: number;
  if (length === 0)
    dataEnd = end; // IPv6 jumbogram (RFC 2675)
  else {
    if (length < UDP_HEADER)
      throw new PacketParseError('BAD_LENGTH', 'udp', offset, `length ${length} < 8`);
    if (offset + length > end && !truncated) {
      throw new PacketParseError(
        'BAD_LENGTH',
        'udp',
        offset,
        `length ${length} > ${end - offset} bytes in the IP payload`,
      );
    }
    dataEnd = Math.min(end, offset + length);
  }
  return {
    offset,
    srcPort: v.getUint16(offset, false),
    dstPort: v.getUint16(offset + 2, false),
    length,
    checksum: v.getUint16(offset + 6, false),
    payloadOffset: offset + UDP_HEADER,
    payloadLength: dataEnd - offset - UDP_HEADER,
    truncated: length !== 0 && offset + length > end,
  };
}
