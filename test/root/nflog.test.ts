import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NfLog, type NfLogOptions } from '../../helper/nflog/log.js';
import type { LoggedPacket } from '../../helper/nflog/types.js';
import { NfLogError } from '../../helper/nflog/errors.js';
import { parsePacket } from '../../helper/packet/parse.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { sleep } from '../support/udp-agent.js';
import { vethPair } from '../support/veth.js';

const NF_INET_LOCAL_IN = 1;
const NF_INET_LOCAL_OUT = 3;
const NOBODY = 65534;

/** iptables variants that work here, each as [iptables, ip6tables]. */
function variants(): [string, string][] {
  const out: [string, string][] = [];
  for (const v of ['nft', 'legacy']) {
    const ok = [`iptables-${v}`, `ip6tables-${v}`].every((b) => !spawnSync(b, ['-V']).error);
    if (ok) out.push([`iptables-${v}`, `ip6tables-${v}`]);
    else console.warn(`nflog root tests: iptables-${v} is not installed, not tested`);
  }
  return out;
}

function missing(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  if (spawnSync('setpriv', ['--version']).error) return 'setpriv (util-linux) is not installed';
  if (variants().length === 0) return 'no iptables';
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping NFLOG root tests: ${skip}`);

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

function ifindex(ns: TestNetns, dev: string): number {
  const [link] = JSON.parse(ns.exec('ip', ['-j', 'link', 'show', 'dev', dev])) as {
    ifindex: number;
    address: string;
  }[];
  return link!.ifindex;
}

function mac(ns: TestNetns, dev: string): string {
  const [link] = JSON.parse(ns.exec('ip', ['-j', 'link', 'show', 'dev', dev])) as {
    address: string;
  }[];
  return link!.address;
}

/** Sends UDP datagrams from a process running as `uid` inside the namespace
 * (setpriv drops root), and waits until it exits. */
function sendAs(
  ns: TestNetns,
  uid: number,
  family: 4 | 6,
  host: string,
  port: number,
  texts: string[],
): void {
  const script = `
    const s = require('dgram').createSocket('udp${family}');
    const texts = ${JSON.stringify(texts)};
    let n = 0;
    const next = () => n === texts.length ? s.close() : s.send(texts[n++], ${port}, '${host}', next);
    next();`;
  const r = spawnSync(
    'ip',
    [
      ...['netns', 'exec', ns.name, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`],
      ...['--clear-groups', process.execPath, '-e', script],
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (r.status !== 0) throw new Error(`sender failed: ${r.stderr}`);
}

function udpData(p: LoggedPacket): { dport: number; sport: number; data: string } | undefined {
  if (!p.payload) return undefined;
  const parsed = parsePacket(p.payload);
  if (!parsed.udp) return undefined;
  const { payloadOffset, payloadLength } = parsed.udp;
  return {
    sport: parsed.udp.srcPort,
    dport: parsed.udp.dstPort,
    data: Buffer.from(p.payload.subarray(payloadOffset, payloadOffset + payloadLength)).toString(),
  };
}

