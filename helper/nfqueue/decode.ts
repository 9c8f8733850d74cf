import { AttributeReader, rawAttribute } from '../netlink/attributes.js';
import { NFNL_SUBSYS_QUEUE, nfnlMsgType } from '../netlink/constants.js';
import { NetlinkDecodeError } from '../netlink/errors.js';
import { decodeNfGenMsg, nfAttributes, type NetlinkMessage } from '../netlink/message.js';
import { decodeFlowAttributes } from '../conntrack/decode.js';
import * as Q from './constants.js';
import * as nfp from '../netlink/nf-packet-attrs.js';
import type { ConntrackInfoName, QueuedPacket, SkbInfo } from './types.js';

export const NFQNL_PACKET_TYPE = nfnlMsgType(NFNL_SUBSYS_QUEUE, Q.NFQNL_MSG_PACKET);

/** sizeof(struct nfqnl_msg_packet_hdr): packed. */
export const PACKET_HDR_LEN = 7;

export function skbInfoOf(raw: number): SkbInfo {
  return {
    raw,
    csumNotReady: (raw & Q.NFQA_SKB_CSUMNOTREADY) !== 0,
    gso: (raw & Q.NFQA_SKB_GSO) !== 0,
    csumNotVerified: (raw & Q.NFQA_SKB_CSUM_NOTVERIFIED) !== 0,
  };
}

/** enum ip_conntrack_info by name. */
export function ctInfoName(info: number): ConntrackInfoName {
  switch (info) {
    case Q.IP_CT_ESTABLISHED:
      return 'established';
    case Q.IP_CT_RELATED:
      return 'related';
    case Q.IP_CT_NEW:
      return 'new';
    case Q.IP_CT_ESTABLISHED_REPLY:
      return 'established-reply';
    case Q.IP_CT_RELATED_REPLY:
      return 'related-reply';
    case Q.IP_CT_UNTRACKED:
      return 'untracked';
    default:
      return 'unknown';
  }
}

/**
 * Decodes the attributes of an NFQNL_MSG_PACKET. `payload` is a zero-copy
 * view into the message's buffer; every other field is a copy. Malformed
 * input throws NetlinkDecodeError; a message without NFQA_PACKET_HDR too,
 * since a packet without an id cannot be given a verdict.
 */
// eslint-disable-next-line max-lines-per-function -- one case per NFQA_* attribute: the switch reads as the queued packet's wire format, top to bottom
export function decodePacketAttributes(
  ad: AttributeReader,
  queue: number,
  family: number,
): QueuedPacket {
  let hasHeader = false;
  // Every field from the start, in one order: one object shape for every
  // packet whatever attributes it carries, so the code that reads packets
  // sees one shape.
  const p: QueuedPacket = {
    queue,
    family,
    id: 0,
    hwProtocol: 0,
    hook: 0,
    mark: undefined,
    timestamp: undefined,
    indev: undefined,
    outdev: undefined,
    physindev: undefined,
    physoutdev: undefined,
    hwaddr: undefined,
    payload: undefined,
    ct: undefined,
    ctInfo: undefined,
    capLen: undefined,
    skbInfo: undefined,
    uid: undefined,
    gid: undefined,
    secctx: undefined,
    vlan: undefined,
    l2hdr: undefined,
    priority: undefined,
    exp: undefined,
    unknown: undefined,
  };
  let ctStart = -1;
  let ctEnd = -1;
  while (ad.next()) {
    switch (ad.type) {
      case Q.NFQA_PACKET_HDR: {
        const at = nfp.atLeast(ad, PACKET_HDR_LEN, 'NFQA_PACKET_HDR');
        p.id = ad.view.getUint32(at, false);
        p.hwProtocol = ad.view.getUint16(at + 4, false);
        p.hook = ad.view.getUint8(at + 6);
        hasHeader = true;
        break;
      }
      case Q.NFQA_MARK:
        p.mark = ad.u32be();
        break;
      case Q.NFQA_TIMESTAMP:
        p.timestamp = nfp.decodeTimestamp(ad, 'NFQA_TIMESTAMP');
        break;
      case Q.NFQA_IFINDEX_INDEV:
        p.indev = ad.u32be();
        break;
      case Q.NFQA_IFINDEX_OUTDEV:
        p.outdev = ad.u32be();
        break;
      case Q.NFQA_IFINDEX_PHYSINDEV:
        p.physindev = ad.u32be();
        break;
      case Q.NFQA_IFINDEX_PHYSOUTDEV:
        p.physoutdev = ad.u32be();
        break;
      case Q.NFQA_HWADDR:
        p.hwaddr = nfp.decodeHwaddr(ad, 'NFQA_HWADDR');
        break;
      case Q.NFQA_PAYLOAD:
        p.payload = ad.bytes();
        break;
      case Q.NFQA_CT:
        // Decoded after the loop: the family may depend on the packet header.
        ctStart = ad.valueOffset;
        ctEnd = ad.valueOffset + ad.valueLength;
        break;
      case Q.NFQA_CT_INFO:
        p.ctInfo = ad.u32be();
        break;
      case Q.NFQA_CAP_LEN:
        p.capLen = ad.u32be();
        break;
      case Q.NFQA_SKB_INFO:
        p.skbInfo = skbInfoOf(ad.u32be());
        break;
      case Q.NFQA_EXP:
        p.exp = ad.bytes().slice();
        break;
      case Q.NFQA_UID:
        p.uid = ad.u32be();
        break;
      case Q.NFQA_GID:
        p.gid = ad.u32be();
        break;
      case Q.NFQA_SECCTX:
        p.secctx = ad.string();
        break;
      case Q.NFQA_VLAN:
        p.vlan = nfp.decodeVlan(ad.nested());
        break;
      case Q.NFQA_L2HDR:
        p.l2hdr = ad.bytes().slice();
        break;
      case Q.NFQA_PRIORITY:
        p.priority = ad.u32be();
        break;
      default:
        (p.unknown ??= []).push(rawAttribute(ad));
    }
  }
  if (!hasHeader) throw new NetlinkDecodeError('packet without NFQA_PACKET_HDR', ad.start);
  if (ctStart >= 0) {
    const fam = nfp.packetIpFamily(family, p.hwProtocol);
    const nested = new AttributeReader(ad.view, ctStart, ctEnd);
    if (fam) p.ct = decodeFlowAttributes(nested, fam);
    else {
      (p.unknown ??= []).push({
        type: Q.NFQA_CT,
        nested: true,
        value: new Uint8Array(
          ad.view.buffer,
          ad.view.byteOffset + ctStart,
          ctEnd - ctStart,
        ).slice(),
      });
    }
  }
  return p;
}

/** Decodes one NFQNL_MSG_PACKET message (see decodePacketAttributes). */
export function decodeQueuedPacket(msg: NetlinkMessage): QueuedPacket {
  if (msg.type !== NFQNL_PACKET_TYPE) {
    throw new NetlinkDecodeError(
      `message type 0x${msg.type.toString(16)} is not a queued packet`,
      msg.offset,
    );
  }
  const g = decodeNfGenMsg(msg);
  return decodePacketAttributes(nfAttributes(msg), g.resId, g.family);
}
