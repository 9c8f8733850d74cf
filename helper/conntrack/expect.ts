import type { NetlinkConnection } from '../netlink/connection.js';
import { AF_UNSPEC, NFNETLINK_V0, NLM_F_CREATE, NLM_F_EXCL } from '../netlink/constants.js';
import { NetlinkError } from '../netlink/errors.js';
import type { NetlinkMessage } from '../netlink/message.js';
import { NetlinkWriter } from '../netlink/writer.js';
import * as C from './constants.js';
import { ConntrackArgumentError, familyNumber, tupleFamily, writeTuple } from './encode.js';
import {
  decodeExpectation,
  decodeExpectationCpuStats,
  expMsgType,
  expectationFlagBits,
  type Expectation,
  type ExpectationCpuStats,
  type ExpectationFlag,
} from './expect-decode.js';
import type { Family, Tuple } from './types.js';

/** CTA_EXPECT_NAT_DIR values (enum ip_conntrack_dir). */
const IP_CT_DIR_ORIGINAL = 0;
const IP_CT_DIR_REPLY = 1;

/** What identifies one expectation: its tuple, and the zone of its master. */
export interface ExpectationKey {
  tuple: Tuple;
  /** The zone must be given for expectations of zoned masters, or the lookup misses them. */
  zone?: number;
  /** CTA_EXPECT_ID: when given, the kernel checks it matches. */
  id?: number;
  family?: Family;
}

export interface ExpectationSpec {
  /** A tuple (either direction) of the master connection; the master must have a helper. */
  master: Tuple;
  tuple: Tuple;
  /**
   * Which bits of the tuple's source address and port must match (the
   * destination always matches exactly). Fields left out default to
   * all-ones (exact match); the protocol is the tuple's.
   */
  mask: Partial<Tuple>;
  /** Seconds. The kernel ignores it at creation (the helper's policy timeout
   * applies), so create() sets it with a second request. */
  timeout: number;
  /** Helper to attach to the expected connection (CTA_EXPECT_HELP_NAME).
   * Upstream looks it up by name and protocol (EOPNOTSUPP if unknown);
   * Linux 6.18.44 was seen accepting any name. */
  helper?: string;
  /** The master's zone. */
  zone?: number;
  /** NF_CT_EXPECT_* bits or names (the kernel clears USERSPACE). */
  flags?: number | readonly ExpectationFlag[];
  /** Needs `helper`; at most the helper's largest class (EINVAL beyond;
   * Linux 6.18.44 was seen refusing every class but 0 under an FTP master). */
  class?: number;
  nat?: {
    dir: number | 'original' | 'reply';
    /** The source address (required) and source port to NAT to. */
    tuple: Partial<Tuple>;
  };
  /** A kernel expect function by name ("nat-follow-master"). */
  fn?: string;
}

export interface ExpectationListOptions {
  /** One family; both when absent (the kernel filters the dump by family). */
  family?: Family;
  signal?: AbortSignal;
}

const PORT_PROTOCOLS: ReadonlySet<number> = new Set([
  C.IPPROTO.tcp,
  C.IPPROTO.udp,
  C.IPPROTO.dccp,
  C.IPPROTO.sctp,
  C.IPPROTO.udplite,
]);

function isIcmp(proto: number | undefined): boolean {
  return proto === C.IPPROTO.icmp || proto === C.IPPROTO.icmpv6;
}

const ALL_ONES: Record<Family, string> = {
  ipv4: '255.255.255.255',
  ipv6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
};
const ANY: Record<Family, string> = { ipv4: '0.0.0.0', ipv6: '::' };

/**
 * The mask the kernel can parse: it wants a complete tuple (both addresses,
 * protocol, both ports or ICMP type/code/id) although it keeps only the
 * source address and source port / ICMP id. Missing fields become all-ones;
 * the protocol is the tuple's (another protocol would make the kernel skip
 * the ports, which silently wildcards them); ICMP type and code are the
 * tuple's, because the kernel rejects types it cannot invert (such as 255,
 * which is what it reports for the mask).
 */
