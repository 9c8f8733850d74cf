import { AF_INET, AF_INET6 } from '../netlink/constants.js';
import type { DatagramSink, NetlinkTransport } from '../netlink/socket.js';
import { NetlinkWriter } from '../netlink/writer.js';
import type {
  NativeBinding,
  NativeConstants,
  NativeDataCallback,
  NativeNetlinkSocket,
} from '../native/types.js';
import * as Q from './constants.js';
import { NFQNL_PACKET_TYPE } from './decode.js';

/** Which attributes a synthetic packet carries, like the kernel's for: */
export type SyntheticShape =
  /** a UDP datagram sent on lo (LOCAL_OUT: outdev, skb info "checksum partial") */
  | 'local-out'
  /** the same with a mark set by an earlier rule and the owner's uid/gid */
  | 'local-out-marked'
  /** a datagram received over a veth (LOCAL_IN: indev, hardware address, timestamp) */
  | 'local-in'
  /** an IPv6 datagram on lo */
  | 'local-out-v6';

export const SYNTHETIC_SHAPES: readonly SyntheticShape[] = [
  'local-out',
  'local-out-marked',
  'local-in',
  'local-out-v6',
];

/** A NFQNL_MSG_PACKET like the kernel's for a 64-byte UDP datagram (default: on lo). */
export function syntheticPacketMessage(shape: SyntheticShape = 'local-out'): Uint8Array {
  const v6 = shape === 'local-out-v6';
  const payload = new Uint8Array(v6 ? 112 : 92); // IP + UDP + 64 bytes
  const p = new DataView(payload.buffer);
  if (v6) {
    payload[0] = 0x60;
    p.setUint16(4, 72); // payload length
    payload[6] = 17;
    payload[7] = 64;
    p.setUint16(40 + 4, 72); // UDP length
  } else {
    payload[0] = 0x45;
    p.setUint16(2, 92); // total length
    payload[8] = 64;
    payload[9] = 17;
    p.setUint16(20 + 4, 72);
  }
  const w = new NetlinkWriter();
  w.beginMessage(NFQNL_PACKET_TYPE, 0).nfgenmsg(v6 ? AF_INET6 : AF_INET, 0, 0);
  const hook = shape === 'local-in' ? 1 : 3;
  const proto = v6 ? [0x86, 0xdd] : [0x08, 0x00];
  w.bytes(Q.NFQA_PACKET_HDR, Uint8Array.of(0, 0, 0, 0, proto[0]!, proto[1]!, hook));
  if (shape === 'local-out-marked') w.u32be(Q.NFQA_MARK, 0x11);
  if (shape === 'local-in') {
    const ts = new Uint8Array(16);
    new DataView(ts.buffer).setBigUint64(0, BigInt(Math.floor(Date.now() / 1000)), false);
    w.bytes(Q.NFQA_TIMESTAMP, ts);
    w.u32be(Q.NFQA_IFINDEX_INDEV, 2);
    const hw = new Uint8Array(12);
    hw[1] = 6;
    hw.set([2, 0, 0, 0, 0, 1], 4);
    w.bytes(Q.NFQA_HWADDR, hw);
  } else {
    w.u32be(Q.NFQA_IFINDEX_OUTDEV, 1);
    w.u32be(Q.NFQA_SKB_INFO, Q.NFQA_SKB_CSUMNOTREADY);
  }
  if (shape === 'local-out-marked') w.u32be(Q.NFQA_UID, 0).u32be(Q.NFQA_GID, 0);
  w.bytes(Q.NFQA_PAYLOAD, payload);
  return w.endMessage().finish().slice();
}

/** The packet id's offset in syntheticPacketMessage(): nlmsghdr, nfgenmsg, attribute header. */
export const SYNTHETIC_ID_OFFSET = 16 + 4 + 4;

/**
 * An in-memory transport that feeds synthetic packets to whoever reads it
 * and swallows what is sent (tests use it; the warm-up itself goes through
 * WarmUpBinding so that the socket layer is warmed too).
 */
export class WarmUpTransport implements NetlinkTransport {
  readonly portId = 0;
  sent = 0;
  private sink: DatagramSink | undefined;
  private readonly message = syntheticPacketMessage();
  private readonly view = new DataView(
    this.message.buffer,
    this.message.byteOffset,
    this.message.byteLength,
  );

