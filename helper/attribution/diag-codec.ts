/**
 * inet_diag wire format: the request (struct inet_diag_req_v2) and the reply
 * (struct inet_diag_msg plus attributes). Layouts from linux/inet_diag.h:
 * ports and addresses are network order, interface and cookie host order;
 * the cookie is two u32 words, low word first (sock_diag_save_cookie).
 */
import { AF_INET, AF_INET6, NLMSG_HDRLEN } from '../netlink/constants.js';
import { AttributeReader } from '../netlink/attributes.js';
import { HOST_LITTLE_ENDIAN } from '../netlink/endian.js';
import { NetlinkDecodeError } from '../netlink/errors.js';
import type { NetlinkMessage } from '../netlink/message.js';
import { NetlinkWriter } from '../netlink/writer.js';
import { formatIPv4, formatIPv6, parseIP } from '../common/ip.js';
import * as C from './constants.js';
import type { Family, SocketInfo, SocketProtocol } from './types.js';

/** A bad argument, found before anything is sent. */
export class AttributionArgumentError extends TypeError {
  override readonly name = 'AttributionArgumentError';
}

/** struct inet_diag_sockid, with addresses as bytes (4 or 16) and the cookie
 * as a bigint (undefined: INET_DIAG_NOCOOKIE, not checked). */
export interface SockId {
  sport: number;
  dport: number;
  src: Uint8Array;
  dst: Uint8Array;
  interface: number;
  cookie?: bigint;
}

export interface DiagRequest {
  family: Family;
  protocol: SocketProtocol;
  /** For raw sockets: the IP protocol to match (sdiag_raw_protocol, in the pad byte). */
  rawProtocol?: number;
  /** idiag_ext: reply attributes asked for (diagExtBit(INET_DIAG_x) bits). */
  ext?: number;
  /** idiag_states bit mask (1 << state). */
  states: number;
  id: SockId;
}

export function familyNumber(family: Family): number {
  if (family === 'ipv4') return AF_INET;
  if (family === 'ipv6') return AF_INET6;
  throw new AttributionArgumentError(`family must be 'ipv4' or 'ipv6', not '${String(family)}'`);
}

export function protocolNumber(protocol: SocketProtocol): number {
  switch (protocol) {
    case 'tcp':
      return C.IPPROTO_TCP;
    case 'udp':
      return C.IPPROTO_UDP;
    case 'udplite':
      return C.IPPROTO_UDPLITE;
    case 'raw':
      return C.IPPROTO_RAW;
    default:
      throw new AttributionArgumentError(`unknown protocol '${String(protocol)}'`);
  }
}

const ANY4 = new Uint8Array(4);
const ANY6 = new Uint8Array(16);

/** The address's bytes for this family; IPv4 text in an IPv6 request becomes
 * IPv4-mapped (how a dual-stack socket carries it). Empty/undefined: any. */
export function addressBytes(text: string | undefined, family: Family, what: string): Uint8Array {
  if (text === undefined || text === '') return family === 'ipv4' ? ANY4 : ANY6;
  const bytes = parseIP(text);
  if (!bytes) throw new AttributionArgumentError(`${what}: '${text}' is not an IP address`);
  if (family === 'ipv4') {
    if (bytes.length !== 4) throw new AttributionArgumentError(`${what}: '${text}' is not IPv4`);
    return bytes;
  }
  if (bytes.length === 16) return bytes;
  const mapped = new Uint8Array(16);
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  mapped.set(bytes, 12);
  return mapped;
}

export function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new AttributionArgumentError(`${what}: ${String(port)} is not a port (0..65535)`);
  }
  return port;
}

/** Writes struct inet_diag_req_v2 into `w` (after the nlmsghdr). */
export function writeDiagRequest(w: NetlinkWriter, req: DiagRequest): void {
  const bytes = new Uint8Array(C.INET_DIAG_REQ_V2_LEN);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, familyNumber(req.family));
  view.setUint8(1, protocolNumber(req.protocol));
  view.setUint8(2, req.ext ?? 0);
  view.setUint8(3, req.protocol === 'raw' ? (req.rawProtocol ?? 0) : 0);
  view.setUint32(4, req.states >>> 0, HOST_LITTLE_ENDIAN);
  const id = req.id;
  view.setUint16(8, checkPort(id.sport, 'sport'), false);
  view.setUint16(10, checkPort(id.dport, 'dport'), false);
  const size = req.family === 'ipv4' ? 4 : 16;
  if (id.src.length !== size || id.dst.length !== size) {
    throw new AttributionArgumentError(`addresses must be ${size} bytes for ${req.family}`);
  }
  bytes.set(id.src, 12);
  bytes.set(id.dst, 28);
  view.setUint32(44, id.interface >>> 0, HOST_LITTLE_ENDIAN);
  if (id.cookie === undefined) {
    view.setUint32(48, C.INET_DIAG_NOCOOKIE, HOST_LITTLE_ENDIAN);
    view.setUint32(52, C.INET_DIAG_NOCOOKIE, HOST_LITTLE_ENDIAN);
  } else {
    const cookie = BigInt.asUintN(64, id.cookie);
    view.setUint32(48, Number(cookie & 0xffffffffn), HOST_LITTLE_ENDIAN);
    view.setUint32(52, Number(cookie >> 32n), HOST_LITTLE_ENDIAN);
  }
  w.raw(bytes);
}

