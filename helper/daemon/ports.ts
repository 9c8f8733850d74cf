/**
 * The narrow interfaces the daemon needs from parts built elsewhere (attribution,
 * DNS snooping, the decision engine, the history store, the IPC server). Each is the
 * least the verdict loop calls, so that the real implementations plug in without the
 * daemon changing, and tests can inject their own.
 */
import type { Decision } from '../decisions/prompts.js';
import type {
  ConnectionRequest,
  Flow,
  HelperState,
  HistoryEntry,
  ProcessInfo,
  Stats,
} from '../protocol/model.js';

export type { Decision };

/** A change of the flow table, as the `flows` topic carries it. */
export type FlowDelta =
  | { kind: 'snapshot'; flows: Flow[] }
  | { kind: 'added' | 'updated'; flow: Flow }
  | { kind: 'removed'; id: number };

/** The 5-tuple of a connection's first packet, as seen in its original direction. */
export interface ConnectionTuple {
  family: 'ipv4' | 'ipv6';
  /** IP protocol number. */
  protocol: number;
  src: string;
  dst: string;
  /** Null for protocols without ports. */
  sport: number | null;
  dport: number | null;
  /** The packet came in (its dst is the local end); for attribution. */
  inbound?: boolean;
}

/** Who owns the socket of a tuple: sock_diag + /proc (helper/attribution). */
export interface ProcessAttributor {
  /** Resolves nulls when nobody is found; rejects only on real failures (logged, not fatal). */
  attribute(tuple: ConnectionTuple): Promise<{ uid: number | null; process: ProcessInfo | null }>;
}

/**
 * IP-to-name cache fed by DNS snooping (helper/dns). A hit is synchronous; a miss may
 * return a promise that settles within an event-loop turn (the snooper's last chance).
 */
export interface HostNames {
  lookup(ip: string): string | null | Promise<string | null>;
}

/** Rules, prompts and defaults (helper/decisions DecisionEngine). */
export interface Decider {
  /**
   * Decides one connection. `deadline` (epoch ms) is when the daemon stops waiting
   * and gives the default action; the decider should answer before it.
   */
  decide(request: ConnectionRequest, options: { deadline: number }): Promise<Decision>;
  /** The daemon gave `request` the default action at its deadline: stop working on it. */
  abandon?(request: ConnectionRequest): void;
}

/** One decision as the history keeps it before the flow ends (no byte counts yet). */
export type DecisionRecord = Pick<
  HistoryEntry,
  'request' | 'action' | 'reason' | 'ruleId' | 'decidedAt'
>;

/** Where decisions go (helper/history HistoryStore, the flow table, stats). */
export interface DecisionSink {
  /** `key`: tupleKey(requestTuple(entry.request)), which the caller has made already
   * (a sink that needs it need not build it again). */
  record(entry: DecisionRecord, key?: string): void;
}

/** Each topic the daemon's parts publish on, and what it carries. */
export interface DaemonTopics {
  flows: FlowDelta;
  stats: Stats;
  state: HelperState;
}

/** Events for subscribed clients (ServerPublisher turns them into the protocol's topics). */
export interface EventPublisher {
  publish<T extends keyof DaemonTopics>(topic: T, data: DaemonTopics[T]): void;
}

/** Ends a TCP connection's local socket (SOCK_DESTROY), so a killed flow aborts at once. */
export interface SocketDestroyer {
  /** Destroys the local sockets of a TCP tuple; resolves with how many were destroyed.
   * Rejects (NetlinkError EOPNOTSUPP) on a kernel without CONFIG_INET_DIAG_DESTROY:
   * FlowTable.kill() then deletes the conntrack entry all the same. */
  destroy(tuple: ConnectionTuple): Promise<number>;
}
