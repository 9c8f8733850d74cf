import { describe, expect, it } from 'vitest';
import { AttributeReader } from '../../../helper/netlink/attributes.js';
import { parseDoneMessage, parseErrorMessage } from '../../../helper/netlink/ack.js';
import {
  AF_INET,
  AF_INET6,
  NLA_F_NESTED,
  NLA_F_NET_BYTEORDER,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NFNL_SUBSYS_CTNETLINK,
  NFNL_SUBSYS_QUEUE,
  nfnlMsgType,
} from '../../../helper/netlink/constants.js';
import { HOST_LITTLE_ENDIAN } from '../../../helper/netlink/endian.js';
import { NetlinkDecodeError } from '../../../helper/netlink/errors.js';
import { decodeNfGenMsg, nfAttributes, parseMessages } from '../../../helper/netlink/message.js';
import { NetlinkWriter, patchSequence } from '../../../helper/netlink/writer.js';

/** Hex bytes as written in the kernel headers' order ("10 00 00 00 ..."). */
function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}
function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

// These vectors are little-endian (x86_64, arm64), as the kernel would send them here.
describe.runIf(HOST_LITTLE_ENDIAN)('wire layout (little-endian host)', () => {
  it('nlmsghdr is host order, nfgenmsg family is a u8 and res_id is big endian', () => {
    const bytes = new NetlinkWriter()
      .beginMessage(nfnlMsgType(NFNL_SUBSYS_QUEUE, 2), NLM_F_REQUEST, 0x01020304, 0x0a0b0c0d)
      .nfgenmsg(AF_INET6, 0, 0x0102)
      .endMessage()
      .finish();
    expect(toHex(bytes)).toBe(
      // len=20      type=0x0302 flags=1 seq          pid          fam ver res_id(BE)
      '14000000' + '0203' + '0100' + '04030201' + '0d0c0b0a' + '0a' + '00' + '0102',
    );
    const [msg] = parseMessages(bytes);
    expect(msg).toMatchObject({
      length: 20,
      type: 0x0302,
      flags: 1,
      seq: 0x01020304,
      portId: 0x0a0b0c0d,
    });
    expect(decodeNfGenMsg(msg!)).toEqual({ family: AF_INET6, version: 0, resId: 0x0102 });
  });

  it('ctnetlink dump request matches the bytes conntrack -L sends (seq/pid aside)', () => {
    // IPCTNL_MSG_CT_GET with NLM_F_REQUEST|NLM_F_DUMP, nfgenmsg AF_INET v0.
    const bytes = new NetlinkWriter()
      .beginMessage(nfnlMsgType(NFNL_SUBSYS_CTNETLINK, 1), NLM_F_REQUEST | NLM_F_DUMP)
      .nfgenmsg(AF_INET)
      .endMessage()
      .finish();
    expect(toHex(bytes)).toBe('14000000' + '0101' + '0103' + '00000000' + '00000000' + '02000000');
  });

  it('attributes: u8 and u16 are padded to 4 bytes with zeros, u32be/u64be are big endian', () => {
    const bytes = new NetlinkWriter()
      .beginMessage(0x10, 0)
      .u8(1, 0xab)
      .u16be(2, 0x0102)
      .u16(3, 0x0102)
      .u32be(4, 0xdeadbeef)
      .u64be(5, 0x0102030405060708n)
      .endMessage()
      .finish();
    const attrs = toHex(bytes.subarray(16));
    expect(attrs).toBe(
      '05000100ab000000' + // len 5, type 1, value, 3 pad bytes
        '060002000102' +
        '0000' +
        '060003000201' +
        '0000' + // host order u16
        '08000400deadbeef' +
        '0c0005000102030405060708',
    );
  });

  it('strings are NUL-terminated and padded; nests carry NLA_F_NESTED and back-patched lengths', () => {
    const w = new NetlinkWriter().beginMessage(0x10, 0);
    const outer = w.beginNest(1);
    w.string(2, 'ftp');
    const inner = w.beginNest(3);
    w.u32be(4, 7);
    w.endNest(inner);
    w.endNest(outer);
    const bytes = w.endMessage().finish();
    expect(toHex(bytes.subarray(16))).toBe(
      '1800' +
        '0180' + // outer: len 24, type 1|NLA_F_NESTED
        '0800' +
        '0200' +
        '66747000' + // "ftp\0"
        '0c00' +
        '0380' +
        '0800' +
        '0400' +
        '00000007',
    );
    expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true)).toBe(bytes.length);
  });
});

