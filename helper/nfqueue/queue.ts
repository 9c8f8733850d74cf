import { parseErrorMessage } from '../netlink/ack.js';
import { NLMSG_ERROR } from '../netlink/constants.js';
import { NetlinkConnection } from '../netlink/connection.js';
import { errnoName } from '../netlink/errno.js';
import type { NetlinkMessage } from '../netlink/message.js';
import {
  bindInstance,
  configureOrClose,
  copyRangeOption,
  openNetfilterSocket,
  readFailure,
  unbindInstance,
  type InstanceErrors,
} from '../netlink/nfnl-instance.js';
import type { NetlinkTransport } from '../netlink/socket.js';
import { emitError } from '../common/emit-error.js';
import { IteratorBuffers } from '../common/iterator-buffers.js';
import { callEach, subscribe } from '../common/listeners.js';
import * as Q from './constants.js';
import { newCounters, type NfQueueCounters } from './counters.js';
import { decodeQueuedPacket, NFQNL_PACKET_TYPE } from './decode.js';
import {
  copyModeValue,
  encodeConfig,
  encodeConfigCommand,
  validateVerdictOptions,
  verdictValue,
  type VerdictKind,
  type VerdictOptions,
} from './encode.js';
import { NfQueueError } from './errors.js';
import {
  applyFlags,
  emptyFlagReport,
  probeConntrackGlue,
  type FlagReport,
  type NfQueueFlags,
} from './flags.js';
import { echoedVerdict, packetIdOf } from './message-ids.js';
import type { NfQueueOptions } from './options.js';
import { OutstandingTable, WAITING, type PendingEntry } from './outstanding.js';
import { NfQueuePacket, type TargetedVerdictOptions, type VerdictTaker } from './packet.js';
import { readQueueStats } from './stats.js';
import type { QueuedPacket, QueueProcStats } from './types.js';
import { VerdictSender } from './verdict-sender.js';

export type { NfQueueCounters } from './counters.js';
export { FLAG_BITS, type FlagReport, type NfQueueFlagName, type NfQueueFlags } from './flags.js';
export { echoedVerdict } from './message-ids.js';
export type { NfQueueOptions } from './options.js';
export { NfQueuePacket, type PacketVerdictOptions } from './packet.js';

const now = (): number => performance.now();

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
export class NfQueue implements VerdictTaker {
  readonly queueNumber: number;
  readonly counters: NfQueueCounters = newCounters();
  /** Flags applied and refused at open. */
  flagReport: FlagReport = emptyFlagReport();
  /** Whether the kernel has the nfqueue conntrack glue (connmark/connlabels
   * verdicts, NFQA_CT); undefined when not probed. */
  conntrackGlue: boolean | undefined;

