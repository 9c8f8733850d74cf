export type PacketErrorCode =
  /** Fewer bytes than the header needs. */
  | 'TRUNCATED'
  /** The IP version nibble is not what the parser expects. */
  | 'BAD_VERSION'
  /** A header length field is impossible (IHL < 5, TCP data offset < 5...). */
  | 'BAD_HEADER_LENGTH'
  /** A length field disagrees with the bytes (IPv4 total length < header, UDP length < 8...). */
  | 'BAD_LENGTH'
  /** An option or extension header overruns its container. */
  | 'BAD_OPTION'
  /** The operation cannot be done on this packet (checksum of a fragment, ESP...). */
  | 'UNSUPPORTED';

/** Malformed or unsupported packet bytes; never a RangeError from a DataView. */
export class PacketParseError extends Error {
  override readonly name = 'PacketParseError';
  constructor(
    readonly code: PacketErrorCode,
    readonly layer: 'ipv4' | 'ipv6' | 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'packet',
    readonly offset: number,
    reason: string,
  ) {
    super(`${layer} at byte ${offset}: ${reason}`);
  }
}

/**
 * Where a header's bytes end: bytes[offset, offset + length) cut at the end of
 * the buffer. Fewer than the `min` bytes the header needs is TRUNCATED.
 */
export function headerEnd(
  bytes: Uint8Array,
  offset: number,
  length: number,
  min: number,
  layer: PacketParseError['layer'],
): number {
  const end = Math.min(bytes.byteLength, offset + length);
  if (offset < 0 || end - offset < min) {
    throw new PacketParseError(
      'TRUNCATED',
      layer,
      offset,
      `${Math.max(end - offset, 0)} bytes, need ${min}`,
    );
  }
  return end;
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