describe.skipIf(skip).each(variants())('NFLOG with %s, over loopback', (ipt, ip6t) => {
  let ns: TestNetns;
  const logs: NfLog[] = [];
  const open = async (options: Omit<NfLogOptions, 'netns'>): Promise<NfLog> => {
    const log = await NfLog.open({ netns: ns.name, ...options });
    logs.push(log);
    return log;
  };

  beforeAll(() => {
    ns = new TestNetns('pcl-nflog');
    ns.exec('ip', ['addr', 'add', 'fd53:6e66::1/64', 'dev', 'lo', 'nodad']);
    for (const bin of [ipt, ip6t]) {
      // A mark set in mangle OUTPUT shows up in the filter table's NFLOG copy.
      ns.exec(bin, [
        ...['-t', 'mangle', '-A', 'OUTPUT', '-p', 'udp', '--dport', '7001'],
        ...['-j', 'MARK', '--set-mark', '0x2a'],
      ]);
      ns.exec(bin, [
        ...['-A', 'OUTPUT', '-p', 'udp', '--dport', '7001'],
        ...['-j', 'NFLOG', '--nflog-group', '21', '--nflog-prefix', 'out-7001'],
      ]);
      ns.exec(bin, [
        ...['-A', 'INPUT', '-p', 'udp', '--dport', '7001'],
        ...['-j', 'NFLOG', '--nflog-group', '21', '--nflog-prefix', 'in-7001'],
      ]);
      ns.exec(bin, [
        ...['-A', 'OUTPUT', '-p', 'udp', '--dport', '7002'],
        ...['-j', 'NFLOG', '--nflog-group', '22', '--nflog-prefix', 'burst'],
      ]);
    }
  });
  afterEach(async () => {
    await Promise.all(logs.splice(0).map((l) => l.close()));
  });
  afterAll(() => {
    ns?.delete();
  });

  it('IPv4: prefix, hook, mark, ifindex, uid/gid of the sender, payload, seq numbers', async () => {
    const log = await open({ group: 21, flags: { seq: true, seqGlobal: true } });
    expect(log.flagReport.applied).toEqual(['seq', 'seqGlobal']);
    const got: LoggedPacket[] = [];
    log.onPacket((p) => got.push(p));
    sendAs(ns, NOBODY, 4, '127.0.0.1', 7001, ['one', 'two']);
    await until(() => got.length >= 4);
    await sleep(50);
    expect(got).toHaveLength(4);
    const lo = ifindex(ns, 'lo');
    const out = got.filter((p) => p.prefix === 'out-7001');
    const inn = got.filter((p) => p.prefix === 'in-7001');
    expect(out).toHaveLength(2);
    expect(inn).toHaveLength(2);
    for (const p of out) {
      expect(p).toMatchObject({
        group: 21,
        family: 2,
        hwProtocol: 0x0800,
        hook: NF_INET_LOCAL_OUT,
        mark: 0x2a,
        outdev: lo,
        uid: NOBODY,
        gid: NOBODY,
      });
      expect(p.indev).toBeUndefined();
    }
    for (const p of inn) {
      expect(p).toMatchObject({ group: 21, family: 2, hook: NF_INET_LOCAL_IN, indev: lo });
      expect(p.outdev).toBeUndefined();
    }
    expect(out.map((p) => udpData(p)?.data)).toEqual(['one', 'two']);
    expect(inn.map((p) => udpData(p)?.dport)).toEqual([7001, 7001]);
    // Sequence numbers: per group from 0, and the namespace-wide counter, both in order.
    expect(got.map((p) => p.seq)).toEqual([0, 1, 2, 3]);
    const globals = got.map((p) => p.seqGlobal!);
    expect(globals.every((g, i) => i === 0 || g === globals[i - 1]! + 1)).toBe(true);
  });

  it('the kernel applied the settings: copy mode and range, flush timeout (/proc)', async () => {
    const log = await open({ group: 21, copyRange: 300, flushTimeoutMs: 50, qthresh: 2 });
    expect(await log.procStats()).toMatchObject({
      group: 21,
      copyMode: 2,
      copyRange: 300,
      flushTimeout: 5,
      queued: 0,
    });
    await log.close();
    const meta = await open({ group: 21, copyMode: 'meta' });
    expect(await meta.procStats()).toMatchObject({ copyMode: 1, copyRange: 0 });
  });

  it('IPv6 over loopback, copy range cuts the payload, meta mode sends none', async () => {
    const log = await open({ group: 21, copyRange: 40 });
    const got: LoggedPacket[] = [];
    log.onPacket((p) => got.push(p));
    sendAs(ns, NOBODY, 6, 'fd53:6e66::1', 7001, ['x'.repeat(100)]);
    await until(() => got.length >= 2);
    const out = got.find((p) => p.prefix === 'out-7001')!;
    expect(out).toMatchObject({ family: 10, hwProtocol: 0x86dd, uid: NOBODY, mark: 0x2a });
    expect(out.payload).toHaveLength(40); // the IPv6 header only
    expect(out.payload![0]! >> 4).toBe(6);
    await log.close();

    const meta = await open({ group: 21, copyMode: 'meta' });
    const seen: LoggedPacket[] = [];
    meta.onPacket((p) => seen.push(p));
    sendAs(ns, NOBODY, 6, 'fd53:6e66::1', 7001, ['y']);
    await until(() => seen.length >= 2);
    expect(seen.every((p) => p.payload === undefined && p.prefix !== undefined)).toBe(true);
  });

  it('async iteration yields copies; the conntrack flag is applied or refused with its errno', async () => {
    const log = await open({ group: 21, flags: { conntrack: true, seq: true } });
    const report = log.flagReport;
    console.info(`nflog conntrack flag: ${JSON.stringify(report)}`);
    expect(report.applied).toContain('seq');
    if (!report.applied.includes('conntrack')) {
      expect(report.refused).toEqual([expect.objectContaining({ flag: 'conntrack' })]);
      expect(report.refused[0]!.code).toBe('EOPNOTSUPP');
    }
    const it = log[Symbol.asyncIterator]();
    sendAs(ns, NOBODY, 4, '127.0.0.1', 7001, ['iter']);
    const first = await it.next();
    const second = await it.next();
    const packets = [first.value as LoggedPacket, second.value as LoggedPacket];
    expect(packets.map((p) => p.prefix).sort()).toEqual(['in-7001', 'out-7001']);
    expect(packets.map((p) => udpData(p)?.data)).toEqual(['iter', 'iter']);
    // The seq flag survived the refusal of conntrack.
    expect(packets.map((p) => p.seq)).toEqual([0, 1]);
    if (report.applied.includes('conntrack')) {
      expect(packets[0]!.ct?.orig.dst).toBe('127.0.0.1');
      expect(packets[0]!.ctInfo).toBeDefined();
    } else expect(packets[0]!.ct).toBeUndefined();
    await log.close();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it('a bound group is refused to a second socket (EPERM); close unbinds it', async () => {
    const log = await open({ group: 21 });
    const error = await NfLog.open({ netns: ns.name, group: 21 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NfLogError);
    expect(error).toMatchObject({ code: 'CONFIG_FAILED', details: { errnoName: 'EPERM' } });
    await log.close();
    const again = await open({ group: 21 });
    const got: LoggedPacket[] = [];
    again.onPacket((p) => got.push(p));
    sendAs(ns, NOBODY, 4, '127.0.0.1', 7001, ['after']);
    await until(() => got.length >= 2);
  });

  it('ENOBUFS is a counted event: packets lost while the loop is blocked, reading goes on', async () => {
    // The smallest buffer the kernel allows, and a loop blocked while a burst comes in.
    const log = await open({ group: 22, rcvbuf: 4096, qthresh: 1 });
    let lostEvents = 0;
    log.onLost(() => lostEvents++);
    const got: LoggedPacket[] = [];
    log.onPacket((p) => got.push(p));
    sendAs(
      ns,
      NOBODY,
      4,
      '127.0.0.1',
      7002,
      Array.from({ length: 300 }, (_, i) => `b${i}`),
    );
    await until(() => log.counters.lost > 0 || got.length >= 300, 5000);
    await sleep(100);
    expect(log.counters.lost).toBeGreaterThan(0);
    expect(lostEvents).toBe(log.counters.lost);
    expect(got.length).toBeLessThan(300);
    const before = got.length;
    sendAs(ns, NOBODY, 4, '127.0.0.1', 7002, ['later']);
    await until(() => got.length > before);
    expect(udpData(got.at(-1)!)?.data).toBe('later');
  });
});

describe.skipIf(skip)('NFLOG of packets from a veth peer', () => {
  let a: TestNetns;
  let b: TestNetns;
  let log: NfLog | undefined;

  beforeAll(() => {
    a = new TestNetns('pcl-nfla');
    b = new TestNetns('pcl-nflb');
    vethPair(a, b, { names: ['nfl0', 'nfl1'], v4: '198.18.7', linkLocal: true });
    a.exec('iptables', [
      ...['-A', 'INPUT', '-i', 'nfl0', '-p', 'udp', '--dport', '7003'],
      ...['-j', 'NFLOG', '--nflog-group', '23', '--nflog-prefix', 'veth-in'],
    ]);
  });
  afterAll(async () => {
    await log?.close();
    a?.delete();
    b?.delete();
  });

  it('incoming: indev, hardware address and header of the sender, no uid', async () => {
    log = await NfLog.open({ netns: a.name, group: 23 });
    const got: LoggedPacket[] = [];
    log.onPacket((p) => got.push(p));
    sendAs(b, NOBODY, 4, '198.18.7.1', 7003, ['from-b']);
    await until(() => got.length >= 1, 5000);
    const p = got[0]!;
    const peerMac = mac(b, 'nfl1');
    expect(p).toMatchObject({
      prefix: 'veth-in',
      hook: NF_INET_LOCAL_IN,
      indev: ifindex(a, 'nfl0'),
      hwType: 1, // ARPHRD_ETHER
      hwLen: 14,
    });
    expect(p.hwaddr?.text).toBe(peerMac);
    // Ethernet header: destination (ours), source (the peer), EtherType IPv4.
    const header = Buffer.from(p.hwHeader!);
    expect(header.subarray(0, 6).toString('hex')).toBe(mac(a, 'nfl0').replaceAll(':', ''));
    expect(header.subarray(6, 12).toString('hex')).toBe(peerMac.replaceAll(':', ''));
    expect(header.readUInt16BE(12)).toBe(0x0800);
    expect(p.uid).toBeUndefined(); // no local socket owns an incoming packet at INPUT
    expect(udpData(p)).toMatchObject({ dport: 7003, data: 'from-b' });
    const parsed = parsePacket(p.payload!);
    expect(parsed.ip.src).toBe('198.18.7.2');
  });
});
