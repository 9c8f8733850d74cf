// A native addon double (serialport binding-mock style): an inert socket that
// tests extend with the behaviour they need, and a binding around it.
import type {
  NativeBinding,
  NativeDataCallback,
  NativeNetlinkSocket,
  NativeOpenOptions,
} from '../../helper/native/types.js';

export class StubNativeSocket implements NativeNetlinkSocket {
  fd = 3;
  portId = 99;
  closed = false;
  constructor(_protocol: number, _options?: NativeOpenOptions) {}
  receiveBufferSize(): number {
    return 0;
  }
  send(b: Uint8Array): number {
    return b.length;
  }
  sendMany(b: readonly Uint8Array[]): number {
    return b.length;
  }
  sendQueued(
    b: readonly Uint8Array[],
    onDone: (id: number, sent: number, errno: number) => void,
  ): number {
    setImmediate(() => onDone(1, b.length, 0));
    return 1;
  }
  transact(): number {
    return -1;
  }
  drainNow(): boolean {
    return false;
  }
  addMembership(): void {}
  dropMembership(): void {}
  startReading(
    _slab: Buffer,
    _slotSize: number,
    _records: Uint32Array,
    _onData: NativeDataCallback,
  ): void {}
  startThreadedReading(
    _slab: Buffer,
    _slotSize: number,
    _perBatch: number,
    _records: Uint32Array,
    _onData: (batch: number, count: number, errno: number) => void,
  ): void {}
  pause(): void {}
  resume(): void {}
  ref(): void {}
  unref(): void {}
  close(): void {
    this.closed = true;
  }
}

/** A binding whose sockets are `socket`, with Linux x86-64 constants. */
export function bindingWith(socket: NativeBinding['NetlinkSocket']): NativeBinding {
  return {
    NetlinkSocket: socket,
    peerCredentials: () => ({ pid: 1, uid: 0, gid: 0, groups: [] }),
    socketLinkInode: () => -2, // ENOENT
    constants: {
      NETLINK_NETFILTER: 12,
      NETLINK_SOCK_DIAG: 4,
      NETLINK_ROUTE: 0,
      ENOBUFS: 105,
      EAGAIN: 11,
      RECORD_WORDS: 4,
      FLAG_TRUNCATED: 1,
      FLAG_MULTICAST: 2,
    },
  };
}
