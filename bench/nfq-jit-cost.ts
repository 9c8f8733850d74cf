// The JavaScript cost of a queued packet in CPU time, for the first packets
// after open and in the steady state, without the kernel: a fresh process opens
// a queue over a fake addon, reads synthetic lo packets 16 at a time and accepts
// them.
//
//   node dist/bench/nfq-jit-cost.js
//
// CPU time (process.cpuUsage) does not count time spent waiting for a core,
// so the figures hold on a shared machine better than wall-clock ones.
import { NetlinkConnection } from '../helper/netlink/connection.js';
import { NetlinkSocket } from '../helper/netlink/socket.js';
import type { NativeBinding, NativeDataCallback } from '../helper/native/types.js';
import { NfQueue } from '../helper/nfqueue/queue.js';
import { SYNTHETIC_ID_OFFSET, syntheticPacketMessage } from './nfq-synthetic.js';

const slotSize = 65536 + 8192;
const slots = 16;

let onData: NativeDataCallback | undefined;
let slab: Buffer | undefined;
let records: Uint32Array | undefined;
class FakeNativeSocket {
  readonly portId = 1;
  readonly fd = -1;
  readonly closed = false;
  startReading(s: Buffer, _slotSize: number, r: Uint32Array, f: NativeDataCallback): void {
    slab = s;
    records = r;
    onData = f;
  }
  send(b: Uint8Array): number {
    return b.byteLength;
  }
  sendMany(b: readonly Uint8Array[]): number {
    return b.length;
  }
  close(): void {}
  pause(): void {}
  resume(): void {}
}
const binding = {
  constants: { FLAG_TRUNCATED: 1, FLAG_MULTICAST: 2, ENOBUFS: 105 },
  NetlinkSocket: FakeNativeSocket,
} as unknown as NativeBinding;
const socket = NetlinkSocket.open(12, { binding, slotSize, slots });
const q = new (NfQueue as unknown as new (o: object, c: NetlinkConnection) => NfQueue)(
  { queue: 7 },
  new NetlinkConnection(socket),
);
q.onPacket((p) => p.accept());

const messages = [syntheticPacketMessage('local-out'), syntheticPacketMessage('local-out-marked')];
let id = 1;
function read(n: number): void {
  for (let i = 0; i < n; i++) {
    const m = messages[id % messages.length]!;
    const at = i * slotSize;
    slab!.set(m, at);
    slab!.writeUInt32BE(id++, at + SYNTHETIC_ID_OFFSET);
    records![i * 4] = at;
    records![i * 4 + 1] = m.byteLength;
    records![i * 4 + 2] = 0;
    records![i * 4 + 3] = 0;
  }
  onData!(n, 0);
  q.flush();
}
function usPerPacket(packets: number): string {
  const t = process.cpuUsage();
  for (let k = 0; k < packets; k += slots) read(slots);
  const d = process.cpuUsage(t);
  return ((d.user + d.system) / packets).toFixed(2);
}
const first = usPerPacket(1024);
const next = usPerPacket(3072);
usPerPacket(16_000);
const steady = usPerPacket(20_000);
process.stdout.write(`us_cpu_per_packet first_1024=${first} next_3072=${next} steady=${steady}\n`);
process.exit(0);
