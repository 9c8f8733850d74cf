import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NetlinkDecodeError } from '../../../helper/netlink/errors.js';
import { parseMessages, type NetlinkMessage } from '../../../helper/netlink/message.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import { HOST_LITTLE_ENDIAN } from '../../../helper/netlink/endian.js';
import * as CT from '../../../helper/conntrack/constants.js';
import * as Q from '../../../helper/nfqueue/constants.js';
import {
  ctInfoName,
  decodeQueuedPacket,
  NFQNL_PACKET_TYPE,
} from '../../../helper/nfqueue/decode.js';

function packetMessage(attrs: (w: NetlinkWriter) => void, family = 2, queue = 7): NetlinkMessage {
  const w = new NetlinkWriter();
  w.beginMessage(NFQNL_PACKET_TYPE, 0).nfgenmsg(family, 0, queue);
  attrs(w);
  return parseMessages(w.endMessage().finish())[0]!;
}

function packetHdr(id: number, hwProtocol: number, hook: number): Uint8Array {
  const b = new Uint8Array(7);
  const v = new DataView(b.buffer);
  v.setUint32(0, id, false);
  v.setUint16(4, hwProtocol, false);
  b[6] = hook;
  return b;
}

const IP_PAYLOAD = Uint8Array.from([
  0x45, 0, 0, 0x1c, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
]);

