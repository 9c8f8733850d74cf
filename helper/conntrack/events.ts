import { NetlinkConnection } from '../netlink/connection.js';
import {
  AF_INET,
  AF_INET6,
  NETLINK_NETFILTER,
  NFGENMSG_LEN,
  NFNL_SUBSYS_CTNETLINK,
  NFNL_SUBSYS_CTNETLINK_EXP,
  NLM_F_CREATE,
  NLM_F_EXCL,
} from '../netlink/constants.js';
import { NetlinkDecodeError } from '../netlink/errors.js';
import { payloadLength, payloadOffset, type NetlinkMessage } from '../netlink/message.js';
import {
  NetlinkSocket,
  type NetlinkSocketOptions,
  type NetlinkTransport,
} from '../netlink/socket.js';
import * as C from './constants.js';
import { decodeFlow } from './decode.js';
import { decodeExpectationEvent, type ExpectationEvent } from './expect-decode.js';
import type { ConntrackEvent, ConntrackEventType, Family } from './types.js';
import { emitError } from '../common/emit-error.js';
import { callEach, subscribe } from '../common/listeners.js';

/** Default receive buffer of an event socket: bursts of table churn must not
 * overflow it (each event is a few hundred bytes of skb, more in truesize). */
export const DEFAULT_EVENT_RCVBUF = 64 * 1024 * 1024;
/** Default bound of an async iterator's queue. */
const DEFAULT_ITERATOR_QUEUE = 65536;

const EXP_GROUPS: Record<ConntrackEventType, number> = {
  new: C.NFNLGRP_CONNTRACK_EXP_NEW,
  update: C.NFNLGRP_CONNTRACK_EXP_UPDATE,
  destroy: C.NFNLGRP_CONNTRACK_EXP_DESTROY,
};

const GROUPS: Record<ConntrackEventType, number> = {
  new: C.NFNLGRP_CONNTRACK_NEW,
  update: C.NFNLGRP_CONNTRACK_UPDATE,
  destroy: C.NFNLGRP_CONNTRACK_DESTROY,
};

export interface ConntrackEventsOptions {
  /** Listen inside this network namespace (`ip netns` name or path). */
  netns?: string;
  /** Which conntrack groups to join; all three by default (none with
   * `events: []`, e.g. to follow only expectations). */
  events?: readonly ConntrackEventType[];
  /** Expectation groups to join (NFNLGRP_CONNTRACK_EXP_*); none by default.
   * Delivered to onExpectation listeners. */
  expectations?: readonly ConntrackEventType[];
  /** SO_RCVBUFFORCE bytes; 64 MiB by default. A small buffer loses events
   * (ENOBUFS) under load. */
  rcvbuf?: number;
  /** Only events of this family are delivered (filtered in user space: the
   * kernel's groups carry every family). */
  family?: Family;
  /** Injection seam: a transport instead of a real socket (tests, fake kernel). */
  transport?: NetlinkTransport;
  /** More socket options (slot size, slots, noEnobufs, a binding for tests). */
  socket?: Omit<NetlinkSocketOptions, 'netns' | 'groups' | 'rcvbuf'>;
}

/** Why events were lost: the kernel dropped them (ENOBUFS), a datagram was
 * truncated, or an async iterator's consumer fell behind and its queue
 * overflowed (only that iterator missed events). */
export type LostReason = 'enobufs' | 'overflow';

export interface LostInfo {
  reason: LostReason;
}

export interface ConntrackEventsCounters {
  /** Events delivered (after the family filter). */
  received: number;
  /** Times the kernel reported lost events (ENOBUFS or a truncated datagram). */
  lost: number;
  /** Events an async iterator dropped because its queue was full. */
  dropped: number;
  /** Events skipped by the family filter. */
  filtered: number;
  /** Messages that could not be decoded (reported through onError). */
  errors: number;
}

export interface IterateOptions {
  /** Events queued for a slow consumer before new ones are dropped. */
  maxQueued?: number;
  /** Ends the iteration (the iterator returns done). */
  signal?: AbortSignal;
}

/** An async iterator over events; `dropped` counts what overflowed its queue. */
export interface ConntrackEventIterator extends AsyncIterableIterator<ConntrackEvent> {
  readonly dropped: number;
}

/** The type of a ctnetlink event message, or undefined for other messages. */
export function eventTypeOf(
  msg: Pick<NetlinkMessage, 'type' | 'flags'>,
): ConntrackEventType | undefined {
  if (msg.type >> 8 !== NFNL_SUBSYS_CTNETLINK) return undefined;
  switch (msg.type & 0xff) {
    case C.IPCTNL_MSG_CT_NEW:
      // ctnetlink sends IPCT_NEW/IPCT_RELATED with both flags, other changes with neither.
      return (msg.flags & (NLM_F_CREATE | NLM_F_EXCL)) === (NLM_F_CREATE | NLM_F_EXCL)
        ? 'new'
        : 'update';
    case C.IPCTNL_MSG_CT_DELETE:
      return 'destroy';
    default:
      return undefined;
  }
}