  read(sink: DatagramSink): void {
    this.sink = sink;
  }
  /** Delivers synthetic packets with ids first..first+count-1. */
  deliver(first: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.view.setUint32(SYNTHETIC_ID_OFFSET, first + i, false);
      this.sink?.onDatagram(this.view, 0, this.message.byteLength, {
        truncated: false,
        multicast: false,
        senderPort: 0,
      });
    }
  }
  send(): void {
    this.sent++;
  }
  sendMany(): void {
    this.sent++;
  }
  pause(): void {}
  resume(): void {}
  close(): void {}
}

/**
 * A stand-in for the native addon whose sockets are fed synthetic packets:
 * a queue opened on it runs exactly the code a real one runs per packet
 * (the socket wrapper's record loop, the connection, decode, the listener,
 * verdicts, the coalescer, encoding and the send call), so V8 optimises that
 * code before the real queue is bound. Until it has, the first few thousand
 * packets are handled several times slower, and at 150k pps a 1024-packet
 * queue overflows within milliseconds: the drops of a paced flood fell in its
 * first 100-300 ms, and the round trips slower than 0.4 ms in the first ~2000.
 */
export class WarmUpBinding implements NativeBinding {
  readonly constants: NativeConstants = {
    NETLINK_NETFILTER: 12,
    NETLINK_SOCK_DIAG: 4,
    NETLINK_ROUTE: 0,
    ENOBUFS: 105,
    EAGAIN: 11,
    RECORD_WORDS: 4,
    FLAG_TRUNCATED: 1,
    FLAG_MULTICAST: 2,
  };
  sent = 0;
  private socket: WarmUpNativeSocket | undefined;
  private readonly messages = SYNTHETIC_SHAPES.map((s) => syntheticPacketMessage(s));

  readonly NetlinkSocket = ((binding: WarmUpBinding) =>
    class implements NativeNetlinkSocket {
      readonly fd = -1;
      readonly portId = 1;
      readonly closed = false;
      constructor() {
        binding.socket = this as unknown as WarmUpNativeSocket;
      }
      receiveBufferSize(): number {
        return 0;
      }
      send(buffer: Uint8Array): number {
        binding.sent++;
        return buffer.byteLength;
      }
      sendMany(buffers: readonly Uint8Array[]): number {
        binding.sent++;
        return buffers.length;
      }
      sendQueued(): number {
        return 0;
      }
      transact(): number {
        throw new Error('WarmUpBinding: transact is not simulated');
      }
      drainNow(): boolean {
        return false;
      }
      addMembership(): void {}
      dropMembership(): void {}
      startReading(
        slab: Buffer,
        slotSize: number,
        records: Uint32Array,
        onData: NativeDataCallback,
      ): void {
        Object.assign(this, { slab, slotSize, records, onData });
      }
      startThreadedReading(): void {
        throw new Error('WarmUpBinding: threaded reading is not simulated');
      }
      pause(): void {}
      resume(): void {}
      ref(): void {}
      unref(): void {}
      close(): void {}
    })(this);

  peerCredentials(): { pid: number; uid: number; gid: number } {
    return { pid: 0, uid: 0, gid: 0 };
  }

  socketLinkInode(): number {
    return -2; // ENOENT: the warm-up reads no /proc links
  }

  /** Delivers `count` packets in one read (ids first.., shapes in rotation). */
  deliver(first: number, count: number): void {
    const s = this.socket;
    if (!s?.onData) throw new Error('WarmUpBinding: no socket is reading');
    const n = Math.min(count, s.records.length / 4, Math.floor(s.slab.length / s.slotSize));
    for (let i = 0; i < n; i++) {
      const message = this.messages[(first + i) % this.messages.length]!;
      const at = i * s.slotSize;
      s.slab.set(message, at);
      s.slab.writeUInt32BE((first + i) >>> 0, at + SYNTHETIC_ID_OFFSET);
      s.records[i * 4] = at;
      s.records[i * 4 + 1] = message.byteLength;
      s.records[i * 4 + 2] = 0;
      s.records[i * 4 + 3] = 0;
    }
    s.onData(n, 0);
  }
}

interface WarmUpNativeSocket {
  slab: Buffer;
  slotSize: number;
  records: Uint32Array;
  onData: NativeDataCallback | undefined;
}
