/**
 * The request engine over one netlink socket. Its parts: requests.ts (the
 * records), batch.ts (requestBatch), datagrams.ts (headers and packing),
 * dump-iterator.ts (dumps as AsyncIterables), replies.ts (what an answer does).
 */
import { BatchQueue } from './batch.js';
import { barrierMessage, packDatagrams, writeRequestHeader } from './datagrams.js';
import { dumpIterator, finishDump, type DumpOptions, type DumpResult } from './dump-iterator.js';
import { NLMSG_DONE, NLMSG_ERROR } from './constants.js';
import { align4 } from './endian.js';
import {
  NetlinkAbortError,
  NetlinkDecodeError,
  NetlinkError,
  NetlinkTimeoutError,
} from './errors.js';
import { errnoNumber } from './errno.js';
import { messageAt, type NetlinkMessage } from './message.js';
import { routeReply, type ReplyHandlers } from './replies.js';
import {
  newPending,
  type BatchResult,
  type Pending,
  type RequestOptions,
  type RequestOutcome,
} from './requests.js';
import type { DatagramSink, NetlinkTransport } from './socket.js';

export type { BatchResult, DumpOptions, DumpResult, RequestOptions };

const ENOBUFS = errnoNumber('ENOBUFS') ?? 105;

export interface ConnectionOptions {
  /** Default time a request may wait for its answer (ms). */
  timeoutMs?: number;
  /** Requests sent but not yet answered; more wait in a queue. Bounds the
   * ACKs that can pile up in the receive buffer. */
  maxInFlight?: number;
  /** Requests queued in one tick are packed into datagrams of at most this size. */
  maxDatagram?: number;
  /** Messages an async dump iterator buffers before reading is paused. */
  dumpHighWaterMark?: number;
}

export interface ConnectionCounters {
  sent: number;
  datagramsSent: number;
  received: number;
  stray: number;
  foreign: number;
  lost: number;
}

/**
 * Sequence numbers, an ACK on every request, concurrent requests matched by
 * seq, dumps (one at a time, as the kernel allows one per socket) as
 * callbacks or AsyncIterables, timeouts and AbortSignal. Unsolicited and
 * multicast messages go to notification listeners.
 */
export class NetlinkConnection {
  readonly counters: ConnectionCounters = {
    sent: 0,
    datagramsSent: 0,
    received: 0,
    stray: 0,
    foreign: 0,
    lost: 0,
  };
  private readonly pending = new Map<number, Pending>();
  private readonly queue: Pending[] = [];
  private readonly dumpQueue: Pending[] = [];
  private readonly batches = new BatchQueue(() => this.pending.values());
  private activeDump: Pending | undefined;
  private inFlight = 0;
  private seq = 0;
  private flushScheduled = false;
  private closed = false;
  private pausedBy = 0;
  private readonly notificationListeners: ((msg: NetlinkMessage) => void)[] = [];
  private readonly lostListeners: (() => void)[] = [];
  private readonly errorListeners: ((error: Error) => void)[] = [];
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly maxDatagram: number;
  private readonly highWaterMark: number;
  private readonly replyHandlers: ReplyHandlers = {
    settle: (p, error) => this.settle(p, error),
    abandon: (p) => this.abandon(p),
  };

  constructor(
    readonly transport: NetlinkTransport,
    options: ConnectionOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxInFlight = options.maxInFlight ?? 256;
    this.maxDatagram = options.maxDatagram ?? 64 * 1024;
    this.highWaterMark = options.dumpHighWaterMark ?? 4096;
    const sink: DatagramSink = {
      onDatagram: (view, offset, length, info) => this.onDatagram(view, offset, length, info),
      onLost: () => this.handleLost(),
      onError: (error) => this.failAll(error),
    };
    transport.read(sink);
  }

  get portId(): number {
    return this.transport.portId;
  }

