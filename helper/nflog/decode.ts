import { AttributeReader, rawAttribute } from '../netlink/attributes.js';
import { NFNL_SUBSYS_ULOG, nfnlMsgType } from '../netlink/constants.js';
import { NetlinkDecodeError } from '../netlink/errors.js';
import { decodeNfGenMsg, nfAttributes, type NetlinkMessage } from '../netlink/message.js';
import { decodeFlowAttributes } from '../conntrack/decode.js';
import * as L from './constants.js';
import * as nfp from '../netlink/nf-packet-attrs.js';
import type { LoggedPacket } from './types.js';

export const NFULNL_PACKET_TYPE = nfnlMsgType(NFNL_SUBSYS_ULOG, L.NFULNL_MSG_PACKET);

/** sizeof(struct nfulnl_msg_packet_hdr) */
export const LOG_PACKET_HDR_LEN = 4;

export interface DecodeLogOptions {
  /** Copy the payload out of the message (default true). false gives a view
   * into the message's buffer, valid as long as that buffer is. */
  copyPayload?: boolean;
}

/**
 * Decodes the attributes of an NFULNL_MSG_PACKET. Every read is
 * bounds-checked: malformed input throws NetlinkDecodeError, and so does a
 * message without NFULA_PACKET_HDR (the kernel always sends it).
 */
// eslint-disable-next-line max-lines-per-function -- one case per NFULA_* attribute: the switch reads as the logged packet's wire format, top to bottom
export function decodeLogAttributes(
  ad: AttributeReader,
  group: number,
  family: number,
  options: DecodeLogOptions = {},
): LoggedPacket {
  const copy = options.copyPayload ?? true;
  let hasHeader = false;
  const p: LoggedPacket = { group, family, hwProtocol: 0, hook: 0 };
  let ctStart = -1;
  let ctEnd = -1;
  while (ad.next()) {
    switch (ad.type) {
      case L.NFULA_PACKET_HDR: {
        // hw_protocol and hook; the trailing pad byte is not needed.
        const at = nfp.atLeast(ad, LOG_PACKET_HDR_LEN - 1, 'NFULA_PACKET_HDR');
        p.hwProtocol = ad.view.getUint16(at, false);
        p.hook = ad.view.getUint8(at + 2);
        hasHeader = true;
        break;
      }
      case L.NFULA_MARK:
        p.mark = ad.u32be();
        break;
      case L.NFULA_TIMESTAMP:
        p.timestamp = nfp.decodeTimestamp(ad, 'NFULA_TIMESTAMP');
        break;
      case L.NFULA_IFINDEX_INDEV:
        p.indev = ad.u32be();
        break;
      case L.NFULA_IFINDEX_OUTDEV:
        p.outdev = ad.u32be();
        break;
      case L.NFULA_IFINDEX_PHYSINDEV:
        p.physindev = ad.u32be();
        break;
      case L.NFULA_IFINDEX_PHYSOUTDEV:
        p.physoutdev = ad.u32be();
        break;
      case L.NFULA_HWADDR:
        p.hwaddr = nfp.decodeHwaddr(ad, 'NFULA_HWADDR');
        break;
      case L.NFULA_PAYLOAD:
        p.payload = copy ? ad.bytes().slice() : ad.bytes();
        break;
      case L.NFULA_PREFIX:
        p.prefix = ad.string();
        break;
      case L.NFULA_UID:
        p.uid = ad.u32be();
        break;
      case L.NFULA_GID:
        p.gid = ad.u32be();
        break;
      case L.NFULA_SEQ:
        p.seq = ad.u32be();
        break;
      case L.NFULA_SEQ_GLOBAL:
        p.seqGlobal = ad.u32be();
        break;
      case L.NFULA_HWTYPE:
        p.hwType = ad.u16be();
        break;
      case L.NFULA_HWHEADER:
        p.hwHeader = ad.bytes().slice();
        break;
      case L.NFULA_HWLEN:
        p.hwLen = ad.u16be();
        break;
      case L.NFULA_CT:
        // Decoded after the loop: the family may depend on the packet header.
        ctStart = ad.valueOffset;
        ctEnd = ad.valueOffset + ad.valueLength;
        break;
      case L.NFULA_CT_INFO:
        p.ctInfo = ad.u32be();
        break;
      case L.NFULA_VLAN:
        p.vlan = nfp.decodeVlan(ad.nested());
        break;
      case L.NFULA_L2HDR:
        p.l2hdr = ad.bytes().slice();
        break;
      default:
        (p.unknown ??= []).push(rawAttribute(ad));
    }
  }
  if (!hasHeader) throw new NetlinkDecodeError('packet without NFULA_PACKET_HDR', ad.start);
  if (ctStart >= 0) {
    const fam = nfp.packetIpFamily(family, p.hwProtocol);
    if (fam) p.ct = decodeFlowAttributes(new AttributeReader(ad.view, ctStart, ctEnd), fam);
    else {
      const value = new Uint8Array(ad.view.buffer, ad.view.byteOffset + ctStart, ctEnd - ctStart);
      (p.unknown ??= []).push({ type: L.NFULA_CT, nested: true, value: value.slice() });
    }
  }
  return p;
}

/** Decodes one NFULNL_MSG_PACKET message (see decodeLogAttributes). */
export function decodeLoggedPacket(
  msg: NetlinkMessage,
  options: DecodeLogOptions = {},
): LoggedPacket {
  if (msg.type !== NFULNL_PACKET_TYPE) {
    throw new NetlinkDecodeError(
      `message type 0x${msg.type.toString(16)} is not a logged packet`,
      msg.offset,
    );
  }
  const g = decodeNfGenMsg(msg);
  return decodeLogAttributes(nfAttributes(msg), g.resId, g.family, options);
}