export function completeMask(mask: Partial<Tuple>, tuple: Tuple, family: Family): Partial<Tuple> {
  if (mask.proto !== undefined && mask.proto !== tuple.proto) {
    throw new ConntrackArgumentError(
      `mask protocol ${mask.proto} differs from the tuple's (${tuple.proto})`,
    );
  }
  if (mask.zone !== undefined) throw new ConntrackArgumentError('a mask has no zone');
  const m: Partial<Tuple> = {
    src: mask.src ?? ALL_ONES[family],
    dst: mask.dst ?? ALL_ONES[family],
    proto: tuple.proto,
  };
  if (isIcmp(tuple.proto)) {
    m.icmpType = tuple.icmpType ?? 0;
    m.icmpCode = tuple.icmpCode ?? 0;
    m.icmpId = mask.icmpId ?? 0xffff;
  } else if (PORT_PROTOCOLS.has(tuple.proto)) {
    m.srcPort = mask.srcPort ?? 0xffff;
    m.dstPort = mask.dstPort ?? 0xffff;
  } else {
    if (mask.srcPort !== undefined) m.srcPort = mask.srcPort;
    if (mask.dstPort !== undefined) m.dstPort = mask.dstPort;
  }
  return m;
}

function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new ConntrackArgumentError(`${what} ${v} out of range 0..4294967295`);
  return v;
}

function checkZone(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff)
    throw new ConntrackArgumentError(`zone ${v} out of range 0..65535`);
  return v;
}

/** Writes a complete tuple nest; the expectation zone is CTA_EXPECT_ZONE, not
 * CTA_TUPLE_ZONE (the kernel rejects a tuple zone here with EINVAL). */
function writeExpTuple(
  w: NetlinkWriter,
  type: number,
  t: Partial<Tuple>,
  family: Family,
  what: string,
): void {
  if (t.zone !== undefined)
    throw new ConntrackArgumentError(`${what}: expectation tuples take no zone; use 'zone'`);
  if (t.src === undefined || t.dst === undefined || t.proto === undefined)
    throw new ConntrackArgumentError(`${what}: source, destination and protocol are required`);
  writeTuple(w, type, t, family);
}

/** The family of the given tuples' addresses, which must agree. */
function familyOfTuples(
  given: Family | undefined,
  ...tuples: (Partial<Tuple> | undefined)[]
): Family {
  let family = given;
  for (const t of tuples) {
    if (!t) continue;
    const f = tupleFamily(t);
    if (f && family && f !== family)
      throw new ConntrackArgumentError(`addresses are ${f}, expected ${family}`);
    family ??= f;
  }
  if (!family) throw new ConntrackArgumentError('cannot tell the address family; give addresses');
  return family;
}

/**
 * The expectation table of one network namespace (ctnetlink_exp,
 * NFNL_SUBSYS_CTNETLINK_EXP), over a NetlinkConnection to NETLINK_NETFILTER:
 *
 *     const ct = Conntrack.open({ netns: 'blue' });
 *     const expectations = new ConntrackExpectations(ct.connection);
 *     for await (const e of expectations.list()) console.log(e.tuple, e.helper);
 */
export class ConntrackExpectations {
  private readonly writer = new NetlinkWriter();

  constructor(readonly connection: NetlinkConnection) {}

  private message(type: number, family = AF_UNSPEC, flags = 0): NetlinkWriter {
    return this.writer.reset().beginMessage(expMsgType(type), flags).nfgenmsg(family, NFNETLINK_V0);
  }

  /** Streams the expectations (of one family, or all). */
  async *list(options: ExpectationListOptions = {}): AsyncGenerator<Expectation> {
    const request = this.message(C.IPCTNL_MSG_EXP_GET, familyNumber(options.family))
      .endMessage()
      .finish();
    const dumpOptions = {
      operation: 'expectation list',
      ...(options.signal ? { signal: options.signal } : {}),
    };
    for await (const msg of this.connection.dump(request, dumpOptions)) {
      const e = decodeExpectation(msg);
      // Checked again here, as the conntrack dumps are: flush(family) deletes what this returns.
      if (options.family === undefined || e.family === options.family) yield e;
    }
  }

