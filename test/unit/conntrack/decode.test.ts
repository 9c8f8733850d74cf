import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFlow, labelBits, statusFlagsOf } from '../../../helper/conntrack/decode.js';
import * as C from '../../../helper/conntrack/constants.js';
import { canonicalIP, formatIPv6, parseIP } from '../../../helper/common/ip.js';
import { AF_INET, AF_INET6, NLA_F_NESTED } from '../../../helper/netlink/constants.js';
import { HOST_LITTLE_ENDIAN } from '../../../helper/netlink/endian.js';
import { NetlinkDecodeError } from '../../../helper/netlink/errors.js';
import { parseMessages } from '../../../helper/netlink/message.js';

// A tiny hand builder, so that vectors do not depend on the library's encoder
// and can leave NLA_F_NESTED off, as older kernel code does.
type Attr = Uint8Array;
function attr(type: number, value: Uint8Array): Attr {
  const len = 4 + value.length;
  const out = new Uint8Array((len + 3) & ~3);
  const v = new DataView(out.buffer);
  v.setUint16(0, len, HOST_LITTLE_ENDIAN);
  v.setUint16(2, type, HOST_LITTLE_ENDIAN);
  out.set(value, 4);
  return out;
}
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const nest = (type: number, children: Attr[], flag = true) =>
  attr(type | (flag ? NLA_F_NESTED : 0), concat(children));
const u8 = (t: number, v: number) => attr(t, Uint8Array.of(v));
const be16 = (t: number, v: number) => attr(t, Uint8Array.of(v >> 8, v & 0xff));
const be32 = (t: number, v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, false);
  return attr(t, b);
};
const be64 = (t: number, v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, false);
  return attr(t, b);
};
const bytes = (t: number, b: number[] | Uint8Array) => attr(t, Uint8Array.from(b));
const str = (t: number, s: string) => attr(t, new TextEncoder().encode(s + '\0'));

function message(family: number, attrs: Attr[], type = 0x0100): Uint8Array {
  const body = concat([Uint8Array.of(family, 0, 0, 0), ...attrs]);
  const out = new Uint8Array(16 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, HOST_LITTLE_ENDIAN);
  v.setUint16(4, type, HOST_LITTLE_ENDIAN);
  out.set(body, 16);
  return out;
}

function tuple(type: number, src: number[], dst: number[], proto: Attr[], flag = true): Attr {
  const v6 = src.length === 16;
  return nest(
    type,
    [
      nest(
        C.CTA_TUPLE_IP,
        [
          bytes(v6 ? C.CTA_IP_V6_SRC : C.CTA_IP_V4_SRC, src),
          bytes(v6 ? C.CTA_IP_V6_DST : C.CTA_IP_V4_DST, dst),
        ],
        flag,
      ),
      nest(C.CTA_TUPLE_PROTO, proto, flag),
    ],
    flag,
  );
}

const A = [192, 0, 2, 1];
const B = [198, 51, 100, 7];