describe('NetlinkWriter', () => {
  it('rejects attribute types outside 14 bits and over-long attributes', () => {
    const w = new NetlinkWriter().beginMessage(0x10, 0);
    expect(() => w.u32(0x4000, 1)).toThrow(RangeError);
    expect(() => w.u32(-1, 1)).toThrow(RangeError);
    expect(() => w.bytes(1, new Uint8Array(70000))).toThrow(RangeError);
  });

  it('refuses to finish with an open message or nest', () => {
    const w = new NetlinkWriter().beginMessage(0x10, 0);
    expect(() => w.finish()).toThrow(/not ended/);
    w.beginNest(1);
    expect(() => w.endMessage()).toThrow(/nest/);
  });

  it('grows past its initial size and can hold several messages back to back', () => {
    const w = new NetlinkWriter(16);
    for (let i = 0; i < 50; i++)
      w.beginMessage(0x10 + i, 0, i)
        .u32be(1, i)
        .string(2, 'x'.repeat(i))
        .endMessage();
    const msgs = parseMessages(w.finish());
    expect(msgs).toHaveLength(50);
    msgs.forEach((m, i) => {
      expect(m.type).toBe(0x10 + i);
      expect(m.seq).toBe(i);
      const ad = new AttributeReader(m.view, m.offset + 16, m.offset + m.length);
      expect(ad.next()).toBe(true);
      expect(ad.u32be()).toBe(i);
      expect(ad.next()).toBe(true);
      expect(ad.string()).toBe('x'.repeat(i));
      expect(ad.next()).toBe(false);
    });
  });

  it('patchSequence rewrites seq in place', () => {
    const bytes = new NetlinkWriter().beginMessage(0x10, 0).endMessage().finish();
    patchSequence(bytes, 0xfffffffe);
    expect(parseMessages(bytes)[0]!.seq).toBe(0xfffffffe);
  });

  it('u64 round-trips through bigint, including values above 2^53', () => {
    const big = 0xfedcba9876543210n;
    const bytes = new NetlinkWriter()
      .beginMessage(0x10, 0)
      .u64be(1, big)
      .u64(2, big)
      .endMessage()
      .finish();
    const ad = new AttributeReader(viewOf(bytes), 16, bytes.length);
    ad.next();
    expect(ad.u64be()).toBe(big);
    ad.next();
    expect(ad.u64()).toBe(big);
  });
});

describe('AttributeReader', () => {
  it('masks NLA_F_NESTED and NLA_F_NET_BYTEORDER off the type and reports them', () => {
    const b = hex('0800 0180 00000001  0800 0240 00000002');
    const ad = new AttributeReader(viewOf(b), 0, b.length);
    ad.next();
    expect([ad.type, ad.isNested, ad.rawType]).toEqual([1, true, 1 | NLA_F_NESTED]);
    ad.next();
    expect([ad.type, ad.isNetByteOrder, ad.rawType]).toEqual([2, true, 2 | NLA_F_NET_BYTEORDER]);
    expect(ad.next()).toBe(false);
  });

  it('reads nests that lack NLA_F_NESTED (older kernel code sends them)', () => {
    const b = hex('0c00 0100  0800 0200 0000002a');
    const ad = new AttributeReader(viewOf(b), 0, b.length);
    ad.next();
    expect(ad.isNested).toBe(false);
    const inner = ad.nested();
    expect(inner.next()).toBe(true);
    expect([inner.type, inner.u32be()]).toEqual([2, 42]);
  });

  it('accepts a last attribute without its padding', () => {
    const b = hex('0500 0100 07');
    const ad = new AttributeReader(viewOf(b), 0, b.length);
    expect(ad.next()).toBe(true);
    expect(ad.u8()).toBe(7);
    expect(ad.next()).toBe(false);
  });

  it('throws NetlinkDecodeError on short headers, bad lengths and overruns', () => {
    const cases = ['0800 01', '0300 0100', '0c00 0100 00000000', '0800 0100 00000000 0100'];
    for (const c of cases) {
      const b = hex(c);
      const ad = new AttributeReader(viewOf(b), 0, b.length);
      expect(() => {
        while (ad.next());
      }, c).toThrow(NetlinkDecodeError);
    }
  });

  it('checks value sizes for fixed-width reads', () => {
    const b = hex('0600 0100 0102 0000');
    const ad = new AttributeReader(viewOf(b), 0, b.length);
    ad.next();
    expect(ad.u16be()).toBe(0x0102);
    expect(() => ad.u32be()).toThrow(/needs 4 bytes/);
    expect(() => ad.u8()).toThrow(NetlinkDecodeError);
    expect(() => ad.u64be()).toThrow(NetlinkDecodeError);
  });

  it('bytes() is a zero-copy view and never reaches past the attribute', () => {
    const b = hex('0700 0100 aabbcc 00  0800 0200 11223344');
    const ad = new AttributeReader(viewOf(b), 0, b.length);
    ad.next();
    const v = ad.bytes();
    expect(toHex(v)).toBe('aabbcc');
    expect(v.buffer).toBe(b.buffer);
  });

  it('stays inside its run even when the buffer continues', () => {
    const b = hex('0800 0100 00000001  0800 0200 00000002');
    const ad = new AttributeReader(viewOf(b), 0, 8);
    expect(ad.next()).toBe(true);
    expect(ad.next()).toBe(false);
  });

  it('rejects a run outside the buffer', () => {
    expect(() => new AttributeReader(new DataView(new ArrayBuffer(8)), 4, 12)).toThrow(
      NetlinkDecodeError,
    );
  });
});

