/**
 * A fake kernel behind the NetlinkTransport seam, in the spirit of
 * mdlayher/netlink's nltest.Dial: the request engine sends datagrams to it, a
 * handler (or the test, by hand) answers with replies, and the fake delivers
 * them asynchronously the way NetlinkSocket does: through a DatagramSink, as a
 * view into a reused receive slab that is poisoned after every callback, so
 * that code keeping a view past its callback reads garbage and fails a test.
 *
 *     const kernel = new FakeKernel({ handler: (req) => [datagram(ackMessage(req))] });
 *     const conn = new NetlinkConnection(kernel);
 */
import {
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from '../../helper/netlink/constants.js';
import { align4, HOST_LITTLE_ENDIAN } from '../../helper/netlink/endian.js';
import { parseMessages, type NetlinkMessage } from '../../helper/netlink/message.js';
import type { DatagramSink, NetlinkTransport } from '../../helper/netlink/socket.js';
import { NetlinkWriter } from '../../helper/netlink/writer.js';

// Captured at load time so that vi.useFakeTimers() cannot stall delivery.
const realSetImmediate = globalThis.setImmediate;
const nextTurn = (): Promise<void> => new Promise((resolve) => realSetImmediate(resolve));

/** Byte the slab is filled with after every callback. */
export const POISON = 0xee;

// ---------------------------------------------------------------------------
// Reply builders

/** The extended ACK attributes the fake can attach (NETLINK_EXT_ACK). */
export interface FakeExtack {
  message?: string;
  offset?: number;
}

/** What a reply answers: a request as the kernel received it, or just its seq. */
export type RequestRef = NetlinkMessage | number;

function seqOf(request: RequestRef): number {
  return typeof request === 'number' ? request : request.seq;
}

/** The request's bytes: its nlmsghdr only (capped) or the whole message. */
function echoOf(request: RequestRef, capped: boolean): Uint8Array {
  if (typeof request === 'number') {
    const header = new Uint8Array(NLMSG_HDRLEN);
    const view = new DataView(header.buffer);
    view.setUint32(0, NLMSG_HDRLEN, HOST_LITTLE_ENDIAN);
    view.setUint32(8, request >>> 0, HOST_LITTLE_ENDIAN);
    return header;
  }
  const length = capped ? NLMSG_HDRLEN : request.length;
  return new Uint8Array(
    request.view.buffer,
    request.view.byteOffset + request.offset,
    length,
  ).slice();
}

function int32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value | 0, HOST_LITTLE_ENDIAN);
  return bytes;
}

function writeExtack(w: NetlinkWriter, extack: FakeExtack | undefined): void {
  if (extack?.message !== undefined) w.string(NLMSGERR_ATTR_MSG, extack.message);
  if (extack?.offset !== undefined) w.u32(NLMSGERR_ATTR_OFFS, extack.offset);
}

function hasExtack(extack: FakeExtack | undefined): boolean {
  return extack !== undefined && (extack.message !== undefined || extack.offset !== undefined);
}

export interface DataMessageSpec {
  type: number;
  /** nlmsg_flags as sent by the kernel (e.g. NLM_F_MULTI, NLM_F_DUMP_INTR). */
  flags?: number;
  seq: number;
  portId?: number;
  /** Writes the payload: an nfgenmsg, attributes... */
  payload?: (w: NetlinkWriter) => void;
}

/** One data message (a reply, a dump part or a notification). */
export function dataMessage(spec: DataMessageSpec): Uint8Array {
  const w = new NetlinkWriter();
  w.beginMessage(spec.type, spec.flags ?? 0, spec.seq, spec.portId ?? 0);
  spec.payload?.(w);
  return w.endMessage().finish();
}

export interface ErrorMessageOptions {
  extack?: FakeExtack;
  /** NLM_F_CAPPED: echo only the request's header (NETLINK_CAP_ACK). Default true. */
  capped?: boolean;
  /** Extra flags. */
  flags?: number;
  portId?: number;
}

/** NLMSG_ERROR with a negative errno (0 for an ACK), the echoed request and,
 * when extack is given, NLM_F_ACK_TLVS with NLMSGERR_ATTR_MSG / OFFS. */
export function errorMessage(
  request: RequestRef,
  errno: number,
  options: ErrorMessageOptions = {},
): Uint8Array {
  const capped = options.capped ?? true;
  let flags = options.flags ?? 0;
  if (capped) flags |= NLM_F_CAPPED;
  if (hasExtack(options.extack)) flags |= NLM_F_ACK_TLVS;
  const w = new NetlinkWriter();
  w.beginMessage(NLMSG_ERROR, flags, seqOf(request), options.portId ?? 0);
  w.raw(int32(-errno));
  w.raw(echoOf(request, capped));
  writeExtack(w, options.extack);
  return w.endMessage().finish();
}