  private readonly conn: NetlinkConnection;
  private readonly table: OutstandingTable;
  private readonly sender: VerdictSender;
  private readonly iterators: IteratorBuffers<NfQueuePacket>;
  private defaultVerdict: number;
  private deadlineMs: number;
  private readonly netns: string | undefined;
  private readonly errors: InstanceErrors<NfQueueError>;
  private readonly packetListeners: ((packet: NfQueuePacket) => void)[] = [];
  private readonly errorListeners: ((error: NfQueueError) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  private closed = false;
  private closeVerdict: number;

  private constructor(options: NfQueueOptions, conn: NetlinkConnection) {
    this.queueNumber = options.queue;
    this.conn = conn;
    this.netns = options.netns;
    this.errors = queueErrors(this.queueNumber);
    this.table = new OutstandingTable(options.batchVerdicts ?? true);
    this.sender = new VerdictSender(
      this.queueNumber,
      this.table,
      conn.transport,
      this.counters,
      (error) => this.emitError(error),
    );
    // The kernel holds at most maxQueueLength undecided packets, so a buffer of
    // at least that many never loses one: only decided packets make room.
    this.iterators = new IteratorBuffers<NfQueuePacket>(
      Math.max(options.maxQueueLength ?? Q.NFQNL_QMAX_DEFAULT, 64),
      (packet) => packet.decided,
    );
    this.defaultVerdict = verdictValue(options.defaultVerdict ?? 'accept');
    this.closeVerdict = this.defaultVerdict;
    this.deadlineMs = options.deadlineMs ?? 10_000;
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
    conn.onError((error) => this.emitError(readFailure(error, this.errors)));
  }

  /** Opens a socket, binds the queue and configures it. */
  static async open(options: NfQueueOptions): Promise<NfQueue> {
    const q = options.queue;
    if (!Number.isInteger(q) || q < 0 || q > 0xffff)
      throw new RangeError(`queue number ${q} out of range 0..65535`);
    const copyRange = copyRangeOption(options.copyRange);
    const deadlineMs = options.deadlineMs ?? 10_000;
    if (!(deadlineMs > 0)) throw new RangeError('deadlineMs must be > 0 (Infinity disables it)');
    const copyMode = copyModeValue(options.copyMode ?? 'packet');
    const errors = queueErrors(q);
    const transport = options.transport ?? openSocket(options, copyRange, errors);
    const conn = new NetlinkConnection(transport, { timeoutMs: options.timeoutMs ?? 5000 });
    const queue = new NfQueue(options, conn);
    await configureOrClose(conn, () => queue.configure(options, copyMode, copyRange), errors);
    return queue;
  }

  private async configure(
    options: NfQueueOptions,
    copyMode: number,
    copyRange: number,
  ): Promise<void> {
    const q = this.queueNumber;
    // Bind, copy mode and queue length in one message: the kernel applies
    // them in one go, so no packet is queued to us with default params.
    await bindInstance(
      this.conn,
      encodeConfig(q, {
        command: Q.NFQNL_CFG_CMD_BIND,
        copyMode,
        copyRange,
        maxQueueLength: options.maxQueueLength,
      }),
      `nfqueue bind ${q}`,
      this.errors,
    );
    await this.configureFlags(options.flags ?? {}, options.strictFlags ?? false);
    if (this.conntrackGlue === undefined && (options.probeConntrackGlue ?? true)) {
      this.conntrackGlue = await probeConntrackGlue(this.conn, q);
    }
  }

  /** Changes queue flags at run time (e.g. failOpen when the fail policy changes). */
  async updateFlags(flags: NfQueueFlags): Promise<void> {
    await this.configureFlags(flags, false);
  }

  private async configureFlags(flags: NfQueueFlags, strict: boolean): Promise<void> {
    const report = emptyFlagReport();
    this.flagReport = report;
    await applyFlags(this.conn, this.queueNumber, flags, strict, report, this.errors);
    if (report.requested.includes('conntrack'))
      this.conntrackGlue = report.applied.includes('conntrack');
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

  // ------------------------------------------------------------------ packets

  /** Calls `listener` for every packet, synchronously as it is read. Returns an unsubscribe function. */
  onPacket(listener: (packet: NfQueuePacket) => void): () => void {
    return subscribe(this.packetListeners, listener);
  }

  /** Errors that do not belong to a call: kernel-refused verdicts, lost
   * packets (ENOBUFS), decode failures, listener exceptions, send failures. */
  onError(listener: (error: NfQueueError) => void): () => void {
    return subscribe(this.errorListeners, listener);
  }

  /** Packets (copies) as they arrive; packets already decided by the deadline
   * while buffered are skipped. Ends when the queue closes. */
  [Symbol.asyncIterator](): AsyncIterator<NfQueuePacket> {
    return this.iterators.create(this.closed);
  }

  private readonly onListenerThrew = (error: unknown, packet: NfQueuePacket): void => {
    this.counters.listenerErrors++;
    this.emitError(
      new NfQueueError(
        'LISTENER',
        `queue ${this.queueNumber}: packet listener threw: ${(error as Error).message}`,
        { queue: this.queueNumber, ids: [packet.id], cause: error },
      ),
    );
  };

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
      this.onUndecodablePacket(msg, error);
      return;
    }
    this.counters.received++;
    const entry = this.table.add(data.id, now() + this.deadlineMs);
    if (this.closing) {
      this.table.decide(data.id, this.closeVerdict, undefined, true);
      this.counters.closeVerdicts++;
      this.sender.schedule();
      return;
    }
    this.armTimer();
    const packet = new NfQueuePacket(this, entry, data);
    callEach(this.packetListeners, packet, this.onListenerThrew);
    // Iterators get a copy of a packet not decided yet: its payload outlives the read.
    if (this.iterators.size > 0 && !packet.decided) this.iterators.offer(packet.copy());
    packet.endView();
  }

  /** A packet we cannot read still waits in the kernel: give it the default verdict. */
  private onUndecodablePacket(msg: NetlinkMessage, error: unknown): void {
    this.counters.decodeErrors++;
    const id = packetIdOf(msg);
    if (id !== undefined) {
      this.table.add(id, now());
      this.table.decide(id, this.defaultVerdict, undefined, true);
      this.sender.schedule();
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
  decideEntry(entry: PendingEntry, kind: VerdictKind, options?: TargetedVerdictOptions): void {
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
  setVerdict(id: number, kind: VerdictKind, options?: TargetedVerdictOptions): void {
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
    this.sender.schedule();
  }

  /** Sends every recorded verdict now (normally done at the end of the tick). */
  flush(): void {
    this.sender.flush();
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
    const failure = await unbindInstance(
      this.conn,
      encodeConfigCommand(this.queueNumber, Q.NFQNL_CFG_CMD_UNBIND),
      `nfqueue unbind ${this.queueNumber}`,
      this.errors,
    );
    if (failure) this.emitError(failure);
    this.flush();
    this.closed = true;
    this.conn.close();
    this.iterators.endAll();
  }
}

/** The queue's socket: every slot holds one whole packet message. */
function openSocket(
  options: NfQueueOptions,
  copyRange: number,
  errors: InstanceErrors<NfQueueError>,
): NetlinkTransport {
  // A packet message: headers and metadata (< 1 KiB) plus up to 64 KiB of payload.
  const slotSize = Math.max(65536, Math.min(copyRange, Q.NFQNL_MAX_COPY_RANGE)) + 8192;
  return openNetfilterSocket(
    {
      netns: options.netns,
      rcvbuf: options.rcvbuf ?? 8 * 1024 * 1024,
      extAck: true,
      // Errors must echo the whole verdict so that its packet id can be reported.
      capAck: false,
      slotSize,
      slots: options.slots ?? 16,
    },
    errors,
  );
}

/** How the shared nfnetlink steps report this queue's failures. */
function queueErrors(queue: number): InstanceErrors<NfQueueError> {
  return {
    what: `queue ${queue}`,
    own: NfQueueError,
    make: (code, message, details) => new NfQueueError(code, message, { queue, ...details }),
  };
}
