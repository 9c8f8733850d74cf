import {
  NetlinkConnection,
  type BatchResult,
  type ConnectionOptions,
} from '../netlink/connection.js';
import {
  AF_UNSPEC,
  NETLINK_NETFILTER,
  NFNETLINK_V0,
  NFNETLINK_V1,
  NLM_F_CREATE,
  NLM_F_EXCL,
} from '../netlink/constants.js';
import { NetlinkError } from '../netlink/errors.js';
import type { NetlinkMessage } from '../netlink/message.js';
import {
  NetlinkSocket,
  type NetlinkSocketOptions,
  type NetlinkTransport,
} from '../netlink/socket.js';
import { NetlinkWriter } from '../netlink/writer.js';
import * as C from './constants.js';
import { decodeFlow } from './decode.js';
import { ConntrackExpectations } from './expect.js';
import { flowMatcher } from './filter.js';
import {
  ConntrackArgumentError,
  ctMsgType,
  familyNumber,
  filterFlags,
  invertTuple,
  labelsBytes,
  statusBits,
  tcpStateNumber,
  tupleFamily,
  writeNat,
  writeTuple,
} from './encode.js';
import { decodeCpuStats, decodeGlobalStats, type CpuStats, type GlobalStats } from './stats.js';
import type {
  CreateSpec,
  Family,
  Flow,
  FlowFilter,
  FlowKey,
  ListOptions,
  Tuple,
  UpdateSpec,
} from './types.js';

export interface ConntrackOptions extends ConnectionOptions {
  /** Act inside this network namespace (`ip netns` name or path). */
  netns?: string;
  /** Receive buffer for the request socket (default 4 MiB). */
  rcvbuf?: number;
  /** Injection seam: a transport instead of a real socket (tests, fake kernel). */
  transport?: NetlinkTransport;
  socket?: Omit<NetlinkSocketOptions, 'netns'>;
}

/**
 * The part of a tuple filter sent to the kernel. IPv6 addresses stay in user
 * space: ctnetlink_filter_match_tuple() compares them with
 * `!ipv6_addr_cmp()`, which is true when they are equal, so the kernel keeps
 * exactly the entries that do not match (seen on 6.18; IPv4 is correct).
 */
function kernelTupleFilter(
  t: Partial<Tuple> | undefined,
  family: Family | undefined,
): Partial<Tuple> | undefined {
  if (!t || family !== 'ipv6') return t;
  const { src: _src, dst: _dst, ...rest } = t;
  return rest;
}

/** The request socket of a table (or the transport given instead). */
export function openConnection(options: ConntrackOptions): NetlinkConnection {
  const transport =
    options.transport ??
    NetlinkSocket.open(NETLINK_NETFILTER, {
      extAck: true,
      capAck: true,
      rcvbuf: options.rcvbuf ?? 4 * 1024 * 1024,
      slotSize: 32768,
      slots: 16,
      // The kernel builds each dump part inside recvmsg: reading on a
      // thread lets that overlap with decoding.
      threaded: true,
      batches: 4,
      ...options.socket,
      ...(options.netns !== undefined ? { netns: options.netns } : {}),
    });
  return new NetlinkConnection(transport, options);
}

/**
 * The conntrack table of one network namespace, over ctnetlink. Conntrack
 * (client.ts) is this with mirror(), which builds on ConntrackMirror.
 */
export class ConntrackTable {
  private readonly writer = new NetlinkWriter();
  /** The expectation table of the same namespace, over the same socket. */
  readonly expectations: ConntrackExpectations;

  protected constructor(
    readonly connection: NetlinkConnection,
    /** The namespace this table belongs to (undefined: the process's own). */
    readonly netns: string | undefined,
  ) {
    this.expectations = new ConntrackExpectations(connection);
  }

  static open(options: ConntrackOptions = {}): ConntrackTable {
    return new ConntrackTable(openConnection(options), options.netns);
  }

  private message(
    type: number,
    family = AF_UNSPEC,
    flags = 0,
    version = NFNETLINK_V0,
  ): NetlinkWriter {
    return this.writer.reset().beginMessage(ctMsgType(type), flags).nfgenmsg(family, version);
  }

