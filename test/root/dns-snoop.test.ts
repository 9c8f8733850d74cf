import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsCache, DnsSnooper, type SnoopedMapping } from '../../helper/dns/index.js';
import {
  DEFAULT_DNS_LOG_GROUP,
  FirewallRules,
  helperFirewallConfig,
  nftDnsLogRules,
  resolveConfig,
  type BackendKind,
} from '../../helper/firewall/index.js';
import { DnsServer, resolveIn, type Zone } from '../support/dns-server.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { sleep } from '../support/udp-agent.js';
import { vethPair } from '../support/veth.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping DNS snooping root tests: ${skip}`);

/** Firewall backends to test with: both iptables variants when installed. */
function backends(): BackendKind[] {
  const out: BackendKind[] = ['iptables-nft'];
  if (!spawnSync('iptables-legacy', ['-V']).error) out.push('iptables-legacy');
  else console.warn('dns snooping: iptables-legacy is not installed, not tested');
  return out;
}

const ZONE: Zone = {
  'a.test': { A: [['198.18.100.1', 300]], AAAA: [['fd53:100::1', 200]] },
  'www.cname.test': { CNAME: ['edge.cdn.test', 120] },
  'edge.cdn.test': { A: [['198.18.100.2', 600]], AAAA: [['fd53:100::2', 600]] },
  'v6transport.test': { A: [['198.18.100.3', 300]] },
  'tcp.test': { A: [['198.18.100.4', 250]], tcpOnly: true },
  'short.test': { A: [['198.18.100.5', 5]] },
  'poll.test': { A: [['198.18.100.8', 300]] },
  'two.test': {
    A: [
      ['198.18.100.6', 90],
      ['198.18.100.7', 90],
    ],
  },
};

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** A DNS response with one A record, as raw hex (for the unsolicited-packet test). */
function fakeResponseHex(name: string, address: string): string {
  const n = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  const bytes = [0, 9, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, ...n, 0, 0, 1, 0, 1];
  bytes.push(0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, ...address.split('.').map(Number));
  return Buffer.from(bytes).toString('hex');
}

/** An injectable clock for the cache, so TTLs can be checked exactly and expired at will. */
function testClock(): { now: () => number; advance: (s: number) => void; t0: number } {
  let t = 5_000_000;
  return { now: () => t, advance: (s) => (t += s * 1000), t0: t };
}