  /** Unsolicited messages: multicast events, or seq 0 messages. The message
   * is a view into the receive slab, valid during the call only. */
  onNotification(listener: (msg: NetlinkMessage) => void): void {
    this.notificationListeners.push(listener);
  }
  /** The kernel dropped messages for this socket (ENOBUFS). */
  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  private handleLost(): void {
    this.counters.lost++;
    for (const l of this.lostListeners) l();
    // A lost ACK or dump part would otherwise surface only as a timeout.
    const error = new NetlinkError(ENOBUFS, 'receive', {
      message: 'socket receive buffer overflowed; replies were lost',
    });
    for (const p of [...this.pending.values()]) this.settle(p, error);
  }
  onError(listener: (error: Error) => void): void {
    this.errorListeners.push(listener);
  }

  /** Sends one request with NLM_F_REQUEST|NLM_F_ACK and resolves with the
   * replies (copied) once the kernel ACKs it; rejects with NetlinkError. */
  async request(message: Uint8Array, options: RequestOptions = {}): Promise<NetlinkMessage[]> {
    const result = await this.enqueue(message, options, false, () => {}, true);
    return result.replies;
  }

  /** Sends a dump request and calls onMessage for every message, zero-copy
   * (the view is valid only during the call). Resolves when NLMSG_DONE
   * arrives; throws DumpInterruptedError if the kernel flagged the dump
   * inconsistent, unless options.onInterrupted is given. */
  async dumpEach(
    message: Uint8Array,
    onMessage: (msg: NetlinkMessage) => void,
    options: DumpOptions = {},
  ): Promise<DumpResult> {
    const result = await this.enqueue(message, options, true, onMessage, false);
    return finishDump(result, options);
  }

  /** A dump as an AsyncIterable of messages that stay valid. Reading pauses
   * when the consumer falls behind; breaking off abandons the dump. */
  dump(message: Uint8Array, options: DumpOptions = {}): AsyncIterable<NetlinkMessage> {
    return {
      [Symbol.asyncIterator]: () =>
        dumpIterator(
          {
            start: (onMessage, expose) =>
              this.enqueue(message, options, true, onMessage, true, expose),
            highWaterMark: this.highWaterMark,
            pause: () => this.acquirePause(),
            resume: () => this.releasePause(),
            abandon: (p) => this.abandon(p),
          },
          options,
        ),
    };
  }

  /**
   * Sends many requests with as few syscalls as the window allows, one
   * promise and one timer for all: the fast path for bulk writes (creating
   * 250k conntrack entries). Messages are pulled from `messages` lazily; an
   * Error in place of a message is recorded for that index and not sent.
   * Members go without NLM_F_ACK (unless ackEach): the kernel answers only
   * refusals, and a NLMSG_NOOP barrier with an ACK after each datagram's
   * members tells that the rest succeeded, which halves the kernel's work and
   * ours. Kernel refusals are reported per index; a timeout, lost ACKs (ENOBUFS),
   * an abort or a closed connection reject the whole batch.
   */
  requestBatch(
    messages: Iterable<Uint8Array | Error>,
    options: RequestOptions & { ackEach?: boolean } = {},
  ): Promise<BatchResult> {
    const operation = options.operation ?? 'batch';
    if (this.closed) return Promise.reject(new NetlinkAbortError(operation, 'connection closed'));
    if (options.signal?.aborted) return Promise.reject(new NetlinkAbortError(operation));
    const result = this.batches.add(messages, options, operation, this.timeoutMs);
    this.scheduleFlush();
    return result;
  }

