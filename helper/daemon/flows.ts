/**
 * The live Flow table the UI's Connections view shows: the conntrack mirror of the
 * helper's namespace, mapped to the protocol's Flow model and enriched with the process
 * and host of the decision that let each flow through (matched by original tuple).
 * Publishes a delta per change on topic 'flows'.
 *
 * The whole table is followed only while somebody watches it (a `flows` subscriber, or
 * a kill/mark/labels call) and for a while after: every NEW and UPDATE event of every
 * flow costs the kernel a message and the verdict loop's thread a decode, which was
 * twice the cost of the verdict loop itself. Unwatched, only DESTROY events are read,
 * for the history's end counters.
 */
import {
  Conntrack,
  ConntrackEvents,
  ConntrackMirror,
  flowKey,
  labelBits,
  type ConntrackEvent,
} from '../conntrack/index.js';
import type { Flow as CtFlow, MirrorChange } from '../conntrack/index.js';
import { NetlinkError } from '../netlink/errors.js';
import { setNewest } from '../common/bounded-map.js';
import type { Flow, ProcessInfo } from '../protocol/model.js';
import { DaemonError } from './errors.js';
import type { Logger } from './log.js';
import type {
  ConnectionTuple,
  DecisionRecord,
  DecisionSink,
  EventPublisher,
  FlowDelta,
  ProcessAttributor,
  SocketDestroyer,
} from './ports.js';
import { protocolName, requestTuple, tupleKey } from './request.js';

/** What a decision knows about a flow that conntrack does not. */
export interface FlowEnrichment {
  host: string | null;
  process: ProcessInfo | null;
}

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

/** What the table reads flow ends from while nobody watches (ConntrackEvents, DESTROY only). */
export interface FlowEndSource {
  onEvent(listener: (event: ConntrackEvent) => void): () => void;
  onError(listener: (error: Error) => void): () => void;
  close(): void;
}

export interface FlowTableOptions {
  netns?: string;
  publisher?: EventPublisher;
  log: Logger;
  /**
   * Decisions remembered by tuple until their flow shows up in the mirror, or, while
   * only ends are followed, until it ends (oldest dropped first). Default 65,536.
   */
  maxPending?: number;
  /** Follow every flow always (true), or only while watched (false, the default). */
  alwaysFollow?: boolean;
  /** How long the whole table is still followed after the last watcher left (ms). Default 30 s. */
  idleMs?: number;
  /** Used by kill() for TCP flows; without it kill only deletes the conntrack entry. */
  socketDestroyer?: SocketDestroyer;
  /** Called with a flow's last state (counters, process, host) when it leaves the table: for the history's byte counts. */
  onEnded?: (flow: Flow, tupleKey: string) => void;
  /** Test seam: a mirror instead of opening one in `netns` (followed always, never closed). */
  mirror?: ConntrackMirror;
  /** Test seams: how the table opens its mirror and its end-only event source. */
  openMirror?: () => Promise<ConntrackMirror>;
  openEnds?: () => FlowEndSource;
}

/** What kill() did. */
export interface KillResult {
  /** The conntrack entry was deleted (false: it was already gone). */
  conntrackDeleted: boolean;
  /** Local sockets destroyed; null when there is no destroyer, the flow is not TCP, or destroying failed. */
  socketsDestroyed: number | null;
  /** Why the local socket could not be destroyed (the entry was deleted all the same). */
  socketError?: string;
}

