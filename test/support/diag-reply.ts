// inet_diag_msg replies as the kernel writes them, for fake-kernel tests.
import * as C from '../../helper/attribution/constants.js';
import type { SocketInfo } from '../../helper/attribution/types.js';
import { parseIP } from '../../helper/common/ip.js';
import { NetlinkWriter } from '../../helper/netlink/writer.js';

export interface DiagReplySpec extends Partial<SocketInfo> {
  /** Raw family number (default from `family`). */
  familyNo?: number;
  /** Raw state number (default 1, ESTABLISHED). */
  stateNo?: number;
}

/** One SOCK_DIAG_BY_FAMILY message; `attrs` writes attributes after the header. */
export function diagReply(
  s: DiagReplySpec,
  attrs?: (w: NetlinkWriter) => void,
  seq = 1,
  flags = 0,
): Uint8Array {
  const w = new NetlinkWriter();
  w.beginMessage(C.SOCK_DIAG_BY_FAMILY, flags, seq);
  const body = new Uint8Array(C.INET_DIAG_MSG_LEN);
  const v = new DataView(body.buffer);
  v.setUint8(0, s.familyNo ?? (s.family === 'ipv6' ? 10 : 2));
  v.setUint8(1, s.stateNo ?? 1);
  v.setUint8(2, s.timer ?? 0);
  v.setUint8(3, s.retrans ?? 0);
  v.setUint16(4, s.sport ?? 0, false);
  v.setUint16(6, s.dport ?? 0, false);
  if (s.src) body.set(parseIP(s.src)!, 8);
  if (s.dst) body.set(parseIP(s.dst)!, 24);
  v.setUint32(40, s.interface ?? 0, true);
  const cookie = s.cookie ?? 0n;
  v.setUint32(44, Number(cookie & 0xffffffffn), true);
  v.setUint32(48, Number(cookie >> 32n), true);
  v.setUint32(52, s.expires ?? 0, true);
  v.setUint32(56, s.rqueue ?? 0, true);
  v.setUint32(60, s.wqueue ?? 0, true);
  v.setUint32(64, s.uid ?? 0, true);
  v.setUint32(68, s.inode ?? 0, true);
  w.raw(body);
  attrs?.(w);
  return w.endMessage().finish();
}