  /** Writes the kernel-side filter attributes of a dump. */
  private writeFilter(w: NetlinkWriter, f: FlowFilter, family: Family | undefined): void {
    if (f.mark !== undefined || f.markMask !== undefined) {
      w.u32be(C.CTA_MARK, f.mark ?? 0);
      w.u32be(C.CTA_MARK_MASK, f.markMask ?? 0xffffffff);
    }
    if (f.status !== undefined) {
      const status = statusBits(f.status);
      w.u32be(C.CTA_STATUS, status);
      w.u32be(C.CTA_STATUS_MASK, f.statusMask === undefined ? status : statusBits(f.statusMask));
    }
    const orig = kernelTupleFilter(f.orig, family);
    const reply = kernelTupleFilter(f.reply, family);
    const origFlags = orig ? filterFlags(orig) : 0;
    const replyFlags = reply ? filterFlags(reply) : 0;
    if (origFlags || replyFlags) {
      if (origFlags) writeTuple(w, C.CTA_TUPLE_ORIG, orig!, family);
      if (replyFlags) writeTuple(w, C.CTA_TUPLE_REPLY, reply!, family);
      const nest = w.beginNest(C.CTA_FILTER);
      // Unlike CTA_* values, the filter flags are host order (NLA_U32).
      w.u32(C.CTA_FILTER_ORIG_FLAGS, origFlags);
      w.u32(C.CTA_FILTER_REPLY_FLAGS, replyFlags);
      w.endNest(nest);
    }
  }

  /** The family a filter implies: tuple addresses need one (the kernel parses them per family). */
  private filterFamily(f: FlowFilter): Family | undefined {
    const implied = tupleFamily({ ...f.orig }) ?? tupleFamily({ ...f.reply });
    if (f.family && implied && f.family !== implied) {
      throw new ConntrackArgumentError(`filter addresses are ${implied}, family is ${f.family}`);
    }
    return f.family ?? implied;
  }

  /**
   * The dump requests for a filter: one, or one per family when tuple fields
   * are filtered without a family (the kernel parses tuple filters per family).
   * Each comes with the predicate its replies must pass (see userFilter).
   */
  private dumpRequests(
    options: ListOptions,
  ): { request: Uint8Array; where: (flow: Flow) => boolean }[] {
    const family = this.filterFamily(options);
    const type =
      options.table === 'dying'
        ? C.IPCTNL_MSG_CT_GET_DYING
        : options.table === 'unconfirmed'
          ? C.IPCTNL_MSG_CT_GET_UNCONFIRMED
          : options.zeroCounters
            ? C.IPCTNL_MSG_CT_GET_CTRZERO
            : C.IPCTNL_MSG_CT_GET;
    const tupleFilter =
      (options.orig && filterFlags(options.orig) !== 0) ||
      (options.reply && filterFlags(options.reply) !== 0);
    const families: (Family | undefined)[] = family || !tupleFilter ? [family] : ['ipv4', 'ipv6'];
    const where = this.userFilter(options);
    return families.map((f) => {
      const w = this.message(type, familyNumber(f));
      this.writeFilter(w, options, f);
      // A kernel that ignored the family would send every entry to both dumps.
      const own =
        f === undefined || f === options.family
          ? where
          : (flow: Flow) => flow.family === f && where(flow);
      return { request: w.endMessage().finish(), where: own };
    });
  }

  /**
   * Every filter again, in user space, compiled once per call. The kernel's
   * own filters only save copying: kernels before 5.8 ignore CTA_FILTER, the
   * status filter came later still, the dying and unconfirmed lists honour
   * only the family, the zone is never applied in dumps, and IPv6 addresses
   * are matched inverted (kernelTupleFilter). Trusting them would make
   * deleteWhere() delete entries nobody asked for.
   */
  private userFilter(options: ListOptions): (flow: Flow) => boolean {
    return flowMatcher(options);
  }

  /** Streams the table (or a filtered part of it); entries are decoded as they
   * arrive and never all held in memory. */
  async *list(options: ListOptions = {}): AsyncGenerator<Flow> {
    const dumpOptions = {
      operation: 'conntrack list',
      ...(options.signal ? { signal: options.signal } : {}),
    };
    for (const { request, where } of this.dumpRequests(options)) {
      for await (const msg of this.connection.dump(request, dumpOptions)) {
        const flow = decodeFlow(msg);
        if (where(flow)) yield flow;
      }
    }
  }