/** What a failed SOCK_DESTROY means, for the user. */
function destroyFailure(error: unknown): string {
  if (error instanceof NetlinkError && error.code === 'EOPNOTSUPP') {
    return 'EOPNOTSUPP: this kernel cannot destroy sockets (built without CONFIG_INET_DIAG_DESTROY); the program keeps its socket until it notices the connection is gone';
  }
  if (error instanceof NetlinkError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

export class FlowTable implements DecisionSink {
  /**
   * Decisions by tuple key whose flow is not in the mirror: not there yet, or, while
   * only ends are followed, every allowed flow still open. Insertion order = age.
   */
  private readonly pending = new Map<string, FlowEnrichment>();
  /** Enrichment of the flows in the mirror, by mirror key (bounded by the table). */
  private readonly enriched = new Map<string, FlowEnrichment>();
  /** Mirror key by tuple key, to find a live flow when its decision comes late. */
  private readonly byTuple = new Map<string, string>();
  private readonly maxPending: number;
  private readonly idleMs: number;
  /** The whole table, while followed. */
  private mirror: ConntrackMirror | undefined;
  private mirrorOff: (() => void)[] = [];
  private starting: Promise<ConntrackMirror> | undefined;
  /** DESTROY events only, while the whole table is not followed. */
  private ends: FlowEndSource | undefined;
  private readonly permanent: boolean;
  private watched = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(private readonly options: FlowTableOptions) {
    this.maxPending = options.maxPending ?? 65_536;
    this.idleMs = options.idleMs ?? 30_000;
    this.permanent = options.mirror !== undefined || options.alwaysFollow === true;
  }

  static async start(options: FlowTableOptions): Promise<FlowTable> {
    const table = new FlowTable(options);
    if (table.permanent) {
      const mirror = options.mirror ?? (await table.openMirror());
      table.attach(mirror);
      options.publisher?.publish('flows', { kind: 'snapshot', flows: table.snapshot() });
    } else {
      table.followEnds();
    }
    return table;
  }

  /** 'all' while the whole table is mirrored, else 'ends' (only flow ends are read). */
  get following(): 'all' | 'ends' {
    return this.mirror ? 'all' : 'ends';
  }

  /** Flows in the mirror (0 while only ends are followed). */
  get size(): number {
    return this.mirror?.size ?? 0;
  }

  /**
   * Somebody watches the table (a `flows` subscriber) or stopped watching: the whole
   * table is followed from now on, or only ends after idleMs.
   */
  setWatched(watched: boolean): void {
    if (this.closed) return;
    this.watched = watched;
    if (watched) {
      this.cancelIdle();
      this.follow().catch((e: unknown) =>
        this.options.log.warn(COMPONENT, `following the conntrack table: ${(e as Error).message}`),
      );
    } else {
      this.scheduleIdle();
    }
  }

  /** Follows the whole table (if not yet) and resolves once the mirror holds it. */
  async follow(): Promise<void> {
    await this.watchedMirror();
  }

  /**
   * Dumps the table again while it is followed: ctnetlink sends byte/packet counters and
   * start times only in dumps (counter-refresh.ts). Nothing while only ends are followed.
   */
  async resync(): Promise<void> {
    const mirror = this.mirror;
    if (!mirror || mirror.closed) return;
    try {
      await mirror.resync();
    } catch (error) {
      // Let go meanwhile (idle, or closed): not an error.
      if (mirror === this.mirror && !mirror.closed) throw error;
    }
  }

  /** Every flow now (what a new subscriber gets before the deltas); empty while only ends are followed. */
  snapshot(): Flow[] {
    const out: Flow[] = [];
    if (!this.mirror) return out;
    for (const [key, flow] of this.mirror.flows) {
      const f = toModelFlow(flow, this.enriched.get(key));
      if (f) out.push(f);
    }
    return out;
  }

  /** One flow by conntrack id (while the whole table is followed). */
  get(id: number): Flow | undefined {
    const found = this.find(id);
    return found ? (toModelFlow(found[1], this.enriched.get(found[0])) ?? undefined) : undefined;
  }

  /** DecisionSink: remember who asked, to name the flow when conntrack reports it. */
  record(entry: DecisionRecord, key?: string): void {
    if (entry.action !== 'allow' || this.closed) return; // a denied first packet makes no flow
    const extra: FlowEnrichment = { host: entry.request.host, process: entry.request.process };
    const tkey = key ?? tupleKey(requestTuple(entry.request));
    const live = this.byTuple.get(tkey);
    const flow = live !== undefined ? this.mirror?.get(live) : undefined;
    if (live !== undefined && flow) {
      this.enriched.set(live, extra);
      this.emitFlow('updated', live, flow);
      return;
    }
    this.remember(tkey, extra);
  }

  /**
   * Names the flows already in the table that no decision of this helper named (they
   * were let through before it started, e.g. across a restart): each socket's owner by
   * attribution, as a new connection's would be (outbound first, then inbound). At
   * most `max` flows and until `deadlineMs` passed, one at a time, so that a big table
   * costs a bounded while in the background and never holds up a verdict for long.
   */
  async attributeExisting(
    attributor: ProcessAttributor,
    bounds: { max: number; deadlineMs: number },
  ): Promise<{ flows: number; tried: number; named: number; failed: number }> {
    const flows = await this.currentFlows();
    const end = Date.now() + bounds.deadlineMs;
    let tried = 0;
    let named = 0;
    let failed = 0;
    // A failure for one flow (counted, and its flow stays unnamed) does not stop the others.
    const ask = (t: ConnectionTuple) =>
      attributor.attribute(t).catch(() => {
        failed++;
        return { uid: null, process: null };
      });
    for (const [key, flow] of flows) {
      if (tried >= bounds.max || Date.now() > end || this.closed) break;
      if (this.enriched.has(key)) continue;
      tried++;
      const tuple = conntrackTuple(flow);
      let found = await ask(tuple);
      if (!found.process) found = await ask({ ...tuple, inbound: true });
      // A decision may have named it meanwhile.
      if (!found.process || this.enriched.has(key)) continue;
      const extra = { host: null, process: found.process };
      const mirror = this.mirror;
      if (!mirror) {
        // Only ends are followed: the name waits by tuple for the end or the next mirror.
        this.remember(tupleKey(tuple), extra);
        named++;
        continue;
      }
      const live = mirror.get(key);
      if (live === undefined) continue; // it ended meanwhile
      this.enriched.set(key, extra);
      named++;
      this.emitFlow('updated', key, live);
    }
    return { flows: flows.length, tried, named, failed };
  }

  /**
   * Ends a flow: destroys its local TCP socket (when a destroyer is set, so the program
   * sees the connection abort), then deletes the conntrack entry. The entry is deleted
   * even when the socket cannot be destroyed (a kernel without SOCK_DESTROY): the
   * result says why in `socketError`, and so does a warning in the log.
   */
  async kill(id: number): Promise<KillResult> {
    const mirror = await this.watchedMirror();
    const found = this.find(id);
    if (!found) throw new DaemonError('UNKNOWN_FLOW', `no flow with id ${id}`);
    const flow = found[1];
    let socketsDestroyed: number | null = null;
    let socketError: string | undefined;
    const destroyer = this.options.socketDestroyer;
    if (destroyer && flow.orig.proto === 6) {
      try {
        socketsDestroyed = await destroyer.destroy(conntrackTuple(flow));
      } catch (error) {
        socketError = destroyFailure(error);
        this.options.log.warn(COMPONENT, `flow ${id}: the local socket could not be destroyed`, {
          reason: socketError,
        });
      }
    }
    let conntrackDeleted = true;
    try {
      await mirror.conntrack.delete(this.keyOf(flow));
    } catch (error) {
      // Gone meanwhile (it may have ended by itself): the goal is reached.
      if (!(error instanceof NetlinkError && error.code === 'ENOENT')) throw error;
      conntrackDeleted = false;
    }
    this.options.log.info(COMPONENT, `killed flow ${id}`, {
      conntrackDeleted,
      socketsDestroyed,
      ...(socketError !== undefined ? { socketError } : {}),
    });
    return {
      conntrackDeleted,
      socketsDestroyed,
      ...(socketError !== undefined ? { socketError } : {}),
    };
  }

  /** Sets the connmark bits of `mask` to `mark` (other bits kept). */
  async setMark(id: number, mark: number, mask = 0xffffffff): Promise<void> {
    const mirror = await this.watchedMirror();
    const flow = this.require(id);
    // ctnetlink applies (old & ~mask) ^ mark: keep `mark` inside `mask` for a plain set.
    await mirror.conntrack.update({
      ...this.keyOf(flow),
      mark: (mark & mask) >>> 0,
      markMask: mask,
    });
  }

  /** Sets the connlabel bits of `mask` (all 128 by default) to `labels`. */
  async setLabels(id: number, labels: readonly number[], mask?: readonly number[]): Promise<void> {
    const mirror = await this.watchedMirror();
    const flow = this.require(id);
    const all = Array.from({ length: 128 }, (_, i) => i);
    await mirror.conntrack.update({
      ...this.keyOf(flow),
      labels,
      labelsMask: mask ?? all,
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelIdle();
    this.detach();
    this.ends?.close();
    this.ends = undefined;
    this.pending.clear();
  }

  private openMirror(): Promise<ConntrackMirror> {
    const { netns, openMirror } = this.options;
    if (openMirror) return openMirror();
    return ConntrackMirror.start(netns !== undefined ? { netns } : {});
  }

  /**
   * The flows in the table now, keyed as the mirror keys them: the mirror's while it is
   * followed, else one dump. Following it just to read it once would keep the whole
   * table mirrored (every new flow decoded and indexed) for idleMs.
   */
  private async currentFlows(): Promise<[string, CtFlow][]> {
    if (this.mirror) return [...this.mirror.flows];
    const { netns } = this.options;
    const ct = Conntrack.open(netns !== undefined ? { netns } : {});
    try {
      return (await ct.listAll()).map((f): [string, CtFlow] => [flowKey(f), f]);
    } finally {
      ct.close();
    }
  }

  /** The mirror for an operation by id: followed now, and for idleMs after unless watched. */
  private async watchedMirror(): Promise<ConntrackMirror> {
    const mirror = await this.fullMirror();
    if (!this.watched) this.scheduleIdle();
    return mirror;
  }

  private fullMirror(): Promise<ConntrackMirror> {
    if (this.closed) return Promise.reject(new DaemonError('BAD_STATE', 'flow table closed'));
    if (this.mirror) return Promise.resolve(this.mirror);
    this.starting ??= this.openMirror()
      .then((mirror) => {
        if (this.closed) {
          mirror.close();
          throw new DaemonError('BAD_STATE', 'flow table closed');
        }
        this.attach(mirror);
        // The mirror's own events report every end from here; a flow that ended in
        // between may be reported twice, which the history ignores.
        this.ends?.close();
        this.ends = undefined;
        this.options.log.info(COMPONENT, 'following the whole conntrack table', {
          flows: mirror.size,
        });
        return mirror;
      })
      .finally(() => {
        this.starting = undefined;
      });
    return this.starting;
  }

  private attach(mirror: ConntrackMirror): void {
    this.mirror = mirror;
    for (const [key, flow] of mirror.flows) this.index(key, flow);
    this.mirrorOff = [
      mirror.onChange((c) => this.onChange(c)),
      mirror.onError((e) => this.options.log.warn(COMPONENT, `conntrack mirror: ${e.message}`)),
    ];
  }

  private detach(): void {
    const mirror = this.mirror;
    if (!mirror) return;
    for (const off of this.mirrorOff) off();
    this.mirrorOff = [];
    this.mirror = undefined;
    // The names of live flows go back to waiting by tuple, for their end or the next mirror.
    for (const [key, extra] of this.enriched) {
      const flow = mirror.get(key);
      if (flow) this.remember(tupleKey(conntrackTuple(flow)), extra);
    }
    this.enriched.clear();
    this.byTuple.clear();
    if (!this.options.mirror) mirror.close();
  }

  /** Reads flow ends only (the mirror, if any, stays until it is detached). */
  private followEnds(): void {
    if (this.ends || this.closed) return;
    const { netns, openEnds } = this.options;
    const ends =
      openEnds?.() ??
      ConntrackEvents.open({ events: ['destroy'], ...(netns !== undefined ? { netns } : {}) });
    ends.onEvent((e) => {
      if (e.type === 'destroy' && !this.mirror) this.ended(e.flow);
    });
    ends.onError((e) => this.options.log.warn(COMPONENT, `conntrack ends: ${e.message}`));
    this.ends = ends;
  }

  private scheduleIdle(): void {
    if (this.permanent || this.closed || this.idleTimer !== undefined || !this.mirror) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.watched || this.closed) return;
      this.followEnds();
      this.detach();
      this.options.log.info(COMPONENT, 'nobody watches flows: following only their ends');
    }, this.idleMs);
    this.idleTimer.unref();
  }

  private cancelIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private remember(tkey: string, extra: FlowEnrichment): void {
    setNewest(this.pending, tkey, extra, this.maxPending);
  }

  /** A flow left the table while only ends are followed. */
  private ended(flow: CtFlow): void {
    const tkey = tupleKey(conntrackTuple(flow));
    const extra = this.pending.get(tkey);
    this.pending.delete(tkey);
    const last = toModelFlow(flow, extra);
    if (last) this.options.onEnded?.(last, tkey);
  }

  private require(id: number): CtFlow {
    const found = this.find(id);
    if (!found) throw new DaemonError('UNKNOWN_FLOW', `no flow with id ${id}`);
    return found[1];
  }

  private find(id: number): [string, CtFlow] | undefined {
    const key = `id:${id}`;
    const flow = this.mirror?.get(key);
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
      if (last) this.options.onEnded?.(last, tkey);
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
