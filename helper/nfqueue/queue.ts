import { parseErrorMessage } from '../netlink/ack.js';
import { AttributeReader } from '../netlink/attributes.js';
import {
  NETLINK_NETFILTER,
  NFGENMSG_LEN,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
} from '../netlink/constants.js';
import { NetlinkConnection } from '../netlink/connection.js';
import { HOST_LITTLE_ENDIAN } from '../netlink/endian.js';
import { errnoName } from '../netlink/errno.js';
import { NetlinkDecodeError, NetlinkError } from '../netlink/errors.js';
import type { NetlinkMessage } from '../netlink/message.js';
import { NetlinkSocket, type NetlinkTransport } from '../netlink/socket.js';
import * as Q from './constants.js';
import { ctInfoName, decodeQueuedPacket, NFQNL_PACKET_TYPE } from './decode.js';
import {
  copyModeValue,
  encodeConfig,
  encodeConfigCommand,
  NFQNL_VERDICT_BATCH_TYPE,
  NFQNL_VERDICT_TYPE,
  validateVerdictOptions,
  VerdictBuffer,
  verdictValue,
  type CopyMode,
  type VerdictKind,
  type VerdictOptions,
} from './encode.js';
import { NfQueueError } from './errors.js';
import { WarmUpBinding } from './warmup.js';
import { OutstandingTable, WAITING, type PendingEntry, type VerdictOpSink } from './outstanding.js';
import { readQueueStats } from './stats.js';
import type {
  ConntrackInfoName,
  HardwareAddress,
  PacketTimestamp,
  QueuedPacket,
  QueueProcStats,
  SkbInfo,
  VlanInfo,
} from './types.js';
import type { Flow } from '../conntrack/types.js';
import type { RawAttribute } from '../netlink/attributes.js';
import { emitError } from '../common/emit-error.js';

export interface NfQueueFlags {
  /** NFQA_CFG_F_FAIL_OPEN: accept packets when the queue is full instead of dropping them. */
  failOpen?: boolean;
  /** NFQA_CFG_F_CONNTRACK: send the packet's conntrack entry (NFQA_CT, NFQA_CT_INFO). */
  conntrack?: boolean;
  /** NFQA_CFG_F_GSO: deliver GSO packets unsegmented (payload may exceed the MTU). */
  gso?: boolean;
  /** NFQA_CFG_F_UID_GID: send the uid/gid of the owning socket. */
  uidGid?: boolean;
  /** NFQA_CFG_F_SECCTX: send the security context. */
  secctx?: boolean;
}
export type NfQueueFlagName = keyof NfQueueFlags;

export const FLAG_BITS: Record<NfQueueFlagName, number> = {
  failOpen: Q.NFQA_CFG_F_FAIL_OPEN,
  conntrack: Q.NFQA_CFG_F_CONNTRACK,
  gso: Q.NFQA_CFG_F_GSO,
  uidGid: Q.NFQA_CFG_F_UID_GID,
  secctx: Q.NFQA_CFG_F_SECCTX,
};

/** What became of the requested flags. */
export interface FlagReport {
  /** Flags asked to be on. */
  requested: NfQueueFlagName[];
  /** Flags that are on. */
  applied: NfQueueFlagName[];
  /** Flags asked to be off (and turned off). */
  cleared: NfQueueFlagName[];
  /** Flags the kernel refused, with its errno (EOPNOTSUPP: not built in). */
  refused: { flag: NfQueueFlagName; errno: number; code: string; message?: string }[];
}

export interface NfQueueOptions {
  /** Queue number 0..65535 (`-j NFQUEUE --queue-num N`). */
  queue: number;
  /** Run the per-packet path on synthetic packets before binding, so that the
   * first real packets are not handled by unoptimised code (default true). */
  warmUp?: boolean;
  /** Open the socket inside this network namespace (`ip netns` name or path). */
  netns?: string;
  /** Default 'packet'. 'none' behaves like 'meta': metadata, no payload. */
  copyMode?: CopyMode;
  /** Bytes of each packet to copy; default 0xffff (the kernel caps it at 65531). */
  copyRange?: number;
  /** Packets the kernel holds for this queue; more are dropped, or accepted with failOpen. Kernel default 1024. */
  maxQueueLength?: number;
  /** Flags to set (true) or clear (false); absent ones are left alone. */
  flags?: NfQueueFlags;
  /** Throw when the kernel refuses a flag instead of reporting it in `flagReport`. */
  strictFlags?: boolean;
  /** Socket receive buffer (SO_RCVBUFFORCE); default 8 MiB. */
  rcvbuf?: number;
  /** The verdict a packet gets at its deadline and on close. Default 'accept'. */
  defaultVerdict?: 'accept' | 'drop';
  /** Milliseconds a packet may wait for a verdict. Default 10,000; Infinity disables it (then a
   * packet that is never answered waits until close). */
  deadlineMs?: number;
  /** Coalesce verdicts given in the same tick into NFQNL_MSG_VERDICT_BATCH
   * messages where that is exact (a contiguous prefix, same plain verdict). Default true. */
  batchVerdicts?: boolean;
  /** Probe whether the kernel has the nfqueue conntrack glue (needed for
   * connmark/connlabels verdicts) by setting and clearing the CONNTRACK flag. Default true. */
  probeConntrackGlue?: boolean;
  /** Timeout of configuration requests, ms. Default 5000. */
  timeoutMs?: number;
  /** Receive slots per wakeup (recvmmsg batch). Default 16. */
  slots?: number;
  /** Test seam: a transport instead of a real socket. */
  transport?: NetlinkTransport;
}

