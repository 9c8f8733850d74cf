import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkConnection } from '../../helper/netlink/connection.js';
import {
  AF_INET,
  AF_UNSPEC,
  NETLINK_NETFILTER,
  NFNL_SUBSYS_CTNETLINK,
  nfnlMsgType,
} from '../../helper/netlink/constants.js';
import { NetlinkAbortError, NetlinkError } from '../../helper/netlink/errors.js';
import { nfAttributes, type NetlinkMessage } from '../../helper/netlink/message.js';
import { NetlinkSocket } from '../../helper/netlink/socket.js';
import { NetlinkWriter } from '../../helper/netlink/writer.js';
import {
  CTA_TUPLE_ORIG,
  IPCTNL_MSG_CT_GET,
  IPCTNL_MSG_CT_GET_STATS,
  IPCTNL_MSG_CT_GET_STATS_CPU,
  IPCTNL_MSG_CT_NEW,
} from '../../helper/conntrack/constants.js';
import { decodeCpuStats, decodeGlobalStats } from '../../helper/conntrack/stats.js';
import { CTA_IP_V4_SRC, CTA_TUPLE_IP, ctNewUdp } from '../support/ct-raw.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';

const skip = rootTestsUnavailable();
if (skip) console.warn(`skipping ctnetlink root tests: ${skip}`);

const ct = (msg: number) => nfnlMsgType(NFNL_SUBSYS_CTNETLINK, msg);
const simple = (type: number, family = AF_UNSPEC) =>
  new NetlinkWriter().beginMessage(ct(type), 0).nfgenmsg(family).endMessage().finish();

/** The original tuple's IPv4 source, read with the generic attribute reader. */
function origSource(msg: NetlinkMessage): string | undefined {
  const ad = nfAttributes(msg);
  while (ad.next()) {
    if (ad.type !== CTA_TUPLE_ORIG) continue;
    const t = ad.nested();
    while (t.next()) {
      if (t.type !== CTA_TUPLE_IP) continue;
      const ip = t.nested();
      while (ip.next()) if (ip.type === CTA_IP_V4_SRC) return ip.bytes().join('.');
    }
  }
  return undefined;
}

function possibleCpus(): number {
  // "0-1" or "0,2-3": ctnetlink reports every possible CPU.
  return readFileSync('/sys/devices/system/cpu/possible', 'utf8')
    .trim()
    .split(',')
    .reduce((n, part) => {
      const [a, b] = part.split('-').map(Number);
      return n + (b === undefined ? 1 : b - a! + 1);
    }, 0);
}

