import { loadNativeBinding } from '../native/load.js';
import { errnoName } from './errno.js';
import type {
  NativeBinding,
  NativeNetlinkSocket,
  NativeOpenOptions,
  PeerCredentials,
} from '../native/types.js';

/** Receives what a transport reads. Datagram views point into a reused slab,
 * and the info object is reused: both are valid only during the call. */
export interface DatagramSink {
  onDatagram(
    view: DataView,
    offset: number,
    length: number,
    info: { truncated: boolean; multicast: boolean; senderPort: number },
  ): void;
  /** The kernel dropped messages for this socket (ENOBUFS). */
  onLost(): void;
  /** Reading stopped on an error. */
  onError(error: Error): void;
}

/** What the request engine needs from a socket; a fake kernel implements it too. */
export interface NetlinkTransport {
  readonly portId: number;
  send(datagram: Uint8Array): void;
  sendMany(datagrams: readonly Uint8Array[]): void;
  /** Optional: sends on another thread, in order, so that the kernel's work
   * inside the send overlaps with the caller's; resolves when sent. */
  sendManyQueued?(datagrams: readonly Uint8Array[]): Promise<void>;
  read(sink: DatagramSink): void;
  /** Optional: delivers what is queued now to the sink before returning (false: nothing read). */
  drainNow?(): boolean;
  pause(): void;
  resume(): void;
  close(): void;
}

export interface NetlinkSocketOptions extends NativeOpenOptions {
  /** Bytes per receive slot: the largest datagram accepted. Netlink dumps are
   * at most 32 KiB; NFQUEUE needs 64 KiB plus headers for full packets. */
  slotSize?: number;
  /** Datagrams read per recvmmsg call. */
  slots?: number;
  /** Read on a native thread (a ring of `batches` batches of `slots`
   * datagrams), so that the kernel's work inside recvmsg, such as producing
   * the next part of a dump, overlaps with decoding on the JS thread. */
  threaded?: boolean;
  batches?: number;
  /** Injection seam for tests. */
  binding?: NativeBinding;
}

export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/** A netlink socket on the Node event loop (native/ + a slab it reads into). */
export class NetlinkSocket implements NetlinkTransport {
  private readonly native: NativeNetlinkSocket;
  private readonly slotSize: number;
  private readonly slots: number;
  private readonly batches: number;
  private readonly flags: { truncated: number; multicast: number; enobufs: number };

  private constructor(
    native: NativeNetlinkSocket,
    binding: NativeBinding,
    slotSize: number,
    slots: number,
    batches: number,
  ) {
    this.native = native;
    this.slotSize = slotSize;
    this.slots = slots;
    this.batches = batches;
    this.flags = {
      truncated: binding.constants.FLAG_TRUNCATED,
      multicast: binding.constants.FLAG_MULTICAST,
      enobufs: binding.constants.ENOBUFS,
    };
  }

  static open(protocol: number, options: NetlinkSocketOptions = {}): NetlinkSocket {
    const {
      slotSize = 65536,
      slots = 16,
      threaded = false,
      batches = 3,
      binding = loadNativeBinding(),
      ...open
    } = options;
    if (threaded && (!Number.isInteger(batches) || batches < 2 || batches > 64)) {
      throw new RangeError('batches must be 2..64');
    }
    if (!Number.isInteger(slotSize) || slotSize < 4096)
      throw new RangeError('slotSize must be >= 4096');
    if (!Number.isInteger(slots) || slots < 1 || slots > 1024)
      throw new RangeError('slots must be 1..1024');
    const native = new binding.NetlinkSocket(protocol, open);
    return new NetlinkSocket(native, binding, slotSize, slots, threaded ? batches : 0);
  }

  get portId(): number {
    return this.native.portId;
  }
  get fd(): number {
    return this.native.fd;
  }
  get closed(): boolean {
    return this.native.closed;
  }
  receiveBufferSize(): number {
    return this.native.receiveBufferSize();
  }