export interface NfQueueCounters {
  received: number;
  accepted: number;
  dropped: number;
  repeated: number;
  queued: number;
  stopped: number;
  /** Packets that got the default verdict at their deadline. */
  deadline: number;
  /** Packets that got the default verdict when the queue was closed. */
  closeVerdicts: number;
  /** Verdict messages sent (a batch counts once). */
  verdictMessages: number;
  batchMessages: number;
  datagramsSent: number;
  /** Times the kernel reported lost messages (ENOBUFS or truncation). */
  enobufs: number;
  decodeErrors: number;
  /** Verdicts the kernel refused. */
  kernelErrors: number;
  listenerErrors: number;
  sendErrors: number;
}

/** The options a verdict method takes. */
export type PacketVerdictOptions = VerdictOptions;

const NFQA_PACKET_HDR_MIN = 7;

/**
 * One queued packet. Its attributes are read-only; its fate is decided once,
 * with accept/drop/repeat/queue/stop (or by the deadline).
 *
 * `payload` is a zero-copy view into the socket's receive buffer, valid
 * while the onPacket callback runs; reading it later throws STALE_VIEW. Call
 * `copy()` (or `copyPayload()`) inside the callback to keep it. Packets from
 * the async iterator are copies already.
 */
export class NfQueuePacket {
  private live = true;
  private readonly detached: boolean;

  /** @internal */
  constructor(
    private readonly owner: NfQueue,
    private readonly entry: PendingEntry,
    private readonly data: QueuedPacket,
    detached = false,
  ) {
    this.detached = detached;
  }

  get queueNumber(): number {
    return this.data.queue;
  }
  get family(): number {
    return this.data.family;
  }
  get id(): number {
    return this.data.id;
  }
  get hwProtocol(): number {
    return this.data.hwProtocol;
  }
  get hook(): number {
    return this.data.hook;
  }
  get mark(): number | undefined {
    return this.data.mark;
  }
  get timestamp(): PacketTimestamp | undefined {
    return this.data.timestamp;
  }
  get indev(): number | undefined {
    return this.data.indev;
  }
  get outdev(): number | undefined {
    return this.data.outdev;
  }
  get physindev(): number | undefined {
    return this.data.physindev;
  }
  get physoutdev(): number | undefined {
    return this.data.physoutdev;
  }
  get hwaddr(): HardwareAddress | undefined {
    return this.data.hwaddr;
  }
  get ct(): Flow | undefined {
    return this.data.ct;
  }
  get ctInfo(): number | undefined {
    return this.data.ctInfo;
  }
  get ctInfoName(): ConntrackInfoName | undefined {
    return this.data.ctInfo === undefined ? undefined : ctInfoName(this.data.ctInfo);
  }
  get capLen(): number | undefined {
    return this.data.capLen;
  }
  get skbInfo(): SkbInfo | undefined {
    return this.data.skbInfo;
  }
  get uid(): number | undefined {
    return this.data.uid;
  }
  get gid(): number | undefined {
    return this.data.gid;
  }
  get secctx(): string | undefined {
    return this.data.secctx;
  }
  get vlan(): VlanInfo | undefined {
    return this.data.vlan;
  }
  get l2hdr(): Uint8Array | undefined {
    return this.data.l2hdr;
  }
  get priority(): number | undefined {
    return this.data.priority;
  }
  get exp(): Uint8Array | undefined {
    return this.data.exp;
  }
  get unknown(): RawAttribute[] | undefined {
    return this.data.unknown;
  }

  /** The packet bytes from the network header (see the class comment). */
  get payload(): Uint8Array | undefined {
    if (!this.live && !this.detached) {
      throw new NfQueueError(
        'STALE_VIEW',
        `payload of packet ${this.id} read after its callback returned; use packet.copy() inside the callback`,
        { queue: this.data.queue, ids: [this.id] },
      );
    }
    return this.data.payload;
  }

  /** A copy of the payload that stays valid. */
  copyPayload(): Uint8Array | undefined {
    return this.payload?.slice();
  }

  /** A copy of this packet whose payload stays valid; verdicts on either decide the same packet. */
  copy(): NfQueuePacket {
    const payload = this.payload;
    const data: QueuedPacket = { ...this.data };
    if (payload) data.payload = payload.slice();
    return new NfQueuePacket(this.owner, this.entry, data, true);
  }

  /** Every attribute as a plain object (payload copied). */
  toObject(): QueuedPacket {
    const out: QueuedPacket = { ...this.data };
    const payload = this.payload;
    if (payload) out.payload = payload.slice();
    return out;
  }

  /** True once a verdict was given (by the caller, the deadline or close). */
  get decided(): boolean {
    return this.entry.state !== WAITING;
  }
  /** The verdict was given by the deadline or by close(). */
  get decidedByDefault(): boolean {
    return this.decided && this.entry.byDeadline;
  }

