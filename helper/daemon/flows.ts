/**
 * The live Flow table the UI's Connections view shows: the conntrack mirror of the
 * helper's namespace, mapped to the protocol's Flow model and enriched with the process
 * and host of the decision that let each flow through (matched by original tuple).
 * Publishes a snapshot at start and a delta per change on topic 'flows'.
 */
import { ConntrackMirror, flowKey, labelBits } from '../conntrack/index.js';
import type { Flow as CtFlow, MirrorChange } from '../conntrack/index.js';
import { NetlinkError } from '../netlink/errors.js';
import type { Flow, ProcessInfo } from '../protocol/model.js';
import { DaemonError } from './errors.js';
import type { Logger } from './log.js';
import type {
  ConnectionTuple,
  DecisionRecord,
  DecisionSink,
  EventPublisher,
  SocketDestroyer,
} from './ports.js';
import { protocolName, requestTuple, tupleKey } from './request.js';

/** What a decision knows about a flow that conntrack does not. */
export interface FlowEnrichment {
  host: string | null;
  process: ProcessInfo | null;
}

export type FlowDelta =
  | { kind: 'snapshot'; flows: Flow[] }
  | { kind: 'added' | 'updated'; flow: Flow }
  | { kind: 'removed'; id: number };

const COMPONENT = 'flows';
const MAX_STATUS = 32;

