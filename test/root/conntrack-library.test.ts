import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Conntrack } from '../../helper/conntrack/client.js';
import { labelBits } from '../../helper/conntrack/decode.js';
import { NetlinkError } from '../../helper/netlink/errors.js';
import type { Tuple } from '../../helper/conntrack/types.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';

const skip = rootTestsUnavailable();
if (skip) console.warn(`skipping conntrack library root tests: ${skip}`);

const tcp = (i: number, dport = 80): Tuple => ({
  src: `198.18.0.${i}`,
  dst: '198.18.1.1',
  proto: 6,
  srcPort: 1000 + i,
  dstPort: dport,
});
const udp6 = (i: number): Tuple => ({
  src: `2001:db8::${i.toString(16)}`,
  dst: '2001:db8::ffff',
  proto: 17,
  srcPort: 2000 + i,
  dstPort: 53,
});

describe.skipIf(skip)('conntrack library against conntrack-tools (root, throw-away netns)', () => {
  let ns: TestNetns;
  let ct: Conntrack;
  /** conntrack -L output lines (conntrack-tools as the oracle). */
  const oracle = (...args: string[]) =>
    ns
      .exec('conntrack', ['-L', ...args])
      .split('\n')
      .filter((l) => l.trim() !== '');

  beforeAll(() => {
    ns = new TestNetns('pcl-ctlib');
    // Labels are only stored when something in the netns uses connlabel.
    ns.exec('iptables', ['-A', 'OUTPUT', '-m', 'connlabel', '--label', '0', '-j', 'ACCEPT']);
    ct = Conntrack.open({ netns: ns.name });
  });
  afterAll(() => {
    ct?.close();
    ns?.delete();
  });
  beforeEach(() => {
    ns.exec('conntrack', ['-F']);
  });

  it('creates entries that conntrack-tools sees, with state, status, mark, zone and timeout', async () => {
    await ct.create({
      orig: tcp(1),
      timeout: 120,
      mark: 42,
      status: ['ASSURED', 'SEEN_REPLY'],
      tcpState: 'ESTABLISHED',
    });
    await ct.create({ orig: udp6(1), timeout: 30, zone: 7 });
    const lines = oracle();
    expect(lines).toHaveLength(2);
    const t = lines.find((l) => l.startsWith('tcp'))!;
    expect(t).toMatch(
      /ESTABLISHED src=198\.18\.0\.1 dst=198\.18\.1\.1 sport=1001 dport=80 .*\[ASSURED\] mark=42/,
    );
    expect(Number(t.split(/\s+/)[2])).toBeGreaterThan(110);
    expect(lines.find((l) => l.startsWith('udp'))).toMatch(
      /src=2001:db8::1 .*\[UNREPLIED\].*zone=7/,
    );
    await expect(ct.create({ orig: tcp(1), timeout: 120 })).rejects.toMatchObject({
      code: 'EEXIST',
    });
    await ct.create({ orig: tcp(1), timeout: 500 }, { ifExists: 'update' });
    expect(Number(oracle('-p', 'tcp')[0]!.split(/\s+/)[2])).toBeGreaterThan(480);
  });

  it('createMany loads entries in bulk and reports refusals and bad specs by index', async () => {
    await ct.create({ orig: tcp(3), timeout: 100 });
    const specs = [1, 2, 3, 4, 5].map((i) => ({ orig: tcp(i), timeout: 100, mark: i }));
    specs.splice(1, 0, { orig: { ...tcp(9), src: 'not-an-ip' }, timeout: 100, mark: 0 });
    const result = await ct.createMany(specs);
    expect(result.ok).toBe(4);
    expect(
      result.errors.map((e) => [e.index, (e.error as { code?: string }).code ?? e.error.name]),
    ).toEqual([
      [1, 'ConntrackArgumentError'],
      [3, 'EEXIST'],
    ]);
    expect(oracle()).toHaveLength(5);
    const many = await ct.createMany(
      (function* () {
        for (let i = 10; i < 3010; i++) yield { orig: tcp(i % 250, 10000 + i), timeout: 100 };
      })(),
    );
    expect(many).toEqual({ ok: 3000, errors: [] });
    expect(await ct.count()).toBe(3005);
  });

  it('creates SCTP entries with a state and both verification tags', async () => {
    const sctp: Tuple = {
      src: '198.18.0.77',
      dst: '198.18.1.1',
      proto: 132,
      srcPort: 5000,
      dstPort: 5001,
    };
    await ct.create({
      orig: sctp,
      timeout: 100,
      sctpState: 'ESTABLISHED',
      sctpVtagOrig: 0x11,
      sctpVtagReply: 0x22,
    });
    const f = await ct.get({ orig: sctp });
    expect(f.sctp).toMatchObject({ state: 'ESTABLISHED', vtagOrig: 0x11, vtagReply: 0x22 });
    expect(oracle('-p', 'sctp', '-o', 'extended')[0]).toMatch(
      /sctp .* ESTABLISHED src=198\.18\.0\.77/,
    );
  });

  it('sets NAT at create: the reply tuple carries the translated address', async () => {
    const orig: Tuple = {
      src: '198.18.0.1',
      dst: '198.18.9.9',
      proto: 6,
      srcPort: 1000,
      dstPort: 80,
    };
    const reply: Tuple = {
      src: '10.99.0.5',
      dst: '198.18.0.1',
      proto: 6,
      srcPort: 8080,
      dstPort: 1000,
    };
    await ct.create({
      orig,
      reply,
      timeout: 100,
      tcpState: 'ESTABLISHED',
      natDst: { minIp: '10.99.0.5', maxIp: '10.99.0.5', minPort: 8080, maxPort: 8080 },
    });
    const f = await ct.get({ orig });
    expect(f.reply).toEqual(reply);
    expect(f.statusFlags).toContain('DST_NAT_DONE');
    expect(oracle('-p', 'tcp')[0]).toMatch(
      /dport=80 .*src=10\.99\.0\.5 dst=198\.18\.0\.1 sport=8080 dport=1000/,
    );
  });

  it('get echoes the zone; without it a zoned entry is not found', async () => {
    await ct.create({ orig: udp6(2), timeout: 30, zone: 3 });
    await expect(ct.get({ orig: udp6(2) })).rejects.toBeInstanceOf(NetlinkError);
    const flow = await ct.get({ orig: udp6(2), zone: 3 });
    expect(flow.zone).toBe(3);
    expect(flow.orig).toEqual(udp6(2));
    expect(flow.reply).toEqual({
      src: '2001:db8::ffff',
      dst: '2001:db8::2',
      proto: 17,
      srcPort: 53,
      dstPort: 2002,
    });
  });

  it('updates only what is given: mark with mask, labels with mask, timeout', async () => {
    await ct.create({
      orig: tcp(2),
      timeout: 100,
      mark: 0x0f,
      tcpState: 'ESTABLISHED',
      labels: [1, 2],
    });
    await ct.update({ orig: tcp(2), mark: 0xf0, markMask: 0xf0 });
    expect(oracle('-p', 'tcp')[0]).toMatch(/mark=255 /); // (0x0f & ~0xf0) ^ 0xf0
    await ct.update({ orig: tcp(2), labels: [3], labelsMask: [2, 3] });
    const f = await ct.get({ orig: tcp(2) });
    expect(labelBits(f.labels!)).toEqual([1, 3]); // bit 2 cleared by the mask, 3 set, 1 kept
    expect(f.mark).toBe(0xff);
    expect(f.tcp?.state).toBe('ESTABLISHED');
    await ct.update({ orig: tcp(2), timeout: 9 });
    expect(Number(oracle('-p', 'tcp')[0]!.split(/\s+/)[2])).toBeLessThanOrEqual(9);
    expect(oracle('-p', 'tcp')[0]).toMatch(/mark=255 /);
    await expect(ct.update({ orig: tcp(99), mark: 1 })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('deletes one entry, and deleteWhere deletes exactly the matching ones', async () => {
    for (let i = 1; i <= 6; i++)
      await ct.create({ orig: tcp(i, i % 2 ? 80 : 443), timeout: 100, mark: i });
    await ct.create({ orig: udp6(1), timeout: 100, mark: 1 });
    await ct.delete({ orig: tcp(1) });
    await expect(ct.delete({ orig: tcp(1) })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(oracle()).toHaveLength(6);
    expect(await ct.deleteWhere({ orig: { proto: 6, dstPort: 443 } })).toBe(3);
    expect(oracle('-p', 'tcp', '--dport', '443')).toHaveLength(0);
    expect(await ct.deleteWhere((f) => f.mark === 1)).toBe(1); // the UDP one
    expect(oracle()).toHaveLength(2);
  });

  it('flushes per family (nfgenmsg version 1) and all families', async () => {
    for (let i = 1; i <= 3; i++) {
      await ct.create({ orig: tcp(i), timeout: 100 });
      await ct.create({ orig: udp6(i), timeout: 100 });
    }
    await ct.flush({ family: 'ipv6' });
    expect(oracle('-f', 'ipv6')).toHaveLength(0);
    expect(oracle('-f', 'ipv4')).toHaveLength(3);
    await ct.create({ orig: udp6(1), timeout: 100 });
    await ct.flush({ family: 'ipv4', mark: 0 });
    expect(oracle()).toHaveLength(1);
    await ct.flush();
    expect(oracle()).toHaveLength(0);
  });

  it('lists with kernel-side filters the same entries conntrack -L filters', async () => {
    for (let i = 1; i <= 8; i++)
      await ct.create({
        orig: tcp(i, i <= 4 ? 80 : 22),
        timeout: 100,
        mark: i % 3,
        status: i % 2 ? ['ASSURED'] : [],
      });
    for (let i = 1; i <= 4; i++) await ct.create({ orig: udp6(i), timeout: 100, zone: i % 2 });
    const ids = async (o: Parameters<Conntrack['listAll']>[0]) => (await ct.listAll(o)).length;
    expect(await ids({})).toBe(12);
    expect(await ids({ family: 'ipv6' })).toBe(oracle('-f', 'ipv6').length);
    expect(await ids({ mark: 1 })).toBe(oracle('--mark', '1').length);
    expect(await ids({ orig: { proto: 6, dstPort: 22 } })).toBe(
      oracle('-p', 'tcp', '--dport', '22').length,
    );
    expect(await ids({ orig: { src: '198.18.0.3' } })).toBe(1);
    expect(await ids({ status: ['ASSURED'] })).toBe(oracle('-u', 'ASSURED').length);
    expect(await ids({ zone: 1 })).toBe(oracle('-w', '1').length);
    // IPv6 address filters: the kernel inverts them, so the library matches them itself.
    expect(await ids({ reply: { src: '2001:db8::ffff' } })).toBe(4);
    expect(await ids({ orig: { src: '2001:db8::1' } })).toBe(1);
    expect(await ids({ orig: { src: '2001:db8::99' } })).toBe(0);
    expect(await ids({ orig: { dst: '2001:db8::FFFF', proto: 17, dstPort: 53 } })).toBe(4);
    let streamed = 0;
    for await (const f of ct.list({ orig: { proto: 17 } })) {
      expect(f.orig.proto).toBe(17);
      streamed++;
    }
    expect(streamed).toBe(4);
  });

  it('stats and count agree with /proc/net/stat/nf_conntrack and nf_conntrack_count', async () => {
    for (let i = 1; i <= 5; i++) await ct.create({ orig: tcp(i), timeout: 100 });
    expect(await ct.count()).toBe(
      Number(ns.exec('cat', ['/proc/sys/net/netfilter/nf_conntrack_count']).trim()),
    );
    const global = await ct.globalStats();
    expect(global.entries).toBe(5);
    expect(global.maxEntries).toBe(
      Number(ns.exec('cat', ['/proc/sys/net/netfilter/nf_conntrack_max']).trim()),
    );
    const stats = await ct.stats();
    // /proc/net/stat/nf_conntrack: a header, then one row of hex counters per possible CPU.
    const [header, ...rows] = ns.exec('cat', ['/proc/net/stat/nf_conntrack']).trim().split('\n');
    const cols = header!.trim().split(/\s+/);
    const col = (row: string, name: string) =>
      parseInt(row.trim().split(/\s+/)[cols.indexOf(name)]!, 16);
    const present = rows
      .map((r, cpu) => ({ r, cpu }))
      .filter(({ cpu }) => stats.some((s) => s.cpu === cpu));
    expect(present.length).toBe(stats.length);
    for (const { r, cpu } of present) {
      const s = stats.find((x) => x.cpu === cpu)!;
      expect(s.found).toBe(col(r, 'found'));
      expect(s.invalid).toBe(col(r, 'invalid'));
      expect(s.insert).toBe(col(r, 'insert'));
      expect(s.insertFailed).toBe(col(r, 'insert_failed'));
      expect(s.drop).toBe(col(r, 'drop'));
      expect(s.earlyDrop).toBe(col(r, 'early_drop'));
      expect(s.error).toBe(col(r, 'icmp_error'));
      expect(s.searchRestart).toBe(col(r, 'search_restart'));
      expect(s.clashResolve).toBe(col(r, 'clashres'));
      expect(s.chainTooLong).toBe(col(r, 'chainlength'));
    }
  });
});