/** A whole request message: SOCK_DIAG_BY_FAMILY or SOCK_DESTROY. The engine
 * adds NLM_F_REQUEST, NLM_F_ACK (and NLM_F_DUMP for dumps) and the sequence. */
export function encodeDiagRequest(type: number, req: DiagRequest, flags = 0): Uint8Array {
  const w = new NetlinkWriter(NLMSG_HDRLEN + C.INET_DIAG_REQ_V2_LEN);
  w.beginMessage(type, flags);
  writeDiagRequest(w, req);
  return w.endMessage().finish();
}

function formatAddress(view: DataView, at: number, family: number): string {
  return family === AF_INET ? formatIPv4(view, at) : formatIPv6(view, at);
}

/** Decodes one SOCK_DIAG_BY_FAMILY reply (inet_diag_msg and attributes).
 * Malformed input throws NetlinkDecodeError and never reads outside the message. */
export function decodeDiagMessage(msg: NetlinkMessage, protocol: SocketProtocol): SocketInfo {
  const start = msg.offset + NLMSG_HDRLEN;
  const end = msg.offset + msg.length;
  if (msg.offset < 0 || end > msg.view.byteLength || end < start) {
    throw new NetlinkDecodeError('message outside its buffer', msg.offset);
  }
  if (end - start < C.INET_DIAG_MSG_LEN) {
    throw new NetlinkDecodeError(
      `inet_diag_msg needs ${C.INET_DIAG_MSG_LEN} bytes, has ${end - start}`,
      start,
    );
  }
  const v = msg.view;
  const familyNo = v.getUint8(start);
  if (familyNo !== AF_INET && familyNo !== AF_INET6) {
    throw new NetlinkDecodeError(`inet_diag_msg family ${familyNo} is not AF_INET/AF_INET6`, start);
  }
  const stateNo = v.getUint8(start + 1);
  const info: SocketInfo = {
    family: familyNo === AF_INET ? 'ipv4' : 'ipv6',
    protocol,
    state: C.TCP_STATES[stateNo] ?? 'UNKNOWN',
    timer: v.getUint8(start + 2),
    retrans: v.getUint8(start + 3),
    sport: v.getUint16(start + 4, false),
    dport: v.getUint16(start + 6, false),
    src: formatAddress(v, start + 8, familyNo),
    dst: formatAddress(v, start + 24, familyNo),
    interface: v.getUint32(start + 40, HOST_LITTLE_ENDIAN),
    cookie:
      BigInt(v.getUint32(start + 44, HOST_LITTLE_ENDIAN)) |
      (BigInt(v.getUint32(start + 48, HOST_LITTLE_ENDIAN)) << 32n),
    expires: v.getUint32(start + 52, HOST_LITTLE_ENDIAN),
    rqueue: v.getUint32(start + 56, HOST_LITTLE_ENDIAN),
    wqueue: v.getUint32(start + 60, HOST_LITTLE_ENDIAN),
    uid: v.getUint32(start + 64, HOST_LITTLE_ENDIAN),
    inode: v.getUint32(start + 68, HOST_LITTLE_ENDIAN),
  };
  const ad = new AttributeReader(v, start + C.INET_DIAG_MSG_LEN, end);
  while (ad.next()) {
    switch (ad.type) {
      case C.INET_DIAG_SHUTDOWN:
        info.shutdown = ad.u8();
        break;
      case C.INET_DIAG_MARK:
        info.mark = ad.u32();
        break;
      case C.INET_DIAG_CGROUP_ID:
        info.cgroupId = ad.u64();
        break;
      case C.INET_DIAG_SKV6ONLY:
        info.v6only = ad.u8() !== 0;
        break;
      case C.INET_DIAG_TOS:
        info.tos = ad.u8();
        break;
      case C.INET_DIAG_TCLASS:
        info.tclass = ad.u8();
        break;
      case C.INET_DIAG_CONG:
        info.congestion = ad.string();
        break;
      default:
        // Other attributes (meminfo, tcp_info, sockopt...) are not needed here.
        break;
    }
  }
  return info;
}