  /** @internal: ends the zero-copy window. */
  endView(): void {
    this.live = false;
  }

  verdict(
    kind: VerdictKind,
    options?: PacketVerdictOptions & { queue?: number; bypass?: boolean },
  ): void {
    this.owner.decideEntry(this.entry, kind, options);
  }
  accept(options?: PacketVerdictOptions): void {
    this.owner.decideEntry(this.entry, 'accept', options);
  }
  drop(options?: PacketVerdictOptions): void {
    this.owner.decideEntry(this.entry, 'drop', options);
  }
  /** Re-runs the hook from its start (give it a mark your queue rule skips, or it comes back). */
  repeat(options?: PacketVerdictOptions): void {
    this.owner.decideEntry(this.entry, 'repeat', options);
  }
  /** Sends the packet to another queue; with `bypass`, accepts it if nobody listens there. */
  queue(queue: number, options?: PacketVerdictOptions & { bypass?: boolean }): void {
    this.owner.decideEntry(this.entry, 'queue', { ...options, queue });
  }
  /** Accepts and skips the remaining hook functions (NF_STOP). */
  stop(options?: PacketVerdictOptions): void {
    this.owner.decideEntry(this.entry, 'stop', options);
  }
}

interface IteratorState {
  buffer: NfQueuePacket[];
  head: number;
  waiter: (() => void) | undefined;
  done: boolean;
}

const now = (): number => performance.now();
const RESOLVED = Promise.resolve();
const EMPTY = new Uint8Array(0);

/**
 * An NFQUEUE queue bound on a NETLINK_NETFILTER socket: configuration,
 * packets (callbacks or an async iterator), verdicts (coalesced, without
 * waiting for ACKs), per-packet deadlines and metrics.
 *
 *     const q = await NfQueue.open({ queue: 7, flags: { uidGid: true } });
 *     q.onPacket((p) => (p.uid === 0 ? p.accept() : p.drop()));
 *     ...
 *     await q.close();
 */
export class NfQueue {
  readonly queueNumber: number;
  readonly counters: NfQueueCounters = {
    received: 0,
    accepted: 0,
    dropped: 0,
    repeated: 0,
    queued: 0,
    stopped: 0,
    deadline: 0,
    closeVerdicts: 0,
    verdictMessages: 0,
    batchMessages: 0,
    datagramsSent: 0,
    enobufs: 0,
    decodeErrors: 0,
    kernelErrors: 0,
    listenerErrors: 0,
    sendErrors: 0,
  };
  /** Flags applied and refused at open. */
  flagReport: FlagReport = { requested: [], applied: [], cleared: [], refused: [] };
  /** Whether the kernel has the nfqueue conntrack glue (connmark/connlabels
   * verdicts, NFQA_CT); undefined when not probed. */
  conntrackGlue: boolean | undefined;

  private readonly conn: NetlinkConnection;
  private readonly table: OutstandingTable;
  private readonly buffer = new VerdictBuffer();
  private defaultVerdict: number;
  private deadlineMs: number;
  private readonly netns: string | undefined;
  private readonly packetListeners: ((packet: NfQueuePacket) => void)[] = [];
  private readonly errorListeners: ((error: NfQueueError) => void)[] = [];
  private readonly iterators = new Set<IteratorState>();
  private readonly iteratorLimit: number;
  private timer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private closing = false;
  private closed = false;
  private closeVerdict: number;

  private constructor(options: NfQueueOptions, conn: NetlinkConnection) {
    this.queueNumber = options.queue;
    this.conn = conn;
    this.netns = options.netns;
    this.table = new OutstandingTable(options.batchVerdicts ?? true);
    this.defaultVerdict = verdictValue(options.defaultVerdict ?? 'accept');
    this.closeVerdict = this.defaultVerdict;
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.iteratorLimit = Math.max(options.maxQueueLength ?? Q.NFQNL_QMAX_DEFAULT, 64);
    conn.onNotification((msg) => this.onMessage(msg));
    conn.onLost(() => {
      this.counters.enobufs++;
      this.emitError(
        new NfQueueError(
          'LOST',
          `queue ${this.queueNumber}: socket receive buffer overflowed (ENOBUFS); the kernel dropped queued packets (or accepted them with failOpen)`,
          { queue: this.queueNumber },
        ),
      );
    });
    conn.onError((error) => {
      const decode = error instanceof NetlinkDecodeError;
      this.emitError(
        new NfQueueError(
          decode ? 'DECODE' : 'SOCKET',
          decode
            ? `queue ${this.queueNumber}: undecodable datagram: ${error.message}`
            : `queue ${this.queueNumber}: reading the socket failed, no more packets will arrive: ${error.message}`,
          { queue: this.queueNumber, cause: error },
        ),
      );
    });
  }

