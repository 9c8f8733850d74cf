import { parseDoneMessage, parseErrorMessage } from './ack.js';
import {
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
} from './constants.js';
import { align4, HOST_LITTLE_ENDIAN } from './endian.js';
import {
  DumpInterruptedError,
  NetlinkAbortError,
  NetlinkDecodeError,
  NetlinkError,
  NetlinkTimeoutError,
} from './errors.js';
import { errnoNumber } from './errno.js';
import { messageAt, type NetlinkMessage } from './message.js';
import type { DatagramSink, NetlinkTransport } from './socket.js';

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

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Name used in errors ("ctnetlink get"). */
  operation?: string;
}

export interface DumpOptions extends RequestOptions {
  /** Called instead of throwing DumpInterruptedError when NLM_F_DUMP_INTR is seen. */
  onInterrupted?: () => void;
}

export interface DumpResult {
  messages: number;
  interrupted: boolean;
}

interface Pending {
  seq: number;
  operation: string;
  timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  message: Uint8Array;
  /** A dump's messages go to onMessage; a request's replies are collected. */
  dump: boolean;
  onMessage: (msg: NetlinkMessage) => void;
  /** The async iterator needs messages that outlive the receive slab. */
  copy: boolean;
  replies: NetlinkMessage[];
  messages: number;
  interrupted: boolean;
  /** Abandoned (aborted/broken off): drop what still arrives until the end. */
  discarding: boolean;
  resolve: (result: { replies: NetlinkMessage[]; messages: number; interrupted: boolean }) => void;
  reject: (error: Error) => void;
  /** Set for the members of a requestBatch(). */
  batch: Batch | undefined;
  index: number;
  /** Sent without NLM_F_ACK: success is known from the barrier after it. */
  silent: boolean;
  /** A barrier (NLMSG_NOOP with an ACK) settles these when it is answered. */
  barrierFor: Pending[] | undefined;
}

/** The outcome of requestBatch(). */
export interface BatchResult {
  /** Requests the kernel acknowledged without error. */
  ok: number;
  /** Requests that were refused (NetlinkError) or could not be built, by position. */
  errors: { index: number; error: Error }[];
}

interface Batch {
  source: Iterator<Uint8Array | Error>;
  ackEach: boolean;
  next: number;
  exhausted: boolean;
  outstanding: number;
  ok: number;
  errors: { index: number; error: Error }[];
  operation: string;
  timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  progress: number;
  done: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (result: BatchResult) => void;
  reject: (error: Error) => void;
}