function familyNumberOf(family: Family): number {
  return family === 'ipv4' ? AF_INET : AF_INET6;
}

interface IteratorSink {
  push(event: ConntrackEvent): void;
  end(error?: Error): void;
}

/** An iterator's queue: taking from the head is O(1), and the array sheds its
 * consumed head in bulk (when empty, or once that head is half of it). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.head++;
    if (this.head === this.items.length) this.clear();
    else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/**
 * ctnetlink events (NFNLGRP_CONNTRACK_NEW / UPDATE / DESTROY) of one network
 * namespace, decoded into typed flows. Listeners or `for await`:
 *
 *     const events = ConntrackEvents.open({ netns: 'blue' });
 *     events.onEvent((e) => console.log(e.type, e.flow.orig));
 *     events.onLost(() => resync());
 *
 * Destroy events carry little since Linux 5.11: the tuples, zone, id and
 * status, plus counters and timestamps when accounting is on.
 */
export class ConntrackEvents implements AsyncIterable<ConntrackEvent> {
  readonly counters: ConntrackEventsCounters = {
    received: 0,
    lost: 0,
    dropped: 0,
    filtered: 0,
    errors: 0,
  };
  private readonly eventListeners = new Set<(e: ConntrackEvent) => void>();
  private readonly expectationListeners = new Set<(e: ExpectationEvent) => void>();
  private readonly lostListeners = new Set<(info: LostInfo) => void>();
  private readonly errorListeners = new Set<(error: Error) => void>();
  private readonly iterators = new Set<IteratorSink>();
  private readonly familyNumber: number | undefined;
  private readonly family: Family | undefined;
  private closedFlag = false;
  private failed: Error | undefined;

  private constructor(
    readonly connection: NetlinkConnection,
    private readonly transport: NetlinkTransport,
    family: Family | undefined,
    private readonly wantsExpectations: boolean,
  ) {
    this.family = family;
    this.familyNumber = family === undefined ? undefined : familyNumberOf(family);
    connection.onNotification((msg) => this.onMessage(msg));
    connection.onLost(() => {
      this.counters.lost++;
      this.emitLost({ reason: 'enobufs' });
    });
    connection.onError((error) => this.onConnectionError(error));
  }

