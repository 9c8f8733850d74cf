import {
  NLMSG_HDRLEN,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSGERR_ATTR_COOKIE,
  NLMSGERR_ATTR_MISS_NEST,
  NLMSGERR_ATTR_MISS_TYPE,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from './constants.js';
import { AttributeReader } from './attributes.js';
import { align4, HOST_LITTLE_ENDIAN } from './endian.js';
import { NetlinkDecodeError, type ExtendedAck } from './errors.js';
import { payloadLength, payloadOffset, type NetlinkMessage } from './message.js';

/** A decoded NLMSG_ERROR (an ACK when errno is 0) or NLMSG_DONE status. */
export interface AckStatus {
  /** Positive errno, 0 for success. */
  errno: number;
  extack: ExtendedAck;
  /** Sequence number of the request, from the echoed header (NLMSG_ERROR only). */
  requestSeq?: number;
  requestType?: number;
}

function readExtack(ad: AttributeReader): ExtendedAck {
  const extack: ExtendedAck = {};
  while (ad.next()) {
    switch (ad.type) {
      case NLMSGERR_ATTR_MSG:
        extack.message = ad.string();
        break;
      case NLMSGERR_ATTR_OFFS:
        extack.offset = ad.u32();
        break;
      case NLMSGERR_ATTR_COOKIE:
        extack.cookie = ad.bytes().slice();
        break;
      case NLMSGERR_ATTR_MISS_TYPE:
        extack.missingType = ad.u32();
        break;
      case NLMSGERR_ATTR_MISS_NEST:
        extack.missingNest = ad.u32();
        break;
      default:
        break; // NLMSGERR_ATTR_POLICY and future attributes: not needed to report
    }
  }
  return extack;
}

/**
 * struct nlmsgerr { int error; struct nlmsghdr msg; } then, without
 * NLM_F_CAPPED, the request's payload; then, with NLM_F_ACK_TLVS, the
 * extended ACK attributes.
 */
export function parseErrorMessage(msg: NetlinkMessage): AckStatus {
  const at = payloadOffset(msg);
  const len = payloadLength(msg);
  if (len < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError('NLMSG_ERROR too short', msg.offset);
  const error = msg.view.getInt32(at, HOST_LITTLE_ENDIAN);
  const origLen = msg.view.getUint32(at + 4, HOST_LITTLE_ENDIAN);
  const status: AckStatus = {
    errno: error === 0 ? 0 : -error,
    extack: {},
    requestType: msg.view.getUint16(at + 8, HOST_LITTLE_ENDIAN),
    requestSeq: msg.view.getUint32(at + 12, HOST_LITTLE_ENDIAN),
  };
  if (msg.flags & NLM_F_ACK_TLVS) {
    const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(origLen);
    const tlvStart = at + 4 + echoed;
    const end = msg.offset + msg.length;
    if (tlvStart > end) throw new NetlinkDecodeError('NLMSG_ERROR: echoed request overruns', at);
    status.extack = readExtack(new AttributeReader(msg.view, tlvStart, end));
  }
  return status;
}

/** NLMSG_DONE carries an int status, then extended ACK attributes. */
export function parseDoneMessage(msg: NetlinkMessage): AckStatus {
  const at = payloadOffset(msg);
  const len = payloadLength(msg);
  if (len < 4) return { errno: 0, extack: {} };
  const error = msg.view.getInt32(at, HOST_LITTLE_ENDIAN);
  const extack =
    msg.flags & NLM_F_ACK_TLVS
      ? readExtack(new AttributeReader(msg.view, at + 4, msg.offset + msg.length))
      : {};
  return { errno: error === 0 ? 0 : -error, extack };
}
