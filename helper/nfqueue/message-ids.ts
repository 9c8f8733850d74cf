import { AttributeReader } from '../netlink/attributes.js';
import { NFGENMSG_LEN, NLMSG_HDRLEN } from '../netlink/constants.js';
import { HOST_LITTLE_ENDIAN } from '../netlink/endian.js';
import type { NetlinkMessage } from '../netlink/message.js';
import * as Q from './constants.js';
import { PACKET_HDR_LEN } from './decode.js';
import { NFQNL_VERDICT_BATCH_TYPE, NFQNL_VERDICT_TYPE } from './encode.js';

/** The id of a packet message whose attributes could not all be decoded. */
export function packetIdOf(msg: NetlinkMessage): number | undefined {
  try {
    const start = msg.offset + NLMSG_HDRLEN + NFGENMSG_LEN;
    const ad = new AttributeReader(msg.view, start, msg.offset + msg.length);
    while (ad.next()) {
      if (ad.type === Q.NFQA_PACKET_HDR && ad.valueLength >= PACKET_HDR_LEN) {
        return ad.view.getUint32(ad.valueOffset, false);
      }
    }
  } catch {
    // Not even the header: nothing to answer.
  }
  return undefined;
}

/** The verdict a kernel error echoes (requires NETLINK_CAP_ACK off). */
export function echoedVerdict(
  msg: NetlinkMessage,
): { id: number; verdict: number; batch: boolean } | undefined {
  const at = msg.offset + NLMSG_HDRLEN + 4; // struct nlmsgerr: error, then the request
  const end = msg.offset + msg.length;
  if (end - at < NLMSG_HDRLEN + NFGENMSG_LEN) return undefined;
  const type = msg.view.getUint16(at + 4, HOST_LITTLE_ENDIAN);
  if (type !== NFQNL_VERDICT_TYPE && type !== NFQNL_VERDICT_BATCH_TYPE) return undefined;
  const reqLen = msg.view.getUint32(at, HOST_LITTLE_ENDIAN);
  const reqEnd = Math.min(end, at + reqLen);
  try {
    const ad = new AttributeReader(msg.view, at + NLMSG_HDRLEN + NFGENMSG_LEN, reqEnd);
    while (ad.next()) {
      if (ad.type === Q.NFQA_VERDICT_HDR && ad.valueLength >= 8) {
        return {
          verdict: ad.view.getUint32(ad.valueOffset, false),
          id: ad.view.getUint32(ad.valueOffset + 4, false),
          batch: type === NFQNL_VERDICT_BATCH_TYPE,
        };
      }
    }
  } catch {
    // A capped or cut echo.
  }
  return undefined;
}