describe.skipIf(skip).each(backends())(
  'DNS snooping across a veth pair, firewall backend %s',
  (backend) => {
    let srv: TestNetns;
    let cli: TestNetns;
    let server: DnsServer;
    let fw: FirewallRules;
    let snooper: DnsSnooper;
    const clock = testClock();
    const mappings: SnoopedMapping[] = [];

    beforeAll(async () => {
      srv = new TestNetns('pcl-dnss');
      cli = new TestNetns('pcl-dnsc');
      const [vs, vc] = [`dns${process.pid % 10000}s`, `dns${process.pid % 10000}c`];
      vethPair(srv, cli, { names: [vs, vc], v4: '198.18.53', v6: 'fd53:d5::', linkLocal: true });
      server = new DnsServer(srv, ['198.18.53.1', 'fd53:d5::1'], ZONE);
      await server.ready();
      // The helper's rules: queueing (with bypass: nobody is bound) and DNS logging.
      fw = await FirewallRules.open({ netns: cli.name, backend });
      await fw.install(helperFirewallConfig({ queue: 99 }));
      snooper = await DnsSnooper.open({
        group: DEFAULT_DNS_LOG_GROUP,
        netns: cli.name,
        cache: new DnsCache({ now: clock.now, minTtl: 60 }),
      });
      snooper.onMapping((m) => mappings.push(m));
    });
    afterAll(async () => {
      await snooper?.close();
      await fw?.remove();
      server?.stop();
      cli?.delete();
      srv?.delete();
    });

    it('pollNow reads an answer logged a moment ago, before any turn of the event loop', () => {
      // resolveIn blocks until the client got its answer: the log's copy is queued
      // for the snooper, but no poll callback can have run since.
      const got = resolveIn(cli, '198.18.53.1', [['A', 'poll.test']]);
      expect(got.map((g) => g.res)).toEqual([[{ address: '198.18.100.8', ttl: 300 }]]);
      expect(snooper.lookup('198.18.100.8')).toBeUndefined();
      expect(snooper.pollNow()).toBe(true);
      expect(snooper.lookup('198.18.100.8')?.name).toBe('poll.test');
      // Nothing queued: it reads nothing and changes nothing.
      const responses = snooper.counters.responses;
      expect(snooper.pollNow()).toBe(true);
      expect(snooper.counters.responses).toBe(responses);
    });

    it('A and AAAA answers map each address to the name with its TTL', async () => {
      const got = resolveIn(cli, '198.18.53.1', [
        ['A', 'a.test'],
        ['AAAA', 'a.test'],
      ]);
      expect(got.map((g) => g.res)).toEqual([
        [{ address: '198.18.100.1', ttl: 300 }],
        [{ address: 'fd53:100::1', ttl: 200 }],
      ]);
      await until(() => snooper.counters.responses >= 2);
      expect(snooper.lookup('198.18.100.1')).toMatchObject({
        name: 'a.test',
        names: ['a.test'],
        entries: [{ expiresAt: clock.t0 + 300_000, queried: true }],
      });
      expect(snooper.lookup('fd53:100::1')).toMatchObject({
        name: 'a.test',
        entries: [{ expiresAt: clock.t0 + 200_000 }],
      });
      expect(mappings.find((m) => m.ip === '198.18.100.1')).toMatchObject({
        server: '198.18.53.1',
        client: '198.18.53.2',
      });
    });

    it('a CNAME chain: the question name is the best name, the final name is kept, TTLs per link', async () => {
      const got = resolveIn(cli, '198.18.53.1', [
        ['A', 'www.cname.test'],
        ['AAAA', 'www.cname.test'],
      ]);
      expect(got.map((g) => g.res?.[0]?.address)).toEqual(['198.18.100.2', 'fd53:100::2']);
      await until(() => snooper.lookup('fd53:100::2') !== undefined);
      for (const ip of ['198.18.100.2', 'fd53:100::2']) {
        const hit = snooper.lookup(ip)!;
        expect(hit.name).toBe('www.cname.test');
        expect(hit.names).toEqual(['www.cname.test', 'edge.cdn.test']);
        expect(hit.entries.map((e) => e.expiresAt - clock.t0)).toEqual([120_000, 600_000]);
      }
    });

    it('queries over IPv6 transport, several addresses, and a TTL below the clamp', async () => {
      const got = resolveIn(cli, 'fd53:d5::1', [
        ['A', 'v6transport.test'],
        ['A', 'two.test'],
        ['A', 'short.test'],
      ]);
      expect(got.every((g) => g.res !== undefined)).toBe(true);
      await until(() => snooper.lookup('198.18.100.5') !== undefined);
      expect(snooper.lookup('198.18.100.3')?.name).toBe('v6transport.test');
      expect(snooper.lookup('198.18.100.6')?.name).toBe('two.test');
      expect(snooper.lookup('198.18.100.7')?.name).toBe('two.test');
      // TTL 5 is clamped up to the cache's minimum of 60 s.
      expect(snooper.lookup('198.18.100.5')?.entries[0]!.expiresAt).toBe(clock.t0 + 60_000);
      expect(mappings.find((m) => m.ip === '198.18.100.3')?.server).toBe('fd53:d5::1');
    });

    it('TCP: a truncated UDP answer, then the answer over TCP (2-byte length prefix)', async () => {
      const tcpBefore = snooper.counters.parsed;
      const got = resolveIn(cli, '198.18.53.1', [['A', 'tcp.test']]);
      expect(got[0]!.res).toEqual([{ address: '198.18.100.4', ttl: 250 }]);
      // The server's log lines arrive once the event loop runs again.
      await until(() => server.queries().filter((q) => q.name === 'tcp.test').length >= 2);
      expect(
        server
          .queries()
          .filter((q) => q.name === 'tcp.test')
          .map((q) => q.tcp),
      ).toEqual([false, true]);
      await until(() => snooper.lookup('198.18.100.4') !== undefined);
      // The UDP answer had no records: the name came from the TCP segment.
      expect(snooper.lookup('198.18.100.4')).toMatchObject({
        name: 'tcp.test',
        entries: [{ expiresAt: clock.t0 + 250_000 }],
      });
      expect(snooper.counters.parsed - tcpBefore).toBe(2);
      // Handshake and ACK segments from port 53 were seen and set aside.
      expect(snooper.counters.reasons.noPayload).toBeGreaterThan(0);
    });

    it('NXDOMAIN is counted; an unsolicited packet from port 53 is not logged at all', async () => {
      const before = snooper.counters.reasons.rcode;
      const got = resolveIn(cli, '198.18.53.1', [['A', 'nope.test']]);
      expect(got[0]!.error).toBe('ENOTFOUND');
      await until(() => snooper.counters.reasons.rcode > before);

      const packets = snooper.counters.packets;
      const proc = spawn('ip', [
        ...['netns', 'exec', cli.name, process.execPath, '-e'],
        `const s = require('dgram').createSocket('udp4');
         s.on('message', () => { console.log('got'); process.exit(0); });
         s.bind(9999, '198.18.53.2', () => console.log('bound'));
         setTimeout(() => process.exit(1), 5000);`,
      ]);
      let output = '';
      proc.stdout.on('data', (d) => (output += String(d)));
      await until(() => output.includes('bound'));
      await server.spoof(
        '198.18.53.1',
        '198.18.53.2',
        9999,
        fakeResponseHex('evil.test', '198.18.100.66'),
      );
      await until(() => output.includes('got')); // it did arrive...
      await sleep(200);
      expect(snooper.lookup('198.18.100.66')).toBeUndefined(); // ...but was not a reply
      expect(snooper.counters.packets).toBe(packets);
    });

    it('names expire by their own TTLs; nothing was lost', () => {
      clock.advance(121);
      expect(snooper.lookup('198.18.100.2')).toMatchObject({
        name: 'edge.cdn.test',
        names: ['edge.cdn.test'],
      });
      clock.advance(180); // t0 + 301 s
      expect(snooper.lookup('198.18.100.1')).toBeUndefined();
      expect(snooper.lookup('fd53:100::1')).toBeUndefined();
      expect(snooper.lookup('fd53:100::2')?.name).toBe('edge.cdn.test');
      expect(snooper.counters.lost).toBe(0);
      expect(snooper.counters.reasons.malformed).toBe(0);
    });
  },
);

