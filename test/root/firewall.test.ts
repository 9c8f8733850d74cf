import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FirewallRules,
  IN_CHAIN,
  OUT_CHAIN,
  chainRules,
  dnsLogRules,
  resolveConfig,
  ruleLine,
  type FirewallConfig,
} from '../../helper/firewall/index.js';
import { NfQueue } from '../../helper/nfqueue/queue.js';
import { kernelHasNftQueue } from '../support/kernel.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { vethPair } from '../support/veth.js';

function missing(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  for (const bin of ['iptables-nft', 'ip6tables-nft', 'iptables-legacy', 'nft', 'conntrack']) {
    if (spawnSync(bin, ['-V']).error) return `${bin} is not installed`;
  }
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping firewall root tests: ${skip}`);

/** The -S lines of the filter table that are not policies. */
function listing(ns: TestNetns, bin: string): string[] {
  return ns
    .exec(bin, ['-t', 'filter', '-S'])
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('-P '));
}

/** The -S listing iptables prints for our rules: built-in chains first, then user chains by name. */
function expected(
  family: 'ipv4' | 'ipv6',
  config: FirewallConfig,
  foreignOutput: string[] = [],
): string[] {
  const r = resolveConfig(config);
  if (family === 'ipv6' && !r.ipv6) return [];
  const hasIn = r.inbound || r.dnsLog !== undefined;
  const lines = hasIn ? [`-N ${IN_CHAIN}`, `-N ${OUT_CHAIN}`] : [`-N ${OUT_CHAIN}`];
  if (hasIn) lines.push(`-A INPUT -j ${IN_CHAIN}`);
  lines.push(`-A OUTPUT -j ${OUT_CHAIN}`, ...foreignOutput);
  lines.push(...dnsLogRules(family, 'in', r).map(ruleLine));
  if (r.inbound) lines.push(...chainRules(family, 'in', r).map(ruleLine));
  lines.push(...dnsLogRules(family, 'out', r).map(ruleLine));
  lines.push(...chainRules(family, 'out', r).map(ruleLine));
  return lines;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe.skipIf(skip)('backend detection on the running kernel', () => {
  it('picks nft exactly where the kernel takes an nft queue rule, iptables-nft elsewhere', async () => {
    const ns = new TestNetns('pcl-fwd');
    try {
      const kernel = kernelHasNftQueue(ns.name);
      const fw = await FirewallRules.open({ netns: ns.name });
      console.info(
        `firewall detection: kernel takes nft queue: ${kernel}; detected: ${fw.detection.nftQueue.reason}`,
      );
      expect(fw.detection.nft).toBe(true);
      expect(fw.detection.nftQueue.supported).toBe(kernel);
      if (!kernel) expect(fw.detection.nftQueue.reason).toMatch(/No such file or directory/);
      expect(fw.detection.iptables).toEqual({
        nft: { ipv4: true, ipv6: true },
        legacy: { ipv4: true, ipv6: true },
      });
      expect(fw.backend).toBe(kernel ? 'nft' : 'iptables-nft');
      // The probe left nothing behind.
      expect(ns.exec('nft', ['list', 'tables'])).not.toMatch(/portcullis/);
    } finally {
      ns.delete();
    }
  });
});

// The fallback a user gets with `--backend iptables-nft`, or on a kernel without nft
// queue: forced here, so it runs on every kernel.
describe.skipIf(skip)('firewall rules (iptables fallback) in a throw-away netns', () => {
  let ns: TestNetns;
  let fw: FirewallRules;

  beforeAll(async () => {
    ns = new TestNetns('pcl-fw');
    fw = await FirewallRules.open({ netns: ns.name, backend: 'iptables-nft' });
  });
  afterEach(async () => {
    await fw?.remove();
  });
  afterAll(() => {
    ns?.delete();
  });

  it('the forced backend is iptables-nft whatever the kernel offers', () => {
    expect(fw.backend).toBe('iptables-nft');
  });

  it('install writes exactly the expected rules for IPv4 and IPv6; twice changes nothing', async () => {
    const config: FirewallConfig = { queue: 7, inbound: true, exempt: { uid: 0 } };
    const first = await fw.install(config);
    expect(first.changed).toBe(true);
    expect(listing(ns, 'iptables')).toEqual(expected('ipv4', config));
    expect(listing(ns, 'ip6tables')).toEqual(expected('ipv6', config));
    const save = ns.exec('iptables-save', ['-t', 'filter']);
    expect(save).toContain('-A PORTCULLIS-OUT -o lo -j RETURN');
    expect(save).toContain('-j NFQUEUE --queue-num 7 --queue-bypass');
    // Outbound denials are refused (reset, ICMP administratively prohibited); inbound
    // ones and the dropped mark (0x3) are silent.
    expect(save).toContain(
      '-A PORTCULLIS-OUT -p tcp -m mark --mark 0x2/0x3 -j REJECT --reject-with tcp-reset',
    );
    expect(save).toContain(
      '-A PORTCULLIS-OUT -m mark --mark 0x2/0x3 -j REJECT --reject-with icmp-admin-prohibited',
    );
    expect(save).toContain('-A PORTCULLIS-OUT -m connmark --mark 0x3/0x3 -j DROP');
    const save6 = ns.exec('ip6tables-save', ['-t', 'filter']);
    expect(save6).toContain('-A PORTCULLIS-IN -m connmark --mark 0x2/0x3 -j DROP');
    expect(save6).toContain(
      '-A PORTCULLIS-OUT -m connmark --mark 0x2/0x3 -j REJECT --reject-with icmp6-adm-prohibited',
    );
    const second = await fw.install(config);
    expect(second).toMatchObject({ changed: false, actions: [] });
    expect(listing(ns, 'iptables')).toEqual(expected('ipv4', config));
    expect(listing(ns, 'ip6tables')).toEqual(expected('ipv6', config));
  });

  it('DNS logging: NFLOG rules open both chains exactly as listed; idempotent; removed', async () => {
    const config: FirewallConfig = { queue: 7, dnsLog: { group: 2053, mdns: true } };
    const first = await fw.install(config);
    expect(first.actions).toContain('iptables-nft ipv4: created chain PORTCULLIS-IN');
    expect(listing(ns, 'iptables')).toEqual(expected('ipv4', config));
    expect(listing(ns, 'ip6tables')).toEqual(expected('ipv6', config));
    expect(ns.exec('iptables-save', ['-t', 'filter'])).toContain(
      '-A PORTCULLIS-OUT -o lo -p udp -m udp --sport 53 -m conntrack --ctstate ESTABLISHED --ctdir REPLY -j NFLOG --nflog-prefix portcullis-dns --nflog-group 2053',
    );
    expect((await fw.install(config)).changed).toBe(false);
    // Turning it off leaves no inbound chain (inbound queueing is off).
    const off = await fw.install({ queue: 7 });
    expect(off.actions).toContain('iptables-nft ipv4: deleted chain PORTCULLIS-IN');
    expect(listing(ns, 'iptables')).toEqual(expected('ipv4', { queue: 7 }));
    await fw.install({ ...config, inbound: true, ipv6: false });
    expect(listing(ns, 'iptables')).toEqual(expected('ipv4', { ...config, inbound: true }));
    expect(listing(ns, 'ip6tables')).toEqual([]);
    await fw.remove();
    expect(listing(ns, 'iptables')).toEqual([]);
  });

  it('install with another config rewrites in place (balance, no bypass, reject, inbound off)', async () => {
    await fw.install({ queue: 7, inbound: true });
    const config: FirewallConfig = {
      queue: { from: 3, to: 5 },
      bypass: false,
      denyAction: 'reject',
      ipv6: false,
    };
    const report = await fw.install(config);
    expect(report.actions).toContain('iptables-nft ipv4: deleted chain PORTCULLIS-IN');
    expect(listing(ns, 'iptables')).toEqual(expected('ipv4', config));
    expect(listing(ns, 'iptables').join('\n')).toContain('--queue-balance 3:5');
    expect(listing(ns, 'iptables').join('\n')).not.toContain('--queue-bypass');
    expect(listing(ns, 'ip6tables')).toEqual([]);
  });

  it('remove deletes everything of ours and nothing else; twice is a no-op', async () => {
    ns.exec('iptables', ['-A', 'OUTPUT', '-p', 'udp', '--dport', '5353', '-j', 'ACCEPT']);
    ns.exec('iptables', ['-N', 'OTHER']);
    ns.exec('ip6tables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
    const before4 = listing(ns, 'iptables');
    const before6 = listing(ns, 'ip6tables');
    await fw.install({ queue: 1, inbound: true });
    expect(listing(ns, 'iptables')).toContain('-A OUTPUT -j PORTCULLIS-OUT');
    // Our jump is first, above the unrelated rule.
    expect(listing(ns, 'iptables').filter((l) => l.startsWith('-A OUTPUT'))[0]).toBe(
      '-A OUTPUT -j PORTCULLIS-OUT',
    );
    const removed = await fw.remove();
    expect(removed.changed).toBe(true);
    expect(listing(ns, 'iptables')).toEqual(before4);
    expect(listing(ns, 'ip6tables')).toEqual(before6);
    expect((await fw.remove()).changed).toBe(false);
    ns.exec('iptables', ['-F', 'OUTPUT']);
    ns.exec('iptables', ['-X', 'OTHER']);
    ns.exec('ip6tables', ['-F', 'INPUT']);
  });

  it('reconcile after a crash: duplicated jump, stale chain contents and names, a legacy leftover', async () => {
    const config: FirewallConfig = { queue: 4 };
    // A crashed run: old contents, a jump duplicated and not first, an old-style chain,
    // and rules left by a run that used iptables-legacy.
    ns.exec('iptables', ['-A', 'OUTPUT', '-p', 'icmp', '-j', 'ACCEPT']);
    ns.exec('iptables', ['-N', OUT_CHAIN]);
    ns.exec('iptables', ['-A', OUT_CHAIN, '-j', 'NFQUEUE', '--queue-num', '9']);
    ns.exec('iptables', ['-A', 'OUTPUT', '-j', OUT_CHAIN]);
    ns.exec('iptables', ['-A', 'OUTPUT', '-j', OUT_CHAIN]);
    ns.exec('iptables', ['-N', 'PORTCULLIS']);
    ns.exec('iptables', ['-A', 'PORTCULLIS', '-j', 'NFQUEUE', '--queue-num', '9']);
    ns.exec('iptables', ['-A', 'INPUT', '-j', 'PORTCULLIS']);
    ns.exec('ip6tables', ['-N', IN_CHAIN]);
    ns.exec('ip6tables', ['-I', 'INPUT', '-j', IN_CHAIN]);
    ns.exec('iptables-legacy', ['-N', OUT_CHAIN]);
    ns.exec('iptables-legacy', ['-A', 'OUTPUT', '-j', OUT_CHAIN]);

    const fresh = await FirewallRules.open({ netns: ns.name, backend: 'iptables-nft' });
    const report = await fresh.reconcile(config);
    expect(report.actions).toEqual(
      expect.arrayContaining([
        'iptables-legacy ipv4: deleted chain PORTCULLIS-OUT',
        'iptables-nft ipv4: rewrote chain PORTCULLIS-OUT',
        'iptables-nft ipv4: deleted jump -A OUTPUT -j PORTCULLIS-OUT',
        'iptables-nft ipv4: deleted chain PORTCULLIS',
        'iptables-nft ipv6: deleted chain PORTCULLIS-IN',
      ]),
    );
    const v4 = listing(ns, 'iptables');
    expect(v4.filter((l) => l.includes('-j PORTCULLIS'))).toEqual(['-A OUTPUT -j PORTCULLIS-OUT']);
    expect(v4).toEqual(expected('ipv4', config, ['-A OUTPUT -p icmp -j ACCEPT']));
    expect(listing(ns, 'ip6tables')).toEqual(expected('ipv6', config));
    expect(listing(ns, 'iptables-legacy')).toEqual([]);
    expect((await fresh.reconcile(config)).changed).toBe(false);
    await fresh.remove();
    expect(listing(ns, 'iptables')).toEqual(['-A OUTPUT -p icmp -j ACCEPT']);
    ns.exec('iptables', ['-F', 'OUTPUT']);
  });
});

describe.skipIf(skip)('firewall rules, native nft backend', () => {
  it('installs table inet portcullis where the kernel has nft queue', async (ctx) => {
    const ns = new TestNetns('pcl-fwn');
    try {
      const probe = await FirewallRules.open({ netns: ns.name });
      if (!probe.detection.nftQueue.supported) {
        console.warn(`skipping the nft backend root test: ${probe.detection.nftQueue.reason}`);
        ctx.skip();
        return;
      }
      const fw = await FirewallRules.open({ netns: ns.name, backend: 'nft' });
      expect((await fw.install({ queue: 3, inbound: true })).changed).toBe(true);
      const table = ns.exec('nft', ['list', 'table', 'inet', 'portcullis']);
      expect(table).toMatch(/queue/);
      // The kernel took the refusing statements and the silent one for the dropped mark.
      expect(table).toMatch(/meta l4proto tcp ct mark & 0x0*3 == 0x0*2 reject with tcp reset/);
      expect(table).toMatch(
        /meta mark & 0x0*3 == 0x0*2 reject with icmpx (type )?admin-prohibited/,
      );
      expect(table).toMatch(/meta mark & 0x0*3 == 0x0*3 drop/);
      // Twice changes nothing; a changed config or somebody else's edit does.
      expect(await fw.install({ queue: 3, inbound: true })).toMatchObject({ changed: false });
      expect(ns.exec('nft', ['list', 'table', 'inet', 'portcullis'])).toBe(table);
      expect((await fw.install({ queue: 3, inbound: false })).changed).toBe(true);
      ns.exec('nft', ['add', 'rule', 'inet', 'portcullis', 'output', 'counter']);
      expect((await fw.install({ queue: 3, inbound: false })).changed).toBe(true);
      expect((await fw.install({ queue: 3, inbound: false })).changed).toBe(false);
      await fw.remove();
      expect(ns.exec('nft', ['list', 'tables'])).not.toMatch(/portcullis/);
    } finally {
      ns.delete();
    }
  });
});

describe.skipIf(skip)(
  'firewall rules with real traffic and an NfQueue (two namespaces, veth)',
  () => {
    let a: TestNetns;
    let b: TestNetns;
    let fw: FirewallRules | undefined;
    let q: NfQueue | undefined;

    beforeAll(() => {
      a = new TestNetns('pcl-fwa');
      b = new TestNetns('pcl-fwb');
      const va = `pca${process.pid % 10000}`;
      const vb = `pcb${process.pid % 10000}`;
      vethPair(a, b, { names: [va, vb], v4: '10.77.0', linkLocal: true });
    });
    afterEach(async () => {
      await q?.close();
      q = undefined;
      await fw?.remove();
      fw = undefined;
    });
    afterAll(() => {
      a?.delete();
      b?.delete();
    });

    it.for(['iptables-nft', 'nft'] as const)(
      '%s: accepted with a verdict mark: the connmark is saved, later packets skip the queue',
      async (backend, ctx) => {
        if (backend === 'nft' && !kernelHasNftQueue(a.name)) {
          console.warn('skipping the nft traffic test: this kernel takes no nft queue rule');
          ctx.skip();
          return;
        }
        fw = await FirewallRules.open({ netns: a.name, backend });
        const config: FirewallConfig = { queue: 11, bypass: false };
        await fw.install(config);
        const marks = resolveConfig(config).marks;
        q = await NfQueue.open({ queue: 11, netns: a.name });
        console.info(`firewall traffic test: nfqueue conntrack glue = ${String(q.conntrackGlue)}`);
        let queued = 0;
        q.onPacket((p) => {
          queued++;
          p.repeat({ mark: marks.accepted }); // the chain runs again, saves the mark, accepts
        });

        const listener = spawn('ip', [
          'netns',
          'exec',
          b.name,
          process.execPath,
          '-e',
          `const s = require('dgram').createSocket('udp4');
       s.on('message', (m) => console.log(m.toString()));
       s.bind(9000, '10.77.0.2', () => console.log('bound'));`,
        ]);
        const received: string[] = [];
        createInterface({ input: listener.stdout }).on('line', (l) => received.push(l));
        try {
          const until = async (cond: () => boolean): Promise<void> => {
            const end = Date.now() + 5000;
            while (!cond()) {
              if (Date.now() > end) throw new Error('timed out');
              await sleep(10);
            }
          };
          await until(() => received.includes('bound'));
          // One socket, three datagrams, one at a time (one flow).
          const sender = spawn('ip', [
            'netns',
            'exec',
            a.name,
            process.execPath,
            '-e',
            `const s = require('dgram').createSocket('udp4');
         s.bind(40000, () => {
           let n = 0;
           const next = () => n === 3 ? s.close() : s.send('d' + n++, 9000, '10.77.0.2', () => setTimeout(next, 50));
           next();
         });`,
          ]);
          await new Promise((r) => sender.on('exit', r));
          await until(() => received.length === 4);
          expect(received.slice(1)).toEqual(['d0', 'd1', 'd2']);
          expect(queued).toBe(1);
          expect(q.counters).toMatchObject({ received: 1, repeated: 1 });

          const ct = a.exec('conntrack', ['-L', '-p', 'udp', '--dport', '9000']);
          expect(ct).toMatch(/sport=40000 dport=9000/);
          expect(ct).toMatch(/mark=1\b/);
          // The next test sends the same flow: it must start new.
          a.exec('conntrack', ['-D', '-p', 'udp', '--dport', '9000']);
          if (backend === 'nft') return; // the queue counters above are the nft rules' count
          // Rule counters: queue rule saw 1 packet; connmark-accepted saw the other 2.
          const counters = a
            .exec('iptables', ['-t', 'filter', '-L', OUT_CHAIN, '-v', '-x', '-n'])
            .split('\n')
            .slice(2)
            .filter((l) => l.trim() !== '')
            .map((l) => ({ pkts: Number(l.trim().split(/\s+/)[0]), text: l }));
          const connmarkAccept = counters.find((c) => /connmark match\s+0x1\/0x3/.test(c.text));
          const queueRule = counters.find(
            (c) => /NFQUEUE/.test(c.text) && /!tcp|! tcp|!6/.test(c.text),
          );
          expect(connmarkAccept?.pkts).toBe(2);
          expect(queueRule?.pkts).toBe(1);
        } finally {
          listener.kill('SIGTERM');
        }
      },
    );
  },
);