  /** Opens a socket, binds the queue and configures it. */
  static async open(options: NfQueueOptions): Promise<NfQueue> {
    const q = options.queue;
    if (!Number.isInteger(q) || q < 0 || q > 0xffff)
      throw new RangeError(`queue number ${q} out of range 0..65535`);
    const copyRange = options.copyRange ?? 0xffff;
    if (!Number.isInteger(copyRange) || copyRange < 0 || copyRange > 0xffffffff) {
      throw new RangeError(`copyRange ${copyRange} out of range`);
    }
    const deadlineMs = options.deadlineMs ?? 10_000;
    if (!(deadlineMs > 0)) throw new RangeError('deadlineMs must be > 0 (Infinity disables it)');
    const copyMode = copyModeValue(options.copyMode ?? 'packet');
    // A packet message: headers and metadata (< 1 KiB) plus up to 64 KiB of payload.
    const slotSize = Math.max(65536, Math.min(copyRange, Q.NFQNL_MAX_COPY_RANGE)) + 8192;
    let transport: NetlinkTransport;
    try {
      transport =
        options.transport ??
        NetlinkSocket.open(NETLINK_NETFILTER, {
          netns: options.netns,
          rcvbuf: options.rcvbuf ?? 8 * 1024 * 1024,
          extAck: true,
          // Errors must echo the whole verdict so that its packet id can be reported.
          capAck: false,
          slotSize,
          slots: options.slots ?? 16,
        });
    } catch (error) {
      const e = error as Error & { code?: string; errno?: number };
      throw new NfQueueError(
        'CONFIG_FAILED',
        `queue ${q}: opening the netlink socket failed: ${e.message}`,
        {
          queue: q,
          errno: e.errno,
          errnoName: e.code,
          cause: error,
        },
      );
    }
    if ((options.warmUp ?? true) && !options.transport)
      NfQueue.warmUp(options, slotSize, options.slots ?? 16);
    const conn = new NetlinkConnection(transport, { timeoutMs: options.timeoutMs ?? 5000 });
    const queue = new NfQueue(options, conn);
    try {
      await queue.configure(options, copyMode, copyRange);
    } catch (error) {
      conn.close();
      if (error instanceof NfQueueError) throw error;
      const ne = error instanceof NetlinkError ? error : undefined;
      throw new NfQueueError('CONFIG_FAILED', `queue ${q}: ${(error as Error).message}`, {
        queue: q,
        errno: ne?.errno,
        errnoName: ne?.code,
        extack: ne?.extack,
        cause: error,
      });
    }
    return queue;
  }

  private async configure(
    options: NfQueueOptions,
    copyMode: number,
    copyRange: number,
  ): Promise<void> {
    const q = this.queueNumber;
    try {
      // Bind, copy mode and queue length in one message: the kernel applies
      // them in one go, so no packet is queued to us with default params.
      await this.conn.request(
        encodeConfig(q, {
          command: Q.NFQNL_CFG_CMD_BIND,
          copyMode,
          copyRange,
          maxQueueLength: options.maxQueueLength,
        }),
        { operation: `nfqueue bind ${q}` },
      );
    } catch (error) {
      if (error instanceof NetlinkError && (error.code === 'EPERM' || error.code === 'EBUSY')) {
        throw new NfQueueError(
          'CONFIG_FAILED',
          error.code === 'EPERM'
            ? `queue ${q} is bound by another socket (or CAP_NET_ADMIN is missing): EPERM`
            : `queue ${q} is already bound by this socket: EBUSY`,
          { queue: q, errno: error.errno, errnoName: error.code, cause: error },
        );
      }
      throw error;
    }
    await this.configureFlags(options.flags ?? {}, options.strictFlags ?? false);
    if (this.conntrackGlue === undefined && (options.probeConntrackGlue ?? true)) {
      await this.probeGlue();
    }
  }

  /** Changes queue flags at run time (e.g. failOpen when the fail policy changes). */
  async updateFlags(flags: NfQueueFlags): Promise<void> {
    await this.configureFlags(flags, false);
  }

  /**
   * The backstop from now on: the verdict for packets past their deadline and at
   * close, and the deadline of packets that arrive from now on.
   */
  setBackstop(options: { verdict?: 'accept' | 'drop'; deadlineMs?: number }): void {
    if (options.deadlineMs !== undefined) {
      if (!(options.deadlineMs > 0)) throw new RangeError('deadlineMs must be > 0');
      const wasFinite = Number.isFinite(this.deadlineMs);
      this.deadlineMs = options.deadlineMs;
      if (!wasFinite && Number.isFinite(this.deadlineMs)) this.armTimer();
    }
    if (options.verdict !== undefined) {
      this.defaultVerdict = verdictValue(options.verdict);
      this.closeVerdict = this.defaultVerdict;
    }
  }

  private async setFlags(value: number, mask: number): Promise<void> {
    const q = this.queueNumber;
    const message = () => encodeConfig(q, { flags: { value, mask } });
    try {
      await this.conn.request(message(), { operation: `nfqueue flags ${q}` });
    } catch (error) {
      // The kernel answers EAGAIN when setting CONNTRACK just loaded ctnetlink: retry once.
      if (error instanceof NetlinkError && error.code === 'EAGAIN') {
        await this.conn.request(message(), { operation: `nfqueue flags ${q}` });
      } else throw error;
    }
  }