/** A request in its initial state; callers give what differs. */
function newPending(
  operation: string,
  message: Uint8Array,
  fields: Partial<Pending> = {},
): Pending {
  return {
    seq: 0,
    operation,
    timeoutMs: 0,
    timer: undefined,
    signal: undefined,
    onAbort: undefined,
    message,
    dump: false,
    onMessage: () => {},
    copy: false,
    replies: [],
    messages: 0,
    interrupted: false,
    discarding: false,
    resolve: () => {},
    reject: () => {},
    batch: undefined,
    index: 0,
    silent: false,
    barrierFor: undefined,
    ...fields,
  };
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
 * The request engine over one netlink socket: sequence numbers, an ACK on
 * every request, concurrent requests matched by seq, dumps (one at a time,
 * as the kernel allows one per socket) as callbacks or AsyncIterables,
 * timeouts and AbortSignal. Unsolicited and multicast messages go to
 * notification listeners.
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
  private readonly batchQueue: Batch[] = [];
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
    return this.finishDump(result, options);
  }

  /** A dump as an AsyncIterable of messages that stay valid. Reading pauses
   * when the consumer falls behind; breaking off abandons the dump. */
  dump(message: Uint8Array, options: DumpOptions = {}): AsyncIterable<NetlinkMessage> {
    return {
      [Symbol.asyncIterator]: () => this.dumpIterator(message, options),
    };
  }

  private dumpIterator(message: Uint8Array, options: DumpOptions): AsyncIterator<NetlinkMessage> {
    const buffered: NetlinkMessage[] = [];
    let head = 0;
    let done = false;
    let failure: Error | undefined;
    // Every waiting next() call: the protocol allows several at once.
    const waiters: (() => void)[] = [];
    let pausedHere = false;
    const notify = () => {
      for (const w of waiters.splice(0)) w();
    };
    const unpause = () => {
      if (pausedHere) {
        pausedHere = false;
        this.releasePause();
      }
    };
    let pending: Pending | undefined;
    const started = this.enqueue(
      message,
      options,
      true,
      (msg) => {
        buffered.push(msg);
        if (buffered.length - head >= this.highWaterMark && !pausedHere) {
          pausedHere = true;
          this.acquirePause();
        }
        notify();
      },
      true,
      (p) => (pending = p),
    ).then(
      (result) => {
        try {
          this.finishDump(result, options);
        } catch (error) {
          failure = error as Error;
        }
        done = true;
        notify();
      },
      (error: Error) => {
        failure = error;
        done = true;
        notify();
      },
    );
    void started;
    return {
      next: async (): Promise<IteratorResult<NetlinkMessage>> => {
        while (true) {
          if (head < buffered.length) {
            const value = buffered[head]!;
            buffered[head++] = undefined as unknown as NetlinkMessage;
            if (head > 1024 && head * 2 > buffered.length) {
              buffered.splice(0, head);
              head = 0;
            }
            if (buffered.length - head < this.highWaterMark / 2) unpause();
            return { value, done: false };
          }
          unpause();
          if (failure) throw failure;
          if (done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => waiters.push(resolve));
        }
      },
      return: async (): Promise<IteratorResult<NetlinkMessage>> => {
        unpause();
        if (!done && pending) this.abandon(pending);
        done = true;
        buffered.length = 0;
        notify(); // a next() still waiting ends too
        return { value: undefined, done: true };
      },
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
    return new Promise((resolve, reject) => {
      const b: Batch = {
        source: messages[Symbol.iterator](),
        ackEach: options.ackEach ?? false,
        next: 0,
        exhausted: false,
        outstanding: 0,
        ok: 0,
        errors: [],
        operation,
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        timer: undefined,
        progress: 0,
        done: false,
        signal: options.signal,
        onAbort: undefined,
        resolve,
        reject,
      };
      if (b.signal) {
        b.onAbort = () => this.failBatch(b, new NetlinkAbortError(operation));
        b.signal.addEventListener('abort', b.onAbort, { once: true });
      }
      if (b.timeoutMs > 0 && Number.isFinite(b.timeoutMs)) {
        let seen = -1;
        const check = () => {
          if (b.done) return;
          if (b.progress !== seen) {
            seen = b.progress;
            b.timer = setTimeout(check, b.timeoutMs);
            return;
          }
          this.failBatch(b, new NetlinkTimeoutError(operation, b.timeoutMs));
        };
        b.timer = setTimeout(check, b.timeoutMs);
      }
      this.batchQueue.push(b);
      this.scheduleFlush();
    });
  }

  /** Pulls the next message of a batch into a member request, or undefined when none is left. */
  private pullBatchMember(b: Batch): Pending | undefined {
    while (!b.exhausted) {
      let item: IteratorResult<Uint8Array | Error>;
      try {
        item = b.source.next();
      } catch (error) {
        this.failBatch(b, error as Error);
        return undefined;
      }
      if (item.done) {
        b.exhausted = true;
        break;
      }
      const index = b.next++;
      if (item.value instanceof Error) {
        b.errors.push({ index, error: item.value });
        continue;
      }
      if (item.value.byteLength < 16) {
        b.errors.push({ index, error: new RangeError('message shorter than nlmsghdr') });
        continue;
      }
      b.outstanding++;
      return newPending(b.operation, item.value, { batch: b, index, silent: !b.ackEach });
    }
    this.finishBatchIfDone(b);
    return undefined;
  }

  private finishBatchIfDone(b: Batch): void {
    if (b.done || !b.exhausted || b.outstanding > 0) return;
    b.done = true;
    this.releaseBatch(b);
    b.errors.sort((x, y) => x.index - y.index);
    b.resolve({ ok: b.ok, errors: b.errors });
  }

  private releaseBatch(b: Batch): void {
    if (b.timer) clearTimeout(b.timer);
    if (b.signal && b.onAbort) b.signal.removeEventListener('abort', b.onAbort);
    const i = this.batchQueue.indexOf(b);
    if (i >= 0) this.batchQueue.splice(i, 1);
  }

  private failBatch(b: Batch, error: Error): void {
    if (b.done) return;
    b.done = true;
    b.exhausted = true;
    this.releaseBatch(b);
    // Members still in flight are dropped when their answers come.
    for (const p of this.pending.values()) if (p.batch === b) p.discarding = true;
    b.reject(error);
  }

  private settleBatchMember(b: Batch, p: Pending, error?: Error): void {
    b.outstanding--;
    b.progress++;
    if (b.done) return;
    if (!error) b.ok++;
    else if (error instanceof NetlinkError && error.operation === b.operation)
      b.errors.push({ index: p.index, error });
    else {
      this.failBatch(b, error);
      return;
    }
    this.finishBatchIfDone(b);
  }

  private finishDump(
    result: { messages: number; interrupted: boolean },
    options: DumpOptions,
  ): DumpResult {
    if (result.interrupted) {
      if (options.onInterrupted) options.onInterrupted();
      else throw new DumpInterruptedError(options.operation ?? 'dump');
    }
    return { messages: result.messages, interrupted: result.interrupted };
  }

  private enqueue(
    message: Uint8Array,
    options: RequestOptions,
    dump: boolean,
    onMessage: (msg: NetlinkMessage) => void,
    copy: boolean,
    expose?: (p: Pending) => void,
  ): Promise<{ replies: NetlinkMessage[]; messages: number; interrupted: boolean }> {
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
    const view = new DataView(p.message.buffer, p.message.byteOffset, p.message.byteLength);
    const base = view.getUint16(6, HOST_LITTLE_ENDIAN) | NLM_F_REQUEST;
    const flags = p.silent ? base & ~NLM_F_ACK : base | NLM_F_ACK;
    view.setUint16(6, p.dump ? flags | NLM_F_DUMP : flags, HOST_LITTLE_ENDIAN);
    view.setUint32(8, p.seq, HOST_LITTLE_ENDIAN);
    view.setUint32(12, 0, HOST_LITTLE_ENDIAN);
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
    while (this.batchQueue.length > 0 && this.inFlight < this.maxInFlight) {
      const member = this.pullBatchMember(this.batchQueue[0]!);
      if (!member) {
        if (this.batchQueue[0]?.exhausted) this.batchQueue.shift();
        continue;
      }
      this.stamp(member);
      this.inFlight++;
      batch.push(member);
    }
    if (batch.length > 0) this.transmit(batch);
  }

  private transmit(batch: Pending[]): void {
    const datagrams: Uint8Array[] = [];
    let group: Pending[] = [];
    let size = 0;
    const seal = () => {
      if (group.length === 0) return;
      const silent = group.filter((g) => g.silent);
      if (silent.length > 0) {
        const barrier = this.barrier(silent);
        group.push(barrier);
        size += barrier.message.byteLength;
      }
      if (group.length === 1) datagrams.push(group[0]!.message);
      else {
        const out = new Uint8Array(size);
        let at = 0;
        for (const g of group) {
          out.set(g.message, at);
          at += (g.message.byteLength + 3) & ~3;
        }
        datagrams.push(out);
      }
      group = [];
      size = 0;
    };
    let groupSilent = false;
    for (const p of batch) {
      const len = (p.message.byteLength + 3) & ~3;
      // Room is kept for a barrier (16 bytes) after silent requests.
      const reserve = groupSilent || p.silent ? 16 : 0;
      if (size + len + reserve > this.maxDatagram) {
        seal();
        groupSilent = false;
      }
      group.push(p);
      size += len;
      groupSilent ||= p.silent;
    }
    seal();
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

  /** A NLMSG_NOOP with an ACK: the kernel handles a datagram's messages in
   * order, so its ACK means every silent request before it succeeded (a
   * refusal would have been answered before it). */
  private barrier(members: Pending[]): Pending {
    const message = new Uint8Array(16);
    const view = new DataView(message.buffer);
    view.setUint32(0, 16, HOST_LITTLE_ENDIAN);
    view.setUint16(4, NLMSG_NOOP, HOST_LITTLE_ENDIAN);
    const settleMembers = (error?: Error) => {
      for (const m of members) if (this.pending.get(m.seq) === m) this.settle(m, error);
    };
    const p = newPending(members[0]!.operation, message, {
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
    this.route(p, msg);
  }

  private route(p: Pending, msg: NetlinkMessage): void {
    if (msg.type === NLMSG_NOOP || msg.type === NLMSG_OVERRUN) return;
    if (msg.type === NLMSG_ERROR) {
      const status = parseErrorMessage(msg);
      if (status.errno !== 0) {
        this.settle(p, new NetlinkError(status.errno, p.operation, status.extack));
      } else {
        // For a dump, a plain ACK means the kernel did not start one (a
        // started dump suppresses the ACK and ends with NLMSG_DONE).
        this.settle(p);
      }
      return;
    }
    if (p.dump && msg.type === NLMSG_DONE) {
      // The kernel checks dump consistency for NLMSG_DONE too.
      if (msg.flags & NLM_F_DUMP_INTR) p.interrupted = true;
      const status = parseDoneMessage(msg);
      if (status.errno !== 0)
        this.settle(p, new NetlinkError(status.errno, p.operation, status.extack));
      else this.settle(p);
      return;
    }
    if (p.discarding) return;
    if (msg.flags & NLM_F_DUMP_INTR) p.interrupted = true;
    p.messages++;
    if (p.dump) {
      try {
        p.onMessage(msg);
      } catch (error) {
        // The consumer failed: stop delivering, report its error, drain the rest.
        this.abandon(p);
        p.reject(error as Error);
      }
    } else {
      p.replies.push(msg);
    }
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
    if (p.batch) this.settleBatchMember(p.batch, p, error);
    else if (!p.discarding) {
      if (error) p.reject(error);
      else p.resolve({ replies: p.replies, messages: p.messages, interrupted: p.interrupted });
    }
    if (this.queue.length > 0 || this.dumpQueue.length > 0 || this.batchQueue.length > 0)
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
    for (const p of [...this.pending.values()]) this.settle(p, error);
    for (const p of [...this.queue, ...this.dumpQueue]) {
      this.dequeue(p);
      p.reject(error);
    }
    for (const b of [...this.batchQueue]) this.failBatch(b, error);
  }

  /** Rejects everything outstanding and closes the socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const error = new NetlinkAbortError('netlink', 'connection closed');
    for (const p of [...this.pending.values()]) this.settle(p, error);
    for (const p of [...this.queue, ...this.dumpQueue]) {
      this.dequeue(p);
      p.reject(error);
    }
    for (const b of [...this.batchQueue]) this.failBatch(b, error);
    this.transport.close();
  }
}
