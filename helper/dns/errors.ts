export type DnsParseErrorCode =
  /** The message ends inside a header, name, record or rdata. */
  | 'TRUNCATED'
  /** A label type other than a length or a pointer (0x40, 0x80: extended/reserved). */
  | 'BAD_LABEL'
  /** A compression pointer that does not point strictly before the previous one
   * (forward, to itself, or around a loop), or outside the message. */
  | 'BAD_POINTER'
  /** A name longer than 255 bytes. */
  | 'NAME_TOO_LONG'
  /** Record data of the wrong size for its type (an A record that is not 4 bytes...). */
  | 'BAD_RDATA'
  /** A TCP segment that does not hold a whole length-prefixed message. */
  | 'INCOMPLETE';

/** Bytes that are not a well-formed DNS message; never a RangeError from a read. */
export class DnsParseError extends Error {
  override readonly name = 'DnsParseError';
  constructor(
    readonly code: DnsParseErrorCode,
    /** Offset in the buffer where the problem was found. */
    readonly offset: number,
    reason: string,
  ) {
    super(`dns at byte ${offset}: ${reason}`);
  }
}