/** The ACK of a successful request: NLMSG_ERROR with error 0, NLM_F_CAPPED. */
export function ackMessage(
  request: RequestRef,
  options: Omit<ErrorMessageOptions, 'extack'> = {},
): Uint8Array {
  return errorMessage(request, 0, options);
}

export interface DoneMessageOptions {
  /** A positive errno: the dump failed. */
  errno?: number;
  extack?: FakeExtack;
  /** Extra flags besides NLM_F_MULTI (e.g. NLM_F_DUMP_INTR). */
  flags?: number;
  portId?: number;
}

/** NLMSG_DONE: an int status, then extended ACK attributes (NLM_F_ACK_TLVS). */
export function doneMessage(request: RequestRef, options: DoneMessageOptions = {}): Uint8Array {
  let flags = NLM_F_MULTI | (options.flags ?? 0);
  if (hasExtack(options.extack)) flags |= NLM_F_ACK_TLVS;
  const w = new NetlinkWriter();
  w.beginMessage(NLMSG_DONE, flags, seqOf(request), options.portId ?? 0);
  w.raw(int32(-(options.errno ?? 0)));
  writeExtack(w, options.extack);
  return w.endMessage().finish();
}

// ---------------------------------------------------------------------------
// Replies: what the fake delivers to the sink

export interface DatagramReply {
  readonly kind: 'datagram';
  readonly bytes: Uint8Array;
  readonly multicast: boolean;
  readonly senderPort: number;
  readonly truncated: boolean;
}
/** The kernel dropped messages for the socket: sink.onLost() (ENOBUFS). */
export interface LostReply {
  readonly kind: 'lost';
}
/** Reading failed for good: sink.onError(error). */
export interface ReadErrorReply {
  readonly kind: 'error';
  readonly error: Error;
}
export type Reply = DatagramReply | LostReply | ReadErrorReply;
/** A bare Uint8Array is shorthand for a unicast datagram from the kernel. */
export type ReplyLike = Reply | Uint8Array;

/** Messages packed back to back, each at a 4-byte boundary. */
export function pack(messages: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const m of messages) size += align4(m.byteLength);
  const out = new Uint8Array(size);
  let at = 0;
  for (const m of messages) {
    out.set(m, at);
    at += align4(m.byteLength);
  }
  return out;
}

/** One unicast datagram from the kernel carrying these messages. */
export function datagram(...messages: Uint8Array[]): DatagramReply {
  return {
    kind: 'datagram',
    bytes: pack(messages),
    multicast: false,
    senderPort: 0,
    truncated: false,
  };
}

/** A multicast datagram (a group notification). */
export function multicast(...messages: Uint8Array[]): DatagramReply {
  return { ...datagram(...messages), multicast: true };
}

/** A datagram unicast by another process (sender port != 0). */
export function fromPort(senderPort: number, ...messages: Uint8Array[]): DatagramReply {
  return { ...datagram(...messages), senderPort };
}

/** A datagram cut to keepBytes and flagged MSG_TRUNC. */
export function truncated(keepBytes: number, ...messages: Uint8Array[]): DatagramReply {
  const full = pack(messages);
  return {
    ...datagram(),
    bytes: full.slice(0, Math.min(keepBytes, full.byteLength)),
    truncated: true,
  };
}

export function lost(): LostReply {
  return { kind: 'lost' };
}

export function readError(error: Error): ReadErrorReply {
  return { kind: 'error', error };
}

function toReply(r: ReplyLike): Reply {
  return r instanceof Uint8Array ? datagram(r) : r;
}

// ---------------------------------------------------------------------------
// The fake transport

/** Answers one request message; return [] (or undefined) to stay silent. */
export type KernelHandler = (
  request: NetlinkMessage,
  kernel: FakeKernel,
) => readonly ReplyLike[] | undefined;

export interface FakeKernelOptions {
  portId?: number;
  handler?: KernelHandler;
  /** How deliveries are scheduled. Default 'immediate' (setImmediate). */
  schedule?: 'immediate' | 'microtask';
  /** Datagrams delivered per scheduled wakeup (recvmmsg batch). Default 1. */
  datagramsPerWakeup?: number;
  /** Pack the handler's plain datagrams for one send call into as few
   * datagrams as fit a slot. Default false. */
  packReplies?: boolean;
  /** Order of the per-request reply groups of one send call. Default 'fifo'. */
  order?: 'fifo' | 'reverse' | ((groups: Reply[][]) => Reply[][]);
  /** Bytes per receive slot; larger datagrams arrive truncated. Default 32 KiB. */
  slotSize?: number;
}