describe('decodeQueuedPacket', () => {
  it('reads a hand-written message byte for byte (packed 7-byte header, BE fields)', () => {
    // nlmsghdr (host order), nfgenmsg (family u8, version, res_id BE), NFQA_PACKET_HDR, NFQA_MARK
    const le = HOST_LITTLE_ENDIAN;
    const bytes = new Uint8Array(16 + 4 + 12 + 8);
    const v = new DataView(bytes.buffer);
    v.setUint32(0, bytes.length, le);
    v.setUint16(4, 0x0300, le); // NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET
    bytes.set([10, 0, 0x01, 0x02], 16); // AF_INET6, v0, queue 0x0102
    v.setUint16(20, 11, le); // nla_len = 4 + 7
    v.setUint16(22, 1, le); // NFQA_PACKET_HDR
    bytes.set([0xfe, 0xdc, 0xba, 0x98, 0x86, 0xdd, 4], 24); // id, hw_protocol, hook; 1 byte pad
    v.setUint16(32, 8, le);
    v.setUint16(34, 3, le); // NFQA_MARK
    bytes.set([0, 0, 0x12, 0x34], 36);
    const p = decodeQueuedPacket(parseMessages(bytes)[0]!);
    expect(p).toEqual({
      queue: 0x0102,
      family: 10,
      id: 0xfedcba98,
      hwProtocol: 0x86dd,
      hook: 4,
      mark: 0x1234,
    });
  });

  it('decodes every attribute', () => {
    const hw = new Uint8Array(12);
    new DataView(hw.buffer).setUint16(0, 6, false);
    hw.set([0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0xee, 0xee], 4);
    const ts = new Uint8Array(16);
    new DataView(ts.buffer).setBigUint64(0, 1_700_000_000n, false);
    new DataView(ts.buffer).setBigUint64(8, 250_000n, false);
    const msg = packetMessage((w) => {
      w.bytes(Q.NFQA_PACKET_HDR, packetHdr(42, 0x0800, Q.NF_INET_LOCAL_IN));
      w.u32be(Q.NFQA_MARK, 0xdeadbeef);
      w.bytes(Q.NFQA_TIMESTAMP, ts);
      w.u32be(Q.NFQA_IFINDEX_INDEV, 2);
      w.u32be(Q.NFQA_IFINDEX_OUTDEV, 3);
      w.u32be(Q.NFQA_IFINDEX_PHYSINDEV, 4);
      w.u32be(Q.NFQA_IFINDEX_PHYSOUTDEV, 5);
      w.bytes(Q.NFQA_HWADDR, hw);
      w.bytes(Q.NFQA_PAYLOAD, IP_PAYLOAD);
      const ct = w.beginNest(Q.NFQA_CT);
      const t = w.beginNest(CT.CTA_TUPLE_ORIG);
      const ip = w.beginNest(CT.CTA_TUPLE_IP);
      w.bytes(CT.CTA_IP_V4_SRC, Uint8Array.from([10, 0, 0, 1]));
      w.bytes(CT.CTA_IP_V4_DST, Uint8Array.from([10, 0, 0, 2]));
      w.endNest(ip);
      const pr = w.beginNest(CT.CTA_TUPLE_PROTO);
      w.u8(CT.CTA_PROTO_NUM, 17);
      w.u16be(CT.CTA_PROTO_SRC_PORT, 1000);
      w.u16be(CT.CTA_PROTO_DST_PORT, 53);
      w.endNest(pr);
      w.endNest(t);
      w.u32be(CT.CTA_MARK, 9);
      w.u32be(CT.CTA_STATUS, 8);
      w.endNest(ct);
      w.u32be(Q.NFQA_CT_INFO, Q.IP_CT_NEW);
      w.u32be(Q.NFQA_CAP_LEN, 1500);
      w.u32be(Q.NFQA_SKB_INFO, Q.NFQA_SKB_CSUMNOTREADY | Q.NFQA_SKB_GSO);
      w.bytes(Q.NFQA_EXP, Uint8Array.from([8, 0, 1, 0, 1, 2, 3, 4]));
      w.u32be(Q.NFQA_UID, 1000);
      w.u32be(Q.NFQA_GID, 100);
      w.string(Q.NFQA_SECCTX, 'system_u:object_r:unlabeled_t:s0');
      // A nest without NLA_F_NESTED, as older kernel code sends it.
      w.bytes(
        Q.NFQA_VLAN,
        Uint8Array.from([6, 0, 1, 0, 0x81, 0x00, 0, 0, 6, 0, 2, 0, 0xa0, 0x64, 0, 0]),
      );
      w.bytes(Q.NFQA_L2HDR, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00]));
      w.u32be(Q.NFQA_PRIORITY, 6);
      w.u32be(30, 0x01020304); // unknown: kept raw
    });
    const p = decodeQueuedPacket(msg);
    expect(p).toMatchObject({
      queue: 7,
      family: 2,
      id: 42,
      hwProtocol: 0x0800,
      hook: 1,
      mark: 0xdeadbeef,
      timestamp: { sec: 1_700_000_000n, usec: 250_000n, ms: 1_700_000_000_250 },
      indev: 2,
      outdev: 3,
      physindev: 4,
      physoutdev: 5,
      hwaddr: { length: 6, text: '02:11:22:33:44:55' },
      ctInfo: Q.IP_CT_NEW,
      capLen: 1500,
      skbInfo: { raw: 3, csumNotReady: true, gso: true, csumNotVerified: false },
      uid: 1000,
      gid: 100,
      secctx: 'system_u:object_r:unlabeled_t:s0',
      vlan: { proto: 0x8100, tci: 0xa064, id: 0x064, priority: 5 },
      priority: 6,
    });
    expect(Array.from(p.hwaddr!.bytes)).toEqual([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
    expect(Array.from(p.payload!)).toEqual(Array.from(IP_PAYLOAD));
    expect(p.ct).toMatchObject({
      family: 'ipv4',
      orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 17, srcPort: 1000, dstPort: 53 },
      mark: 9,
      statusFlags: ['CONFIRMED'],
    });
    expect(Array.from(p.exp!)).toEqual([8, 0, 1, 0, 1, 2, 3, 4]);
    expect(p.l2hdr!.length).toBe(14);
    expect(p.unknown).toEqual([{ type: 30, nested: false, value: Uint8Array.from([1, 2, 3, 4]) }]);
    expect(ctInfoName(p.ctInfo!)).toBe('new');
  });

  it('payload is a zero-copy view into the message; the rest are copies', () => {
    const msg = packetMessage((w) => {
      w.bytes(Q.NFQA_PACKET_HDR, packetHdr(1, 0x0800, 3));
      w.bytes(Q.NFQA_PAYLOAD, IP_PAYLOAD);
      w.bytes(Q.NFQA_L2HDR, Uint8Array.from([1, 2]));
    });
    const p = decodeQueuedPacket(msg);
    expect(p.payload!.buffer).toBe(msg.view.buffer);
    expect(p.l2hdr!.buffer).not.toBe(msg.view.buffer);
    new Uint8Array(msg.view.buffer).fill(0);
    expect(p.payload![0]).toBe(0);
    expect(p.l2hdr![0]).toBe(1);
  });

  it('takes the conntrack family from the EtherType for bridge queues, or keeps NFQA_CT raw', () => {
    const ct = (w: NetlinkWriter) => {
      const n = w.beginNest(Q.NFQA_CT);
      w.u32be(CT.CTA_MARK, 5);
      w.endNest(n);
    };
    const v6 = decodeQueuedPacket(
      packetMessage((w) => {
        w.bytes(Q.NFQA_PACKET_HDR, packetHdr(1, 0x86dd, 0));
        ct(w);
      }, Q.NFPROTO_BRIDGE),
    );
    expect(v6.ct).toMatchObject({ family: 'ipv6', mark: 5 });
    const arp = decodeQueuedPacket(
      packetMessage((w) => {
        w.bytes(Q.NFQA_PACKET_HDR, packetHdr(1, 0x0806, 0));
        ct(w);
      }, Q.NFPROTO_BRIDGE),
    );
    expect(arp.ct).toBeUndefined();
    expect(arp.unknown?.[0]?.type).toBe(Q.NFQA_CT);
  });

  it('rejects malformed attributes with NetlinkDecodeError', () => {
    const bad: [string, (w: NetlinkWriter) => void][] = [
      ['no header', (w) => w.u32be(Q.NFQA_MARK, 1)],
      ['short header', (w) => w.bytes(Q.NFQA_PACKET_HDR, new Uint8Array(6))],
      [
        'hw_addrlen > 8',
        (w) => {
          w.bytes(Q.NFQA_PACKET_HDR, packetHdr(1, 0, 0));
          const hw = new Uint8Array(12);
          hw[1] = 9;
          w.bytes(Q.NFQA_HWADDR, hw);
        },
      ],
      [
        'short hwaddr',
        (w) => {
          w.bytes(Q.NFQA_PACKET_HDR, packetHdr(1, 0, 0));
          w.bytes(Q.NFQA_HWADDR, new Uint8Array(8));
        },
      ],
      [
        'short timestamp',
        (w) => {
          w.bytes(Q.NFQA_PACKET_HDR, packetHdr(1, 0, 0));
          w.bytes(Q.NFQA_TIMESTAMP, new Uint8Array(8));
        },
      ],
      [
        'mark of 2 bytes',
        (w) => {
          w.bytes(Q.NFQA_PACKET_HDR, packetHdr(1, 0, 0));
          w.u16be(Q.NFQA_MARK, 1);
        },
      ],
    ];
    for (const [name, build] of bad) {
      expect(() => decodeQueuedPacket(packetMessage(build)), name).toThrow(NetlinkDecodeError);
    }
    const notPacket = parseMessages(
      new NetlinkWriter().beginMessage(0x0301, 0).nfgenmsg(0).endMessage().finish(),
    )[0]!;
    expect(() => decodeQueuedPacket(notPacket)).toThrow(NetlinkDecodeError);
  });

  it('fuzz: mutated and random messages throw only NetlinkDecodeError', () => {
    const base = packetMessage((w) => {
      w.bytes(Q.NFQA_PACKET_HDR, packetHdr(42, 0x0800, 3));
      w.u32be(Q.NFQA_MARK, 1);
      w.bytes(Q.NFQA_HWADDR, new Uint8Array(12));
      w.bytes(Q.NFQA_TIMESTAMP, new Uint8Array(16));
      const ct = w.beginNest(Q.NFQA_CT);
      w.u32be(CT.CTA_MARK, 5);
      w.endNest(ct);
      w.bytes(Q.NFQA_VLAN, Uint8Array.from([6, 0, 1, 0, 0x81, 0, 0, 0]));
      w.bytes(Q.NFQA_PAYLOAD, IP_PAYLOAD);
    });
    const bytes = new Uint8Array(base.view.buffer, base.offset, base.length).slice();
    const decode = (b: Uint8Array) => {
      let msgs: NetlinkMessage[];
      try {
        msgs = parseMessages(b);
      } catch (e) {
        if (e instanceof NetlinkDecodeError) return;
        throw e;
      }
      for (const m of msgs) {
        try {
          const p = decodeQueuedPacket(m);
          expect(p.id).toBeGreaterThanOrEqual(0);
        } catch (e) {
          if (!(e instanceof NetlinkDecodeError)) throw e;
        }
      }
    };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 8,
        }),
        fc.nat(bytes.length),
        (edits, cut) => {
          const b = bytes.slice(0, Math.max(16, cut));
          for (const [at, val] of edits) if (at >= 16 || at < 4) b[at % b.length] = val;
          // Keep nlmsg_len consistent with the cut so that the attributes are what is fuzzed.
          new DataView(b.buffer).setUint32(0, b.length, HOST_LITTLE_ENDIAN);
          decode(b);
        },
      ),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 200 }), (tail) => {
        const b = new Uint8Array(tail.length);
        b.set(tail);
        const v = new DataView(b.buffer);
        v.setUint32(0, b.length, HOST_LITTLE_ENDIAN);
        v.setUint16(4, NFQNL_PACKET_TYPE, HOST_LITTLE_ENDIAN);
        decode(b);
      }),
      { numRuns: 3000 },
    );
  });
});