  private async configureFlags(flags: NfQueueFlags, strict: boolean): Promise<void> {
    const report: FlagReport = { requested: [], applied: [], cleared: [], refused: [] };
    let value = 0;
    let mask = 0;
    for (const [name, bit] of Object.entries(FLAG_BITS) as [NfQueueFlagName, number][]) {
      const want = flags[name];
      if (want === undefined) continue;
      mask |= bit;
      if (want) {
        value |= bit;
        report.requested.push(name);
      } else report.cleared.push(name);
    }
    this.flagReport = report;
    if (mask === 0) return;
    try {
      await this.setFlags(value, mask);
      report.applied.push(...report.requested);
    } catch (error) {
      if (!(error instanceof NetlinkError)) throw error;
      // Find out which: clear-only first (never refused), then one flag at a time.
      if ((mask & ~value) !== 0) await this.setFlags(0, mask & ~value);
      for (const name of report.requested) {
        const bit = FLAG_BITS[name];
        try {
          await this.setFlags(bit, bit);
          report.applied.push(name);
        } catch (e) {
          if (!(e instanceof NetlinkError)) throw e;
          report.refused.push({
            flag: name,
            errno: e.errno,
            code: e.code,
            message: e.extack.message,
          });
        }
      }
      if (strict && report.refused.length > 0) {
        throw new NfQueueError(
          'CONFIG_FAILED',
          `queue ${this.queueNumber}: the kernel refused flag(s) ${report.refused.map((r) => `${r.flag} (${r.code})`).join(', ')}`,
          {
            queue: this.queueNumber,
            errno: report.refused[0]!.errno,
            errnoName: report.refused[0]!.code,
          },
        );
      }
    }
    if (report.requested.includes('conntrack'))
      this.conntrackGlue = report.applied.includes('conntrack');
  }

  /** The kernel refuses NFQA_CFG_F_CONNTRACK with EOPNOTSUPP exactly when the
   * glue (nfnl_ct_hook) is missing. */
  private async probeGlue(): Promise<void> {
    const bit = Q.NFQA_CFG_F_CONNTRACK;
    try {
      await this.setFlags(bit, bit);
    } catch (error) {
      if (error instanceof NetlinkError && error.code === 'EOPNOTSUPP') {
        this.conntrackGlue = false;
        return;
      }
      throw error;
    }
    this.conntrackGlue = true;
    await this.setFlags(0, bit);
  }

  // ------------------------------------------------------------------ packets

  /** Calls `listener` for every packet, synchronously as it is read. Returns an unsubscribe function. */
  onPacket(listener: (packet: NfQueuePacket) => void): () => void {
    this.packetListeners.push(listener);
    return () => {
      const i = this.packetListeners.indexOf(listener);
      if (i >= 0) this.packetListeners.splice(i, 1);
    };
  }

  /** Errors that do not belong to a call: kernel-refused verdicts, lost
   * packets (ENOBUFS), decode failures, listener exceptions, send failures. */
  onError(listener: (error: NfQueueError) => void): () => void {
    this.errorListeners.push(listener);
    return () => {
      const i = this.errorListeners.indexOf(listener);
      if (i >= 0) this.errorListeners.splice(i, 1);
    };
  }

  /** Packets (copies) as they arrive; packets already decided by the deadline
   * while buffered are skipped. Ends when the queue closes. */
  [Symbol.asyncIterator](): AsyncIterator<NfQueuePacket> {
    const state: IteratorState = { buffer: [], head: 0, waiter: undefined, done: this.closed };
    this.iterators.add(state);
    const finish = () => {
      state.done = true;
      state.buffer = [];
      state.head = 0;
      this.iterators.delete(state);
      state.waiter?.();
    };
    return {
      next: async (): Promise<IteratorResult<NfQueuePacket>> => {
        for (;;) {
          while (state.head < state.buffer.length) {
            const p = state.buffer[state.head]!;
            state.buffer[state.head++] = undefined as unknown as NfQueuePacket;
            if (state.head === state.buffer.length) {
              state.buffer = [];
              state.head = 0;
            }
            if (!p.decided) return { value: p, done: false };
          }
          if (state.done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (state.waiter = resolve));
          state.waiter = undefined;
        }
      },
      return: async (): Promise<IteratorResult<NfQueuePacket>> => {
        finish();
        return { value: undefined, done: true };
      },
    };
  }

  private emitError(error: NfQueueError): void {
    emitError(this.errorListeners, error, 'NfQueueWarning');
  }

  private onMessage(msg: NetlinkMessage): void {
    if (msg.type === NFQNL_PACKET_TYPE) this.onPacketMessage(msg);
    else if (msg.type === NLMSG_ERROR) this.onKernelError(msg);
  }

