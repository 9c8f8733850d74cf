import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HOST_LITTLE_ENDIAN } from '../../../helper/netlink/endian.js';
import { NetlinkDecodeError } from '../../../helper/netlink/errors.js';
import {
  nfAttributes,
  parseMessages,
  type NetlinkMessage,
} from '../../../helper/netlink/message.js';
import { NLMSG_DONE } from '../../../helper/netlink/constants.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import * as CT from '../../../helper/conntrack/constants.js';
import * as L from '../../../helper/nflog/constants.js';
import { decodeLoggedPacket, NFULNL_PACKET_TYPE } from '../../../helper/nflog/decode.js';
import {
  encodeLogConfig,
  encodePfCommand,
  NFULNL_CONFIG_TYPE,
} from '../../../helper/nflog/encode.js';
import { NfLogError } from '../../../helper/nflog/errors.js';
import { NfLog, type NfLogOptions } from '../../../helper/nflog/log.js';
import type { LoggedPacket } from '../../../helper/nflog/types.js';
import { parseLogProcStats } from '../../../helper/nflog/stats.js';
import {
  ackMessage,
  datagram,
  errorMessage,
  FakeKernel,
  lost,
  readError,
  truncated,
} from '../../support/fake-kernel.js';

const EOPNOTSUPP = 95;
const EPERM = 1;

function logMessage(attrs: (w: NetlinkWriter) => void, family = 2, group = 5): Uint8Array {
  const w = new NetlinkWriter();
  w.beginMessage(NFULNL_PACKET_TYPE, 0).nfgenmsg(family, 0, group);
  attrs(w);
  return w.endMessage().finish();
}

const msgOf = (bytes: Uint8Array): NetlinkMessage => parseMessages(bytes)[0]!;

function hdr(hwProtocol: number, hook: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint16(0, hwProtocol, false);
  b[2] = hook;
  return b;
}

const IP = Uint8Array.from([
  0x45, 0, 0, 0x1c, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
]);

