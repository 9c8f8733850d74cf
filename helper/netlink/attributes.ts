import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN, NLA_TYPE_MASK } from './constants.js';
import { align4, HOST_LITTLE_ENDIAN } from './endian.js';
import { NetlinkDecodeError } from './errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * A cursor over a run of netlink attributes, allocation-free:
 *
 *     const ad = new AttributeReader(view, start, end);
 *     while (ad.next()) switch (ad.type) { case CTA_MARK: mark = ad.u32be(); break; }
 *
 * Every read is bounds-checked against the attribute and the run; malformed
 * input throws NetlinkDecodeError, never reads outside [start, end).
 */
export class AttributeReader {
  /** Attribute type with NLA_F_NESTED / NLA_F_NET_BYTEORDER masked off. */
  type = -1;
  /** The 16-bit type as sent, flags included. */
  rawType = 0;
  /** Offset of the current attribute's value in `view`. */
  valueOffset = 0;
  /** Length of the current attribute's value (without header or padding). */
  valueLength = 0;
  private cursor: number;

  constructor(
    readonly view: DataView,
    readonly start: number,
    readonly end: number,
  ) {
    if (start < 0 || end > view.byteLength || start > end) {
      throw new NetlinkDecodeError(`attribute run [${start}, ${end}) outside buffer`, start);
    }
    this.cursor = start;
  }

  /** Moves to the next attribute; false at the end of the run. */
  next(): boolean {
    const at = this.cursor;
    if (at >= this.end) return false;
    if (this.end - at < NLA_HDRLEN) {
      throw new NetlinkDecodeError(
        `${this.end - at} trailing bytes, too short for an attribute`,
        at,
      );
    }
    const len = this.view.getUint16(at, HOST_LITTLE_ENDIAN);
    if (len < NLA_HDRLEN) throw new NetlinkDecodeError(`attribute length ${len} < 4`, at);
    if (at + len > this.end) {
      throw new NetlinkDecodeError(`attribute length ${len} overruns its container`, at);
    }
    this.rawType = this.view.getUint16(at + 2, HOST_LITTLE_ENDIAN);
    this.type = this.rawType & NLA_TYPE_MASK;
    this.valueOffset = at + NLA_HDRLEN;
    this.valueLength = len - NLA_HDRLEN;
    // The last attribute may omit its padding.
    this.cursor = Math.min(at + align4(len), this.end);
    return true;
  }

  /** NLA_F_NESTED was set (the kernel sets it on most, not all, nests). */
  get isNested(): boolean {
    return (this.rawType & NLA_F_NESTED) !== 0;
  }

  get isNetByteOrder(): boolean {
    return (this.rawType & NLA_F_NET_BYTEORDER) !== 0;
  }

  private need(size: number, what: string): number {
    if (this.type < 0)
      throw new NetlinkDecodeError('no current attribute; call next()', this.start);
    if (this.valueLength !== size) {
      throw new NetlinkDecodeError(
        `attribute ${this.type}: ${what} needs ${size} bytes, has ${this.valueLength}`,
        this.valueOffset - NLA_HDRLEN,
      );
    }
    return this.valueOffset;
  }

  u8(): number {
    return this.view.getUint8(this.need(1, 'u8'));
  }
  u16(): number {
    return this.view.getUint16(this.need(2, 'u16'), HOST_LITTLE_ENDIAN);
  }
  u16be(): number {
    return this.view.getUint16(this.need(2, 'u16be'), false);
  }
  u32(): number {
    return this.view.getUint32(this.need(4, 'u32'), HOST_LITTLE_ENDIAN);
  }
  u32be(): number {
    return this.view.getUint32(this.need(4, 'u32be'), false);
  }
  s32(): number {
    return this.view.getInt32(this.need(4, 's32'), HOST_LITTLE_ENDIAN);
  }
  s32be(): number {
    return this.view.getInt32(this.need(4, 's32be'), false);
  }
  u64(): bigint {
    return this.view.getBigUint64(this.need(8, 'u64'), HOST_LITTLE_ENDIAN);
  }
  u64be(): bigint {
    return this.view.getBigUint64(this.need(8, 'u64be'), false);
  }

  /** The value as bytes, without copying (a view into the message). */
  bytes(): Uint8Array {
    if (this.type < 0)
      throw new NetlinkDecodeError('no current attribute; call next()', this.start);
    return new Uint8Array(
      this.view.buffer,
      this.view.byteOffset + this.valueOffset,
      this.valueLength,
    );
  }

  /** The value as a string, stopping at the first NUL (NLA_NUL_STRING/NLA_STRING). */
  string(): string {
    const raw = this.bytes();
    const nul = raw.indexOf(0);
    return utf8.decode(nul >= 0 ? raw.subarray(0, nul) : raw);
  }

  /** A reader over the attributes nested in the current one. NLA_F_NESTED is
   * not required: older kernel code sends nests without it. */
  nested(): AttributeReader {
    if (this.type < 0)
      throw new NetlinkDecodeError('no current attribute; call next()', this.start);
    return new AttributeReader(this.view, this.valueOffset, this.valueOffset + this.valueLength);
  }
}

/** A raw attribute, kept for types a decoder does not know. */
export interface RawAttribute {
  type: number;
  nested: boolean;
  value: Uint8Array;
}

/** Copies the current attribute out of the message (for unknown attributes). */
export function rawAttribute(ad: AttributeReader): RawAttribute {
  return { type: ad.type, nested: ad.isNested, value: ad.bytes().slice() };
}
