import { NetlinkConnection } from '../netlink/connection.js';
import { NetlinkError } from '../netlink/errors.js';
import type { NetlinkMessage } from '../netlink/message.js';
import {
  bindInstance,
  configureOrClose,
  copyRangeOption,
  failOnRefusedFlags,
  openNetfilterSocket,
  readFailure,
  requestFlags,
  tryEachFlag,
  unbindInstance,
  type FlagOutcome,
  type InstanceErrors,
} from '../netlink/nfnl-instance.js';
import type { NetlinkTransport } from '../netlink/socket.js';
import * as L from './constants.js';
import { decodeLoggedPacket, NFULNL_PACKET_TYPE } from './decode.js';
import {
  checkGroup,
  encodeLogConfig,
  encodePfCommand,
  logCopyModeValue,
  type LogCopyMode,
} from './encode.js';
import { NfLogError, type NfLogErrorCode } from './errors.js';
import { readLogStats, type LogProcStats } from './stats.js';
import type { LoggedPacket } from './types.js';
import { emitError } from '../common/emit-error.js';
import { IteratorBuffers } from '../common/iterator-buffers.js';
import { callEach, subscribe } from '../common/listeners.js';

export interface NfLogFlags {
  /** NFULNL_CFG_F_SEQ: number this group's packets (NFULA_SEQ). */
  seq?: boolean;
  /** NFULNL_CFG_F_SEQ_GLOBAL: number packets over every group of the namespace (NFULA_SEQ_GLOBAL). */
  seqGlobal?: boolean;
  /** NFULNL_CFG_F_CONNTRACK: send the conntrack entry (NFULA_CT, NFULA_CT_INFO); needs
   * CONFIG_NETFILTER_NETLINK_GLUE_CT, else the kernel answers EOPNOTSUPP. */
  conntrack?: boolean;
}
export type NfLogFlagName = keyof NfLogFlags;

export const LOG_FLAG_BITS: Record<NfLogFlagName, number> = {
  seq: L.NFULNL_CFG_F_SEQ,
  seqGlobal: L.NFULNL_CFG_F_SEQ_GLOBAL,
  conntrack: L.NFULNL_CFG_F_CONNTRACK,
};

/** What became of the requested flags. */
export type NfLogFlagReport = FlagOutcome<NfLogFlagName>;

export interface NfLogOptions {
  /** NFLOG group 0..65535 (`-j NFLOG --nflog-group N`, nft `log group N`). */
  group: number;
  /** Open the socket inside this network namespace (`ip netns` name or path). */
  netns?: string;
  /** Default 'packet'. 'meta' and 'none' send metadata without the payload. */
  copyMode?: LogCopyMode;
  /** Bytes of each packet to copy; default 0xffff (the kernel caps it at 65531). A rule's
   * `--nflog-size` overrides it per rule. */
  copyRange?: number;
  /** NFULA_CFG_NLBUFSIZ: bytes the kernel batches into one datagram (4096..131072). */
  nlbufsiz?: number;
  /** NFULA_CFG_QTHRESH: packets batched before the kernel sends (instance default 100;
   * an iptables NFLOG rule overrides it with its `--nflog-threshold`, default 1). */
  qthresh?: number;
  /** NFULA_CFG_TIMEOUT in ms (sent in 1/100 s, rounded up): the longest a batched packet
   * waits (instance default 1000 ms). */
  flushTimeoutMs?: number;
  /** The whole flag word: flags not set to true are off. */
  flags?: NfLogFlags;
  /** Throw when the kernel refuses a flag instead of reporting it in `flagReport`. */
  strictFlags?: boolean;
  /**
   * PF_UNBIND then PF_BIND for these families (AF_INET 2, AF_INET6 10) before binding, as
   * libnetfilter_log's examples do. Only kernels before 2.6.31 need it to log at all; on
   * newer ones it makes nfnetlink_log the family's default logger, which changes what
   * `LOG`-less logging (nf_conntrack_log_invalid, ...) does in the namespace. Default none.
   */
  bindFamilies?: number[];
  /** SO_RCVBUFFORCE bytes; default 16 MiB. A small buffer loses packets (ENOBUFS) in bursts. */
  rcvbuf?: number;
  /** Give packet listeners a zero-copy payload, valid only while the listener runs.
   * Default false: payloads are copies. The async iterator always gets copies. */
  zeroCopy?: boolean;
  /** Packets an async iterator buffers for a slow consumer before dropping new ones. */
  maxQueued?: number;
  /** Timeout of configuration requests, ms. Default 5000. */
  timeoutMs?: number;
  /** Receive slots per wakeup (recvmmsg batch). Default 32. */
  slots?: number;
  /** Test seam: a transport instead of a real socket. */
  transport?: NetlinkTransport;
}