describe('decodeFlow', () => {
  it('decodes a TCP flow with every common attribute', () => {
    const msg = message(AF_INET, [
      tuple(C.CTA_TUPLE_ORIG, A, B, [
        u8(C.CTA_PROTO_NUM, 6),
        be16(C.CTA_PROTO_SRC_PORT, 40000),
        be16(C.CTA_PROTO_DST_PORT, 443),
      ]),
      tuple(C.CTA_TUPLE_REPLY, B, A, [
        u8(C.CTA_PROTO_NUM, 6),
        be16(C.CTA_PROTO_SRC_PORT, 443),
        be16(C.CTA_PROTO_DST_PORT, 40000),
      ]),
      be32(
        C.CTA_STATUS,
        C.STATUS_BITS.ASSURED | C.STATUS_BITS.SEEN_REPLY | C.STATUS_BITS.CONFIRMED,
      ),
      nest(C.CTA_PROTOINFO, [
        nest(C.CTA_PROTOINFO_TCP, [
          u8(C.CTA_PROTOINFO_TCP_STATE, 3),
          u8(C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, 7),
          u8(C.CTA_PROTOINFO_TCP_WSCALE_REPLY, 9),
          bytes(C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, [0x0a, 0x00]),
          bytes(C.CTA_PROTOINFO_TCP_FLAGS_REPLY, [0x02, 0x0f]),
        ]),
      ]),
      be32(C.CTA_TIMEOUT, 431999),
      be32(C.CTA_MARK, 0xdeadbeef),
      be32(C.CTA_USE, 1),
      be32(C.CTA_ID, 0x89abcdef),
      be16(C.CTA_ZONE, 5),
    ]);
    const flow = decodeFlow(parseMessages(msg)[0]!);
    expect(flow).toEqual({
      family: 'ipv4',
      orig: { src: '192.0.2.1', dst: '198.51.100.7', proto: 6, srcPort: 40000, dstPort: 443 },
      reply: { src: '198.51.100.7', dst: '192.0.2.1', proto: 6, srcPort: 443, dstPort: 40000 },
      status: 0x0e,
      statusFlags: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'],
      tcp: {
        state: 'ESTABLISHED',
        stateNumber: 3,
        wscaleOrig: 7,
        wscaleReply: 9,
        flagsOrig: { flags: 0x0a, mask: 0 },
        flagsReply: { flags: 0x02, mask: 0x0f },
      },
      timeout: 431999,
      mark: 0xdeadbeef,
      use: 1,
      id: 0x89abcdef,
      zone: 5,
    });
  });

  it('decodes counters with pad attributes as bigint, and timestamps', () => {
    const big = 0x1_0000_0000_0001n;
    const counters = (p: bigint, b: bigint) =>
      nest(C.CTA_COUNTERS_ORIG, [
        be64(C.CTA_COUNTERS_PACKETS, p),
        attr(5 /* CTA_COUNTERS_PAD */, new Uint8Array(0)),
        be64(C.CTA_COUNTERS_BYTES, b),
      ]);
    const msg = message(AF_INET, [
      counters(3n, big),
      nest(C.CTA_COUNTERS_REPLY, [
        bytes(C.CTA_COUNTERS32_PACKETS, [0, 0, 0, 2]),
        bytes(C.CTA_COUNTERS32_BYTES, [0, 0, 1, 0]),
      ]),
      nest(C.CTA_TIMESTAMP, [
        be64(C.CTA_TIMESTAMP_START, 1_700_000_000_123_456_789n),
        attr(3, new Uint8Array(0)),
        be64(C.CTA_TIMESTAMP_STOP, 1_700_000_001_000_000_000n),
      ]),
    ]);
    const flow = decodeFlow(parseMessages(msg)[0]!);
    expect(flow.countersOrig).toEqual({ packets: 3n, bytes: big });
    expect(flow.countersReply).toEqual({ packets: 2n, bytes: 256n });
    expect(flow.timestampStart).toBe(1_700_000_000_123_456_789n);
    expect(flow.timestampStop).toBe(1_700_000_001_000_000_000n);
  });

  it('reads nests without NLA_F_NESTED exactly like nests with it', () => {
    const build = (flag: boolean) =>
      message(AF_INET6, [
        tuple(
          C.CTA_TUPLE_ORIG,
          [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
          [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x22],
          [
            u8(C.CTA_PROTO_NUM, 58),
            be16(C.CTA_PROTO_ICMPV6_ID, 77),
            u8(C.CTA_PROTO_ICMPV6_TYPE, 128),
            u8(C.CTA_PROTO_ICMPV6_CODE, 0),
          ],
          flag,
        ),
        nest(
          C.CTA_PROTOINFO,
          [
            nest(
              C.CTA_PROTOINFO_SCTP,
              [
                u8(C.CTA_PROTOINFO_SCTP_STATE, 4),
                be32(C.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, 0x11223344),
                be32(C.CTA_PROTOINFO_SCTP_VTAG_REPLY, 5),
              ],
              flag,
            ),
          ],
          flag,
        ),
      ]);
    const a = decodeFlow(parseMessages(build(true))[0]!);
    const b = decodeFlow(parseMessages(build(false))[0]!);
    expect(b).toEqual(a);
    expect(a.orig).toEqual({
      src: '2001:db8::1',
      dst: 'fe80::22',
      proto: 58,
      icmpId: 77,
      icmpType: 128,
      icmpCode: 0,
    });
    expect(a.sctp).toEqual({
      state: 'ESTABLISHED',
      stateNumber: 4,
      vtagOrig: 0x11223344,
      vtagReply: 5,
    });
    expect(a.family).toBe('ipv6');
  });

  it('decodes labels, helper, secctx, NAT seq adjust, master tuple, synproxy and DCCP', () => {
    const labels = new Uint8Array(16);
    labels[0] = 0b10; // bit 1
    labels[15] = 0x80; // bit 127
    const seqadj = (type: number) =>
      nest(type, [
        be32(C.CTA_SEQADJ_CORRECTION_POS, 1000),
        be32(C.CTA_SEQADJ_OFFSET_BEFORE, 0xfffffffe),
        be32(C.CTA_SEQADJ_OFFSET_AFTER, 4),
      ]);
    const msg = message(AF_INET, [
      bytes(C.CTA_LABELS, labels),
      nest(C.CTA_HELP, [str(C.CTA_HELP_NAME, 'ftp')]),
      nest(C.CTA_SECCTX, [str(C.CTA_SECCTX_NAME, 'system_u:object_r:unlabeled_t:s0')]),
      seqadj(C.CTA_SEQ_ADJ_ORIG),
      seqadj(C.CTA_SEQ_ADJ_REPLY),
      tuple(C.CTA_TUPLE_MASTER, B, A, [
        u8(C.CTA_PROTO_NUM, 6),
        be16(C.CTA_PROTO_SRC_PORT, 2000),
        be16(C.CTA_PROTO_DST_PORT, 21),
      ]),
      nest(C.CTA_SYNPROXY, [
        be32(C.CTA_SYNPROXY_ISN, 1),
        be32(C.CTA_SYNPROXY_ITS, 2),
        be32(C.CTA_SYNPROXY_TSOFF, 3),
      ]),
      nest(C.CTA_PROTOINFO, [
        nest(C.CTA_PROTOINFO_DCCP, [
          u8(C.CTA_PROTOINFO_DCCP_STATE, 4),
          u8(C.CTA_PROTOINFO_DCCP_ROLE, 1),
          be64(C.CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, 99n),
        ]),
      ]),
      be32(C.CTA_SECMARK, 12),
      nest(C.CTA_NAT_SRC, [
        bytes(C.CTA_NAT_V4_MINIP, A),
        bytes(C.CTA_NAT_V4_MAXIP, A),
        nest(C.CTA_NAT_PROTO, [
          be16(C.CTA_PROTONAT_PORT_MIN, 1024),
          be16(C.CTA_PROTONAT_PORT_MAX, 2048),
        ]),
      ]),
    ]);
    const flow = decodeFlow(parseMessages(msg)[0]!);
    expect(labelBits(flow.labels!)).toEqual([1, 127]);
    expect(flow.helper).toEqual({ name: 'ftp' });
    expect(flow.secctx).toBe('system_u:object_r:unlabeled_t:s0');
    expect(flow.seqAdjOrig).toEqual({ correctionPos: 1000, offsetBefore: -2, offsetAfter: 4 });
    expect(flow.seqAdjReply).toEqual(flow.seqAdjOrig);
    expect(flow.master).toEqual({
      src: '198.51.100.7',
      dst: '192.0.2.1',
      proto: 6,
      srcPort: 2000,
      dstPort: 21,
    });
    expect(flow.synproxy).toEqual({ isn: 1, its: 2, tsoff: 3 });
    expect(flow.dccp).toEqual({ state: 'OPEN', stateNumber: 4, role: 1, handshakeSeq: 99n });
    expect(flow.secmark).toBe(12);
    expect(flow.natSrc).toEqual({
      minIp: '192.0.2.1',
      maxIp: '192.0.2.1',
      minPort: 1024,
      maxPort: 2048,
    });
  });

  it('keeps unknown attributes raw instead of failing', () => {
    const msg = message(AF_INET, [be32(C.CTA_MARK, 1), bytes(60, [1, 2, 3]), nest(61, [u8(1, 9)])]);
    const flow = decodeFlow(parseMessages(msg)[0]!);
    expect(flow.mark).toBe(1);
    expect(flow.unknown).toEqual([
      { type: 60, nested: false, value: Uint8Array.of(1, 2, 3) },
      { type: 61, nested: true, value: u8(1, 9) },
    ]);
  });

  it('names unknown TCP states instead of failing', () => {
    const msg = message(AF_INET, [
      nest(C.CTA_PROTOINFO, [nest(C.CTA_PROTOINFO_TCP, [u8(C.CTA_PROTOINFO_TCP_STATE, 42)])]),
    ]);
    expect(decodeFlow(parseMessages(msg)[0]!).tcp?.state).toBe('UNKNOWN_42');
  });

  it('rejects wrong-sized fields and unknown families with NetlinkDecodeError', () => {
    expect(() =>
      decodeFlow(parseMessages(message(AF_INET, [attr(C.CTA_MARK, Uint8Array.of(1, 2))]))[0]!),
    ).toThrow(NetlinkDecodeError);
    expect(() => decodeFlow(parseMessages(message(7, []))[0]!)).toThrow(NetlinkDecodeError);
    const badIp = message(AF_INET, [
      nest(C.CTA_TUPLE_ORIG, [nest(C.CTA_TUPLE_IP, [bytes(C.CTA_IP_V4_SRC, [1, 2, 3])])]),
    ]);
    expect(() => decodeFlow(parseMessages(badIp)[0]!)).toThrow(NetlinkDecodeError);
  });

  it('fuzz: random and mutated messages only ever throw NetlinkDecodeError', () => {
    const seed = message(AF_INET, [
      tuple(C.CTA_TUPLE_ORIG, A, B, [
        u8(C.CTA_PROTO_NUM, 6),
        be16(C.CTA_PROTO_SRC_PORT, 1),
        be16(C.CTA_PROTO_DST_PORT, 2),
      ]),
      nest(C.CTA_COUNTERS_ORIG, [be64(C.CTA_COUNTERS_PACKETS, 1n), be64(C.CTA_COUNTERS_BYTES, 2n)]),
      nest(C.CTA_PROTOINFO, [nest(C.CTA_PROTOINFO_TCP, [u8(C.CTA_PROTOINFO_TCP_STATE, 3)])]),
      bytes(C.CTA_LABELS, new Uint8Array(16)),
    ]);
    const check = (b: Uint8Array) => {
      try {
        for (const m of parseMessages(b)) decodeFlow(m);
      } catch (e) {
        if (!(e instanceof NetlinkDecodeError)) throw e;
      }
    };
    fc.assert(
      fc.property(
        fc.nat(seed.length - 1),
        fc.integer({ min: 0, max: 255 }),
        fc.nat(seed.length),
        (at, value, cut) => {
          const copy = seed.slice();
          copy[at] = value;
          check(copy.subarray(0, Math.max(cut, 0)));
          check(copy);
        },
      ),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => check(b)),
      { numRuns: 2000 },
    );
  });
});

