import { type AttributeReader, rawAttribute } from '../netlink/attributes.js';
import { AF_INET, AF_INET6 } from '../netlink/constants.js';
import { NetlinkDecodeError } from '../netlink/errors.js';
import { type NetlinkMessage, nfAttributes, payloadOffset } from '../netlink/message.js';
import * as C from './constants.js';
import { formatIPv4, formatIPv6 } from '../common/ip.js';
import type {
  Counters,
  DccpInfo,
  Family,
  Flow,
  NatSpec,
  SctpInfo,
  SeqAdjust,
  TcpInfo,
  Tuple,
} from './types.js';

const STATUS_ENTRIES = Object.entries(C.STATUS_BITS) as [C.StatusFlag, number][];

const statusNames = new Map<number, C.StatusFlag[]>();

/** IPS_* bits by name, in bit order. A table holds few distinct status
 * values, so the arrays are shared and frozen: copy before changing one. */
export function statusFlagsOf(status: number): readonly C.StatusFlag[] {
  let out = statusNames.get(status);
  if (out) return out;
  out = [];
  for (const [name, bit] of STATUS_ENTRIES) if (status & bit) out.push(name);
  Object.freeze(out);
  if (statusNames.size < 1024) statusNames.set(status, out);
  return out;
}

export function familyOf(nfgenFamily: number): Family {
  if (nfgenFamily === AF_INET) return 'ipv4';
  if (nfgenFamily === AF_INET6) return 'ipv6';
  throw new NetlinkDecodeError(`unexpected address family ${nfgenFamily}`, 0);
}

export function address(ad: AttributeReader): string {
  if (ad.valueLength === 4) return formatIPv4(ad.view, ad.valueOffset);
  if (ad.valueLength === 16) return formatIPv6(ad.view, ad.valueOffset);
  throw new NetlinkDecodeError(`address of ${ad.valueLength} bytes`, ad.valueOffset);
}

/** A tuple as the kernel sends it (CTA_TUPLE_ORIG/REPLY/MASTER). */
export function decodeTuple(ad: AttributeReader): Tuple {
  return readTupleInto(ad, { src: '', dst: '', proto: 0 });
}

/** A tuple with only the fields that were sent (an expectation's mask). */
export function decodePartialTuple(ad: AttributeReader): Partial<Tuple> {
  return readTupleInto(ad, {});
}

function readTupleInto<T extends Partial<Tuple>>(ad: AttributeReader, t: T): T {
  while (ad.next()) {
    switch (ad.type) {
      case C.CTA_TUPLE_IP: {
        const ip = ad.nested();
        while (ip.next()) {
          if (ip.type === C.CTA_IP_V4_SRC || ip.type === C.CTA_IP_V6_SRC) t.src = address(ip);
          else if (ip.type === C.CTA_IP_V4_DST || ip.type === C.CTA_IP_V6_DST) t.dst = address(ip);
        }
        break;
      }
      case C.CTA_TUPLE_PROTO: {
        const p = ad.nested();
        while (p.next()) {
          switch (p.type) {
            case C.CTA_PROTO_NUM:
              t.proto = p.u8();
              break;
            case C.CTA_PROTO_SRC_PORT:
              t.srcPort = p.u16be();
              break;
            case C.CTA_PROTO_DST_PORT:
              t.dstPort = p.u16be();
              break;
            case C.CTA_PROTO_ICMP_ID:
            case C.CTA_PROTO_ICMPV6_ID:
              t.icmpId = p.u16be();
              break;
            case C.CTA_PROTO_ICMP_TYPE:
            case C.CTA_PROTO_ICMPV6_TYPE:
              t.icmpType = p.u8();
              break;
            case C.CTA_PROTO_ICMP_CODE:
            case C.CTA_PROTO_ICMPV6_CODE:
              t.icmpCode = p.u8();
              break;
          }
        }
        break;
      }
      case C.CTA_TUPLE_ZONE:
        t.zone = ad.u16be();
        break;
    }
  }
  return t;
}

function stateName<T extends string>(names: readonly T[], n: number): T | `UNKNOWN_${number}` {
  return names[n] ?? `UNKNOWN_${n}`;
}

function tcpFlags(ad: AttributeReader): { flags: number; mask: number } {
  if (ad.valueLength !== 2)
    throw new NetlinkDecodeError('nf_ct_tcp_flags needs 2 bytes', ad.valueOffset);
  return { flags: ad.view.getUint8(ad.valueOffset), mask: ad.view.getUint8(ad.valueOffset + 1) };
}

