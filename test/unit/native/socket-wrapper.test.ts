import { describe, expect, it } from 'vitest';
import type { NativeDataCallback, NativeOpenOptions } from '../../../helper/native/types.js';
import { bindingWith, StubNativeSocket } from '../../support/native-double.js';
import { NetlinkSocket, type DatagramSink } from '../../../helper/netlink/socket.js';

/** A binding double (serialport binding-mock style): records calls, lets the test push datagrams. */
function fakeBinding() {
  const state: {
    opened?: [number, NativeOpenOptions | undefined];
    push?: (datagrams: Uint8Array[], errno?: number, flags?: number) => void;
    slots?: number;
    slotSize?: number;
  } = {};
  class FakeSocket extends StubNativeSocket {
    override fd = 42;
    override portId = 1234;
    constructor(protocol: number, options?: NativeOpenOptions) {
      super(protocol, options);
      state.opened = [protocol, options];
    }
    override startReading(
      slab: Buffer,
      slotSize: number,
      records: Uint32Array,
      onData: NativeDataCallback,
    ) {
      state.slots = slab.length / slotSize;
      state.slotSize = slotSize;
      state.push = (datagrams, errno = 0, flags = 0) => {
        datagrams.forEach((d, i) => {
          slab.set(d, i * slotSize);
          records.set([i * slotSize, d.length, flags, i === 2 ? 77 : 0], i * 4);
        });
        onData(datagrams.length, errno);
      };
    }
    override startThreadedReading(
      slab: Buffer,
      slotSize: number,
      perBatch: number,
      records: Uint32Array,
      onData: (batch: number, count: number, errno: number) => void,
    ) {
      state.slots = slab.length / slotSize;
      state.slotSize = slotSize;
      // Deliver into the second batch, so that batch offsets are exercised.
      state.push = (datagrams, errno = 0, flags = 0) => {
        datagrams.forEach((d, i) => {
          const slot = perBatch + i;
          slab.set(d, slot * slotSize);
          records.set([slot * slotSize, d.length, flags, i === 2 ? 77 : 0], slot * 4);
        });
        onData(1, datagrams.length, errno);
      };
    }
  }
  const binding = bindingWith(FakeSocket);
  return { binding, state };
}

describe('NetlinkSocket wrapper', () => {
  it('passes open options through, without its own slab options', () => {
    const { binding, state } = fakeBinding();
    NetlinkSocket.open(12, { binding, netns: 'x', rcvbuf: 1 << 20, slotSize: 8192, slots: 4 });
    expect(state.opened).toEqual([12, { netns: 'x', rcvbuf: 1 << 20 }]);
  });

  it('drainNow is refused while the sink still holds views into the slab, allowed after', () => {
    const { binding, state } = fakeBinding();
    let drains = 0;
    binding.NetlinkSocket.prototype.drainNow = function (): boolean {
      drains++;
      return true;
    };
    const sock = NetlinkSocket.open(12, { binding, slotSize: 4096, slots: 4 });
    const during: boolean[] = [];
    sock.read({
      onDatagram: () => during.push(sock.drainNow()),
      onLost: () => undefined,
      onError: () => undefined,
    });
    state.push!([Uint8Array.of(1), Uint8Array.of(2)]);
    expect(during).toEqual([false, false]);
    expect(drains).toBe(0);
    expect(sock.drainNow()).toBe(true);
    expect(drains).toBe(1);
  });

  it('validates slab geometry', () => {
    const { binding } = fakeBinding();
    expect(() => NetlinkSocket.open(12, { binding, slotSize: 100 })).toThrow(RangeError);
    expect(() => NetlinkSocket.open(12, { binding, slots: 0 })).toThrow(RangeError);
  });

  it.each([false, true])(
    'decodes records into datagram views and flags, and maps errnos to events (threaded: %s)',
    (threaded) => {
      const { binding, state } = fakeBinding();
      const sock = NetlinkSocket.open(12, { binding, slotSize: 4096, slots: 4, threaded });
      const seen: string[] = [];
      const sink: DatagramSink = {
        onDatagram: (view, offset, length, info) =>
          seen.push(
            `${view.getUint8(offset)}:${length}:${info.truncated}:${info.multicast}:${info.senderPort}`,
          ),
        onLost: () => seen.push('lost'),
        onError: (e) => seen.push(`error:${(e as Error & { code: string }).code}`),
      };
      sock.read(sink);
      expect(state.slots).toBe(threaded ? 12 : 4);
      state.push!([Uint8Array.of(1, 2), Uint8Array.of(2), Uint8Array.of(3, 3, 3)], 0, 2);
      state.push!([], 105);
      state.push!([Uint8Array.of(9)], 0, 1);
      state.push!([], 9);
      expect(seen).toEqual([
        '1:2:false:true:0',
        '2:1:false:true:0',
        '3:3:false:true:77',
        'lost',
        '9:1:true:false:0',
        'error:EBADF',
      ]);
    },
  );
});