  /** Calls fn for every entry, decoding straight from the receive buffer: the
   * fastest way through a large table. Resolves with the number of entries seen. */
  async forEach(fn: (flow: Flow) => void, options: ListOptions = {}): Promise<number> {
    let n = 0;
    const dumpOptions = {
      operation: 'conntrack list',
      ...(options.signal ? { signal: options.signal } : {}),
    };
    for (const { request, where } of this.dumpRequests(options)) {
      const onMessage = (msg: NetlinkMessage) => {
        const flow = decodeFlow(msg);
        if (where(flow)) {
          n++;
          fn(flow);
        }
      };
      await this.connection.dumpEach(request, onMessage, dumpOptions);
    }
    return n;
  }

  /** Collects the whole (filtered) table. */
  async listAll(options: ListOptions = {}): Promise<Flow[]> {
    const out: Flow[] = [];
    await this.forEach((f) => out.push(f), options);
    return out;
  }

  private writeKey(w: NetlinkWriter, key: FlowKey, family: Family | undefined): void {
    if (!key.orig && !key.reply)
      throw new ConntrackArgumentError('an original or reply tuple is required');
    if (key.orig) writeTuple(w, C.CTA_TUPLE_ORIG, key.orig, family);
    else if (key.reply) writeTuple(w, C.CTA_TUPLE_REPLY, key.reply, family);
    // The zone must be echoed for zoned entries, or the lookup misses them.
    if (key.zone !== undefined) w.u16be(C.CTA_ZONE, key.zone);
    if (key.id !== undefined) w.u32be(C.CTA_ID, key.id);
  }

  private keyFamily(key: FlowKey): Family {
    const family = key.family ?? tupleFamily(key.orig ?? key.reply ?? {});
    if (!family)
      throw new ConntrackArgumentError('cannot tell the address family; give addresses or family');
    return family;
  }

  /** One entry by tuple (and zone); rejects with NetlinkError ENOENT if absent. */
  async get(key: FlowKey): Promise<Flow> {
    const family = this.keyFamily(key);
    const w = this.message(C.IPCTNL_MSG_CT_GET, familyNumber(family));
    this.writeKey(w, key, family);
    const replies = await this.connection.request(w.endMessage().finish(), {
      operation: 'conntrack get',
    });
    const first = replies[0];
    if (!first) throw new NetlinkError(2, 'conntrack get', { message: 'no entry returned' });
    return decodeFlow(first);
  }

  /** Creates an entry. With `ifExists: 'update'` an existing entry is updated
   * instead (conntrack -A); by default it fails with EEXIST (conntrack -I). */
  async create(spec: CreateSpec, options: { ifExists?: 'fail' | 'update' } = {}): Promise<void> {
    await this.connection.request(this.createMessage(spec, options), {
      operation: 'conntrack create',
    });
  }

  private createMessage(spec: CreateSpec, options: { ifExists?: 'fail' | 'update' }): Uint8Array {
    const family = this.keyFamily({ orig: spec.orig });
    const flags = NLM_F_CREATE | (options.ifExists === 'update' ? 0 : NLM_F_EXCL);
    const w = this.message(C.IPCTNL_MSG_CT_NEW, familyNumber(family), flags);
    writeTuple(w, C.CTA_TUPLE_ORIG, spec.orig, family);
    writeTuple(w, C.CTA_TUPLE_REPLY, spec.reply ?? invertTuple(spec.orig), family);
    if (!Number.isInteger(spec.timeout) || spec.timeout < 0) {
      throw new ConntrackArgumentError('timeout (seconds) is required to create an entry');
    }
    w.u32be(C.CTA_TIMEOUT, spec.timeout);
    // The kernel refuses (EBUSY) a status that would clear IPS_CONFIRMED.
    if (spec.status !== undefined)
      w.u32be(C.CTA_STATUS, statusBits(spec.status) | C.STATUS_BITS.CONFIRMED);
    if (spec.mark !== undefined) w.u32be(C.CTA_MARK, spec.mark);
    if (spec.zone !== undefined) w.u16be(C.CTA_ZONE, spec.zone);
    if (spec.labels !== undefined) w.bytes(C.CTA_LABELS, labelsBytes(spec.labels));
    if (spec.helper !== undefined) {
      const h = w.beginNest(C.CTA_HELP);
      w.string(C.CTA_HELP_NAME, spec.helper);
      w.endNest(h);
    }
    this.writeProtoinfo(w, spec.tcpState, spec.sctpState, spec.sctpVtagOrig, spec.sctpVtagReply, {
      ...(spec.dccpState !== undefined ? { state: spec.dccpState } : {}),
      ...(spec.dccpRole !== undefined ? { role: spec.dccpRole } : {}),
    });
    if (spec.natSrc) writeNat(w, C.CTA_NAT_SRC, spec.natSrc, family);
    if (spec.natDst) writeNat(w, C.CTA_NAT_DST, spec.natDst, family);
    return w.endMessage().finish();
  }

