/** The surface of native/ (portcullis_native.node). Kept thin on purpose: it
 * opens and configures sockets and moves bytes; all parsing is TypeScript. */

export interface NativeOpenOptions {
  /** An `ip netns` name (resolved under /run/netns) or a path to a netns file. */
  netns?: string;
  /** Receive buffer in bytes, set with SO_RCVBUFFORCE (SO_RCVBUF without CAP_NET_ADMIN). */
  rcvbuf?: number;
  /** Send buffer in bytes, set with SO_SNDBUFFORCE (SO_SNDBUF without CAP_NET_ADMIN). */
  sndbuf?: number;
  noEnobufs?: boolean;
  capAck?: boolean;
  extAck?: boolean;
  broadcastError?: boolean;
  strictCheck?: boolean;
  /** Multicast groups to join (group numbers, not bit masks). */
  groups?: number[];
  /** Local port id to bind; 0 or absent lets the kernel choose. */
  portId?: number;
}

/** Called once per drained batch: `count` records of 4 words
 * [offset, length, flags, senderPortId] describe datagrams in the slab
 * (flags: 1 = truncated, 2 = arrived through a multicast group).
 * `errno` is 0, ENOBUFS (messages were lost, reading continues) or a fatal
 * errno (reading has stopped). */
export type NativeDataCallback = (count: number, errno: number) => void;

export interface NativeNetlinkSocket {
  readonly fd: number;
  readonly portId: number;
  readonly closed: boolean;
  receiveBufferSize(): number;
  send(buffer: Uint8Array): number;
  sendMany(buffers: readonly Uint8Array[]): number;
  /** Sends `request` and reads the datagram answering its sequence number into
   * `reply` on this thread: its real length, or -1 after timeoutMs. Only on a
   * socket that is not reading. */
  transact(request: Uint8Array, reply: Uint8Array, timeoutMs: number): number;
  /** Reads what is queued now, delivering it to the data callback before returning;
   * false when not reading with uv_poll, paused, or already draining. */
  drainNow(): boolean;
  /** Queues the datagrams for a sender thread (sent in order with sendmmsg)
   * and returns a job id; onDone(id, sent, errno) follows on the JS thread.
   * The first call's onDone serves every later job. */
  sendQueued(
    buffers: readonly Uint8Array[],
    onDone: (id: number, sent: number, errno: number) => void,
  ): number;
  addMembership(group: number): void;
  dropMembership(group: number): void;
  startReading(
    slab: Buffer,
    slotSize: number,
    records: Uint32Array,
    onData: NativeDataCallback,
  ): void;
  /** Like startReading, but a reader thread fills a ring of batches while JS
   * handles the previous one; onData gets the batch index, whose records
   * start at batch * slotsPerBatch * 4. */
  startThreadedReading(
    slab: Buffer,
    slotSize: number,
    slotsPerBatch: number,
    records: Uint32Array,
    onData: (batch: number, count: number, errno: number) => void,
  ): void;
  pause(): void;
  resume(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  /** Primary gid. */
  gid: number;
  /** Supplementary gids when the peer connected (SO_PEERGROUPS). */
  groups: number[];
}

export interface NativeConstants {
  NETLINK_NETFILTER: number;
  NETLINK_SOCK_DIAG: number;
  NETLINK_ROUTE: number;
  ENOBUFS: number;
  EAGAIN: number;
  RECORD_WORDS: number;
  FLAG_TRUNCATED: number;
  FLAG_MULTICAST: number;
}

export interface NativeBinding {
  NetlinkSocket: new (protocol: number, options?: NativeOpenOptions) => NativeNetlinkSocket;
  peerCredentials(fd: number): PeerCredentials;
  /** readlink of a /proc/PID/fd/N link: the socket inode, 0 for another
   * target, -errno when it cannot be read (never throws for those). */
  socketLinkInode(path: string): number;
  constants: NativeConstants;
}

/** The socket-owner BPF programs (native/bpf/owners.bpf.c), loaded and
 * attached by the constructor; raw records, decoded by
 * helper/attribution/ebpf/records.ts. Root only. */
export interface NativeBpfOwners {
  /** Every program: 'attached', or why not. */
  programs(): Record<string, string>;
  /** Kernel ids of the attached programs. */
  programIds(): number[];
  /** Copies the owner of a flow key (FLOW_KEY_SIZE bytes) into `value`
   * (OWNER_SIZE bytes); false when there is none. */
  lookupFlow(key: Uint8Array, value: Uint8Array): boolean;
  /** Copies a process's last exec record (EXEC_SIZE bytes); false when none. */
  lookupExec(tgid: number, value: Uint8Array): boolean;
  /** The programs' counters, summed over CPUs (native/bpf/owners.h). */
  counters(): number[];
  /** Destroys the links (detaching every program) and frees the maps. */
  close(): void;
  readonly closed: boolean;
}

export interface NativeBpfOwnersClass {
  /** Throws an errno error (code, errno, syscall = the failing stage, detail =
   * libbpf's last words) when no program could be attached. */
  new (cgroupRoot: string, disable?: readonly string[]): NativeBpfOwners;
  readonly FLOW_KEY_SIZE: number;
  readonly OWNER_SIZE: number;
  readonly EXEC_SIZE: number;
  readonly FLOWS_MAX: number;
  readonly EXECS_MAX: number;
  readonly PENDING_MAX: number;
}

export interface NativeBpfBinding {
  BpfOwners: NativeBpfOwnersClass;
  /** The network namespace cookie of this process's namespace, or of the one
   * at `nsPath` (SO_NETNS_COOKIE). */
  netnsCookie(nsPath?: string): bigint;
}