export interface NfLogCounters {
  /** Packets delivered. */
  received: number;
  /** Times the kernel reported lost packets (ENOBUFS, or a truncated datagram). */
  lost: number;
  decodeErrors: number;
  listenerErrors: number;
  /** Packets an async iterator dropped because its buffer was full. */
  iteratorDropped: number;
}

/**
 * An NFLOG group bound on a NETLINK_NETFILTER socket: packets logged by
 * `-j NFLOG --nflog-group N` (or nft `log group N`), as callbacks or an
 * async iterator. Logging is a copy: the packet has gone on its way already.
 *
 *     const log = await NfLog.open({ group: 5, netns: 'blue' });
 *     log.onPacket((p) => console.log(p.prefix, p.indev, p.payload?.length));
 *     log.onLost(() => console.warn('ENOBUFS: packets were not logged'));
 *     ...
 *     await log.close();
 */
export class NfLog implements AsyncIterable<LoggedPacket> {
  readonly group: number;
  readonly counters: NfLogCounters = {
    received: 0,
    lost: 0,
    decodeErrors: 0,
    listenerErrors: 0,
    iteratorDropped: 0,
  };
  flagReport: NfLogFlagReport = { requested: [], applied: [], refused: [] };

  private readonly packetListeners: ((p: LoggedPacket) => void)[] = [];
  private readonly errorListeners: ((e: NfLogError) => void)[] = [];
  private readonly lostListeners: (() => void)[] = [];
  private readonly iterators: IteratorBuffers<LoggedPacket>;
  private readonly zeroCopy: boolean;
  private readonly netns: string | undefined;
  private readonly errors: InstanceErrors<NfLogError>;
  private closing = false;
  private closed = false;

  private constructor(
    options: NfLogOptions,
    private readonly conn: NetlinkConnection,
  ) {
    this.group = options.group;
    this.netns = options.netns;
    this.zeroCopy = options.zeroCopy ?? false;
    this.iterators = new IteratorBuffers(options.maxQueued ?? 65536);
    this.errors = groupErrors(this.group);
    conn.onNotification((msg) => this.onMessage(msg));
    conn.onLost(() => {
      this.counters.lost++;
      for (const l of this.lostListeners) l();
    });
    conn.onError((error) => {
      const failure = readFailure(error, this.errors);
      if (failure.code === 'DECODE') this.counters.decodeErrors++;
      this.emitError(failure);
    });
  }

