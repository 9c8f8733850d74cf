/**
 * The small adapters that plug attribution, DNS names, the history store, the
 * IPC server's publish() and the native sock_diag destroy for `kill` into the
 * daemon's ports (ports.ts).
 */
import type {
  KernelFirstAttributor,
  SockDiag,
  ProcessInfo as ProcProcess,
} from '../attribution/index.js';
import { setNewest } from '../common/bounded-map.js';
import type { DnsCache } from '../dns/index.js';
import type { HistoryStore } from '../history/index.js';
import type { PublishMap } from '../protocol/messages.js';
import {
  MAX_ANCESTORS,
  type Flow,
  type HistoryEntry,
  type ProcessInfo,
} from '../protocol/model.js';
import type { Logger } from './log.js';
import type {
  ConnectionTuple,
  DaemonTopics,
  DecisionRecord,
  DecisionSink,
  EventPublisher,
  HostNames,
  ProcessAttributor,
  SocketDestroyer,
} from './ports.js';
import { requestTuple, tupleKey } from './request.js';

const MAX_TEXT = 4096;
const MAX_LIST = 256;

function text(s: string): string {
  return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) : s;
}

function nullableText(s: string | null): string | null {
  return s === null ? null : text(s);
}

/**
 * The model of each attribution ProcessInfo, made once: the attributor keeps one
 * ProcessInfo per live process, so its connections share one model object (kept by
 * each history entry) instead of a copy per connection.
 */
const models = new WeakMap<ProcProcess, ProcessInfo>();

/** helper/attribution's process as the protocol model's (bounded lists and strings), shared per process. */
export function toModelProcess(p: ProcProcess): ProcessInfo {
  let m = models.get(p);
  if (m === undefined) {
    m = modelProcess(p);
    models.set(p, m);
  }
  return m;
}

function modelProcess(p: ProcProcess): ProcessInfo {
  return {
    pid: p.pid,
    ppid: p.ppid,
    startTime: p.startTime,
    comm: text(p.comm),
    exe: nullableText(p.exe),
    cmdline: p.cmdline.slice(0, MAX_LIST).map(text),
    uid: p.uid,
    gid: p.gid,
    user: nullableText(p.user),
    // The innermost unit names the application best (a user service inside user@UID).
    unit: nullableText(p.systemdUserUnit ?? p.systemdUnit),
    container: p.container?.id ?? null,
    appId: p.app ? text(p.app.id) : null,
    ...(p.ancestors
      ? {
          ancestors: p.ancestors
            .slice(0, MAX_ANCESTORS)
            .map((a) => ({ pid: a.pid, exe: nullableText(a.exe), comm: text(a.comm) })),
        }
      : {}),
  };
}

const SOCKET_PROTOCOLS = new Map<number, 'tcp' | 'udp' | 'udplite'>([
  [6, 'tcp'],
  [17, 'udp'],
  [136, 'udplite'],
]);

/** Attribution (eBPF owner records first, sock_diag + /proc for the rest) as the daemon's ProcessAttributor. */
export class AttributorAdapter implements ProcessAttributor {
  constructor(private readonly attributor: Pick<KernelFirstAttributor, 'attribute'>) {}

  async attribute(
    t: ConnectionTuple,
  ): Promise<{ uid: number | null; process: ProcessInfo | null }> {
    const protocol = SOCKET_PROTOCOLS.get(t.protocol);
    if (protocol === undefined || t.sport === null || t.dport === null) {
      return { uid: null, process: null }; // neither path knows such sockets (ICMP, SCTP...)
    }
    const found = await this.attributor.attribute({
      family: t.family,
      protocol,
      src: t.src,
      sport: t.sport,
      dst: t.dst,
      dport: t.dport,
      ...(t.inbound ? { inbound: true } : {}),
    });
    if (!found) return { uid: null, process: null };
    return { uid: found.uid, process: found.process ? toModelProcess(found.process) : null };
  }
}

/** SOCK_DESTROY over the attribution module's sock_diag socket (no `ss` in the product path). */
export class SockDiagDestroyer implements SocketDestroyer {
  constructor(private readonly diag: SockDiag) {}

  async destroy(t: ConnectionTuple): Promise<number> {
    if (t.protocol !== 6 || t.sport === null || t.dport === null) return 0;
    const destroyed = await this.diag.destroy({
      family: t.family,
      protocol: 'tcp',
      src: t.src,
      sport: t.sport,
      dst: t.dst,
      dport: t.dport,
    });
    return destroyed ? 1 : 0;
  }
}