describe.skipIf(skip)('DNS snooping over loopback (a local resolver answering programs)', () => {
  let ns: TestNetns;
  let server: DnsServer;
  let fw: FirewallRules;
  let snooper: DnsSnooper;

  beforeAll(async () => {
    ns = new TestNetns('pcl-dnsl');
    ns.exec('ip', ['addr', 'add', '127.0.0.53/8', 'dev', 'lo']);
    server = new DnsServer(ns, ['127.0.0.53', '::1'], ZONE);
    await server.ready();
    fw = await FirewallRules.open({ netns: ns.name });
    await fw.install(helperFirewallConfig({ queue: 98, dnsLog: { group: 77 } }));
    snooper = await DnsSnooper.open({ group: 77, netns: ns.name });
  });
  afterAll(async () => {
    await snooper?.close();
    await fw?.remove();
    server?.stop();
    ns?.delete();
  });

  it('answers from 127.0.0.53 and ::1 are logged once each (output to lo), and mapped', async () => {
    const got = resolveIn(ns, '127.0.0.53', [
      ['A', 'a.test'],
      ['A', 'www.cname.test'],
    ]);
    const got6 = resolveIn(ns, '::1', [['AAAA', 'a.test']]);
    expect([...got, ...got6].every((g) => g.res !== undefined)).toBe(true);
    await until(() => snooper.counters.responses >= 3);
    await sleep(200);
    expect(snooper.lookup('198.18.100.1')?.name).toBe('a.test');
    expect(snooper.lookup('198.18.100.2')?.names).toEqual(['www.cname.test', 'edge.cdn.test']);
    expect(snooper.lookup('fd53:100::1')?.name).toBe('a.test');
    // Three responses crossed OUTPUT and INPUT on lo; each was logged exactly once.
    expect(snooper.counters.responses).toBe(3);
    expect(snooper.nflog?.counters.received).toBe(3);
  });
});

describe.skipIf(skip)('the nft ruleset text: `log group` rules with real traffic', () => {
  it('the nft backend DNS rules log the same responses (without the queue rules)', async () => {
    const ns = new TestNetns('pcl-dnsn');
    let server: DnsServer | undefined;
    let snooper: DnsSnooper | undefined;
    try {
      ns.exec('ip', ['addr', 'add', '127.0.0.53/8', 'dev', 'lo']);
      const config = resolveConfig({ queue: 1, dnsLog: { group: 78 } });
      const chain = (name: string, dir: 'out' | 'in') => [
        `  chain ${name} {`,
        `    type filter hook ${name} priority filter; policy accept;`,
        ...nftDnsLogRules(dir, config).map((r) => `    ${r}`),
        '  }',
      ];
      // Only the logging part: this kernel lacks the nft queue expression.
      const script = [
        'table inet portcullis_dns {',
        ...chain('output', 'out'),
        ...chain('input', 'in'),
        '}',
        '',
      ];
      ns.exec('nft', ['-f', '-'], script.join('\n'));
      server = new DnsServer(ns, ['127.0.0.53'], ZONE);
      await server.ready();
      snooper = await DnsSnooper.open({ group: 78, netns: ns.name });
      expect(resolveIn(ns, '127.0.0.53', [['A', 'two.test']])[0]!.res).toHaveLength(2);
      await until(() => snooper!.lookup('198.18.100.7') !== undefined);
      expect(snooper.lookup('198.18.100.6')?.name).toBe('two.test');
      await sleep(100);
      expect(snooper.nflog?.counters.received).toBe(1);
    } finally {
      await snooper?.close();
      server?.stop();
      ns.delete();
    }
  });
});