  private onPacketMessage(msg: NetlinkMessage): void {
    let data: QueuedPacket;
    try {
      data = decodeQueuedPacket(msg);
    } catch (error) {
      this.counters.decodeErrors++;
      // A packet we cannot read still waits in the kernel: give it the default verdict.
      const id = packetIdOf(msg);
      if (id !== undefined) {
        this.table.add(id, now());
        this.table.decide(id, this.defaultVerdict, undefined, true);
        this.scheduleFlush();
      }
      this.emitError(
        new NfQueueError(
          'DECODE',
          `queue ${this.queueNumber}: undecodable packet message${id !== undefined ? ` (id ${id}, given the default verdict)` : ''}: ${(error as Error).message}`,
          {
            queue: this.queueNumber,
            ids: id !== undefined ? [id] : undefined,
            cause: error,
          },
        ),
      );
      return;
    }
    this.counters.received++;
    const entry = this.table.add(data.id, now() + this.deadlineMs);
    if (this.closing) {
      this.table.decide(data.id, this.closeVerdict, undefined, true);
      this.counters.closeVerdicts++;
      this.scheduleFlush();
      return;
    }
    this.armTimer();
    const packet = new NfQueuePacket(this, entry, data);
    for (const listener of this.packetListeners) {
      try {
        listener(packet);
      } catch (error) {
        this.counters.listenerErrors++;
        this.emitError(
          new NfQueueError(
            'LISTENER',
            `queue ${this.queueNumber}: packet listener threw: ${(error as Error).message}`,
            {
              queue: this.queueNumber,
              ids: [data.id],
              cause: error,
            },
          ),
        );
      }
    }
    if (this.iterators.size > 0 && !packet.decided) {
      const copy = packet.copy();
      for (const it of this.iterators) {
        if (it.buffer.length - it.head >= this.iteratorLimit) {
          // Only decided packets can be dropped from a buffer; the kernel holds at most
          // maxQueueLength undecided ones, so this bounds it.
          it.buffer = it.buffer.slice(it.head).filter((p) => !p.decided);
          it.head = 0;
        }
        it.buffer.push(copy);
        it.waiter?.();
      }
    }
    packet.endView();
  }

  /** NLMSG_ERROR with seq 0: the kernel refused a verdict (verdicts are sent
   * without NLM_F_ACK, so only errors come back). The echoed request names the id. */
  private onKernelError(msg: NetlinkMessage): void {
    const status = parseErrorMessage(msg);
    if (status.errno === 0) return;
    this.counters.kernelErrors++;
    const echoed = echoedVerdict(msg);
    const what = echoed
      ? `${echoed.batch ? 'batch verdict up to' : 'verdict for'} packet ${echoed.id}`
      : 'a message';
    this.emitError(
      new NfQueueError(
        'VERDICT_REFUSED',
        `queue ${this.queueNumber}: the kernel refused ${what}: ${errnoName(status.errno)}${status.extack.message ? `: ${status.extack.message}` : ''}`,
        {
          queue: this.queueNumber,
          ids: echoed ? [echoed.id] : undefined,
          errno: status.errno,
          errnoName: errnoName(status.errno),
          extack: status.extack,
        },
      ),
    );
  }

  // ------------------------------------------------------------------ verdicts

  /** @internal */
  decideEntry(
    entry: PendingEntry,
    kind: VerdictKind,
    options?: VerdictOptions & { queue?: number; bypass?: boolean },
  ): void {
    if (entry.state !== WAITING) {
      throw new NfQueueError(
        'ALREADY_DECIDED',
        `packet ${entry.id} already has a verdict${entry.byDeadline ? ' (the default verdict, given at its deadline or on close)' : ''}`,
        { queue: this.queueNumber, ids: [entry.id] },
      );
    }
    if (this.table.get(entry.id) !== entry) {
      throw new NfQueueError('UNKNOWN_PACKET', `packet ${entry.id} is no longer waiting`, {
        queue: this.queueNumber,
        ids: [entry.id],
      });
    }
    this.setVerdict(entry.id, kind, options);
  }