  /**
   * Creates many entries through the engine's batch path (one promise, the
   * requests packed into few datagrams): the fast way to load a table.
   * Entries that fail (EEXIST, bad arguments) are reported by index.
   */
  async createMany(
    specs: Iterable<CreateSpec>,
    options: { ifExists?: 'fail' | 'update' } = {},
  ): Promise<BatchResult> {
    return this.connection.requestBatch(this.createMessages(specs, options), {
      operation: 'conntrack create',
    });
  }

  /** Encodes lazily; a spec with bad arguments becomes an Error at its index. */
  private *createMessages(
    specs: Iterable<CreateSpec>,
    options: { ifExists?: 'fail' | 'update' },
  ): Generator<Uint8Array | Error> {
    for (const spec of specs) {
      try {
        yield this.createMessage(spec, options);
      } catch (error) {
        if (!(error instanceof ConntrackArgumentError)) throw error;
        yield error;
      }
    }
  }

  private writeProtoinfo(
    w: NetlinkWriter,
    tcp?: C.TcpState,
    sctp?: C.SctpState,
    vtagOrig = 0,
    vtagReply = 0,
    dccp: { state?: C.DccpState; role?: number } = {},
  ): void {
    const hasDccp = dccp.state !== undefined || dccp.role !== undefined;
    if (tcp === undefined && sctp === undefined && !hasDccp) return;
    const info = w.beginNest(C.CTA_PROTOINFO);
    if (tcp !== undefined) {
      const t = w.beginNest(C.CTA_PROTOINFO_TCP);
      w.u8(C.CTA_PROTOINFO_TCP_STATE, tcpStateNumber(tcp));
      w.endNest(t);
    }
    if (sctp !== undefined) {
      const n = C.SCTP_STATES.indexOf(sctp);
      if (n < 0) throw new ConntrackArgumentError(`unknown SCTP state '${sctp}'`);
      const s = w.beginNest(C.CTA_PROTOINFO_SCTP);
      w.u8(C.CTA_PROTOINFO_SCTP_STATE, n);
      w.u32be(C.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, vtagOrig);
      w.u32be(C.CTA_PROTOINFO_SCTP_VTAG_REPLY, vtagReply);
      w.endNest(s);
    }
    if (hasDccp) {
      const d = w.beginNest(C.CTA_PROTOINFO_DCCP);
      if (dccp.state !== undefined) {
        const n = C.DCCP_STATES.indexOf(dccp.state);
        if (n < 0) throw new ConntrackArgumentError(`unknown DCCP state '${dccp.state}'`);
        w.u8(C.CTA_PROTOINFO_DCCP_STATE, n);
      }
      if (dccp.role !== undefined) w.u8(C.CTA_PROTOINFO_DCCP_ROLE, dccp.role);
      w.endNest(d);
    }
    w.endNest(info);
  }