  static open(options: ConntrackEventsOptions = {}): ConntrackEvents {
    const kinds = options.events ?? (['new', 'update', 'destroy'] as const);
    const expKinds = options.expectations ?? [];
    if (kinds.length === 0 && expKinds.length === 0) {
      throw new RangeError('events: at least one event type is required');
    }
    const groupOf = (table: Record<ConntrackEventType, number>, k: ConntrackEventType) => {
      const g = table[k];
      if (g === undefined) throw new RangeError(`events: unknown event type '${String(k)}'`);
      return g;
    };
    const groups = [
      ...[...new Set(kinds)].map((k) => groupOf(GROUPS, k)),
      ...[...new Set(expKinds)].map((k) => groupOf(EXP_GROUPS, k)),
    ];
    const rcvbuf = options.rcvbuf ?? DEFAULT_EVENT_RCVBUF;
    if (!Number.isInteger(rcvbuf) || rcvbuf <= 0)
      throw new RangeError('rcvbuf must be a positive integer');
    const transport =
      options.transport ??
      NetlinkSocket.open(NETLINK_NETFILTER, {
        // One event per datagram: small slots, many per recvmmsg.
        slotSize: 8192,
        slots: 128,
        noEnobufs: false,
        ...options.socket,
        rcvbuf,
        groups,
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
      });
    return new ConntrackEvents(
      new NetlinkConnection(transport),
      transport,
      options.family,
      expKinds.length > 0,
    );
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** The error that stopped reading for good, if any: no more events will come. */
  get failure(): Error | undefined {
    return this.failed;
  }

  /** Every event, in the order the kernel sent them. Returns an unsubscribe function. */
  onEvent(listener: (event: ConntrackEvent) => void): () => void {
    return subscribe(this.eventListeners, listener);
  }

  /** Expectation events (when `expectations` groups were joined). Returns an unsubscribe function. */
  onExpectation(listener: (event: ExpectationEvent) => void): () => void {
    return subscribe(this.expectationListeners, listener);
  }

  /** Events were lost: the kernel's (reason 'enobufs': resync with a dump) or
   * an iterator's (reason 'overflow'). Returns an unsubscribe function. */
  onLost(listener: (info: LostInfo) => void): () => void {
    return subscribe(this.lostListeners, listener);
  }

  /** Messages that could not be decoded (the stream goes on), listener
   * exceptions, and a fatal read error (the stream ends). */
  onError(listener: (error: Error) => void): () => void {
    return subscribe(this.errorListeners, listener);
  }

  /**
   * Delivers the events the kernel has queued for this socket now, before returning,
   * instead of at the next poll wakeup. false when that is not possible (a custom
   * transport, a paused socket, or from inside this socket's own delivery).
   */
  pollNow(): boolean {
    return this.transport.drainNow?.() ?? false;
  }

  /** Lets the process exit while the socket is open (a CLI that only listens). */
  unref(): void {
    const t = this.transport as NetlinkTransport & { unref?: () => void };
    if (typeof t.unref === 'function') t.unref();
  }

  ref(): void {
    const t = this.transport as NetlinkTransport & { ref?: () => void };
    if (typeof t.ref === 'function') t.ref();
  }

  /** Closes the socket and ends every iterator. Idempotent. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const it of [...this.iterators]) it.end();
    this.iterators.clear();
    this.connection.close();
  }

  [Symbol.asyncIterator](): ConntrackEventIterator {
    return this.iterate();
  }

  /** An async iterator with a bounded queue: when the consumer falls behind
   * by more than `maxQueued` events, new events are dropped for it, counted
   * and reported to onLost listeners with reason 'overflow'. */
  iterate(options: IterateOptions = {}): ConntrackEventIterator {
    const maxQueued = options.maxQueued ?? DEFAULT_ITERATOR_QUEUE;
    if (!Number.isInteger(maxQueued) || maxQueued < 1)
      throw new RangeError('maxQueued must be a positive integer');
    const queue = new Fifo<ConntrackEvent>();
    let ended = this.closedFlag || this.failed !== undefined;
    let error: Error | undefined = this.failed;
    let dropped = 0;
    let overflowing = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const signal = options.signal;
    const onAbort = () => sink.end();
    const sink: IteratorSink = {
      push: (event) => {
        if (queue.length >= maxQueued) {
          dropped++;
          this.counters.dropped++;
          // One report per run of drops, not one per event.
          if (!overflowing) {
            overflowing = true;
            this.emitLost({ reason: 'overflow' });
          }
          return;
        }
        overflowing = false;
        queue.push(event);
        notify();
      },
      end: (e) => {
        if (ended) return;
        ended = true;
        error = e;
        this.iterators.delete(sink);
        signal?.removeEventListener('abort', onAbort);
        notify();
      },
    };
    if (!ended) {
      if (signal?.aborted) ended = true;
      else {
        this.iterators.add(sink);
        signal?.addEventListener('abort', onAbort, { once: true });
      }
    }
    const iterator: ConntrackEventIterator = {
      get dropped() {
        return dropped;
      },
      next: async (): Promise<IteratorResult<ConntrackEvent>> => {
        while (true) {
          const value = queue.shift();
          if (value !== undefined) return { value, done: false };
          if (ended) {
            if (error) {
              const e = error;
              error = undefined;
              throw e;
            }
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
      return: async (): Promise<IteratorResult<ConntrackEvent>> => {
        sink.end();
        queue.clear();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  private onMessage(msg: NetlinkMessage): void {
    if (this.closedFlag) return;
    if (msg.type >> 8 === NFNL_SUBSYS_CTNETLINK_EXP) {
      if (this.wantsExpectations) this.onExpectationMessage(msg);
      return;
    }
    const type = eventTypeOf(msg);
    if (type === undefined) return;
    let event: ConntrackEvent;
    try {
      if (payloadLength(msg) < NFGENMSG_LEN)
        throw new NetlinkDecodeError('event too short for nfgenmsg', msg.offset);
      if (this.familyNumber !== undefined) {
        const family = msg.view.getUint8(payloadOffset(msg));
        if (family !== this.familyNumber) {
          this.counters.filtered++;
          return;
        }
      }
      event = { type, flow: decodeFlow(msg) };
    } catch (error) {
      this.counters.errors++;
      this.emitError(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.counters.received++;
    callEach(this.eventListeners, event, this.onListenerThrew);
    for (const it of this.iterators) it.push(event);
  }

  private onExpectationMessage(msg: NetlinkMessage): void {
    let event: ExpectationEvent | undefined;
    try {
      event = decodeExpectationEvent(msg);
    } catch (error) {
      this.counters.errors++;
      this.emitError(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (!event) return;
    if (this.family !== undefined && event.expectation.family !== this.family) {
      this.counters.filtered++;
      return;
    }
    this.counters.received++;
    callEach(this.expectationListeners, event, this.onListenerThrew);
  }

  private emitLost(info: LostInfo): void {
    callEach(this.lostListeners, info, this.onListenerThrew);
  }

  private readonly onListenerThrew = (error: unknown): void => {
    this.emitError(error instanceof Error ? error : new Error(String(error)));
  };

  private onConnectionError(error: Error): void {
    if (error instanceof NetlinkDecodeError) {
      // A malformed datagram: its messages are skipped, reading goes on.
      this.counters.errors++;
      this.emitError(error);
      return;
    }
    // Reading stopped for good.
    this.failed = error;
    this.emitError(error);
    for (const it of [...this.iterators]) it.end(error);
  }

  private emitError(error: Error): void {
    emitError(this.errorListeners, error, 'ConntrackEventsWarning');
  }
}
