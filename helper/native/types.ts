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