  /** Changes only the fields given; rejects with ENOENT if there is no such entry. */
  async update(spec: UpdateSpec): Promise<void> {
    const family = this.keyFamily(spec);
    const w = this.message(C.IPCTNL_MSG_CT_NEW, familyNumber(family));
    this.writeKey(w, spec, family);
    if (spec.timeout !== undefined) w.u32be(C.CTA_TIMEOUT, spec.timeout);
    if (spec.status !== undefined)
      w.u32be(C.CTA_STATUS, statusBits(spec.status) | C.STATUS_BITS.CONFIRMED);
    if (spec.mark !== undefined) {
      w.u32be(C.CTA_MARK, spec.mark);
      if (spec.markMask !== undefined) w.u32be(C.CTA_MARK_MASK, spec.markMask);
    }
    if (spec.labels !== undefined) {
      w.bytes(C.CTA_LABELS, labelsBytes(spec.labels));
      if (spec.labelsMask !== undefined) w.bytes(C.CTA_LABELS_MASK, labelsBytes(spec.labelsMask));
    }
    this.writeProtoinfo(w, spec.tcpState);
    await this.connection.request(w.endMessage().finish(), { operation: 'conntrack update' });
  }

  /** Deletes one entry; rejects with ENOENT if there is no such entry. */
  async delete(key: FlowKey): Promise<void> {
    const family = this.keyFamily(key);
    const w = this.message(C.IPCTNL_MSG_CT_DELETE, familyNumber(family));
    this.writeKey(w, key, family);
    await this.connection.request(w.endMessage().finish(), { operation: 'conntrack delete' });
  }

  /** Deletes every entry matching a filter or predicate (vishvananda's
   * ConntrackDeleteFilters); resolves with the number deleted. Entries that
   * vanish between the dump and the delete are not counted. */
  async deleteWhere(filter: FlowFilter | ((flow: Flow) => boolean)): Promise<number> {
    const f: FlowFilter = typeof filter === 'function' ? { where: filter } : filter;
    const victims = await this.listAll(f);
    const results = await Promise.allSettled(
      victims.map((flow) =>
        this.delete({
          orig: flow.orig,
          family: flow.family,
          ...(flow.zone !== undefined ? { zone: flow.zone } : {}),
          ...(flow.id !== undefined ? { id: flow.id } : {}),
        }),
      ),
    );
    let deleted = 0;
    for (const r of results) {
      if (r.status === 'fulfilled') deleted++;
      else if (!(r.reason instanceof NetlinkError && r.reason.code === 'ENOENT')) throw r.reason;
    }
    return deleted;
  }

  /** Flushes one family (nfgenmsg version 1 scopes the flush), or every
   * family when none is given; a mark filter limits it further. */
  async flush(options: { family?: Family; mark?: number; markMask?: number } = {}): Promise<void> {
    const family = familyNumber(options.family);
    const w = this.message(
      C.IPCTNL_MSG_CT_DELETE,
      family,
      0,
      options.family ? NFNETLINK_V1 : NFNETLINK_V0,
    );
    if (options.mark !== undefined || options.markMask !== undefined) {
      w.u32be(C.CTA_MARK, options.mark ?? 0);
      w.u32be(C.CTA_MARK_MASK, options.markMask ?? 0xffffffff);
    }
    await this.connection.request(w.endMessage().finish(), { operation: 'conntrack flush' });
  }

  /** Per-CPU counters, including clash_resolve and chain_toolong where the kernel has them. */
  async stats(): Promise<CpuStats[]> {
    const out: CpuStats[] = [];
    await this.connection.dumpEach(
      this.message(C.IPCTNL_MSG_CT_GET_STATS_CPU).endMessage().finish(),
      (msg) => out.push(decodeCpuStats(msg)),
      { operation: 'conntrack stats' },
    );
    return out.sort((a, b) => a.cpu - b.cpu);
  }

  /** The global entry count and the table's maximum. */
  async globalStats(): Promise<GlobalStats> {
    const replies = await this.connection.request(
      this.message(C.IPCTNL_MSG_CT_GET_STATS).endMessage().finish(),
      {
        operation: 'conntrack count',
      },
    );
    const first = replies[0];
    if (!first) throw new Error('conntrack count: the kernel sent no statistics');
    return decodeGlobalStats(first);
  }

  async count(): Promise<number> {
    return (await this.globalStats()).entries;
  }

  close(): void {
    this.connection.close();
  }
}