function decodeProtoinfo(ad: AttributeReader, flow: Flow): void {
  while (ad.next()) {
    const p = ad.nested();
    switch (ad.type) {
      case C.CTA_PROTOINFO_TCP: {
        const tcp: TcpInfo = { state: 'NONE', stateNumber: 0 };
        while (p.next()) {
          switch (p.type) {
            case C.CTA_PROTOINFO_TCP_STATE:
              tcp.stateNumber = p.u8();
              tcp.state = stateName(C.TCP_STATES, tcp.stateNumber);
              break;
            case C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL:
              tcp.wscaleOrig = p.u8();
              break;
            case C.CTA_PROTOINFO_TCP_WSCALE_REPLY:
              tcp.wscaleReply = p.u8();
              break;
            case C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL:
              tcp.flagsOrig = tcpFlags(p);
              break;
            case C.CTA_PROTOINFO_TCP_FLAGS_REPLY:
              tcp.flagsReply = tcpFlags(p);
              break;
          }
        }
        flow.tcp = tcp;
        break;
      }
      case C.CTA_PROTOINFO_SCTP: {
        const sctp: SctpInfo = { state: 'NONE', stateNumber: 0 };
        while (p.next()) {
          if (p.type === C.CTA_PROTOINFO_SCTP_STATE) {
            sctp.stateNumber = p.u8();
            sctp.state = stateName(C.SCTP_STATES, sctp.stateNumber);
          } else if (p.type === C.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL) sctp.vtagOrig = p.u32be();
          else if (p.type === C.CTA_PROTOINFO_SCTP_VTAG_REPLY) sctp.vtagReply = p.u32be();
        }
        flow.sctp = sctp;
        break;
      }
      case C.CTA_PROTOINFO_DCCP: {
        const dccp: DccpInfo = { state: 'NONE', stateNumber: 0 };
        while (p.next()) {
          if (p.type === C.CTA_PROTOINFO_DCCP_STATE) {
            dccp.stateNumber = p.u8();
            dccp.state = stateName(C.DCCP_STATES, dccp.stateNumber);
          } else if (p.type === C.CTA_PROTOINFO_DCCP_ROLE) dccp.role = p.u8();
          else if (p.type === C.CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ) dccp.handshakeSeq = p.u64be();
        }
        flow.dccp = dccp;
        break;
      }
    }
  }
}

function decodeCounters(ad: AttributeReader): Counters {
  const c: Counters = { packets: 0n, bytes: 0n };
  while (ad.next()) {
    switch (ad.type) {
      case C.CTA_COUNTERS_PACKETS:
        c.packets = ad.u64be();
        break;
      case C.CTA_COUNTERS_BYTES:
        c.bytes = ad.u64be();
        break;
      case C.CTA_COUNTERS32_PACKETS:
        c.packets = BigInt(ad.u32be());
        break;
      case C.CTA_COUNTERS32_BYTES:
        c.bytes = BigInt(ad.u32be());
        break;
      // CTA_COUNTERS_PAD: alignment only
    }
  }
  return c;
}

function decodeSeqAdj(ad: AttributeReader): SeqAdjust {
  const s: SeqAdjust = { correctionPos: 0, offsetBefore: 0, offsetAfter: 0 };
  while (ad.next()) {
    if (ad.type === C.CTA_SEQADJ_CORRECTION_POS) s.correctionPos = ad.u32be();
    else if (ad.type === C.CTA_SEQADJ_OFFSET_BEFORE) s.offsetBefore = ad.s32be();
    else if (ad.type === C.CTA_SEQADJ_OFFSET_AFTER) s.offsetAfter = ad.s32be();
  }
  return s;
}

function decodeNat(ad: AttributeReader): NatSpec {
  const n: NatSpec = {};
  while (ad.next()) {
    switch (ad.type) {
      case C.CTA_NAT_V4_MINIP:
      case C.CTA_NAT_V6_MINIP:
        n.minIp = address(ad);
        break;
      case C.CTA_NAT_V4_MAXIP:
      case C.CTA_NAT_V6_MAXIP:
        n.maxIp = address(ad);
        break;
      case C.CTA_NAT_PROTO: {
        const p = ad.nested();
        while (p.next()) {
          if (p.type === C.CTA_PROTONAT_PORT_MIN) n.minPort = p.u16be();
          else if (p.type === C.CTA_PROTONAT_PORT_MAX) n.maxPort = p.u16be();
        }
        break;
      }
    }
  }
  return n;
}