describe.skipIf(skip)('netlink engine against ctnetlink (root, in a throw-away netns)', () => {
  let ns: TestNetns;
  let conn: NetlinkConnection;

  beforeAll(() => {
    ns = new TestNetns('pcl-ctnl');
    conn = new NetlinkConnection(
      NetlinkSocket.open(NETLINK_NETFILTER, {
        netns: ns.name,
        extAck: true,
        capAck: true,
        slotSize: 32768,
      }),
    );
  });
  afterAll(() => {
    conn?.close();
    ns?.delete();
  });

  it('reads the global and per-CPU statistics of an empty table', async () => {
    const [global] = await conn.request(simple(IPCTNL_MSG_CT_GET_STATS));
    expect(decodeGlobalStats(global!).entries).toBe(0);
    expect(decodeGlobalStats(global!).maxEntries).toBeGreaterThan(0);
    const cpus: number[] = [];
    const result = await conn.dumpEach(simple(IPCTNL_MSG_CT_GET_STATS_CPU), (m) =>
      cpus.push(decodeCpuStats(m).cpu),
    );
    expect(result).toEqual({ messages: possibleCpus(), interrupted: false });
    expect(cpus).toEqual([...Array(possibleCpus()).keys()]);
  });

  it('dumps an empty table, then the entries conntrack -I created', async () => {
    let n = 0;
    await conn.dumpEach(simple(IPCTNL_MSG_CT_GET), () => n++);
    expect(n).toBe(0);
    const sources = ['192.0.2.1', '192.0.2.2', '192.0.2.3'];
    for (const s of sources) {
      ns.exec('conntrack', [
        '-I',
        '-p',
        'tcp',
        '-s',
        s,
        '-d',
        '192.0.2.100',
        '--sport',
        '4000',
        '--dport',
        '443',
        '--state',
        'ESTABLISHED',
        '-t',
        '300',
      ]);
    }
    const seen: string[] = [];
    for await (const m of conn.dump(simple(IPCTNL_MSG_CT_GET))) seen.push(origSource(m)!);
    expect(seen.sort()).toEqual(sources);
    const [global] = await conn.request(simple(IPCTNL_MSG_CT_GET_STATS));
    expect(decodeGlobalStats(global!).entries).toBe(3);
    expect(ns.exec('conntrack', ['-C']).trim()).toBe('3');
  });

  it('turns kernel refusals into NetlinkError with errno and extended ACK', async () => {
    const bad = new NetlinkWriter()
      .beginMessage(ct(IPCTNL_MSG_CT_NEW), 0)
      .nfgenmsg(AF_INET)
      .u16be(7, 5)
      .endMessage()
      .finish();
    const error = await conn.request(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetlinkError);
    expect(error).toMatchObject({
      errno: 34,
      code: 'ERANGE',
      extack: { message: 'Attribute failed policy validation', offset: 20 },
    });

    await conn.request(ctNewUdp(1));
    const dup = await conn.request(ctNewUdp(1)).catch((e: unknown) => e);
    expect(dup).toMatchObject({ code: 'EEXIST', errno: 17 });

    const get = new NetlinkWriter().beginMessage(ct(IPCTNL_MSG_CT_GET), 0).nfgenmsg(AF_INET);
    const missing = ctNewUdp(99).subarray(20); // the tuples of an entry that does not exist
    get.raw(missing.subarray(0, missing.length - 8)); // without CTA_TIMEOUT
    const notFound = await conn.request(get.endMessage().finish()).catch((e: unknown) => e);
    expect(notFound).toMatchObject({ code: 'ENOENT' });
  });

  it('answers many concurrent requests, each with its own reply', async () => {
    const created = await Promise.all(
      Array.from({ length: 400 }, (_, i) => conn.request(ctNewUdp(1000 + i))),
    );
    expect(created.every((r) => r.length === 0)).toBe(true);
    expect(conn.counters.datagramsSent).toBeLessThan(conn.counters.sent);
    const counts = await Promise.all(
      Array.from({ length: 20 }, () => conn.request(simple(IPCTNL_MSG_CT_GET_STATS))),
    );
    for (const [g] of counts) expect(decodeGlobalStats(g!).entries).toBe(404);
  });

  it('streams a dump with back-pressure, and an aborted dump leaves the socket usable', async () => {
    const slow = new NetlinkConnection(
      NetlinkSocket.open(NETLINK_NETFILTER, { netns: ns.name, slotSize: 32768, slots: 2 }),
      { dumpHighWaterMark: 8 },
    );
    let n = 0;
    for await (const m of slow.dump(simple(IPCTNL_MSG_CT_GET))) {
      expect(origSource(m)).toMatch(/^19[28]\./);
      n++;
      if (n % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(n).toBe(404);

    const controller = new AbortController();
    let seen = 0;
    const aborted = (async () => {
      for await (const _m of slow.dump(simple(IPCTNL_MSG_CT_GET), { signal: controller.signal })) {
        if (++seen === 10) controller.abort();
      }
    })();
    await expect(aborted).rejects.toBeInstanceOf(NetlinkAbortError);

    let again = 0;
    await slow.dumpEach(simple(IPCTNL_MSG_CT_GET), () => again++);
    expect(again).toBe(404);

    let partial = 0;
    for await (const _m of slow.dump(simple(IPCTNL_MSG_CT_GET))) if (++partial === 5) break;
    const [global] = await slow.request(simple(IPCTNL_MSG_CT_GET_STATS));
    expect(decodeGlobalStats(global!).entries).toBe(404);
    slow.close();
  });
});
