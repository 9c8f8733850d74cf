/**
 * The stable JSON form of a conntrack Flow (`portcullis conntrack list --json`),
 * documented field by field in docs/conntrack-json.md. 64-bit values are
 * decimal strings, byte strings are lowercase hex, keys come in a fixed order.
 */
import { IPPROTO } from '../conntrack/constants.js';
import { labelBits } from '../conntrack/decode.js';
import type { Counters, Flow, NatSpec, SeqAdjust, Tuple } from '../conntrack/types.js';

/** A Tuple with its protocol's name, where it has one. */
export interface TupleJson extends Tuple {
  protoName?: string;
}

export interface CountersJson {
  packets: string;
  bytes: string;
}

/** The fields picked from Flow go into the JSON as the library has them. */
export interface FlowJson extends Pick<
  Flow,
  | 'family'
  | 'status'
  | 'timeout'
  | 'mark'
  | 'zone'
  | 'id'
  | 'use'
  | 'secctx'
  | 'secmark'
  | 'natSrc'
  | 'natDst'
  | 'seqAdjOrig'
  | 'seqAdjReply'
  | 'synproxy'
> {
  orig: TupleJson;
  reply: TupleJson;
  statusFlags: string[];
  tcp?: {
    state: string;
    stateNumber: number;
    wscaleOrig?: number;
    wscaleReply?: number;
    flagsOrig?: { flags: number; mask: number };
    flagsReply?: { flags: number; mask: number };
  };
  sctp?: { state: string; stateNumber: number; vtagOrig?: number; vtagReply?: number };
  dccp?: { state: string; stateNumber: number; role?: number; handshakeSeq?: string };
  countersOrig?: CountersJson;
  countersReply?: CountersJson;
  timestampStart?: string;
  timestampStop?: string;
  labels?: { bits: number[]; hex: string };
  helper?: { name: string; info?: string };
  master?: TupleJson;
  unknown?: { type: number; nested: boolean; hex: string }[];
}

const PROTO_NAMES = new Map<number, string>(Object.entries(IPPROTO).map(([k, v]) => [v, k]));

export function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** The label bitmap as one 128-bit number (bit n = 2^n), "0x" + 32 hex digits. */
export function labelsHex(labels: Uint8Array): string {
  let n = 0n;
  for (const bit of labelBits(labels)) n |= 1n << BigInt(bit);
  return '0x' + n.toString(16).padStart(labels.length * 2, '0');
}

function tupleToJson(t: Tuple): TupleJson {
  const out: TupleJson = { src: t.src, dst: t.dst, proto: t.proto };
  const name = PROTO_NAMES.get(t.proto);
  if (name !== undefined) out.protoName = name;
  if (t.srcPort !== undefined) out.srcPort = t.srcPort;
  if (t.dstPort !== undefined) out.dstPort = t.dstPort;
  if (t.icmpType !== undefined) out.icmpType = t.icmpType;
  if (t.icmpCode !== undefined) out.icmpCode = t.icmpCode;
  if (t.icmpId !== undefined) out.icmpId = t.icmpId;
  if (t.zone !== undefined) out.zone = t.zone;
  return out;
}

function countersToJson(c: Counters): CountersJson {
  return { packets: c.packets.toString(), bytes: c.bytes.toString() };
}

function natToJson(n: NatSpec): NatSpec {
  const out: NatSpec = {};
  if (n.minIp !== undefined) out.minIp = n.minIp;
  if (n.maxIp !== undefined) out.maxIp = n.maxIp;
  if (n.minPort !== undefined) out.minPort = n.minPort;
  if (n.maxPort !== undefined) out.maxPort = n.maxPort;
  return out;
}

function seqAdjToJson(s: SeqAdjust): SeqAdjust {
  return {
    correctionPos: s.correctionPos,
    offsetBefore: s.offsetBefore,
    offsetAfter: s.offsetAfter,
  };
}

/** A Flow as plain JSON data: every attribute, in a fixed key order. */
export function flowToJson(f: Flow): FlowJson {
  const out: FlowJson = {
    family: f.family,
    orig: tupleToJson(f.orig),
    reply: tupleToJson(f.reply),
    status: f.status,
    statusFlags: [...f.statusFlags],
  };
  if (f.timeout !== undefined) out.timeout = f.timeout;
  if (f.mark !== undefined) out.mark = f.mark;
  if (f.zone !== undefined) out.zone = f.zone;
  if (f.id !== undefined) out.id = f.id;
  if (f.use !== undefined) out.use = f.use;
  if (f.tcp) {
    const t = f.tcp;
    out.tcp = { state: t.state, stateNumber: t.stateNumber };
    if (t.wscaleOrig !== undefined) out.tcp.wscaleOrig = t.wscaleOrig;
    if (t.wscaleReply !== undefined) out.tcp.wscaleReply = t.wscaleReply;
    if (t.flagsOrig) out.tcp.flagsOrig = { flags: t.flagsOrig.flags, mask: t.flagsOrig.mask };
    if (t.flagsReply) out.tcp.flagsReply = { flags: t.flagsReply.flags, mask: t.flagsReply.mask };
  }
  if (f.sctp) {
    const s = f.sctp;
    out.sctp = { state: s.state, stateNumber: s.stateNumber };
    if (s.vtagOrig !== undefined) out.sctp.vtagOrig = s.vtagOrig;
    if (s.vtagReply !== undefined) out.sctp.vtagReply = s.vtagReply;
  }
  if (f.dccp) {
    const d = f.dccp;
    out.dccp = { state: d.state, stateNumber: d.stateNumber };
    if (d.role !== undefined) out.dccp.role = d.role;
    if (d.handshakeSeq !== undefined) out.dccp.handshakeSeq = d.handshakeSeq.toString();
  }
  if (f.countersOrig) out.countersOrig = countersToJson(f.countersOrig);
  if (f.countersReply) out.countersReply = countersToJson(f.countersReply);
  if (f.timestampStart !== undefined) out.timestampStart = f.timestampStart.toString();
  if (f.timestampStop !== undefined) out.timestampStop = f.timestampStop.toString();
  if (f.labels) out.labels = { bits: labelBits(f.labels), hex: labelsHex(f.labels) };
  if (f.helper) {
    out.helper = { name: f.helper.name };
    if (f.helper.info) out.helper.info = hex(f.helper.info);
  }
  if (f.secctx !== undefined) out.secctx = f.secctx;
  if (f.secmark !== undefined) out.secmark = f.secmark;
  if (f.natSrc) out.natSrc = natToJson(f.natSrc);
  if (f.natDst) out.natDst = natToJson(f.natDst);
  if (f.seqAdjOrig) out.seqAdjOrig = seqAdjToJson(f.seqAdjOrig);
  if (f.seqAdjReply) out.seqAdjReply = seqAdjToJson(f.seqAdjReply);
  if (f.master) out.master = tupleToJson(f.master);
  if (f.synproxy) {
    out.synproxy = { isn: f.synproxy.isn, its: f.synproxy.its, tsoff: f.synproxy.tsoff };
  }
  if (f.unknown?.length) {
    out.unknown = f.unknown.map((a) => ({ type: a.type, nested: a.nested, hex: hex(a.value) }));
  }
  return out;
}

/** One line of `list --json`: the flow's JSON and a newline. */
export function flowJsonLine(f: Flow): string {
  return JSON.stringify(flowToJson(f)) + '\n';
}