  send(datagram: Uint8Array): void {
    this.native.send(datagram);
  }
  /**
   * Sends `request` and reads the datagram answering it (same sequence number)
   * into `reply` on this thread, for requests the kernel answers inside sendmsg
   * (an exact sock_diag lookup). Returns the datagram's real length (more than
   * reply.length when cut) or -1 after timeoutMs. Only on a socket that is not
   * reading: open one for it.
   */
  transact(request: Uint8Array, reply: Uint8Array, timeoutMs: number): number {
    return this.native.transact(request, reply, timeoutMs);
  }

  /** The sink is being handed datagrams that are views into the slab. */
  private delivering = false;

  /**
   * Delivers the datagrams queued now to the sink before returning (uv_poll reading
   * only). false while the sink is still being handed datagrams (reading now would
   * overwrite the views it holds); from the microtasks that follow it is fine.
   */
  drainNow(): boolean {
    if (this.delivering) return false;
    return this.native.drainNow();
  }

  sendMany(datagrams: readonly Uint8Array[]): void {
    if (datagrams.length === 1) this.native.send(datagrams[0]!);
    else if (datagrams.length > 1) this.native.sendMany(datagrams);
  }
  private readonly queuedSends = new Map<
    number,
    { resolve: () => void; reject: (e: Error) => void }
  >();

  sendManyQueued(datagrams: readonly Uint8Array[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.native.sendQueued(datagrams, (doneId, _sent, errno) => {
        const waiter = this.queuedSends.get(doneId);
        if (!waiter) return;
        this.queuedSends.delete(doneId);
        if (errno === 0) waiter.resolve();
        else waiter.reject(systemError(errno, 'sendmmsg'));
      });
      this.queuedSends.set(id, { resolve, reject });
    });
  }

  addMembership(group: number): void {
    this.native.addMembership(group);
  }
  dropMembership(group: number): void {
    this.native.dropMembership(group);
  }

  read(sink: DatagramSink): void {
    const batches = Math.max(this.batches, 1);
    const slab = Buffer.allocUnsafeSlow(this.slotSize * this.slots * batches);
    const records = new Uint32Array(this.slots * 4 * batches);
    const view = new DataView(slab.buffer, slab.byteOffset, slab.byteLength);
    const { truncated, multicast, enobufs } = this.flags;
    // One info object, refilled per datagram: like the view, it is valid during the call.
    const info = { truncated: false, multicast: false, senderPort: 0 };
    const deliver = (first: number, count: number, errno: number) => {
      this.delivering = true;
      try {
        for (let i = 0; i < count; i++) {
          const r = (first + i) * 4;
          const flags = records[r + 2]!;
          info.truncated = (flags & truncated) !== 0;
          info.multicast = (flags & multicast) !== 0;
          info.senderPort = records[r + 3]!;
          sink.onDatagram(view, records[r]!, records[r + 1]!, info);
        }
      } finally {
        this.delivering = false;
      }
      if (errno === enobufs) sink.onLost();
      else if (errno !== 0) sink.onError(systemError(errno, 'recvmmsg'));
    };
    if (this.batches > 0) {
      this.native.startThreadedReading(
        slab,
        this.slotSize,
        this.slots,
        records,
        (batch, count, errno) => deliver(batch * this.slots, count, errno),
      );
    } else {
      this.native.startReading(slab, this.slotSize, records, (count, errno) =>
        deliver(0, count, errno),
      );
    }
  }

  pause(): void {
    this.native.pause();
  }
  resume(): void {
    this.native.resume();
  }
  /** Lets the process exit while this socket is still open (event listeners). */
  unref(): void {
    this.native.unref();
  }
  ref(): void {
    this.native.ref();
  }
  close(): void {
    this.native.close();
    // Queued sends that had not gone out never will.
    for (const waiter of this.queuedSends.values()) waiter.reject(systemError(9, 'sendmmsg'));
    this.queuedSends.clear();
  }
}

function systemError(errno: number, syscall: string): SystemError {
  const code = errnoName(errno);
  return Object.assign(new Error(`${code}, ${syscall}`), { code, errno, syscall });
}

/** {pid, uid, gid} of the peer of a connected Unix socket (SO_PEERCRED). */
export function peerCredentials(
  fd: number,
  binding: NativeBinding = loadNativeBinding(),
): PeerCredentials {
  return binding.peerCredentials(fd);
}