describe('messages', () => {
  it('splits a datagram into aligned messages', () => {
    const w = new NetlinkWriter();
    w.beginMessage(0x10, 0, 1).u8(1, 1).endMessage();
    w.beginMessage(0x11, 0, 2).endMessage();
    const msgs = parseMessages(w.finish());
    expect(msgs.map((m) => [m.type, m.seq, m.offset, m.length])).toEqual([
      [0x10, 1, 0, 24],
      [0x11, 2, 24, 16],
    ]);
  });

  it('rejects nlmsg_len below the header size or past the datagram', () => {
    expect(() => parseMessages(hex('0c000000 1000 0000 00000000 00000000'))).toThrow(/< 16/);
    expect(() => parseMessages(hex('20000000 1000 0000 00000000 00000000'))).toThrow(/overruns/);
    expect(() => parseMessages(hex('10000000 1000'))).toThrow(/too short/);
  });

  it('nfAttributes needs room for nfgenmsg', () => {
    const [m] = parseMessages(new NetlinkWriter().beginMessage(0x10, 0).endMessage().finish());
    expect(() => nfAttributes(m!)).toThrow(NetlinkDecodeError);
    expect(() => decodeNfGenMsg(m!)).toThrow(NetlinkDecodeError);
  });
});

describe('ACK and error messages', () => {
  function errorMessage(
    errno: number,
    flags: number,
    request: Uint8Array,
    tlvs?: (w: NetlinkWriter) => void,
  ): Uint8Array {
    const w = new NetlinkWriter().beginMessage(NLMSG_ERROR, flags, 9, 0);
    const head = new Uint8Array(4);
    new DataView(head.buffer).setInt32(0, -errno, HOST_LITTLE_ENDIAN);
    w.raw(head);
    w.raw(flags & NLM_F_CAPPED ? request.subarray(0, 16) : request);
    tlvs?.(w);
    return w.endMessage().finish();
  }
  const request = new NetlinkWriter()
    .beginMessage(nfnlMsgType(1, 0), NLM_F_REQUEST, 77)
    .nfgenmsg(AF_INET)
    .u32be(8, 5)
    .endMessage()
    .finish();

  it('a plain ACK has errno 0 and echoes the request header', () => {
    const [m] = parseMessages(errorMessage(0, NLM_F_CAPPED, request));
    expect(parseErrorMessage(m!)).toMatchObject({
      errno: 0,
      requestSeq: 77,
      requestType: 0x100,
      extack: {},
    });
  });

  it('reads the extended ACK after a capped request', () => {
    const msg = errorMessage(34, NLM_F_CAPPED | NLM_F_ACK_TLVS, request, (w) =>
      w.string(1, 'Attribute failed policy validation').u32(2, 20),
    );
    const status = parseErrorMessage(parseMessages(msg)[0]!);
    expect(status.errno).toBe(34);
    expect(status.extack).toEqual({ message: 'Attribute failed policy validation', offset: 20 });
  });

  it('skips the echoed payload of an uncapped error to find the TLVs', () => {
    const msg = errorMessage(22, NLM_F_ACK_TLVS, request, (w) => w.string(1, 'bad').u32(5, 7));
    const status = parseErrorMessage(parseMessages(msg)[0]!);
    expect(status).toMatchObject({ errno: 22, extack: { message: 'bad', missingType: 7 } });
  });

  it('NLMSG_DONE carries a status and optional extack', () => {
    const ok = parseMessages(
      new NetlinkWriter().beginMessage(NLMSG_DONE, 2).raw(new Uint8Array(4)).endMessage().finish(),
    );
    expect(parseDoneMessage(ok[0]!)).toEqual({ errno: 0, extack: {} });
    const head = new Uint8Array(4);
    new DataView(head.buffer).setInt32(0, -16, HOST_LITTLE_ENDIAN);
    const bad = parseMessages(
      new NetlinkWriter()
        .beginMessage(NLMSG_DONE, 2 | NLM_F_ACK_TLVS)
        .raw(head)
        .string(1, 'busy')
        .endMessage()
        .finish(),
    );
    expect(parseDoneMessage(bad[0]!)).toEqual({ errno: 16, extack: { message: 'busy' } });
  });

  it('a too-short error message is a decode error, not a crash', () => {
    const [m] = parseMessages(
      new NetlinkWriter().beginMessage(NLMSG_ERROR, 0).raw(new Uint8Array(4)).endMessage().finish(),
    );
    expect(() => parseErrorMessage(m!)).toThrow(NetlinkDecodeError);
  });
});

describe('errno names', () => {
  it('uses the names the kernel sources use where numbers are shared', async () => {
    const { errnoName, errnoNumber } = await import('../../../helper/netlink/errno.js');
    expect(errnoName(errnoNumber('EOPNOTSUPP')!)).toBe('EOPNOTSUPP');
    expect(errnoName(errnoNumber('EAGAIN')!)).toBe('EAGAIN');
    expect(errnoName(2)).toBe('ENOENT');
    expect(errnoName(100000)).toBe('E100000');
  });
});