  /** Opens a socket, binds the group and configures it. Throws NfLogError CONFIG_FAILED
   * (EPERM: the group is bound by another socket, or CAP_NET_ADMIN is missing). */
  static async open(options: NfLogOptions): Promise<NfLog> {
    const group = options.group;
    checkGroup(group);
    const copyRange = copyRangeOption(options.copyRange);
    const { nlbufsiz, qthresh, flushTimeoutMs } = options;
    if (nlbufsiz !== undefined && !(Number.isInteger(nlbufsiz) && nlbufsiz >= 4096)) {
      throw new RangeError(`nlbufsiz ${nlbufsiz} must be an integer >= 4096`);
    }
    // The kernel ignores an out-of-range nlbufsiz without an error: refuse it here.
    if (nlbufsiz !== undefined && nlbufsiz > L.NFULNL_NLBUFSIZ_MAX) {
      throw new RangeError(`nlbufsiz ${nlbufsiz} > ${L.NFULNL_NLBUFSIZ_MAX}`);
    }
    if (qthresh !== undefined && !(Number.isInteger(qthresh) && qthresh >= 1)) {
      throw new RangeError(`qthresh ${qthresh} must be an integer >= 1`);
    }
    if (flushTimeoutMs !== undefined && !(flushTimeoutMs >= 0 && flushTimeoutMs < 2 ** 32 * 10)) {
      throw new RangeError(`flushTimeoutMs ${flushTimeoutMs} out of range`);
    }
    const copyMode = logCopyModeValue(options.copyMode ?? 'packet');
    // One datagram holds up to nlbufsiz bytes of messages, or one larger message
    // (a packet of up to 64 KiB plus metadata).
    const largest = Math.min(copyRange || L.NFULNL_COPY_RANGE_MAX, L.NFULNL_COPY_RANGE_MAX);
    const slotSize = Math.max(nlbufsiz ?? 0, largest + 8192, 16384);
    const errors = groupErrors(group);
    const transport =
      options.transport ??
      openNetfilterSocket(
        {
          netns: options.netns,
          rcvbuf: options.rcvbuf ?? 16 * 1024 * 1024,
          noEnobufs: false,
          extAck: true,
          capAck: true,
          slotSize,
          slots: options.slots ?? 32,
        },
        errors,
      );
    const conn = new NetlinkConnection(transport, { timeoutMs: options.timeoutMs ?? 5000 });
    const log = new NfLog(options, conn);
    await configureOrClose(conn, () => log.configure(options, copyMode, copyRange), errors);
    return log;
  }

  private async configure(options: NfLogOptions, copyMode: number, copyRange: number) {
    const group = this.group;
    for (const family of options.bindFamilies ?? []) {
      // As libnetfilter_log: unbind whatever logger the family had, then bind ours.
      await this.conn.request(encodePfCommand(L.NFULNL_CFG_CMD_PF_UNBIND, family), {
        operation: `nflog pf unbind ${family}`,
      });
      await this.conn.request(encodePfCommand(L.NFULNL_CFG_CMD_PF_BIND, family), {
        operation: `nflog pf bind ${family}`,
      });
    }
    // Bind and settings in one message: the kernel applies them together.
    await bindInstance(
      this.conn,
      encodeLogConfig(group, {
        command: L.NFULNL_CFG_CMD_BIND,
        copyMode,
        copyRange,
        nlbufsiz: options.nlbufsiz,
        qthresh: options.qthresh,
        timeout:
          options.flushTimeoutMs === undefined ? undefined : Math.ceil(options.flushTimeoutMs / 10),
      }),
      `nflog bind ${group}`,
      this.errors,
    );
    await this.configureFlags(options.flags ?? {}, options.strictFlags ?? false);
  }

  private setFlags(flags: number): Promise<void> {
    return requestFlags(
      this.conn,
      () => encodeLogConfig(this.group, { flags }),
      `nflog flags ${this.group}`,
    );
  }

  /** NFLOG has no flag mask: the flags are tried one at a time by adding each to
   * those accepted so far, and the accepted ones are set together at the end. */
  private async configureFlags(flags: NfLogFlags, strict: boolean): Promise<void> {
    const report: NfLogFlagReport = { requested: [], applied: [], refused: [] };
    this.flagReport = report;
    let value = 0;
    for (const [name, bit] of Object.entries(LOG_FLAG_BITS) as [NfLogFlagName, number][]) {
      if (flags[name]) {
        value |= bit;
        report.requested.push(name);
      }
    }
    if (value === 0) return;
    try {
      await this.setFlags(value);
      report.applied.push(...report.requested);
      return;
    } catch (error) {
      if (!(error instanceof NetlinkError)) throw error;
    }
    let accepted = 0;
    await tryEachFlag(report, LOG_FLAG_BITS, async (bit) => {
      await this.setFlags(accepted | bit);
      accepted |= bit;
    });
    if (accepted !== 0) await this.setFlags(accepted);
    if (strict) failOnRefusedFlags(report.refused, this.errors);
  }