function count(v: bigint | undefined): number | null {
  if (v === undefined) return null;
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** The original tuple of a conntrack entry, in the shape requests use. */
export function conntrackTuple(flow: CtFlow): ConnectionTuple {
  return {
    family: flow.family,
    protocol: flow.orig.proto,
    src: flow.orig.src,
    dst: flow.orig.dst,
    sport: flow.orig.srcPort ?? null,
    dport: flow.orig.dstPort ?? null,
  };
}

/** A conntrack entry as the protocol's Flow; null for an entry without CTA_ID (the model needs one). */
export function toModelFlow(flow: CtFlow, extra: FlowEnrichment | undefined): Flow | null {
  if (flow.id === undefined) return null;
  const { orig, reply } = flow;
  const state = flow.tcp?.state ?? flow.sctp?.state ?? flow.dccp?.state ?? null;
  return {
    id: flow.id,
    family: flow.family,
    protocol: protocolName(orig.proto),
    protocolNumber: orig.proto,
    src: orig.src,
    dst: orig.dst,
    sport: orig.srcPort ?? null,
    dport: orig.dstPort ?? null,
    replySrc: reply.src,
    replyDst: reply.dst,
    replySport: reply.srcPort ?? null,
    replyDport: reply.dstPort ?? null,
    state,
    status: flow.statusFlags.slice(0, MAX_STATUS),
    mark: flow.mark ?? 0,
    zone: flow.zone ?? null,
    labels: flow.labels ? labelBits(flow.labels) : [],
    timeout: flow.timeout ?? null,
    start: flow.timestampStart !== undefined ? Number(flow.timestampStart / 1_000_000n) : null,
    bytesOut: count(flow.countersOrig?.bytes),
    bytesIn: count(flow.countersReply?.bytes),
    packetsOut: count(flow.countersOrig?.packets),
    packetsIn: count(flow.countersReply?.packets),
    host: extra?.host ?? null,
    process: extra?.process ?? null,
  };
}

export interface FlowTableOptions {
  netns?: string;
  publisher?: EventPublisher;
  log: Logger;
  /** Decisions remembered while their flow has not appeared yet (oldest dropped first). Default 4096. */
  maxPending?: number;
  /** Used by kill() for TCP flows; without it kill only deletes the conntrack entry. */
  socketDestroyer?: SocketDestroyer;
  /** Called with a flow's last state (counters, process, host) when it leaves the table: for the history's byte counts. */
  onEnded?: (flow: Flow) => void;
  /** Test seam: a mirror instead of opening one in `netns`. */
  mirror?: ConntrackMirror;
}

/** What kill() did. */
export interface KillResult {
  /** The conntrack entry was deleted (false: it was already gone). */
  conntrackDeleted: boolean;
  /** Local sockets destroyed; null when there is no destroyer or the flow is not TCP. */
  socketsDestroyed: number | null;
}

export class FlowTable implements DecisionSink {
  /** Decisions whose flow has not appeared yet, by tuple key; insertion order = age. */
  private readonly pending = new Map<string, FlowEnrichment>();
  /** Enrichment of the flows in the mirror, by mirror key (bounded by the table). */
  private readonly enriched = new Map<string, FlowEnrichment>();
  /** Mirror key by tuple key, to find a live flow when its decision comes late. */
  private readonly byTuple = new Map<string, string>();
  private readonly maxPending: number;
  private readonly unsubscribe: (() => void)[] = [];
  private closed = false;

  private constructor(
    private readonly mirror: ConntrackMirror,
    private readonly options: FlowTableOptions,
  ) {
    this.maxPending = options.maxPending ?? 4096;
    for (const [key, flow] of mirror.flows) this.index(key, flow);
    this.unsubscribe.push(
      mirror.onChange((c) => this.onChange(c)),
      mirror.onError((e) => options.log.warn(COMPONENT, `conntrack mirror: ${e.message}`)),
    );
  }

  static async start(options: FlowTableOptions): Promise<FlowTable> {
    const mirror =
      options.mirror ??
      (await ConntrackMirror.start(options.netns !== undefined ? { netns: options.netns } : {}));
    const table = new FlowTable(mirror, options);
    options.publisher?.publish('flows', { kind: 'snapshot', flows: table.snapshot() });
    return table;
  }

  get size(): number {
    return this.mirror.size;
  }

  /** Every flow now (what a new subscriber gets before the deltas). */
  snapshot(): Flow[] {
    const out: Flow[] = [];
    for (const [key, flow] of this.mirror.flows) {
      const f = toModelFlow(flow, this.enriched.get(key));
      if (f) out.push(f);
    }
    return out;
  }

  /** One flow by conntrack id. */
  get(id: number): Flow | undefined {
    const found = this.find(id);
    return found ? (toModelFlow(found[1], this.enriched.get(found[0])) ?? undefined) : undefined;
  }

  /** DecisionSink: remember who asked, to name the flow when conntrack reports it. */
  record(entry: DecisionRecord): void {
    if (entry.action !== 'allow' || this.closed) return; // a denied first packet makes no flow
    const extra: FlowEnrichment = { host: entry.request.host, process: entry.request.process };
    const tkey = tupleKey(requestTuple(entry.request));
    const live = this.byTuple.get(tkey);
    const flow = live !== undefined ? this.mirror.get(live) : undefined;
    if (live !== undefined && flow) {
      this.enriched.set(live, extra);
      this.emitFlow('updated', live, flow);
      return;
    }
    this.pending.delete(tkey);
    this.pending.set(tkey, extra);
    while (this.pending.size > this.maxPending) {
      const oldest = this.pending.keys().next().value;
      if (oldest === undefined) break;
      this.pending.delete(oldest);
    }
  }

  /**
   * Ends a flow: destroys its local TCP socket (when a destroyer is set, so the program
   * sees the connection abort), then deletes the conntrack entry.
   */
  async kill(id: number): Promise<KillResult> {
    const found = this.find(id);
    if (!found) throw new DaemonError('UNKNOWN_FLOW', `no flow with id ${id}`);
    const flow = found[1];
    let socketsDestroyed: number | null = null;
    const destroyer = this.options.socketDestroyer;
    if (destroyer && flow.orig.proto === 6) {
      socketsDestroyed = await destroyer.destroy(conntrackTuple(flow));
    }
    let conntrackDeleted = true;
    try {
      await this.mirror.conntrack.delete(this.keyOf(flow));
    } catch (error) {
      // Gone meanwhile (it may have ended by itself): the goal is reached.
      if (!(error instanceof NetlinkError && error.code === 'ENOENT')) throw error;
      conntrackDeleted = false;
    }
    this.options.log.info(COMPONENT, `killed flow ${id}`, {
      conntrackDeleted,
      socketsDestroyed,
    });
    return { conntrackDeleted, socketsDestroyed };
  }

  /** Sets the connmark bits of `mask` to `mark` (other bits kept). */
  async setMark(id: number, mark: number, mask = 0xffffffff): Promise<void> {
    const flow = this.require(id);
    // ctnetlink applies (old & ~mask) ^ mark: keep `mark` inside `mask` for a plain set.
    await this.mirror.conntrack.update({
      ...this.keyOf(flow),
      mark: (mark & mask) >>> 0,
      markMask: mask,
    });
  }

  /** Sets the connlabel bits of `mask` (all 128 by default) to `labels`. */
  async setLabels(id: number, labels: readonly number[], mask?: readonly number[]): Promise<void> {
    const flow = this.require(id);
    const all = Array.from({ length: 128 }, (_, i) => i);
    await this.mirror.conntrack.update({
      ...this.keyOf(flow),
      labels,
      labelsMask: mask ?? all,
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubscribe) u();
    if (!this.options.mirror) this.mirror.close();
    this.pending.clear();
    this.enriched.clear();
    this.byTuple.clear();
  }

  private require(id: number): CtFlow {
    const found = this.find(id);
    if (!found) throw new DaemonError('UNKNOWN_FLOW', `no flow with id ${id}`);
    return found[1];
  }

  private find(id: number): [string, CtFlow] | undefined {
    const key = `id:${id}`;
    const flow = this.mirror.get(key);
    return flow ? [key, flow] : undefined;
  }

  private keyOf(flow: CtFlow): {
    orig: CtFlow['orig'];
    family: CtFlow['family'];
    zone?: number;
    id?: number;
  } {
    return {
      orig: flow.orig,
      family: flow.family,
      ...(flow.zone !== undefined ? { zone: flow.zone } : {}),
      ...(flow.id !== undefined ? { id: flow.id } : {}),
    };
  }

  private index(key: string, flow: CtFlow): void {
    const tkey = tupleKey(conntrackTuple(flow));
    this.byTuple.set(tkey, key);
    const extra = this.pending.get(tkey);
    if (extra) {
      this.pending.delete(tkey);
      this.enriched.set(key, extra);
    }
  }

  private onChange({ type, flow }: MirrorChange): void {
    const key = flowKey(flow);
    if (type === 'remove') {
      const tkey = tupleKey(conntrackTuple(flow));
      if (this.byTuple.get(tkey) === key) this.byTuple.delete(tkey);
      const last = toModelFlow(flow, this.enriched.get(key));
      this.enriched.delete(key);
      if (last) this.options.onEnded?.(last);
      if (flow.id !== undefined)
        this.options.publisher?.publish('flows', { kind: 'removed', id: flow.id });
      return;
    }
    if (type === 'add') this.index(key, flow);
    this.emitFlow(type === 'add' ? 'added' : 'updated', key, flow);
  }

  private emitFlow(kind: 'added' | 'updated', key: string, flow: CtFlow): void {
    const f = toModelFlow(flow, this.enriched.get(key));
    if (f) this.options.publisher?.publish('flows', { kind, flow: f } satisfies FlowDelta);
  }
}
