import { describe, expect, it } from 'vitest';
import { decodeQueuedPacket } from '../../../helper/nfqueue/decode.js';
import {
  SYNTHETIC_ID_OFFSET,
  WarmUpTransport,
  syntheticPacketMessage,
} from '../../../helper/nfqueue/warmup.js';
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
});