  // ------------------------------------------------------------------ packets

  /** Calls `listener` for every packet as it is read. Returns an unsubscribe function. */
  onPacket(listener: (packet: LoggedPacket) => void): () => void {
    return subscribe(this.packetListeners, listener);
  }

  /** Errors that do not belong to a call: decode failures, listener exceptions, a dead socket. */
  onError(listener: (error: NfLogError) => void): () => void {
    return subscribe(this.errorListeners, listener);
  }

  /**
   * Delivers the packets the kernel has queued for this socket now, to the
   * listeners, before returning (a poll wakeup would deliver them a turn of the
   * event loop later). Returns false when nothing could be read this way.
   */
  pollNow(): boolean {
    return this.conn.transport.drainNow?.() ?? false;
  }

  /** The kernel dropped packets for this socket (ENOBUFS): they were not logged.
   * Counted in `counters.lost`; reading goes on. */
  onLost(listener: () => void): () => void {
    return subscribe(this.lostListeners, listener);
  }

  /** Packets (copies) as they arrive; ends when the log closes. A consumer that falls
   * `maxQueued` packets behind loses the newest (counted in `counters.iteratorDropped`). */
  [Symbol.asyncIterator](): AsyncIterator<LoggedPacket> {
    return this.iterators.create(this.closed);
  }

  private readonly onListenerThrew = (error: unknown): void => {
    this.counters.listenerErrors++;
    this.emitFailure('LISTENER', 'packet listener threw', error);
  };

  private emitError(error: NfLogError): void {
    emitError(this.errorListeners, error, 'NfLogWarning');
  }

  /** Reports `cause` as `what` went wrong, in this group's name. */
  private emitFailure(code: NfLogErrorCode, what: string, cause: unknown): void {
    this.emitError(
      new NfLogError(code, `nflog group ${this.group}: ${what}: ${(cause as Error).message}`, {
        group: this.group,
        cause,
      }),
    );
  }

  private onMessage(msg: NetlinkMessage): void {
    // NLMSG_DONE ends a batch of several packets (qthresh > 1); nothing else is expected.
    if (msg.type !== NFULNL_PACKET_TYPE || this.closed) return;
    let packet: LoggedPacket;
    try {
      packet = decodeLoggedPacket(msg, { copyPayload: !this.zeroCopy });
    } catch (error) {
      this.counters.decodeErrors++;
      this.emitFailure('DECODE', 'undecodable packet message', error);
      return;
    }
    this.counters.received++;
    callEach(this.packetListeners, packet, this.onListenerThrew);
    if (this.iterators.size === 0) return;
    const copy =
      this.zeroCopy && packet.payload ? { ...packet, payload: packet.payload.slice() } : packet;
    this.counters.iteratorDropped += this.iterators.offer(copy);
  }

  /** This group's line of /proc/net/netfilter/nfnetlink_log in the log's namespace:
   * the settings the kernel applied (copy range, flush timeout) and packets it holds. */
  async procStats(): Promise<LogProcStats | undefined> {
    const all = await readLogStats(this.netns === undefined ? {} : { netns: this.netns });
    const portId = this.conn.portId;
    return all.find((s) => s.group === this.group && (portId === 0 || s.portId === portId));
  }

  /** Unbinds the group and closes the socket; iterators end. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const failure = await unbindInstance(
      this.conn,
      encodeLogConfig(this.group, { command: L.NFULNL_CFG_CMD_UNBIND }),
      `nflog unbind ${this.group}`,
      this.errors,
    );
    if (failure) this.emitError(failure);
    this.closed = true;
    this.conn.close();
    this.iterators.endAll();
  }
}

/** How the shared nfnetlink steps report this group's failures. */
function groupErrors(group: number): InstanceErrors<NfLogError> {
  return {
    what: `nflog group ${group}`,
    own: NfLogError,
    make: (code, message, details) => new NfLogError(code, message, { group, ...details }),
  };
}