  private enqueue(
    message: Uint8Array,
    options: RequestOptions,
    dump: boolean,
    onMessage: (msg: NetlinkMessage) => void,
    copy: boolean,
    expose?: (p: Pending) => void,
  ): Promise<RequestOutcome> {
    const operation = options.operation ?? (dump ? 'dump' : 'request');
    if (this.closed) return Promise.reject(new NetlinkAbortError(operation, 'connection closed'));
    if (message.byteLength < 16)
      return Promise.reject(new RangeError('message shorter than nlmsghdr'));
    if (options.signal?.aborted) return Promise.reject(new NetlinkAbortError(operation));
    return new Promise((resolve, reject) => {
      const p = newPending(operation, message, {
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        signal: options.signal,
        dump,
        onMessage,
        copy,
        resolve,
        reject,
      });
      if (p.signal) {
        p.onAbort = () => {
          if (p.seq !== 0) this.abandon(p);
          else this.dequeue(p);
          reject(new NetlinkAbortError(operation));
        };
        p.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      expose?.(p);
      if (dump) this.dumpQueue.push(p);
      else this.queue.push(p);
      this.scheduleFlush();
    });
  }

  private dequeue(p: Pending): void {
    const list = p.dump ? this.dumpQueue : this.queue;
    const i = list.indexOf(p);
    if (i >= 0) list.splice(i, 1);
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private nextSeq(): number {
    do {
      this.seq = (this.seq + 1) >>> 0;
    } while (this.seq === 0 || this.pending.has(this.seq));
    return this.seq;
  }

  private stamp(p: Pending): void {
    p.seq = this.nextSeq();
    writeRequestHeader(p.message, p.seq, p.silent, p.dump);
    this.pending.set(p.seq, p);
    this.armTimer(p);
  }

  /** Arms the request's timeout. A dump times out only after a whole period
   * without a message while not paused by its consumer; progress is checked
   * when the timer fires, because re-arming a timer per message costs more
   * than decoding it. */
  private armTimer(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    if (!(p.timeoutMs > 0 && Number.isFinite(p.timeoutMs))) return;
    let seen = p.messages;
    const check = () => {
      if (p.dump && (p.messages !== seen || this.pausedBy > 0)) {
        seen = p.messages;
        p.timer = setTimeout(check, p.timeoutMs);
        return;
      }
      this.settle(p, new NetlinkTimeoutError(p.operation, p.timeoutMs));
    };
    p.timer = setTimeout(check, p.timeoutMs);
  }

  private flush(): void {
    if (this.closed) return;
    if (!this.activeDump && this.dumpQueue.length > 0) {
      const p = this.dumpQueue.shift()!;
      this.stamp(p);
      this.activeDump = p;
      this.transmit([p]);
    }
    const batch: Pending[] = [];
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const p = this.queue.shift()!;
      this.stamp(p);
      this.inFlight++;
      batch.push(p);
    }
    while (this.batches.length > 0 && this.inFlight < this.maxInFlight) {
      const member = this.batches.nextMember();
      if (!member) break;
      this.stamp(member);
      this.inFlight++;
      batch.push(member);
    }
    if (batch.length > 0) this.transmit(batch);
  }

  private transmit(batch: Pending[]): void {
    const datagrams = packDatagrams(batch, this.maxDatagram, (silent) => this.barrier(silent));
    this.counters.sent += batch.length;
    this.counters.datagramsSent += datagrams.length;
    // Bulk batch members go through the transport's sender thread when it
    // has one: the kernel then works on this datagram while we encode the next.
    if (
      this.transport.sendManyQueued &&
      batch.every((p) => p.batch !== undefined || p.barrierFor)
    ) {
      this.transport.sendManyQueued(datagrams).catch((error: Error) => {
        for (const p of batch) this.settle(p, error);
      });
      return;
    }
    try {
      this.transport.sendMany(datagrams);
    } catch (error) {
      for (const p of batch) this.settle(p, error as Error);
    }
  }

  /** A stamped barrier request that settles `members` when the kernel ACKs it. */
  private barrier(members: Pending[]): Pending {
    const settleMembers = (error?: Error) => {
      for (const m of members) if (this.pending.get(m.seq) === m) this.settle(m, error);
    };
    const p = newPending(members[0]!.operation, barrierMessage(), {
      resolve: () => settleMembers(),
      reject: (error) => settleMembers(error),
      barrierFor: members,
    });
    this.stamp(p);
    this.inFlight++;
    return p;
  }

  private onDatagram(
    view: DataView,
    offset: number,
    length: number,
    info: { truncated: boolean; multicast: boolean; senderPort: number },
  ): void {
    if (info.senderPort !== 0) {
      // Only the kernel may talk to us; another process could unicast to our port.
      this.counters.foreign++;
      return;
    }
    if (info.truncated) {
      this.handleLost();
      return;
    }
    // A loop rather than forEachMessage: no closure per datagram on the hot path.
    this.copyView = undefined;
    const end = offset + length;
    try {
      if (offset < 0 || end > view.byteLength || length < 0) {
        throw new NetlinkDecodeError(`message run [${offset}, ${end}) outside buffer`, offset);
      }
      let at = offset;
      while (at < end) {
        const msg = messageAt(view, at, end);
        this.onMessage(msg, info.multicast, view, offset, length);
        at += Math.min(align4(msg.length), end - at);
      }
    } catch (error) {
      if (!(error instanceof NetlinkDecodeError)) throw error;
      for (const l of this.errorListeners) l(error);
    } finally {
      this.copyView = undefined;
    }
  }

  /** A copy of the datagram being read, made once for requests that keep replies. */
  private copyView: DataView | undefined;

  private onMessage(
    msg: NetlinkMessage,
    multicast: boolean,
    view: DataView,
    offset: number,
    length: number,
  ): void {
    this.counters.received++;
    if (multicast || msg.seq === 0) {
      for (const l of this.notificationListeners) {
        try {
          l(msg);
        } catch (error) {
          // A listener's failure must not end the read loop or skip the rest.
          for (const e of this.errorListeners) e(error as Error);
        }
      }
      return;
    }
    const p = this.pending.get(msg.seq);
    if (!p) {
      this.counters.stray++;
      return;
    }
    if (p.copy && msg.type !== NLMSG_ERROR && msg.type !== NLMSG_DONE && !p.discarding) {
      this.copyView ??= new DataView(
        view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + length),
      );
      msg = { ...msg, view: this.copyView, offset: msg.offset - offset };
    }
    routeReply(p, msg, this.replyHandlers);
  }