  /**
   * Gives a verdict by packet id (what NfQueuePacket's methods call). Throws
   * NfQueueError UNKNOWN_PACKET / ALREADY_DECIDED / UNSUPPORTED / CLOSED, or
   * RangeError for bad options, and then nothing is recorded. The verdict is
   * sent at the end of the current tick, coalesced with others.
   */
  setVerdict(
    id: number,
    kind: VerdictKind,
    options?: VerdictOptions & { queue?: number; bypass?: boolean },
  ): void {
    if (this.closed)
      throw new NfQueueError('CLOSED', `queue ${this.queueNumber} is closed`, {
        queue: this.queueNumber,
        ids: [id],
      });
    const value = verdictValue(kind, options?.queue ?? 0, options?.bypass ?? false);
    let o: VerdictOptions | undefined;
    if (options) {
      o = {};
      if (options.mark !== undefined) o.mark = options.mark;
      if (options.connmark !== undefined) o.connmark = options.connmark;
      if (options.connlabels !== undefined) o.connlabels = options.connlabels;
      if (options.payload !== undefined) o.payload = options.payload;
      if (options.priority !== undefined) o.priority = options.priority;
      validateVerdictOptions(o);
      if (
        (o.connmark !== undefined || o.connlabels !== undefined) &&
        this.conntrackGlue === false
      ) {
        throw new NfQueueError(
          'UNSUPPORTED',
          `queue ${this.queueNumber}: this kernel lacks the nfqueue conntrack glue (CONFIG_NETFILTER_NETLINK_GLUE_CT) and would ignore connmark/connlabels; set the packet mark and save it with -j CONNMARK --save-mark instead`,
          { queue: this.queueNumber, ids: [id] },
        );
      }
    }
    this.table.decide(id, value, o);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A reaction on a settled promise: a microtask without queueMicrotask's
    // per-call AsyncResource and bound function (measured as GC pressure).
    void RESOLVED.then(this.flushTask);
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Ids of the verdicts in the datagram being built (reported if it fails),
   * [0, bufferIdCount): never shortened, see OutstandingTable's arrival list. */
  private readonly bufferIds: number[] = [];
  private bufferIdCount = 0;
  private readonly opSink: VerdictOpSink = {
    op: (batch, verdict, id, _firstId, count, options) => {
      const size = 32 + (options?.payload ? options.payload.byteLength + 8 : 0) + 64;
      if (this.buffer.length > 0 && this.buffer.length + size > 65536) this.sendBuffer();
      this.buffer.append(this.queueNumber, verdict, id, batch, options);
      this.bufferIds[this.bufferIdCount++] = id;
      const c = this.counters;
      c.verdictMessages++;
      if (batch) c.batchMessages++;
      switch (verdict & Q.NF_VERDICT_MASK) {
        case Q.NF_ACCEPT:
          c.accepted += count;
          break;
        case Q.NF_DROP:
          c.dropped += count;
          break;
        case Q.NF_REPEAT:
          c.repeated += count;
          break;
        case Q.NF_QUEUE:
          c.queued += count;
          break;
        case Q.NF_STOP:
          c.stopped += count;
          break;
      }
    },
  };

  /** Sends every recorded verdict now (normally done at the end of the tick). */
  flush(): void {
    if (this.table.drainTo(this.opSink) > 0) this.sendBuffer();
  }

  private sendBuffer(): void {
    if (this.buffer.length === 0) return;
    try {
      this.conn.transport.send(this.buffer.bytes());
      this.counters.datagramsSent++;
    } catch (error) {
      this.counters.sendErrors++;
      this.emitError(
        new NfQueueError(
          'SEND_FAILED',
          `queue ${this.queueNumber}: sending verdicts failed: ${(error as Error).message}`,
          {
            queue: this.queueNumber,
            ids: this.bufferIds.slice(0, this.bufferIdCount),
            cause: error,
          },
        ),
      );
    } finally {
      this.buffer.reset();
      this.bufferIdCount = 0;
    }
  }

  /** Runs the per-packet path of throwaway queues on synthetic packets
   * (see WarmUpBinding): the socket wrapper, decode of every common attribute
   * shape, the listener, accept, the outstanding table, verdict encoding (batch
   * and per-packet) and the send call, in reads of 1 and of 16 packets. */
  private static warmedUp = false;

  private static warmUp(options: NfQueueOptions, slotSize: number, slots: number): void {
    // Once per process: V8 keeps the optimised code for every later queue.
    if (NfQueue.warmedUp) return;
    NfQueue.warmedUp = true;
    // Two queues per verdict mode, used in turn: V8 then keys its call
    // feedback on the callback's code rather than on one closure, so the real
    // queue's own closures (listener, notification handler, verdict sink) do
    // not deoptimise the code the warm-up optimised.
    const queues: { q: NfQueue; binding: WarmUpBinding; socket: NetlinkSocket; id: number }[] = [];
    // Two listener functions (two function literals), one per pair of queues: the
    // call site in onPacketMessage then sees two targets and is compiled as a generic
    // call. With one, TurboFan inlined the warm-up's listener and the real one (a
    // third function) deoptimised onPacketMessage on the first real packet ("wrong
    // feedback cell") and ran unoptimised for the ~15 ms it took to compile again.
    const listeners = [
      (p: NfQueuePacket) => p.accept(),
      (p: NfQueuePacket) => {
        p.accept();
      },
    ];
    let made = 0;
    for (const batchVerdicts of [true, false, true, false]) {
      const binding = new WarmUpBinding();
      const socket = NetlinkSocket.open(NETLINK_NETFILTER, { binding, slotSize, slots });
      // The real queue's options, so that the fields V8 sees have the same
      // representations (a netns string instead of undefined, and so on).
      const q = new NfQueue(
        { ...options, queue: 0, transport: undefined, batchVerdicts },
        new NetlinkConnection(socket, { timeoutMs: options.timeoutMs ?? 5000 }),
      );
      q.onPacket(listeners[made++ >> 1]!);
      // open() sets these after the warm-up: give the fields every kind of value
      // they will hold first, so that the later assignment does not change the
      // field's type in the shared hidden class (which deoptimises its users).
      q.conntrackGlue = false;
      q.conntrackGlue = undefined;
      // close() sets these (on these queues at the end of the warm-up): make them
      // mutable first, or the code optimised below assumes they never change and is
      // thrown away when the warm-up queues close, just before the real packets come
      // (V8's --trace-generalization showed it: onPacketMessage and accept were
      // compiled again on the first real packets).
      q.closed = true;
      q.closed = false;
      q.closing = true;
      q.closing = false;
      queues.push({ q, binding, socket, id: 1 });
    }
    // The wrapper's send reads `this.native.send`: make that site see more
    // stand-in classes than V8 tracks one by one (4), so that the real addon's
    // object, another class, is handled by the generic path instead of
    // deoptimising the verdict code on the first real send.
    // Likewise for the call: two different send functions make it generic.
    for (let i = 0; i < 5; i++) {
      const binding = new WarmUpBinding();
      if (i === 4) binding.NetlinkSocket.prototype.send = (buffer: Uint8Array) => buffer.byteLength;
      const extra = NetlinkSocket.open(NETLINK_NETFILTER, { binding, slotSize: 4096, slots: 1 });
      for (let k = 0; k < 4; k++) extra.send(EMPTY);
      extra.close();
    }
    for (let round = 0; round < 2400; round++) {
      const w = queues[round % queues.length]!;
      const n = (round >> 2) % 4 === 0 ? 1 : Math.min(16, slots);
      w.binding.deliver(w.id, n);
      w.id += n;
      w.q.flush();
      // As after a deadline: the next packet arms the timer again (that path too).
      if (round % 64 === 63 && w.q.timer) {
        clearTimeout(w.q.timer);
        w.q.timer = undefined;
      }
    }
    for (const { q, socket } of queues) {
      q.closed = true;
      if (q.timer) clearTimeout(q.timer);
      socket.close();
    }
  }

  private armTimer(): void {
    if (this.timer || !Number.isFinite(this.deadlineMs) || this.closed) return;
    const next = this.table.nextDeadline();
    if (next === undefined) return;
    this.timer = setTimeout(() => this.onDeadline(), Math.max(0, Math.ceil(next - now())));
  }

  private onDeadline(): void {
    this.timer = undefined;
    const n = this.table.expire(now(), this.defaultVerdict);
    if (n > 0) {
      this.counters.deadline += n;
      this.flush();
    }
    this.armTimer();
  }

  // ------------------------------------------------------------------ metrics, close

  /** Packets waiting for a verdict (including decided ones not yet sent). */
  get waiting(): number {
    return this.table.size;
  }

  /** This queue's line of /proc/net/netfilter/nfnetlink_queue, read in the
   * queue's network namespace (see readQueueStats). */
  async procStats(): Promise<QueueProcStats | undefined> {
    const all = await readQueueStats(this.netns === undefined ? {} : { netns: this.netns });
    const portId = this.conn.portId;
    return all.find((s) => s.queue === this.queueNumber && (portId === 0 || s.portId === portId));
  }

  /**
   * Gives every waiting packet `verdict` (default: the default verdict; the
   * kernel would drop them on unbind), unbinds the queue and closes the socket.
   * Idempotent.
   */
  async close(options: { verdict?: 'accept' | 'drop' } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (options.verdict) this.closeVerdict = verdictValue(options.verdict);
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.counters.closeVerdicts += this.table.decideAll(this.closeVerdict);
    this.flush();
    try {
      await this.conn.request(encodeConfigCommand(this.queueNumber, Q.NFQNL_CFG_CMD_UNBIND), {
        operation: `nfqueue unbind ${this.queueNumber}`,
      });
    } catch (error) {
      // Closing the socket unbinds too; report, do not throw.
      this.emitError(
        new NfQueueError(
          'CONFIG_FAILED',
          `queue ${this.queueNumber}: unbind failed: ${(error as Error).message}`,
          {
            queue: this.queueNumber,
            cause: error,
          },
        ),
      );
    }
    this.flush();
    this.closed = true;
    this.conn.close();
    for (const it of [...this.iterators]) {
      it.done = true;
      it.waiter?.();
    }
    this.iterators.clear();
  }
}

/** The id of a packet message whose attributes could not all be decoded. */
function packetIdOf(msg: NetlinkMessage): number | undefined {
  try {
    const start = msg.offset + NLMSG_HDRLEN + NFGENMSG_LEN;
    const ad = new AttributeReader(msg.view, start, msg.offset + msg.length);
    while (ad.next()) {
      if (ad.type === Q.NFQA_PACKET_HDR && ad.valueLength >= NFQA_PACKET_HDR_MIN) {
        return ad.view.getUint32(ad.valueOffset, false);
      }
    }
  } catch {
    // Not even the header: nothing to answer.
  }
  return undefined;
}

/** The verdict a kernel error echoes (requires NETLINK_CAP_ACK off). */
export function echoedVerdict(
  msg: NetlinkMessage,
): { id: number; verdict: number; batch: boolean } | undefined {
  const at = msg.offset + NLMSG_HDRLEN + 4; // struct nlmsgerr: error, then the request
  const end = msg.offset + msg.length;
  if (end - at < NLMSG_HDRLEN + NFGENMSG_LEN) return undefined;
  const type = msg.view.getUint16(at + 4, HOST_LITTLE_ENDIAN);
  if (type !== NFQNL_VERDICT_TYPE && type !== NFQNL_VERDICT_BATCH_TYPE) return undefined;
  const reqLen = msg.view.getUint32(at, HOST_LITTLE_ENDIAN);
  const reqEnd = Math.min(end, at + reqLen);
  try {
    const ad = new AttributeReader(msg.view, at + NLMSG_HDRLEN + NFGENMSG_LEN, reqEnd);
    while (ad.next()) {
      if (ad.type === Q.NFQA_VERDICT_HDR && ad.valueLength >= 8) {
        return {
          verdict: ad.view.getUint32(ad.valueOffset, false),
          id: ad.view.getUint32(ad.valueOffset + 4, false),
          batch: type === NFQNL_VERDICT_BATCH_TYPE,
        };
      }
    }
  } catch {
    // A capped or cut echo.
  }
  return undefined;
}