describe('status flags and addresses', () => {
  it('names status bits in bit order', () => {
    expect(statusFlagsOf(0)).toEqual([]);
    expect(
      statusFlagsOf(C.STATUS_BITS.DST_NAT | C.STATUS_BITS.EXPECTED | C.STATUS_BITS.HW_OFFLOAD),
    ).toEqual(['EXPECTED', 'DST_NAT', 'HW_OFFLOAD']);
  });

  it('formats IPv6 like inet_ntop (RFC 5952)', () => {
    const f = (s: string) => formatIPv6(new DataView(parseIP(s)!.buffer), 0);
    expect(f('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(f('0:0:0:0:0:0:0:0')).toBe('::');
    expect(f('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(f('2001:db8:0:1:0:0:0:1')).toBe('2001:db8:0:1::1'); // longest run wins
    expect(f('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // first of equal runs
    expect(f('2001:db8:1:1:1:1:0:1')).toBe('2001:db8:1:1:1:1:0:1'); // a single zero is not compressed
    expect(f('::ffff:192.0.2.1')).toBe('::ffff:192.0.2.1');
    expect(f('fe80::')).toBe('fe80::');
  });

  it('parses and canonicalises addresses, rejecting garbage', () => {
    expect(canonicalIP('2001:DB8::0:1')).toBe('2001:db8::1');
    expect(canonicalIP('::ffff:10.0.0.1')).toBe('::ffff:10.0.0.1');
    expect(canonicalIP('10.0.0.1')).toBe('10.0.0.1');
    for (const bad of [
      '',
      '1.2.3',
      '256.1.1.1',
      '1.2.3.4.5',
      ':::',
      '1::2::3',
      '12345::',
      'g::1',
      '1:2:3:4:5:6:7:8:9',
      '01.2.3.4x',
    ]) {
      expect(parseIP(bad), bad).toBeUndefined();
    }
  });

  it('round-trips random IPv6 addresses through format and parse', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const text = formatIPv6(new DataView(b.buffer), 0);
        expect(parseIP(text)).toEqual(b);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('decodeFlow bounds', () => {
  it('a message too short for nfgenmsg is a decode error, not a RangeError', () => {
    const bare = new Uint8Array(16);
    new DataView(bare.buffer).setUint32(0, 16, HOST_LITTLE_ENDIAN);
    expect(() => decodeFlow(parseMessages(bare)[0]!)).toThrow(NetlinkDecodeError);
  });
});

describe('IPv6 parsing edge cases', () => {
  const hex = (s: string) => {
    const b = parseIP(s);
    return b ? Buffer.from(b).toString('hex') : undefined;
  };
  it('accepts every valid spelling', () => {
    expect(hex('::')).toBe('0'.repeat(32));
    expect(hex('::1')).toBe('0'.repeat(31) + '1');
    expect(hex('1::')).toBe('0001' + '0'.repeat(28));
    expect(hex('1:2:3:4:5:6:7:8')).toBe('00010002000300040005000600070008');
    expect(hex('1::2:3:4:5:6:7')).toBe('00010000000200030004000500060007');
    expect(hex('1:2:3:4:5:6:7::')).toBe('00010002000300040005000600070000');
    expect(hex('1:2:3:4:5:6:1.2.3.4')).toBe('00010002000300040005000601020304');
    expect(hex('::1.2.3.4')).toBe('0'.repeat(24) + '01020304');
    expect(hex('FE80::ABCD')).toBe('fe80' + '0'.repeat(24) + 'abcd');
  });
  it('rejects malformed ones', () => {
    for (const bad of [
      ':1::2',
      '1:::2',
      '1:2:3:4:5:6:7:8::',
      '1:2:3:4:5:6:7:8:9',
      '12345::1',
      '1:2:3:4:5:6:7:1.2.3.4',
      '1:',
      ':',
      '1::2::',
      '::1.2.3',
      '::g',
      '1.2.3.4::',
    ]) {
      expect(parseIP(bad), bad).toBeUndefined();
    }
  });
  it('parses the full, uncompressed, upper-case form of random addresses', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const v = new DataView(b.buffer);
        const full = Array.from({ length: 8 }, (_, i) =>
          v
            .getUint16(i * 2)
            .toString(16)
            .toUpperCase()
            .padStart(4, '0'),
        ).join(':');
        expect(parseIP(full)).toEqual(b);
      }),
      { numRuns: 1000 },
    );
  });
});
