// Synthetic NFQNL_MSG_PACKET messages for benchmarks that drive the queue
// without the kernel (bench/nfq-jit-cost.ts).
import { AF_INET, AF_INET6 } from '../helper/netlink/constants.js';
import { NetlinkWriter } from '../helper/netlink/writer.js';
import * as Q from '../helper/nfqueue/constants.js';
import { NFQNL_PACKET_TYPE } from '../helper/nfqueue/decode.js';

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
