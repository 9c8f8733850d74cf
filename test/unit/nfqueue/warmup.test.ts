import { describe, expect, it } from 'vitest';
import { decodeQueuedPacket } from '../../../helper/nfqueue/decode.js';
import {
  SYNTHETIC_ID_OFFSET,
  SYNTHETIC_SHAPES,
  WarmUpBinding,
  WarmUpTransport,
  syntheticPacketMessage,
} from '../../../helper/nfqueue/warmup.js';
import { NetlinkSocket } from '../../../helper/netlink/socket.js';
import { NetlinkConnection } from '../../../helper/netlink/connection.js';
import { parseMessages } from '../../../helper/netlink/message.js';
import { parsePacket } from '../../../helper/packet/parse.js';

describe('NFQUEUE warm-up', () => {
  it('builds a packet message the decoder reads like a kernel one, with a patchable id', () => {
    const bytes = syntheticPacketMessage();
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(SYNTHETIC_ID_OFFSET, 0xabcdef, false);
    const p = decodeQueuedPacket(parseMessages(bytes)[0]!);
    expect(p.id).toBe(0xabcdef);
    expect(p.payload?.length).toBe(92);
    expect(p.outdev).toBe(1);
    expect(parsePacket(p.payload!).ip.protocol).toBe(17);
  });

  it('feeds numbered packets to its reader and swallows sends', () => {
    const t = new WarmUpTransport();
    const ids: number[] = [];
    t.read({
      onDatagram: (view, offset, length) => {
        ids.push(
          decodeQueuedPacket(
            parseMessages(new Uint8Array(view.buffer, view.byteOffset + offset, length))[0]!,
          ).id,
        );
      },
      onLost: () => {},
      onError: () => {},
    });
    t.deliver(5, 3);
    t.send();
    expect(ids).toEqual([5, 6, 7]);
    expect(t.sent).toBe(1);
  });

  it('every synthetic shape decodes like the kernel packet it stands for', () => {
    const [out, marked, inbound, v6] = SYNTHETIC_SHAPES.map((shape) =>
      decodeQueuedPacket(parseMessages(syntheticPacketMessage(shape))[0]!),
    );
    expect(out).toMatchObject({ hook: 3, outdev: 1, skbInfo: { csumNotReady: true } });
    expect(marked).toMatchObject({ mark: 0x11, uid: 0, gid: 0 });
    expect(inbound).toMatchObject({ hook: 1, indev: 2, hwaddr: { length: 6 } });
    expect(inbound!.timestamp?.sec).toBeGreaterThan(0n);
    expect(v6).toMatchObject({ family: 10, hwProtocol: 0x86dd });
    expect(parsePacket(v6!.payload!).ip.version).toBe(6);
  });

  it('WarmUpBinding feeds a real NetlinkSocket wrapper: reads of n packets, sends counted', () => {
    const binding = new WarmUpBinding();
    const socket = NetlinkSocket.open(12, { binding, slotSize: 8192, slots: 4 });
    const conn = new NetlinkConnection(socket);
    const ids: number[] = [];
    conn.onNotification((msg) => ids.push(decodeQueuedPacket(msg).id));
    binding.deliver(0xfffffffe, 4);
    binding.deliver(9, 1);
    socket.send(new Uint8Array(4));
    expect(ids).toEqual([0xfffffffe, 0xffffffff, 0, 1, 9]);
    expect(binding.sent).toBe(1);
    socket.close();
  });
});
