import {
  NFGENMSG_LEN,
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLMSG_HDRLEN,
  NLA_TYPE_MASK,
} from './constants.js';
import { align4, HOST_LITTLE_ENDIAN } from './endian.js';
import { GrowableBuffer } from './growable-buffer.js';

const utf8 = new TextEncoder();
const MAX_ATTR_LEN = 0xffff;

const POOL_SIZE = 64 * 1024;
let pool = new Uint8Array(POOL_SIZE);
let poolUsed = 0;

/** Copies into the pool (8-byte aligned slices), or into its own buffer when large. */
function copyOut(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  if (n > POOL_SIZE / 8) return bytes.slice();
  if (poolUsed + n > POOL_SIZE) {
    pool = new Uint8Array(POOL_SIZE);
    poolUsed = 0;
  }
  const out = pool.subarray(poolUsed, poolUsed + n);
  out.set(bytes);
  poolUsed = (poolUsed + n + 7) & ~7;
  return out;
}

/** An open nest: pass it back to endNest() to back-patch its length. */
export type NestToken = number & { readonly __nest: unique symbol };

/**
 * Builds one or more netlink messages into a growable buffer. Lengths of
 * messages and nests are back-patched, every attribute is padded to 4 bytes,
 * and nests always carry NLA_F_NESTED.
 *
 *     const w = new NetlinkWriter();
 *     w.beginMessage(type, NLM_F_REQUEST).nfgenmsg(AF_INET);
 *     const t = w.beginNest(CTA_TUPLE_ORIG); ...; w.endNest(t);
 *     const bytes = w.endMessage().finish();
 */
export class NetlinkWriter extends GrowableBuffer {
  private messageStart = -1;
  private openNests = 0;

  constructor(initialSize = 512) {
    super(initialSize);
  }

  private pad(): void {
    const aligned = align4(this.len);
    if (aligned > this.len) {
      const at = this.reserve(aligned - this.len);
      this.buf.fill(0, at, aligned);
    }
  }

  beginMessage(type: number, flags: number, seq = 0, portId = 0): this {
    if (this.messageStart >= 0) throw new Error('NetlinkWriter: previous message not ended');
    this.pad();
    const at = this.reserve(NLMSG_HDRLEN);
    this.messageStart = at;
    this.view.setUint32(at, 0, HOST_LITTLE_ENDIAN);
    this.view.setUint16(at + 4, type, HOST_LITTLE_ENDIAN);
    this.view.setUint16(at + 6, flags, HOST_LITTLE_ENDIAN);
    this.view.setUint32(at + 8, seq >>> 0, HOST_LITTLE_ENDIAN);
    this.view.setUint32(at + 12, portId >>> 0, HOST_LITTLE_ENDIAN);
    return this;
  }

  /** nfgenmsg: family (u8), version (u8), res_id (u16, big endian). */
  nfgenmsg(family: number, version = 0, resId = 0): this {
    const at = this.reserve(NFGENMSG_LEN);
    this.view.setUint8(at, family);
    this.view.setUint8(at + 1, version);
    this.view.setUint16(at + 2, resId, false);
    return this;
  }

  /** Raw payload bytes (a fixed header such as nfqnl_msg_config_cmd). */
  raw(bytes: Uint8Array): this {
    const at = this.reserve(bytes.length);
    this.buf.set(bytes, at);
    return this;
  }

  endMessage(): this {
    if (this.messageStart < 0) throw new Error('NetlinkWriter: no message open');
    if (this.openNests !== 0) throw new Error(`NetlinkWriter: ${this.openNests} nest(s) not ended`);
    this.pad();
    this.view.setUint32(this.messageStart, this.len - this.messageStart, HOST_LITTLE_ENDIAN);
    this.messageStart = -1;
    return this;
  }