  /** Stops delivering a started request's messages; its end is still awaited
   * so that the socket is free for the next dump. */
  private abandon(p: Pending): void {
    p.discarding = true;
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
  }

  private settle(p: Pending, error?: Error): void {
    if (this.pending.get(p.seq) !== p) return;
    this.pending.delete(p.seq);
    if (p.timer) clearTimeout(p.timer);
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    if (p.dump) {
      if (this.activeDump === p) this.activeDump = undefined;
    } else {
      this.inFlight--;
    }
    if (p.batch) this.batches.settleMember(p.batch, p, error);
    else if (!p.discarding) {
      if (error) p.reject(error);
      else p.resolve({ replies: p.replies, messages: p.messages, interrupted: p.interrupted });
    }
    if (this.queue.length > 0 || this.dumpQueue.length > 0 || this.batches.length > 0)
      this.scheduleFlush();
  }

  private acquirePause(): void {
    if (this.pausedBy++ === 0) this.transport.pause();
  }

  private releasePause(): void {
    if (--this.pausedBy === 0 && !this.closed) this.transport.resume();
  }

  private failAll(error: Error): void {
    for (const l of this.errorListeners) l(error);
    this.rejectOutstanding(error);
  }

  /** Rejects everything outstanding and closes the socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectOutstanding(new NetlinkAbortError('netlink', 'connection closed'));
    this.transport.close();
  }

  private rejectOutstanding(error: Error): void {
    for (const p of [...this.pending.values()]) this.settle(p, error);
    for (const p of [...this.queue, ...this.dumpQueue]) {
      this.dequeue(p);
      p.reject(error);
    }
    this.batches.failAll(error);
  }
}
