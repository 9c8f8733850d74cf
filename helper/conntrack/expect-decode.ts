/**
 * Expectations as the kernel reports them: their type, the NF_CT_EXPECT_*
 * flag names both ways, and the decoders of expectation messages, events and
 * per-CPU stats. The expectation table itself is ConntrackExpectations
 * (expect.ts).
 */
import { type AttributeReader, type RawAttribute, rawAttribute } from '../netlink/attributes.js';
import {
  NFNL_SUBSYS_CTNETLINK_EXP,
  NLM_F_CREATE,
  NLM_F_EXCL,
  nfnlMsgType,
} from '../netlink/constants.js';
import { NetlinkDecodeError } from '../netlink/errors.js';
import { decodeNfGenMsg, nfAttributes, type NetlinkMessage } from '../netlink/message.js';
import * as C from './constants.js';
import { decodePartialTuple, decodeTuple, familyOf } from './decode.js';
import { ConntrackArgumentError } from './encode.js';
import type { ConntrackEventType, Family, Tuple } from './types.js';

// NF_CT_EXPECT_* (linux/netfilter/nf_conntrack_common.h)
const NF_CT_EXPECT_PERMANENT = 0x1;
const NF_CT_EXPECT_INACTIVE = 0x2;
const NF_CT_EXPECT_USERSPACE = 0x4;

/** Expectation flags by name. */
const EXPECT_FLAG_BITS = {
  PERMANENT: NF_CT_EXPECT_PERMANENT,
  INACTIVE: NF_CT_EXPECT_INACTIVE,
  USERSPACE: NF_CT_EXPECT_USERSPACE,
} as const;
export type ExpectationFlag = keyof typeof EXPECT_FLAG_BITS;

const FLAG_ENTRIES = Object.entries(EXPECT_FLAG_BITS) as [ExpectationFlag, number][];

/** NAT an expectation applies to the connection it creates (CTA_EXPECT_NAT). */
export interface ExpectationNat {
  /** The direction (0 original, 1 reply) whose source is rewritten. */
  dir: number;
  /** The kernel keeps only the source address and port (or ICMP id). */
  tuple: Tuple;
}

/** One expectation (an entry of `conntrack -L expect`). */
export interface Expectation {
  family: Family;
  /** The original tuple of the connection that created the expectation. */
  master: Tuple;
  /** The connection expected. */
  tuple: Tuple;
  /**
   * The mask, as the kernel sent it: only the source address and source
   * port (or ICMP id) are real; the kernel reports the rest as all-ones
   * (ICMP type and code 255) and the protocol as the tuple's.
   */
  mask: Partial<Tuple>;
  /** Seconds left. */
  timeout?: number;
  id?: number;
  /** The master's helper (CTA_EXPECT_HELP_NAME in dumps). */
  helper?: string;
  /** CTA_EXPECT_ZONE; the kernel (up to 6.18 at least) does not send it in dumps or events. */
  zone?: number;
  /** NF_CT_EXPECT_* bits; `flagNames` has them by name. */
  flags?: number;
  flagNames: ExpectationFlag[];
  /** Expectation class of the helper's policy (0 for FTP). */
  class?: number;
  nat?: ExpectationNat;
  /** Name of the kernel function run on the expected connection ("nat-follow-master"). */
  fn?: string;
  /** Attributes this library does not know: kept, never a crash. */
  unknown?: RawAttribute[];
}

/** One CPU's expectation counters (IPCTNL_MSG_EXP_GET_STATS_CPU). */
export interface ExpectationCpuStats {
  cpu: number;
  /** Expected connections that arrived (expectations matched). */
  new?: number;
  /** Expectations created. */
  create?: number;
  /** Expectations removed. */
  delete?: number;
  unknown?: Record<number, number>;
}

export type ExpectationEventType = ConntrackEventType;

export interface ExpectationEvent {
  type: ExpectationEventType;
  expectation: Expectation;
}

/** The nlmsg_type of an expectation message. */
export function expMsgType(msg: number): number {
  return nfnlMsgType(NFNL_SUBSYS_CTNETLINK_EXP, msg);
}

/** NF_CT_EXPECT_* bits by name, in bit order. */
export function expectationFlagsOf(flags: number): ExpectationFlag[] {
  const out: ExpectationFlag[] = [];
  for (const [name, bit] of FLAG_ENTRIES) if (flags & bit) out.push(name);
  return out;
}

export function expectationFlagBits(flags: number | readonly ExpectationFlag[]): number {
  if (typeof flags === 'number') {
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff)
      throw new ConntrackArgumentError(`expectation flags ${flags} out of range`);
    return flags >>> 0;
  }
  let bits = 0;
  for (const name of flags) {
    const bit = EXPECT_FLAG_BITS[name];
    if (bit === undefined)
      throw new ConntrackArgumentError(`unknown expectation flag '${String(name)}'`);
    bits |= bit;
  }
  return bits;
}