describe('decodeLoggedPacket', () => {
  it('reads a hand-written message byte for byte (4-byte header, BE fields, prefix)', () => {
    const le = HOST_LITTLE_ENDIAN;
    const bytes = new Uint8Array(16 + 4 + 8 + 8 + 12 + 8);
    const v = new DataView(bytes.buffer);
    v.setUint32(0, bytes.length, le);
    v.setUint16(4, 0x0400, le); // NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET
    bytes.set([10, 0, 0x01, 0x02], 16); // NFPROTO_IPV6, v0, group 0x0102 (BE)
    v.setUint16(20, 8, le); // nla_len = 4 + 4
    v.setUint16(22, 1, le); // NFULA_PACKET_HDR
    bytes.set([0x86, 0xdd, 3, 0], 24); // hw_protocol, hook, pad
    v.setUint16(28, 8, le);
    v.setUint16(30, 2, le); // NFULA_MARK
    bytes.set([0, 0, 0x12, 0x34], 32);
    v.setUint16(36, 11, le); // NFULA_PREFIX "dns-in\0"
    v.setUint16(38, 10, le);
    bytes.set([...Buffer.from('dns-in'), 0], 40);
    v.setUint16(48, 8, le);
    v.setUint16(50, 11, le); // NFULA_UID
    bytes.set([0, 0, 0x03, 0xe8], 52);
    expect(decodeLoggedPacket(msgOf(bytes))).toEqual({
      group: 0x0102,
      family: 10,
      hwProtocol: 0x86dd,
      hook: 3,
      mark: 0x1234,
      prefix: 'dns-in',
      uid: 1000,
    });
  });

  it('every attribute: timestamp, ifindexes, hwaddr, hw type/len/header, seq, vlan, l2hdr, ct', () => {
    const hw = new Uint8Array(12);
    new DataView(hw.buffer).setUint16(0, 6, false);
    hw.set([0x02, 0, 0, 0, 0, 0x01], 4);
    const ts = new Uint8Array(16);
    new DataView(ts.buffer).setBigUint64(0, 1_700_000_000n, false);
    new DataView(ts.buffer).setBigUint64(8, 250_000n, false);
    const m = logMessage((w) => {
      w.bytes(L.NFULA_PACKET_HDR, hdr(0x0800, 1));
      w.bytes(L.NFULA_TIMESTAMP, ts);
      w.u32be(L.NFULA_IFINDEX_INDEV, 3);
      w.u32be(L.NFULA_IFINDEX_OUTDEV, 4);
      w.u32be(L.NFULA_IFINDEX_PHYSINDEV, 5);
      w.u32be(L.NFULA_IFINDEX_PHYSOUTDEV, 6);
      w.bytes(L.NFULA_HWADDR, hw);
      w.bytes(L.NFULA_PAYLOAD, IP);
      w.u32be(L.NFULA_GID, 100);
      w.u32be(L.NFULA_SEQ, 7);
      w.u32be(L.NFULA_SEQ_GLOBAL, 70);
      w.u16be(L.NFULA_HWTYPE, 1);
      w.u16be(L.NFULA_HWLEN, 14);
      w.bytes(L.NFULA_HWHEADER, new Uint8Array(14).fill(0xab));
      const vlan = w.beginNest(L.NFULA_VLAN);
      w.u16be(L.NFULA_VLAN_PROTO, 0x8100);
      w.u16be(L.NFULA_VLAN_TCI, (5 << 13) | 42);
      w.endNest(vlan);
      w.bytes(L.NFULA_L2HDR, Uint8Array.of(1, 2, 3));
      const ct = w.beginNest(L.NFULA_CT);
      w.u32be(CT.CTA_MARK, 9);
      w.endNest(ct);
      w.u32be(L.NFULA_CT_INFO, 2);
      w.u32be(99, 1);
    });
    const p = decodeLoggedPacket(msgOf(m));
    expect(p).toMatchObject({
      group: 5,
      family: 2,
      hwProtocol: 0x0800,
      hook: 1,
      timestamp: { sec: 1_700_000_000n, usec: 250_000n, ms: 1_700_000_000_250 },
      indev: 3,
      outdev: 4,
      physindev: 5,
      physoutdev: 6,
      hwaddr: { length: 6, text: '02:00:00:00:00:01' },
      gid: 100,
      seq: 7,
      seqGlobal: 70,
      hwType: 1,
      hwLen: 14,
      vlan: { proto: 0x8100, tci: (5 << 13) | 42, id: 42, priority: 5 },
      ctInfo: 2,
      ct: { mark: 9 },
    });
    expect(Array.from(p.payload!)).toEqual(Array.from(IP));
    expect(p.hwHeader).toHaveLength(14);
    expect(Array.from(p.l2hdr!)).toEqual([1, 2, 3]);
    expect(p.unknown).toEqual([{ type: 99, nested: false, value: Uint8Array.of(0, 0, 0, 1) }]);
  });

  it('payload: a copy by default, a view into the message with copyPayload: false', () => {
    const bytes = logMessage((w) => {
      w.bytes(L.NFULA_PACKET_HDR, hdr(0x0800, 3));
      w.bytes(L.NFULA_PAYLOAD, IP);
    });
    const copy = decodeLoggedPacket(msgOf(bytes));
    const view = decodeLoggedPacket(msgOf(bytes), { copyPayload: false });
    bytes.fill(0xee, bytes.length - IP.length);
    expect(copy.payload![0]).toBe(0x45);
    expect(view.payload![0]).toBe(0xee);
  });

  it('refuses: another message type, no header, short header/hwaddr/timestamp, bad hw_addrlen', () => {
    const wrong = new NetlinkWriter();
    wrong.beginMessage(NFULNL_CONFIG_TYPE, 0).nfgenmsg(0, 0, 5);
    expect(() => decodeLoggedPacket(msgOf(wrong.endMessage().finish()))).toThrow(
      /not a logged packet/,
    );
    const cases: ((w: NetlinkWriter) => void)[] = [
      (w) => w.u32be(L.NFULA_MARK, 1),
      (w) => w.bytes(L.NFULA_PACKET_HDR, Uint8Array.of(8, 0)),
      (w) => {
        w.bytes(L.NFULA_PACKET_HDR, hdr(0x800, 1));
        w.bytes(L.NFULA_HWADDR, new Uint8Array(8));
      },
      (w) => {
        w.bytes(L.NFULA_PACKET_HDR, hdr(0x800, 1));
        w.bytes(L.NFULA_TIMESTAMP, new Uint8Array(12));
      },
      (w) => {
        w.bytes(L.NFULA_PACKET_HDR, hdr(0x800, 1));
        const hw = new Uint8Array(12);
        hw[1] = 9; // hw_addrlen 9 > 8
        w.bytes(L.NFULA_HWADDR, hw);
      },
      (w) => {
        w.bytes(L.NFULA_PACKET_HDR, hdr(0x800, 1));
        w.u16be(L.NFULA_MARK, 1); // a u32 needs 4 bytes
      },
    ];
    for (const c of cases) {
      expect(() => decodeLoggedPacket(msgOf(logMessage(c)))).toThrow(NetlinkDecodeError);
    }
  });

  it('fuzz: random attributes and random bytes only ever throw NetlinkDecodeError', () => {
    const attr = fc.record({
      type: fc.integer({ min: 0, max: 24 }),
      value: fc.uint8Array({ maxLength: 40 }),
    });
    fc.assert(
      fc.property(fc.array(attr, { maxLength: 12 }), fc.integer({ min: 0, max: 12 }), (as, cut) => {
        const bytes = logMessage((w) => {
          for (const a of as) w.bytes(a.type, a.value);
        });
        // Cut the message short and fix nlmsg_len, so that the last attributes overrun.
        const len = Math.max(20, bytes.length - cut);
        const cutBytes = bytes.slice(0, len);
        new DataView(cutBytes.buffer).setUint32(0, len, HOST_LITTLE_ENDIAN);
        for (const b of [bytes, cutBytes]) {
          try {
            decodeLoggedPacket(msgOf(b));
          } catch (e) {
            if (!(e instanceof NetlinkDecodeError)) throw e;
          }
        }
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 200 }), (body) => {
        const bytes = body.slice();
        const v = new DataView(bytes.buffer);
        v.setUint32(0, bytes.length, HOST_LITTLE_ENDIAN);
        v.setUint16(4, NFULNL_PACKET_TYPE, HOST_LITTLE_ENDIAN);
        try {
          decodeLoggedPacket(msgOf(bytes));
        } catch (e) {
          if (!(e instanceof NetlinkDecodeError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});

/** Decoded NFULNL_MSG_CONFIG attributes, for checking what was sent. */
interface SentConfig {
  family: number;
  group: number;
  cmd?: number;
  mode?: { range: number; mode: number; length: number };
  nlbufsiz?: number;
  timeout?: number;
  qthresh?: number;
  flags?: number;
}

function readConfig(msg: NetlinkMessage): SentConfig {
  const at = msg.offset + 16;
  const c: SentConfig = {
    family: msg.view.getUint8(at),
    group: msg.view.getUint16(at + 2, false),
  };
  const ad = nfAttributes(msg);
  while (ad.next()) {
    switch (ad.type) {
      case L.NFULA_CFG_CMD:
        c.cmd = ad.view.getUint8(ad.valueOffset);
        expect(ad.valueLength).toBe(1);
        break;
      case L.NFULA_CFG_MODE:
        c.mode = {
          range: ad.view.getUint32(ad.valueOffset, false),
          mode: ad.view.getUint8(ad.valueOffset + 4),
          length: ad.valueLength,
        };
        break;
      case L.NFULA_CFG_NLBUFSIZ:
        c.nlbufsiz = ad.u32be();
        break;
      case L.NFULA_CFG_TIMEOUT:
        c.timeout = ad.u32be();
        break;
      case L.NFULA_CFG_QTHRESH:
        c.qthresh = ad.u32be();
        break;
      case L.NFULA_CFG_FLAGS:
        c.flags = ad.u16be();
        break;
    }
  }
  return c;
}

describe('config encoding', () => {
  it('bind with settings in one message: packed 6-byte mode, BE u32s, BE u16 flags', () => {
    const m = msgOf(
      encodeLogConfig(0x1234, {
        command: L.NFULNL_CFG_CMD_BIND,
        copyMode: L.NFULNL_COPY_PACKET,
        copyRange: 512,
        nlbufsiz: 65536,
        timeout: 5,
        qthresh: 1,
        flags: 3,
      }),
    );
    expect(m.type).toBe(0x0401);
    expect(readConfig(m)).toEqual({
      family: 0,
      group: 0x1234,
      cmd: L.NFULNL_CFG_CMD_BIND,
      mode: { range: 512, mode: 2, length: 6 },
      nlbufsiz: 65536,
      timeout: 5,
      qthresh: 1,
      flags: 3,
    });
  });

  it('PF_BIND names the family in nfgenmsg; ranges are checked', () => {
    expect(readConfig(msgOf(encodePfCommand(L.NFULNL_CFG_CMD_PF_BIND, 10)))).toEqual({
      family: 10,
      group: 0,
      cmd: L.NFULNL_CFG_CMD_PF_BIND,
    });
    expect(() => encodeLogConfig(70000, {})).toThrow(RangeError);
    expect(() => encodeLogConfig(1, { flags: 0x10000 })).toThrow(RangeError);
    expect(() => encodeLogConfig(1, { qthresh: -1 })).toThrow(RangeError);
  });
});

function fakeKernel(options: { refuse?: (c: SentConfig) => number | undefined } = {}) {
  const configs: SentConfig[] = [];
  const kernel = new FakeKernel({
    slotSize: 80 * 1024,
    handler: (req) => {
      if (req.type !== NFULNL_CONFIG_TYPE) return [];
      const c = readConfig(req);
      configs.push(c);
      const errno = options.refuse?.(c);
      return [errno ? errorMessage(req, errno) : ackMessage(req)];
    },
  });
  return { kernel, configs };
}

const open = (kernel: FakeKernel, options: Partial<NfLogOptions> = {}): Promise<NfLog> =>
  NfLog.open({ group: 5, transport: kernel, ...options });

function packet(text: string, prefix = 'p'): Uint8Array {
  return logMessage((w) => {
    w.bytes(L.NFULA_PACKET_HDR, hdr(0x0800, 1));
    w.string(L.NFULA_PREFIX, prefix);
    w.bytes(L.NFULA_PAYLOAD, Buffer.from(text));
  });
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('NfLog over a fake kernel', () => {
  it('binds with the settings in one message; flags in a second; close unbinds', async () => {
    const { kernel, configs } = fakeKernel();
    const log = await open(kernel, {
      copyRange: 300,
      nlbufsiz: 16384,
      qthresh: 1,
      flushTimeoutMs: 15,
      flags: { seq: true, seqGlobal: true },
    });
    expect(configs).toEqual([
      {
        family: 0,
        group: 5,
        cmd: L.NFULNL_CFG_CMD_BIND,
        mode: { range: 300, mode: L.NFULNL_COPY_PACKET, length: 6 },
        nlbufsiz: 16384,
        qthresh: 1,
        timeout: 2, // 15 ms in 1/100 s, rounded up
      },
      { family: 0, group: 5, flags: L.NFULNL_CFG_F_SEQ | L.NFULNL_CFG_F_SEQ_GLOBAL },
    ]);
    expect(log.flagReport).toEqual({
      requested: ['seq', 'seqGlobal'],
      applied: ['seq', 'seqGlobal'],
      refused: [],
    });
    await log.close();
    expect(configs.at(-1)).toEqual({ family: 0, group: 5, cmd: L.NFULNL_CFG_CMD_UNBIND });
    expect(kernel.closed).toBe(true);
    await log.close(); // idempotent
  });

  it('PF_UNBIND then PF_BIND per family before the bind, only when asked', async () => {
    const { kernel, configs } = fakeKernel();
    const log = await open(kernel, { bindFamilies: [2, 10] });
    expect(configs.slice(0, 5).map((c) => [c.cmd, c.family])).toEqual([
      [L.NFULNL_CFG_CMD_PF_UNBIND, 2],
      [L.NFULNL_CFG_CMD_PF_BIND, 2],
      [L.NFULNL_CFG_CMD_PF_UNBIND, 10],
      [L.NFULNL_CFG_CMD_PF_BIND, 10],
      [L.NFULNL_CFG_CMD_BIND, 0],
    ]);
    await log.close();
  });

  it('a refused conntrack flag is reported and the others still applied; strict throws', async () => {
    const refuse = (c: SentConfig) =>
      (c.flags ?? 0) & L.NFULNL_CFG_F_CONNTRACK ? EOPNOTSUPP : undefined;
    const { kernel, configs } = fakeKernel({ refuse });
    const log = await open(kernel, { flags: { conntrack: true, seq: true } });
    expect(log.flagReport).toMatchObject({
      requested: ['seq', 'conntrack'],
      applied: ['seq'],
      refused: [{ flag: 'conntrack', errno: EOPNOTSUPP, code: 'EOPNOTSUPP' }],
    });
    expect(configs.at(-1)?.flags).toBe(L.NFULNL_CFG_F_SEQ);
    await log.close();

    const strict = fakeKernel({ refuse });
    const error = await open(strict.kernel, {
      flags: { conntrack: true },
      strictFlags: true,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'NfLogError', code: 'CONFIG_FAILED' });
    expect(strict.kernel.closed).toBe(true);
  });

  it('bind refused with EPERM: a typed error naming the cause; the socket is closed', async () => {
    const { kernel } = fakeKernel({
      refuse: (c) => (c.cmd === L.NFULNL_CFG_CMD_BIND ? EPERM : undefined),
    });
    const error = await open(kernel).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NfLogError);
    expect(error).toMatchObject({ code: 'CONFIG_FAILED', details: { errnoName: 'EPERM' } });
    expect((error as Error).message).toMatch(/bound by another socket/);
    expect(kernel.closed).toBe(true);
  });

  it('option checks happen before any socket is opened', async () => {
    const { kernel } = fakeKernel();
    await expect(open(kernel, { group: -1 })).rejects.toThrow(RangeError);
    await expect(open(kernel, { nlbufsiz: 200_000 })).rejects.toThrow(RangeError);
    await expect(open(kernel, { qthresh: 0 })).rejects.toThrow(RangeError);
    expect(kernel.sentMessages).toHaveLength(0);
  });

  it('packets to listeners (copies by default) and to iterators; DONE is ignored', async () => {
    const { kernel } = fakeKernel();
    const log = await open(kernel);
    const seen: LoggedPacket[] = [];
    log.onPacket((p) => seen.push(p));
    const it = log[Symbol.asyncIterator]();
    const done = new NetlinkWriter();
    done.beginMessage(NLMSG_DONE, 0).nfgenmsg(0, 0, 5);
    kernel.reply(datagram(packet('a'), packet('b'), done.endMessage().finish()));
    const first = await it.next();
    const second = await it.next();
    expect([first.value, second.value].map((p) => Buffer.from(p!.payload!).toString())).toEqual([
      'a',
      'b',
    ]);
    // The fake kernel poisons its slab after each delivery: copies survive.
    expect(seen.map((p) => Buffer.from(p.payload!).toString())).toEqual(['a', 'b']);
    expect(log.counters.received).toBe(2);
    await log.close();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it('zeroCopy: the listener gets a view (valid during the call), iterators still get copies', async () => {
    const { kernel } = fakeKernel();
    const log = await open(kernel, { zeroCopy: true });
    let during = '';
    let kept: Uint8Array | undefined;
    log.onPacket((p) => {
      during = Buffer.from(p.payload!).toString();
      kept = p.payload;
    });
    const it = log[Symbol.asyncIterator]();
    kernel.reply(datagram(packet('zz')));
    const fromIterator = await it.next();
    expect(during).toBe('zz');
    expect(Buffer.from(kept!).toString()).not.toBe('zz'); // the slab was poisoned
    expect(Buffer.from(fromIterator.value!.payload!).toString()).toBe('zz');
    await log.close();
  });

  it('ENOBUFS and truncation are counted lost events; reading goes on', async () => {
    const { kernel } = fakeKernel();
    const log = await open(kernel);
    let lostEvents = 0;
    log.onLost(() => lostEvents++);
    const seen: string[] = [];
    log.onPacket((p) => seen.push(Buffer.from(p.payload!).toString()));
    kernel.reply(lost(), truncated(20, packet('cut')), datagram(packet('after')));
    for (let i = 0; i < 5; i++) await turn();
    expect(log.counters.lost).toBe(2);
    expect(lostEvents).toBe(2);
    expect(seen).toEqual(['after']);
    await log.close();
  });

  it('decode failures, listener exceptions and a dead socket are typed errors, never thrown', async () => {
    const { kernel } = fakeKernel();
    const log = await open(kernel);
    const errors: NfLogError[] = [];
    log.onError((e) => errors.push(e));
    log.onPacket((p) => {
      if (p.prefix === 'boom') throw new Error('listener bug');
    });
    const bad = logMessage((w) => w.u32be(L.NFULA_MARK, 1)); // no header
    kernel.reply(datagram(bad), datagram(packet('x', 'boom')), datagram(packet('ok')));
    kernel.reply(readError(Object.assign(new Error('EBADF'), { code: 'EBADF' })));
    for (let i = 0; i < 6; i++) await turn();
    expect(errors.map((e) => e.code)).toEqual(['DECODE', 'LISTENER', 'SOCKET']);
    expect(log.counters).toMatchObject({ received: 2, decodeErrors: 1, listenerErrors: 1 });
    await log.close();
  });

  it('an iterator that falls behind drops the newest packets, counted', async () => {
    const { kernel } = fakeKernel();
    const log = await open(kernel, { maxQueued: 2 });
    const it = log[Symbol.asyncIterator]();
    kernel.reply(datagram(packet('1'), packet('2'), packet('3')));
    for (let i = 0; i < 3; i++) await turn();
    expect(log.counters.iteratorDropped).toBe(1);
    const got = [await it.next(), await it.next()].map((r) =>
      Buffer.from(r.value!.payload!).toString(),
    );
    expect(got).toEqual(['1', '2']);
    await it.return!();
    await log.close();
  });
});

describe('parseLogProcStats', () => {
  it('reads /proc/net/netfilter/nfnetlink_log lines, skipping others', () => {
    const text =
      '   21 123456     0 2   300      5  1\n garbage\n    5   4242     3 1     0    100  1\n';
    expect(parseLogProcStats(text)).toEqual([
      { group: 21, portId: 123456, queued: 0, copyMode: 2, copyRange: 300, flushTimeout: 5 },
      { group: 5, portId: 4242, queued: 3, copyMode: 1, copyRange: 0, flushTimeout: 100 },
    ]);
  });
});