export class FakeKernel implements NetlinkTransport {
  readonly portId: number;
  handler: KernelHandler | undefined;
  /** Copies of every datagram sent, in order. */
  readonly sentDatagrams: Uint8Array[] = [];
  /** Every message of every datagram sent, parsed from the copies. */
  readonly sentMessages: NetlinkMessage[] = [];
  /** sendMany()/send() calls, as the datagrams of each. */
  readonly sendCalls: Uint8Array[][] = [];
  /** Datagrams handed to the sink (lost/error events not counted). */
  datagramsDelivered = 0;
  pauseCalls = 0;
  resumeCalls = 0;
  closeCalls = 0;
  readCalls = 0;
  paused = false;
  closed = false;
  /** The next send throws this (once). */
  failNextSend: Error | undefined;
  /** Errors the sink threw out of its callbacks (rethrown as well). */
  readonly callbackErrors: unknown[] = [];

  /** The receive slab; the sink's view starts at byte VIEW_BASE of it. */
  readonly slab: ArrayBuffer;
  readonly view: DataView;
  private static readonly VIEW_BASE = 8;
  private readonly slotSize: number;
  private readonly inbox: Reply[] = [];
  private sink: DatagramSink | undefined;
  private scheduled = false;
  private readonly schedule: 'immediate' | 'microtask';
  private readonly perWakeup: number;
  private readonly packReplies: boolean;
  private readonly order: (groups: Reply[][]) => Reply[][];

  constructor(options: FakeKernelOptions | KernelHandler = {}) {
    const o: FakeKernelOptions = typeof options === 'function' ? { handler: options } : options;
    this.portId = o.portId ?? 0x1234;
    this.handler = o.handler;
    this.schedule = o.schedule ?? 'immediate';
    this.perWakeup = o.datagramsPerWakeup ?? 1;
    this.packReplies = o.packReplies ?? false;
    const order = o.order ?? 'fifo';
    this.order =
      order === 'fifo' ? (g) => g : order === 'reverse' ? (g) => [...g].reverse() : order;
    this.slotSize = o.slotSize ?? 32 * 1024;
    // Two slots, used alternately, so that offsets vary and are never 0.
    this.slab = new ArrayBuffer(FakeKernel.VIEW_BASE + 16 + 2 * this.slotSize);
    this.view = new DataView(this.slab, FakeKernel.VIEW_BASE);
    new Uint8Array(this.slab).fill(POISON);
  }

  // --- NetlinkTransport

  send(datagram: Uint8Array): void {
    this.sendMany([datagram]);
  }

  sendMany(datagrams: readonly Uint8Array[]): void {
    if (this.closed) throw new Error('EBADF: send on a closed fake kernel');
    if (this.failNextSend) {
      const error = this.failNextSend;
      this.failNextSend = undefined;
      throw error;
    }
    const copies = datagrams.map((d) => d.slice());
    this.sendCalls.push(copies);
    const groups: Reply[][] = [];
    for (const copy of copies) {
      this.sentDatagrams.push(copy);
      for (const msg of parseMessages(copy)) {
        this.sentMessages.push(msg);
        const replies = this.handler?.(msg, this) ?? [];
        groups.push(replies.map(toReply));
      }
    }
    let replies = this.order(groups).flat();
    if (this.packReplies) replies = this.packDatagrams(replies);
    this.enqueue(replies);
  }

  read(sink: DatagramSink): void {
    if (this.sink) throw new Error('FakeKernel: read() called twice');
    this.readCalls++;
    this.sink = sink;
    this.schedulePump();
  }

  pause(): void {
    this.pauseCalls++;
    this.paused = true;
  }

  resume(): void {
    this.resumeCalls++;
    this.paused = false;
    this.schedulePump();
  }

  close(): void {
    this.closeCalls++;
    this.closed = true;
    this.inbox.length = 0;
  }

  // --- Test controls

  /** As NetlinkSocket.drainNow(): delivers everything queued now, before returning. */
  drainNow(): boolean {
    if (this.paused || this.closed || !this.sink) return false;
    for (let next = this.inbox.shift(); next; next = this.inbox.shift()) {
      this.deliver(this.sink, next);
      if (this.paused || this.closed) break;
    }
    return true;
  }