/** Decodes the attributes of a conntrack entry (CT_NEW/CT_DELETE message). */
// eslint-disable-next-line max-lines-per-function -- one case per CTA_* attribute: the switch reads as the entry's wire format, top to bottom
export function decodeFlowAttributes(ad: AttributeReader, family: Family): Flow {
  const flow: Flow = {
    family,
    orig: { src: '', dst: '', proto: 0 },
    reply: { src: '', dst: '', proto: 0 },
    status: 0,
    statusFlags: [],
  };
  while (ad.next()) {
    switch (ad.type) {
      case C.CTA_TUPLE_ORIG:
        flow.orig = decodeTuple(ad.nested());
        break;
      case C.CTA_TUPLE_REPLY:
        flow.reply = decodeTuple(ad.nested());
        break;
      case C.CTA_STATUS:
        flow.status = ad.u32be();
        flow.statusFlags = statusFlagsOf(flow.status);
        break;
      case C.CTA_PROTOINFO:
        decodeProtoinfo(ad.nested(), flow);
        break;
      case C.CTA_HELP: {
        const h = ad.nested();
        const helper: { name: string; info?: Uint8Array } = { name: '' };
        while (h.next()) {
          if (h.type === C.CTA_HELP_NAME) helper.name = h.string();
          else if (h.type === C.CTA_HELP_INFO) helper.info = h.bytes().slice();
        }
        flow.helper = helper;
        break;
      }
      case C.CTA_NAT_SRC:
        flow.natSrc = decodeNat(ad.nested());
        break;
      case C.CTA_NAT_DST:
        flow.natDst = decodeNat(ad.nested());
        break;
      case C.CTA_TIMEOUT:
        flow.timeout = ad.u32be();
        break;
      case C.CTA_MARK:
        flow.mark = ad.u32be();
        break;
      case C.CTA_COUNTERS_ORIG:
        flow.countersOrig = decodeCounters(ad.nested());
        break;
      case C.CTA_COUNTERS_REPLY:
        flow.countersReply = decodeCounters(ad.nested());
        break;
      case C.CTA_USE:
        flow.use = ad.u32be();
        break;
      case C.CTA_ID:
        flow.id = ad.u32be();
        break;
      case C.CTA_TUPLE_MASTER:
        flow.master = decodeTuple(ad.nested());
        break;
      case C.CTA_SEQ_ADJ_ORIG:
        flow.seqAdjOrig = decodeSeqAdj(ad.nested());
        break;
      case C.CTA_SEQ_ADJ_REPLY:
        flow.seqAdjReply = decodeSeqAdj(ad.nested());
        break;
      case C.CTA_SECMARK:
        flow.secmark = ad.u32be();
        break;
      case C.CTA_ZONE:
        flow.zone = ad.u16be();
        break;
      case C.CTA_SECCTX: {
        const s = ad.nested();
        while (s.next()) if (s.type === C.CTA_SECCTX_NAME) flow.secctx = s.string();
        break;
      }
      case C.CTA_TIMESTAMP: {
        const s = ad.nested();
        while (s.next()) {
          if (s.type === C.CTA_TIMESTAMP_START) flow.timestampStart = s.u64be();
          else if (s.type === C.CTA_TIMESTAMP_STOP) flow.timestampStop = s.u64be();
        }
        break;
      }
      case C.CTA_LABELS:
        flow.labels = ad.bytes().slice();
        break;
      case C.CTA_TIMESTAMP_EVENT:
        flow.timestampEvent = ad.u64be();
        break;
      case C.CTA_SYNPROXY: {
        const s = ad.nested();
        const sp = { isn: 0, its: 0, tsoff: 0 };
        while (s.next()) {
          if (s.type === C.CTA_SYNPROXY_ISN) sp.isn = s.u32be();
          else if (s.type === C.CTA_SYNPROXY_ITS) sp.its = s.u32be();
          else if (s.type === C.CTA_SYNPROXY_TSOFF) sp.tsoff = s.u32be();
        }
        flow.synproxy = sp;
        break;
      }
      default:
        (flow.unknown ??= []).push(rawAttribute(ad));
    }
  }
  return flow;
}

/** Decodes one conntrack message into a Flow. */
export function decodeFlow(msg: NetlinkMessage): Flow {
  const attrs = nfAttributes(msg); // checks there is room for nfgenmsg
  return decodeFlowAttributes(attrs, familyOf(msg.view.getUint8(payloadOffset(msg))));
}

/** The label bits set in a 128-bit connlabel bitmap (bit n = byte n/8, bit n%8 on little-endian hosts). */
export function labelBits(labels: Uint8Array): number[] {
  const out: number[] = [];
  // The kernel stores labels as an array of unsigned long, host endian; on a
  // little-endian host that is bit n in byte n >> 3.
  for (let i = 0; i < labels.length * 8; i++) if (labels[i >> 3]! & (1 << (i & 7))) out.push(i);
  return out;
}
