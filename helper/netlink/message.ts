import { NFGENMSG_LEN, NLMSG_HDRLEN } from './constants.js';
import { align4, HOST_LITTLE_ENDIAN } from './endian.js';
import { NetlinkDecodeError } from './errors.js';
import { AttributeReader } from './attributes.js';

/** One netlink message, as a view into the datagram that carried it. */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly portId: number;
  readonly view: DataView;
  /** Offset of the nlmsghdr in `view`. */
  readonly offset: number;
  /** nlmsg_len: header and payload. */
  readonly length: number;
}

/** nfgenmsg: family is host order (a u8), res_id is big endian. */
export interface NfGenMsg {
  family: number;
  version: number;
  resId: number;
}

/** Calls `fn` for each message in view[start, end); the datagram must hold
 * whole messages. Returns the number of messages. */
export function forEachMessage(
  view: DataView,
  start: number,
  end: number,
  fn: (msg: NetlinkMessage) => void,
): number {
  if (start < 0 || end > view.byteLength || start > end) {
    throw new NetlinkDecodeError(`message run [${start}, ${end}) outside buffer`, start);
  }
  let at = start;
  let count = 0;
  while (at < end) {
    const msg = messageAt(view, at, end);
    fn(msg);
    count++;
    at += Math.min(align4(msg.length), end - at);
  }
  return count;
}

/** The message at `at` of a run that ends at `end` (bounds-checked; the next
 * one starts at `at + min(align4(length), end - at)`). */
export function messageAt(view: DataView, at: number, end: number): NetlinkMessage {
  if (end - at < NLMSG_HDRLEN) {
    throw new NetlinkDecodeError(`${end - at} trailing bytes, too short for nlmsghdr`, at);
  }
  const length = view.getUint32(at, HOST_LITTLE_ENDIAN);
  if (length < NLMSG_HDRLEN) throw new NetlinkDecodeError(`nlmsg_len ${length} < 16`, at);
  if (length > end - at) {
    throw new NetlinkDecodeError(
      `nlmsg_len ${length} overruns the datagram (${end - at} left)`,
      at,
    );
  }
  return {
    length,
    type: view.getUint16(at + 4, HOST_LITTLE_ENDIAN),
    flags: view.getUint16(at + 6, HOST_LITTLE_ENDIAN),
    seq: view.getUint32(at + 8, HOST_LITTLE_ENDIAN),
    portId: view.getUint32(at + 12, HOST_LITTLE_ENDIAN),
    view,
    offset: at,
  };
}

/** All messages of a buffer (convenience; the engine uses forEachMessage). */
export function parseMessages(bytes: Uint8Array): NetlinkMessage[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: NetlinkMessage[] = [];
  forEachMessage(view, 0, bytes.byteLength, (m) => out.push(m));
  return out;
}

export function payloadOffset(msg: NetlinkMessage): number {
  return msg.offset + NLMSG_HDRLEN;
}

export function payloadLength(msg: NetlinkMessage): number {
  return msg.length - NLMSG_HDRLEN;
}

export function decodeNfGenMsg(msg: NetlinkMessage): NfGenMsg {
  if (payloadLength(msg) < NFGENMSG_LEN) {
    throw new NetlinkDecodeError('message too short for nfgenmsg', msg.offset);
  }
  const at = payloadOffset(msg);
  return {
    family: msg.view.getUint8(at),
    version: msg.view.getUint8(at + 1),
    resId: msg.view.getUint16(at + 2, false),
  };
}

/** The attributes after an nfgenmsg header. */
export function nfAttributes(msg: NetlinkMessage): AttributeReader {
  if (payloadLength(msg) < NFGENMSG_LEN) {
    throw new NetlinkDecodeError('message too short for nfgenmsg', msg.offset);
  }
  return new AttributeReader(msg.view, payloadOffset(msg) + NFGENMSG_LEN, msg.offset + msg.length);
}