/**
 * The DNS cache as HostNames. A miss waits one event-loop turn and looks again:
 * the NFLOG copy of the answer is in the kernel before the program's first
 * packet, but the two sockets are read separately (docs/dns.md, "The race").
 */
export class DnsHostNames implements HostNames {
  /**
   * `pollNow` reads the DNS answers logged so far (DnsSnooper.pollNow): a program
   * connects right after its answer arrived, and the log's copy may not have been
   * read yet. Without it, a miss waits one turn of the event loop instead.
   */
  constructor(
    private readonly cache: DnsCache,
    private readonly pollNow?: () => boolean,
  ) {}

  lookup(ip: string): string | null | Promise<string | null> {
    const hit = this.cache.lookup(ip);
    if (hit) return hit.name;
    if (this.pollNow?.()) return this.cache.lookup(ip)?.name ?? null;
    return new Promise((resolve) => {
      setImmediate(() => resolve(this.cache.lookup(ip)?.name ?? null));
    });
  }
}

/**
 * The history store as a DecisionSink: each decision is appended (and published
 * on `verdicts` with its sequence number); when its flow leaves the conntrack
 * table, the end time and counters are added (`flowEnded`, the FlowTable's onEnded).
 */
export class HistorySink implements DecisionSink {
  /** Tuple key -> seq of the allowed decision whose flow has not ended yet (bounded). */
  private readonly open = new Map<string, number>();

  constructor(
    private readonly store: HistoryStore,
    private readonly options: {
      publish?: (entry: HistoryEntry) => void;
      log: Logger;
      maxOpen?: number;
    },
  ) {}

  record(e: DecisionRecord, key?: string): void {
    const entry = this.store.append({
      request: e.request,
      action: e.action,
      reason: e.reason,
      ruleId: e.ruleId,
      decidedAt: e.decidedAt,
    });
    if (e.action === 'allow') {
      setNewest(
        this.open,
        key ?? tupleKey(requestTuple(e.request)),
        entry.seq,
        this.options.maxOpen ?? 16_384,
      );
    }
    this.options.publish?.(entry);
  }

  /** `key`: the flow's tupleKey, when the caller has it already (the FlowTable does). */
  flowEnded(flow: Flow, key = tupleKey(requestTuple(flow))): void {
    const seq = this.open.get(key);
    if (seq === undefined) return;
    this.open.delete(key);
    this.store.markEnded(seq, {
      ended: Date.now(),
      bytesOut: flow.bytesOut,
      bytesIn: flow.bytesIn,
      packetsOut: flow.packetsOut,
      packetsIn: flow.packetsIn,
    });
  }
}

/** Where the publisher sends its protocol events (IpcServer implements it). */
export interface TopicServer {
  publish<T extends keyof PublishMap>(topic: T, data: PublishMap[T]): void;
}

/**
 * The daemon's events as protocol topics: the flow table's deltas become
 * FlowsDelta (its start snapshot is served by flowsSnapshot() instead), stats
 * and state pass through.
 */
export class ServerPublisher implements EventPublisher {
  private server: TopicServer | undefined;

  /** Events before attach() (the flow table starts before the server listens) are dropped. */
  attach(server: TopicServer | undefined): void {
    this.server = server;
  }

  publish<T extends keyof DaemonTopics>(topic: T, data: DaemonTopics[T]): void {
    const server = this.server;
    if (!server) return;
    const event = { topic, data } as DaemonEvent;
    switch (event.topic) {
      case 'flows': {
        const d = event.data;
        if (d.kind === 'added')
          server.publish('flows', { added: [d.flow], updated: [], removed: [] });
        else if (d.kind === 'updated')
          server.publish('flows', { added: [], updated: [d.flow], removed: [] });
        else if (d.kind === 'removed')
          server.publish('flows', { added: [], updated: [], removed: [d.id] });
        return;
      }
      case 'stats':
        server.publish('stats', event.data);
        return;
      case 'state':
        server.publish('state', event.data);
        return;
    }
  }
}

/** One published event, narrowed by its topic. */
type DaemonEvent = {
  [T in keyof DaemonTopics]: { topic: T; data: DaemonTopics[T] };
}[keyof DaemonTopics];