  /** Queues replies for delivery (by hand, in any order). */
  reply(...replies: ReplyLike[]): void {
    if (this.closed) throw new Error('FakeKernel: reply on a closed transport');
    this.enqueue(replies.map(toReply));
  }

  /** Datagrams and events waiting for delivery. */
  get queued(): number {
    return this.inbox.length;
  }

  /** The most recently sent message. */
  lastRequest(): NetlinkMessage {
    const last = this.sentMessages[this.sentMessages.length - 1];
    if (!last) throw new Error('FakeKernel: nothing sent yet');
    return last;
  }

  /** The i-th message sent. */
  request(i: number): NetlinkMessage {
    const msg = this.sentMessages[i];
    if (!msg) throw new Error(`FakeKernel: only ${this.sentMessages.length} message(s) sent`);
    return msg;
  }

  /** Resolves once `count` messages have been sent in total. */
  async waitForSent(count: number, maxTurns = 1000): Promise<void> {
    for (let i = 0; i < maxTurns; i++) {
      if (this.sentMessages.length >= count) return;
      await nextTurn();
    }
    throw new Error(`FakeKernel: ${this.sentMessages.length} of ${count} message(s) sent`);
  }

  /** Resolves once nothing is left to deliver (or delivery is paused or the
   * transport closed), after promise chains that depend on it have run. */
  async idle(maxTurns = 10_000): Promise<void> {
    for (let i = 0; i < maxTurns; i++) {
      await nextTurn();
      if (this.scheduled) continue;
      if (this.inbox.length === 0 || this.paused || this.closed || !this.sink) {
        // One more turn: flushes scheduled from settled requests may send more.
        await nextTurn();
        if (!this.scheduled && (this.inbox.length === 0 || this.paused || this.closed)) return;
      }
    }
    throw new Error('FakeKernel: deliveries did not settle');
  }

  // --- Delivery

  private enqueue(replies: readonly Reply[]): void {
    this.inbox.push(...replies);
    this.schedulePump();
  }

  private packDatagrams(replies: readonly Reply[]): Reply[] {
    const out: Reply[] = [];
    let run: Uint8Array[] = [];
    let size = 0;
    const seal = () => {
      if (run.length > 0) out.push(datagram(...run));
      run = [];
      size = 0;
    };
    for (const r of replies) {
      const plain = r.kind === 'datagram' && !r.multicast && !r.truncated && r.senderPort === 0;
      if (!plain) {
        seal();
        out.push(r);
        continue;
      }
      const len = align4(r.bytes.byteLength);
      if (size + len > this.slotSize) seal();
      run.push(r.bytes);
      size += len;
    }
    seal();
    return out;
  }

  private schedulePump(): void {
    if (this.scheduled || this.paused || this.closed || !this.sink) return;
    if (this.inbox.length === 0) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.pump();
    };
    if (this.schedule === 'microtask') queueMicrotask(run);
    else realSetImmediate(run);
  }

  private pump(): void {
    try {
      for (let n = 0; n < this.perWakeup; n++) {
        if (this.paused || this.closed || !this.sink) return;
        const next = this.inbox.shift();
        if (!next) return;
        this.deliver(this.sink, next);
      }
    } finally {
      this.schedulePump();
    }
  }

  private deliver(sink: DatagramSink, reply: Reply): void {
    try {
      if (reply.kind === 'lost') sink.onLost();
      else if (reply.kind === 'error') sink.onError(reply.error);
      else this.deliverDatagram(sink, reply);
    } catch (error) {
      this.callbackErrors.push(error);
      throw error;
    }
  }

  private deliverDatagram(sink: DatagramSink, reply: DatagramReply): void {
    const slot = this.datagramsDelivered % 2;
    this.datagramsDelivered++;
    const offset = 16 + slot * this.slotSize;
    let bytes = reply.bytes;
    let cut = reply.truncated;
    if (bytes.byteLength > this.slotSize) {
      bytes = bytes.subarray(0, this.slotSize);
      cut = true;
    }
    new Uint8Array(this.slab, this.view.byteOffset + offset, bytes.byteLength).set(bytes);
    try {
      sink.onDatagram(this.view, offset, bytes.byteLength, {
        truncated: cut,
        multicast: reply.multicast,
        senderPort: reply.senderPort,
      });
    } finally {
      // The slot is reused: whatever kept a view now reads garbage.
      new Uint8Array(this.slab).fill(POISON);
    }
  }
}
