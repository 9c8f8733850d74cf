import { describe, expect, it } from 'vitest';
import { decodeQueuedPacket } from '../../../helper/nfqueue/decode.js';
import { parseMessages } from '../../../helper/netlink/message.js';
import { parsePacket } from '../../../helper/packet/parse.js';
import {
  SYNTHETIC_ID_OFFSET,
  SYNTHETIC_SHAPES,
  syntheticPacketMessage,
} from '../../../bench/nfq-synthetic.js';

describe('synthetic NFQUEUE packets (bench/nfq-synthetic.ts)', () => {
  it('builds a packet message the decoder reads like a kernel one, with a patchable id', () => {
    const bytes = syntheticPacketMessage();
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(SYNTHETIC_ID_OFFSET, 0xabcdef, false);
    const p = decodeQueuedPacket(parseMessages(bytes)[0]!);
    expect(p.id).toBe(0xabcdef);
    expect(p.payload?.length).toBe(92);
    expect(p.outdev).toBe(1);
    expect(parsePacket(p.payload!).ip.protocol).toBe(17);
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
});