  private header(type: number, valueLength: number): number {
    if (!Number.isInteger(type) || type < 0 || type > NLA_TYPE_MASK) {
      throw new RangeError(`attribute type ${type} out of range 0..${NLA_TYPE_MASK}`);
    }
    const total = NLA_HDRLEN + valueLength;
    if (total > MAX_ATTR_LEN) throw new RangeError(`attribute ${type} too long (${total} bytes)`);
    this.pad();
    const at = this.reserve(total);
    this.view.setUint16(at, total, HOST_LITTLE_ENDIAN);
    this.view.setUint16(at + 2, type, HOST_LITTLE_ENDIAN);
    return at + NLA_HDRLEN;
  }

  u8(type: number, value: number): this {
    const at = this.header(type, 1);
    this.view.setUint8(at, value);
    return this.alignAfter();
  }
  u16(type: number, value: number): this {
    const at = this.header(type, 2);
    this.view.setUint16(at, value, HOST_LITTLE_ENDIAN);
    return this.alignAfter();
  }
  u16be(type: number, value: number): this {
    const at = this.header(type, 2);
    this.view.setUint16(at, value, false);
    return this.alignAfter();
  }
  u32(type: number, value: number): this {
    const at = this.header(type, 4);
    this.view.setUint32(at, value >>> 0, HOST_LITTLE_ENDIAN);
    return this;
  }
  u32be(type: number, value: number): this {
    const at = this.header(type, 4);
    this.view.setUint32(at, value >>> 0, false);
    return this;
  }
  s32be(type: number, value: number): this {
    const at = this.header(type, 4);
    this.view.setInt32(at, value | 0, false);
    return this;
  }
  u64(type: number, value: bigint): this {
    const at = this.header(type, 8);
    this.view.setBigUint64(at, BigInt.asUintN(64, value), HOST_LITTLE_ENDIAN);
    return this;
  }
  u64be(type: number, value: bigint): this {
    const at = this.header(type, 8);
    this.view.setBigUint64(at, BigInt.asUintN(64, value), false);
    return this;
  }
  bytes(type: number, value: Uint8Array): this {
    const at = this.header(type, value.length);
    this.buf.set(value, at);
    return this.alignAfter();
  }
  /** A NUL-terminated string (NLA_NUL_STRING; also accepted for NLA_STRING). */
  string(type: number, value: string): this {
    const encoded = utf8.encode(value);
    const at = this.header(type, encoded.length + 1);
    this.buf.set(encoded, at);
    this.buf[at + encoded.length] = 0;
    return this.alignAfter();
  }
  /** A zero-length attribute (NLA_FLAG). */
  flag(type: number): this {
    this.header(type, 0);
    return this;
  }

  beginNest(type: number): NestToken {
    const at = this.header(type, 0) - NLA_HDRLEN;
    this.view.setUint16(at + 2, type | NLA_F_NESTED, HOST_LITTLE_ENDIAN);
    this.openNests++;
    return at as NestToken;
  }

  endNest(token: NestToken): this {
    const total = this.len - token;
    if (total > MAX_ATTR_LEN) throw new RangeError(`nest too long (${total} bytes)`);
    this.view.setUint16(token, total, HOST_LITTLE_ENDIAN);
    this.openNests--;
    return this;
  }

  /** Padding is zero-filled at once so that finish() never exposes stale bytes. */
  private alignAfter(): this {
    this.pad();
    return this;
  }

  /** The bytes written so far (a copy, so the writer can be reused). Small
   * messages are carved out of a shared pool, as Buffer does: allocating an
   * ArrayBuffer per message costs more than encoding it. The result is a
   * view: read it with its byteOffset, as with a Node Buffer. */
  finish(): Uint8Array {
    if (this.messageStart >= 0) throw new Error('NetlinkWriter: message not ended');
    return copyOut(this.buf.subarray(0, this.len));
  }

  reset(): this {
    this.len = 0;
    this.messageStart = -1;
    this.openNests = 0;
    return this;
  }
}

/** A value for a u32 attribute or struct field; anything else is a RangeError naming it. */
export function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${what} ${value} is not a u32`);
  }
}

/** Writes seq into a finished message in place (the engine assigns it at send time). */
export function patchSequence(message: Uint8Array, seq: number): void {
  new DataView(message.buffer, message.byteOffset, message.byteLength).setUint32(
    8,
    seq >>> 0,
    HOST_LITTLE_ENDIAN,
  );
}