/**
 * The type of an expectation event (groups NFNLGRP_CONNTRACK_EXP_NEW /
 * _UPDATE / _DESTROY), or undefined for other messages. The kernel sends
 * IPCTNL_MSG_EXP_NEW with NLM_F_CREATE|NLM_F_EXCL for a new expectation and
 * IPCTNL_MSG_EXP_DELETE when one is removed (matched, timed out, deleted);
 * it sends no updates today.
 */
export function expectationEventTypeOf(
  msg: Pick<NetlinkMessage, 'type' | 'flags'>,
): ExpectationEventType | undefined {
  if (msg.type >> 8 !== NFNL_SUBSYS_CTNETLINK_EXP) return undefined;
  switch (msg.type & 0xff) {
    case C.IPCTNL_MSG_EXP_NEW:
      return (msg.flags & (NLM_F_CREATE | NLM_F_EXCL)) === (NLM_F_CREATE | NLM_F_EXCL)
        ? 'new'
        : 'update';
    case C.IPCTNL_MSG_EXP_DELETE:
      return 'destroy';
    default:
      return undefined;
  }
}

function decodeNat(ad: AttributeReader): ExpectationNat {
  const nat: ExpectationNat = { dir: 0, tuple: { src: '', dst: '', proto: 0 } };
  while (ad.next()) {
    if (ad.type === C.CTA_EXPECT_NAT_DIR) nat.dir = ad.u32be();
    else if (ad.type === C.CTA_EXPECT_NAT_TUPLE) nat.tuple = decodeTuple(ad.nested());
  }
  return nat;
}

/** Decodes the attributes of an expectation message. */
function decodeExpectationAttributes(ad: AttributeReader, family: Family): Expectation {
  const exp: Expectation = {
    family,
    master: { src: '', dst: '', proto: 0 },
    tuple: { src: '', dst: '', proto: 0 },
    mask: {},
    flagNames: [],
  };
  while (ad.next()) {
    switch (ad.type) {
      case C.CTA_EXPECT_MASTER:
        exp.master = decodeTuple(ad.nested());
        break;
      case C.CTA_EXPECT_TUPLE:
        exp.tuple = decodeTuple(ad.nested());
        break;
      case C.CTA_EXPECT_MASK:
        exp.mask = decodePartialTuple(ad.nested());
        break;
      case C.CTA_EXPECT_TIMEOUT:
        exp.timeout = ad.u32be();
        break;
      case C.CTA_EXPECT_ID:
        exp.id = ad.u32be();
        break;
      case C.CTA_EXPECT_HELP_NAME:
        exp.helper = ad.string();
        break;
      case C.CTA_EXPECT_ZONE:
        exp.zone = ad.u16be();
        break;
      case C.CTA_EXPECT_FLAGS:
        exp.flags = ad.u32be();
        exp.flagNames = expectationFlagsOf(exp.flags);
        break;
      case C.CTA_EXPECT_CLASS:
        exp.class = ad.u32be();
        break;
      case C.CTA_EXPECT_NAT:
        exp.nat = decodeNat(ad.nested());
        break;
      case C.CTA_EXPECT_FN:
        exp.fn = ad.string();
        break;
      default:
        (exp.unknown ??= []).push(rawAttribute(ad));
    }
  }
  return exp;
}

/**
 * Decodes one expectation message: a dump or get reply, or an event of
 * groups 4-6. Malformed input throws NetlinkDecodeError, nothing else.
 */
export function decodeExpectation(msg: NetlinkMessage): Expectation {
  if (msg.type >> 8 !== NFNL_SUBSYS_CTNETLINK_EXP) {
    throw new NetlinkDecodeError(
      `message type 0x${msg.type.toString(16)} is not an expectation message`,
      msg.offset,
    );
  }
  const family = familyOf(decodeNfGenMsg(msg).family);
  return decodeExpectationAttributes(nfAttributes(msg), family);
}

/** The event an expectation message carries, or undefined for other messages. */
export function decodeExpectationEvent(msg: NetlinkMessage): ExpectationEvent | undefined {
  const type = expectationEventTypeOf(msg);
  if (!type) return undefined;
  return { type, expectation: decodeExpectation(msg) };
}

/** Decodes one per-CPU expectation stats message (the CPU is nfgenmsg.res_id). */
export function decodeExpectationCpuStats(msg: NetlinkMessage): ExpectationCpuStats {
  const stats: ExpectationCpuStats = { cpu: decodeNfGenMsg(msg).resId };
  const ad = nfAttributes(msg);
  while (ad.next()) {
    switch (ad.type) {
      case C.CTA_STATS_EXP_NEW:
        stats.new = ad.u32be();
        break;
      case C.CTA_STATS_EXP_CREATE:
        stats.create = ad.u32be();
        break;
      case C.CTA_STATS_EXP_DELETE:
        stats.delete = ad.u32be();
        break;
      default:
        if (ad.valueLength === 4) (stats.unknown ??= {})[ad.type] = ad.u32be();
    }
  }
  return stats;
}