  async listAll(options: ExpectationListOptions = {}): Promise<Expectation[]> {
    const out: Expectation[] = [];
    const request = this.message(C.IPCTNL_MSG_EXP_GET, familyNumber(options.family))
      .endMessage()
      .finish();
    const { family } = options;
    const onMessage = (msg: NetlinkMessage): void => {
      const e = decodeExpectation(msg);
      if (family === undefined || e.family === family) out.push(e);
    };
    await this.connection.dumpEach(request, onMessage, {
      operation: 'expectation list',
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return out;
  }

  private writeKey(w: NetlinkWriter, key: ExpectationKey, family: Family): void {
    writeExpTuple(w, C.CTA_EXPECT_TUPLE, key.tuple, family, 'tuple');
    if (key.zone !== undefined) w.u16be(C.CTA_EXPECT_ZONE, checkZone(key.zone));
    if (key.id !== undefined) w.u32be(C.CTA_EXPECT_ID, checkU32(key.id, 'id'));
  }

  /** One expectation by its tuple (and zone); rejects with NetlinkError ENOENT if absent. */
  async get(key: ExpectationKey): Promise<Expectation> {
    const family = familyOfTuples(key.family, key.tuple);
    const w = this.message(C.IPCTNL_MSG_EXP_GET, familyNumber(family));
    this.writeKey(w, key, family);
    const replies = await this.connection.request(w.endMessage().finish(), {
      operation: 'expectation get',
    });
    const first = replies[0];
    if (!first) throw new NetlinkError(2, 'expectation get', { message: 'no entry returned' });
    return decodeExpectation(first);
  }

  /**
   * Creates an expectation (IPCTNL_MSG_EXP_NEW, NLM_F_CREATE|NLM_F_EXCL);
   * EEXIST if one with that tuple exists, ENOENT if the master does not,
   * EOPNOTSUPP if the master has no helper (or the helper is unknown).
   * Because the kernel starts every new expectation with the timeout of the
   * master helper's policy, the requested timeout is then applied with an
   * update, unless the expectation is already gone.
   */
  async create(spec: ExpectationSpec): Promise<void> {
    const family = familyOfTuples(undefined, spec.master, spec.tuple, spec.mask);
    const timeout = checkU32(spec.timeout, 'timeout');
    const w = this.message(C.IPCTNL_MSG_EXP_NEW, familyNumber(family), NLM_F_CREATE | NLM_F_EXCL);
    writeExpTuple(w, C.CTA_EXPECT_MASTER, spec.master, family, 'master');
    writeExpTuple(w, C.CTA_EXPECT_TUPLE, spec.tuple, family, 'tuple');
    const mask = completeMask(spec.mask, spec.tuple, family);
    writeExpTuple(w, C.CTA_EXPECT_MASK, mask, family, 'mask');
    w.u32be(C.CTA_EXPECT_TIMEOUT, timeout);
    if (spec.zone !== undefined) w.u16be(C.CTA_EXPECT_ZONE, checkZone(spec.zone));
    if (spec.flags !== undefined) w.u32be(C.CTA_EXPECT_FLAGS, expectationFlagBits(spec.flags));
    if (spec.class !== undefined) {
      if (spec.helper === undefined)
        throw new ConntrackArgumentError('an expectation class needs a helper');
      w.u32be(C.CTA_EXPECT_CLASS, checkU32(spec.class, 'class'));
    }
    if (spec.helper !== undefined) w.string(C.CTA_EXPECT_HELP_NAME, spec.helper);
    if (spec.nat) {
      const dir =
        spec.nat.dir === 'original'
          ? IP_CT_DIR_ORIGINAL
          : spec.nat.dir === 'reply'
            ? IP_CT_DIR_REPLY
            : checkU32(spec.nat.dir, 'NAT direction');
      const t = spec.nat.tuple;
      if (t.src === undefined) throw new ConntrackArgumentError('NAT: a source address is needed');
      const proto = t.proto ?? spec.master.proto;
      const natTuple: Partial<Tuple> = { src: t.src, dst: t.dst ?? ANY[family], proto };
      if (PORT_PROTOCOLS.has(proto)) {
        natTuple.srcPort = t.srcPort ?? 0;
        natTuple.dstPort = t.dstPort ?? 0;
      } else if (isIcmp(proto)) {
        natTuple.icmpType = t.icmpType ?? spec.tuple.icmpType ?? 8;
        natTuple.icmpCode = t.icmpCode ?? 0;
        natTuple.icmpId = t.icmpId ?? 0;
      }
      const n = w.beginNest(C.CTA_EXPECT_NAT);
      w.u32be(C.CTA_EXPECT_NAT_DIR, dir);
      writeExpTuple(w, C.CTA_EXPECT_NAT_TUPLE, natTuple, family, 'NAT tuple');
      w.endNest(n);
    }
    if (spec.fn !== undefined) w.string(C.CTA_EXPECT_FN, spec.fn);
    await this.connection.request(w.endMessage().finish(), { operation: 'expectation create' });
    try {
      await this.update({
        tuple: spec.tuple,
        family,
        timeout,
        ...(spec.zone !== undefined ? { zone: spec.zone } : {}),
      });
    } catch (error) {
      // Matched, timed out or deleted in between: it existed, which is what was asked.
      if (!(error instanceof NetlinkError && (error.code === 'ENOENT' || error.code === 'ETIME')))
        throw error;
    }
  }

  /**
   * Changes an expectation's timeout, the only thing the kernel lets change
   * (IPCTNL_MSG_EXP_NEW without NLM_F_CREATE). Rejects with ENOENT if there
   * is no such expectation, ETIME if it is expiring.
   */
  async update(key: ExpectationKey & { timeout: number }): Promise<void> {
    const family = familyOfTuples(key.family, key.tuple);
    const w = this.message(C.IPCTNL_MSG_EXP_NEW, familyNumber(family));
    writeExpTuple(w, C.CTA_EXPECT_TUPLE, key.tuple, family, 'tuple');
    // The kernel requires CTA_EXPECT_MASTER and CTA_EXPECT_MASK to be present
    // but reads neither when changing an existing expectation.
    writeExpTuple(w, C.CTA_EXPECT_MASTER, key.tuple, family, 'tuple');
    writeExpTuple(w, C.CTA_EXPECT_MASK, key.tuple, family, 'tuple');
    if (key.zone !== undefined) w.u16be(C.CTA_EXPECT_ZONE, checkZone(key.zone));
    w.u32be(C.CTA_EXPECT_TIMEOUT, checkU32(key.timeout, 'timeout'));
    await this.connection.request(w.endMessage().finish(), { operation: 'expectation update' });
  }

  /** Deletes one expectation; rejects with ENOENT if there is none (or the id differs). */
  async delete(key: ExpectationKey): Promise<void> {
    const family = familyOfTuples(key.family, key.tuple);
    const w = this.message(C.IPCTNL_MSG_EXP_DELETE, familyNumber(family));
    this.writeKey(w, key, family);
    await this.connection.request(w.endMessage().finish(), { operation: 'expectation delete' });
  }

  /** Deletes every expectation whose master uses this helper (all families). */
  async deleteByHelper(name: string): Promise<void> {
    if (name === '') throw new ConntrackArgumentError('a helper name is required');
    const w = this.message(C.IPCTNL_MSG_EXP_DELETE);
    w.string(C.CTA_EXPECT_HELP_NAME, name);
    await this.connection.request(w.endMessage().finish(), {
      operation: 'expectation delete by helper',
    });
  }

  /**
   * Deletes every expectation, or those of one family. The kernel's
   * expectation flush ignores the family (unlike the conntrack flush, it
   * does not honour nfgenmsg version 1), so a family is flushed by listing
   * it and deleting each entry. Dumps do not report the zone, so that path
   * only reaches expectations of masters in the default zone.
   */
  async flush(family?: Family): Promise<void> {
    if (family === undefined) {
      const w = this.message(C.IPCTNL_MSG_EXP_DELETE);
      await this.connection.request(w.endMessage().finish(), { operation: 'expectation flush' });
      return;
    }
    const victims = await this.listAll({ family });
    const results = await Promise.allSettled(
      victims.map((e) =>
        this.delete({
          tuple: e.tuple,
          family: e.family,
          ...(e.zone !== undefined ? { zone: e.zone } : {}),
          ...(e.id !== undefined ? { id: e.id } : {}),
        }),
      ),
    );
    for (const r of results) {
      if (
        r.status === 'rejected' &&
        !(r.reason instanceof NetlinkError && r.reason.code === 'ENOENT')
      )
        throw r.reason;
    }
  }

  /** Per-CPU expectation counters. (The kernel answers with messages of the
   * conntrack subsystem, type 3; they are decoded all the same.) */
  async stats(): Promise<ExpectationCpuStats[]> {
    const out: ExpectationCpuStats[] = [];
    await this.connection.dumpEach(
      this.message(C.IPCTNL_MSG_EXP_GET_STATS_CPU).endMessage().finish(),
      (msg) => out.push(decodeExpectationCpuStats(msg)),
      { operation: 'expectation stats' },
    );
    return out.sort((a, b) => a.cpu - b.cpu);
  }
}
