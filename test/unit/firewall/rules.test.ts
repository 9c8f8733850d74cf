import { describe, expect, it } from 'vitest';
import {
  FirewallError,
  FirewallRules,
  chainRules,
  chooseBackend,
  DEFAULT_DNS_LOG_GROUP,
  dnsLogRules,
  helperFirewallConfig,
  inNetns,
  nftDnsLogRules,
  nftChainRules,
  nftInstallScript,
  parseListing,
  planRestore,
  resolveConfig,
  ruleLine,
  wantedState,
  type CommandRunner,
  type Detection,
  type FirewallConfig,
} from '../../../helper/firewall/index.js';

const argv = (family: 'ipv4' | 'ipv6', dir: 'out' | 'in', c: FirewallConfig): string[][] =>
  chainRules(family, dir, resolveConfig(c)).map((r) => ['-A', r.chain, ...r.args]);

const detection = (over: Partial<Detection> = {}): Detection => ({
  nft: true,
  nftQueue: { supported: false, reason: 'no nft queue' },
  iptables: { nft: { ipv4: true, ipv6: true }, legacy: { ipv4: true, ipv6: true } },
  legacyTables: { ipv4: [], ipv6: [] },
  ...over,
});

describe('iptables rules as argv', () => {
  it('IPv4 output, defaults: lo, exempt mark, connmark, verdict mark, queue with bypass', () => {
    const reject = ['-j', 'REJECT', '--reject-with'];
    expect(argv('ipv4', 'out', { queue: 7 })).toEqual([
      ['-A', 'PORTCULLIS-OUT', '-o', 'lo', '-j', 'RETURN'],
      ['-A', 'PORTCULLIS-OUT', '-m', 'mark', '--mark', '0x4/0x4', '-j', 'RETURN'],
      ['-A', 'PORTCULLIS-OUT', '-m', 'connmark', '--mark', '0x1/0x3', '-j', 'ACCEPT'],
      [
        ...['-A', 'PORTCULLIS-OUT', '-p', 'tcp', '-m', 'connmark', '--mark', '0x2/0x3'],
        ...[...reject, 'tcp-reset'],
      ],
      [
        ...['-A', 'PORTCULLIS-OUT', '-m', 'connmark', '--mark', '0x2/0x3'],
        ...[...reject, 'icmp-admin-prohibited'],
      ],
      ['-A', 'PORTCULLIS-OUT', '-m', 'connmark', '--mark', '0x3/0x3', '-j', 'DROP'],
      [
        ...['-A', 'PORTCULLIS-OUT', '-m', 'mark', '--mark', '0x1/0x3'],
        ...['-j', 'CONNMARK', '--save-mark', '--nfmask', '0x3', '--ctmask', '0x3'],
      ],
      ['-A', 'PORTCULLIS-OUT', '-m', 'mark', '--mark', '0x1/0x3', '-j', 'ACCEPT'],
      [
        ...['-A', 'PORTCULLIS-OUT', '-p', 'tcp', '-m', 'mark', '--mark', '0x2/0x3'],
        ...[...reject, 'tcp-reset'],
      ],
      [
        '-A',
        'PORTCULLIS-OUT',
        '-m',
        'mark',
        '--mark',
        '0x2/0x3',
        ...reject,
        'icmp-admin-prohibited',
      ],
      ['-A', 'PORTCULLIS-OUT', '-m', 'mark', '--mark', '0x3/0x3', '-j', 'DROP'],
      [
        ...['-A', 'PORTCULLIS-OUT', '-p', 'tcp', '-m', 'tcp', '--tcp-flags', 'FIN,SYN,RST,ACK'],
        ...['SYN', '-m', 'conntrack', '--ctstate', 'NEW'],
        ...['-j', 'NFQUEUE', '--queue-num', '7', '--queue-bypass'],
      ],
      [
        ...['-A', 'PORTCULLIS-OUT', '!', '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'NEW'],
        ...['-j', 'NFQUEUE', '--queue-num', '7', '--queue-bypass'],
      ],
    ]);
  });

  it('inbound chain: -i lo, no uid exemption (owner matches only output), denials dropped', () => {
    const rules = argv('ipv4', 'in', { queue: 1, exempt: { uid: 0 } });
    expect(rules[0]).toEqual(['-A', 'PORTCULLIS-IN', '-i', 'lo', '-j', 'RETURN']);
    expect(rules.flat()).not.toContain('REJECT');
    for (const m of ['connmark', 'mark']) {
      for (const v of ['0x2/0x3', '0x3/0x3']) {
        expect(rules).toContainEqual(['-A', 'PORTCULLIS-IN', '-m', m, '--mark', v, '-j', 'DROP']);
      }
    }
    expect(rules.flat()).not.toContain('--uid-owner');
    expect(rules.every((r) => r[1] === 'PORTCULLIS-IN')).toBe(true);
  });

  it('uid exemption, no mark exemption', () => {
    const rules = argv('ipv4', 'out', { queue: 1, exempt: { uid: 0, mark: false } });
    expect(rules[1]).toEqual([
      ...['-A', 'PORTCULLIS-OUT', '-m', 'owner', '--uid-owner', '0', '-j', 'RETURN'],
    ]);
    expect(rules.filter((r) => r.includes('0x4/0x4'))).toEqual([]);
  });

  it('bypass off, queue-balance, reject for IPv4 and IPv6', () => {
    const c: FirewallConfig = { queue: { from: 2, to: 5 }, bypass: false, denyAction: 'reject' };
    const v4 = argv('ipv4', 'out', c);
    const v6 = argv('ipv6', 'out', c);
    expect(v4.at(-1)!.slice(-4)).toEqual(['-j', 'NFQUEUE', '--queue-balance', '2:5']);
    expect(v4.flat()).not.toContain('--queue-bypass');
    expect(v4[3]!.slice(-4)).toEqual(['-j', 'REJECT', '--reject-with', 'tcp-reset']);
    expect(v6[3]!.slice(-4)).toEqual(['-j', 'REJECT', '--reject-with', 'tcp-reset']);
    expect(v4[4]!.slice(-4)).toEqual(['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
    expect(v6[4]!.slice(-4)).toEqual(['-j', 'REJECT', '--reject-with', 'icmp6-adm-prohibited']);
    expect(argv('ipv4', 'out', { queue: { from: 4, to: 4 } }).at(-1)).toContain('--queue-num');
  });

  it("denyAction 'drop' drops the denied mark too, silently as before", () => {
    const rules = argv('ipv6', 'out', { queue: 1, denyAction: 'drop' });
    expect(rules.flat()).not.toContain('REJECT');
    expect(rules).toContainEqual([
      '-A',
      'PORTCULLIS-OUT',
      '-m',
      'mark',
      '--mark',
      '0x2/0x3',
      '-j',
      'DROP',
    ]);
    expect(rules).toContainEqual([
      '-A',
      'PORTCULLIS-OUT',
      '-m',
      'mark',
      '--mark',
      '0x3/0x3',
      '-j',
      'DROP',
    ]);
  });

  it('custom mark layout', () => {
    const rules = argv('ipv4', 'out', {
      queue: 1,
      marks: { mask: 0x300, accepted: 0x100, denied: 0x200, exempt: 0x400 },
    });
    expect(rules.flat()).toEqual(
      expect.arrayContaining(['0x400/0x400', '0x100/0x300', '0x200/0x300', '0x300/0x300', '0x300']),
    );
    expect(
      resolveConfig({ queue: 1, marks: { dropped: 0x1, accepted: 0x2, denied: 0x3 } }).marks,
    ).toMatchObject({ accepted: 0x2, denied: 0x3, dropped: 0x1 });
  });

  it('wanted state: jumps from OUTPUT, and INPUT only with inbound', () => {
    expect(wantedState('ipv6', resolveConfig({ queue: 1 })).jumps).toEqual([
      { from: 'OUTPUT', to: 'PORTCULLIS-OUT' },
    ]);
    const both = wantedState('ipv6', resolveConfig({ queue: 1, inbound: true }));
    expect(both.chains).toEqual(['PORTCULLIS-OUT', 'PORTCULLIS-IN']);
    expect(both.jumps.map((j) => j.from)).toEqual(['OUTPUT', 'INPUT']);
  });

  it('rejects bad configs with INVALID_CONFIG', () => {
    for (const c of [
      { queue: 70000 },
      { queue: -1 },
      { queue: { from: 5, to: 2 } },
      { queue: 1, marks: { accepted: 0x4 } },
      { queue: 1, marks: { accepted: 0x2 } },
      { queue: 1, marks: { exempt: 0x1 } },
      { queue: 1, marks: { mask: 0 } },
      { queue: 1, marks: { dropped: 0x1 } },
      { queue: 1, marks: { dropped: 0x4 } },
      { queue: 1, marks: { accepted: 0x1, denied: 0x3 } },
      { queue: 1, denyAction: 'refuse' },
      { queue: 1, exempt: { uid: -3 } },
    ] as FirewallConfig[]) {
      expect(() => resolveConfig(c)).toThrow(FirewallError);
    }
  });
});

describe('DNS response logging rules (NFLOG)', () => {
  const dnsArgv = (family: 'ipv4' | 'ipv6', dir: 'out' | 'in', c: FirewallConfig): string[][] =>
    dnsLogRules(family, dir, resolveConfig(c)).map((r) => ['-A', r.chain, ...r.args]);
  const reply = ['-m', 'conntrack', '--ctstate', 'ESTABLISHED', '--ctdir', 'REPLY'];

  it('off by default: no rules, no inbound chain', () => {
    expect(dnsArgv('ipv4', 'out', { queue: 1 })).toEqual([]);
    expect(wantedState('ipv4', resolveConfig({ queue: 1 })).chains).toEqual(['PORTCULLIS-OUT']);
  });

  it('output: replies to loopback only; input: replies from the network only (each once)', () => {
    const c: FirewallConfig = { queue: 1, dnsLog: { group: 53 } };
    const target = ['-j', 'NFLOG', '--nflog-prefix', 'portcullis-dns', '--nflog-group', '53'];
    expect(dnsArgv('ipv4', 'out', c)).toEqual([
      [
        '-A',
        'PORTCULLIS-OUT',
        '-o',
        'lo',
        '-p',
        'udp',
        '-m',
        'udp',
        '--sport',
        '53',
        ...reply,
        ...target,
      ],
      [
        '-A',
        'PORTCULLIS-OUT',
        '-o',
        'lo',
        '-p',
        'tcp',
        '-m',
        'tcp',
        '--sport',
        '53',
        ...reply,
        ...target,
      ],
    ]);
    expect(dnsArgv('ipv6', 'in', c)).toEqual([
      [
        '-A',
        'PORTCULLIS-IN',
        '!',
        '-i',
        'lo',
        '-p',
        'udp',
        '-m',
        'udp',
        '--sport',
        '53',
        ...reply,
        ...target,
      ],
      [
        '-A',
        'PORTCULLIS-IN',
        '!',
        '-i',
        'lo',
        '-p',
        'tcp',
        '-m',
        'tcp',
        '--sport',
        '53',
        ...reply,
        ...target,
      ],
    ]);
  });

  it('mDNS inbound without a conntrack match; group 0 is printed without --nflog-group', () => {
    const rules = dnsArgv('ipv4', 'in', {
      queue: 1,
      dnsLog: { group: 0, prefix: 'x_1', mdns: true },
    });
    expect(rules.at(-1)).toEqual([
      ...['-A', 'PORTCULLIS-IN', '!', '-i', 'lo', '-p', 'udp', '-m', 'udp', '--sport', '5353'],
      ...['-j', 'NFLOG', '--nflog-prefix', 'x_1'],
    ]);
    expect(rules.flat()).not.toContain('--nflog-group');
    expect(dnsArgv('ipv4', 'out', { queue: 1, dnsLog: { group: 1, mdns: true } })).toHaveLength(2);
  });

  it('wanted state: the log rules open the chains; the inbound chain holds only them without inbound', () => {
    const r = resolveConfig({ queue: 4, dnsLog: { group: 9 } });
    const w = wantedState('ipv4', r);
    expect(w.chains).toEqual(['PORTCULLIS-OUT', 'PORTCULLIS-IN']);
    expect(w.jumps).toEqual([
      { from: 'OUTPUT', to: 'PORTCULLIS-OUT' },
      { from: 'INPUT', to: 'PORTCULLIS-IN' },
    ]);
    const out = w.rules.filter((x) => x.chain === 'PORTCULLIS-OUT').map(ruleLine);
    expect(out.slice(0, 2).every((l) => l.includes('-j NFLOG'))).toBe(true);
    expect(out.slice(2)).toEqual(chainRules('ipv4', 'out', r).map(ruleLine));
    expect(w.rules.filter((x) => x.chain === 'PORTCULLIS-IN')).toEqual(
      dnsLogRules('ipv4', 'in', r),
    );
    const inbound = wantedState(
      'ipv4',
      resolveConfig({ queue: 4, inbound: true, dnsLog: { group: 9 } }),
    );
    expect(inbound.rules.filter((x) => x.chain === 'PORTCULLIS-IN').map(ruleLine)).toEqual([
      ...dnsLogRules('ipv4', 'in', r).map(ruleLine),
      ...chainRules('ipv4', 'in', r).map(ruleLine),
    ]);
  });

  it('invalid group or prefix is INVALID_CONFIG; the helper turns logging on by default', () => {
    for (const dnsLog of [
      { group: 65536 },
      { group: 1, prefix: 'has space' },
      { group: 1, prefix: '' },
    ]) {
      expect(() => resolveConfig({ queue: 1, dnsLog })).toThrow(FirewallError);
    }
    expect(helperFirewallConfig({ queue: 1 }).dnsLog).toEqual({ group: DEFAULT_DNS_LOG_GROUP });
    expect(helperFirewallConfig({ queue: 1, dnsLog: false }).dnsLog).toBe(false);
    expect(resolveConfig(helperFirewallConfig({ queue: 1, dnsLog: false })).dnsLog).toBeUndefined();
  });

  it('nft: the same rules as `log group`, IPv4-only when ipv6 is off, input chain for them', () => {
    const r = resolveConfig({ queue: 2, dnsLog: { group: 7, mdns: true } });
    expect(nftDnsLogRules('out', r)).toEqual([
      'oifname "lo" meta l4proto { tcp, udp } th sport 53 ct state established ct direction reply log prefix "portcullis-dns" group 7',
    ]);
    expect(nftDnsLogRules('in', r)).toEqual([
      'iifname != "lo" meta l4proto { tcp, udp } th sport 53 ct state established ct direction reply log prefix "portcullis-dns" group 7',
      'iifname != "lo" udp sport 5353 log prefix "portcullis-dns" group 7',
    ]);
    const v4 = nftDnsLogRules(
      'out',
      resolveConfig({ queue: 2, ipv6: false, dnsLog: { group: 7 } }),
    );
    expect(v4[0]).toMatch(/^meta nfproto ipv4 oifname "lo" /);
    const script = nftInstallScript(r);
    const input = script.slice(script.indexOf('chain input'));
    expect(input).toContain('log prefix "portcullis-dns" group 7');
    expect(input).not.toContain('queue'); // no inbound queueing asked for
    expect(script.indexOf('log prefix')).toBeLessThan(script.indexOf('oifname "lo" return'));
  });
});

describe('reading and planning', () => {
  const want = wantedState('ipv4', resolveConfig({ queue: 7 }));
  const good = [
    '-P INPUT ACCEPT',
    '-P OUTPUT ACCEPT',
    '-N OTHER',
    '-N PORTCULLIS-OUT',
    '-A OUTPUT -j PORTCULLIS-OUT',
    '-A OUTPUT -p udp -m comment --comment "keep me" -j ACCEPT',
    ...want.rules.map(ruleLine),
  ].join('\n');

  it('parses our chains, their rules and jumps with positions', () => {
    const s = parseListing(good);
    expect(s.chains).toEqual(['PORTCULLIS-OUT']);
    expect(s.rules).toHaveLength(want.rules.length);
    expect(s.jumps).toEqual([
      { chain: 'OUTPUT', index: 0, target: 'PORTCULLIS-OUT', line: '-A OUTPUT -j PORTCULLIS-OUT' },
    ]);
  });

  it('nothing to do when the state is right', () => {
    expect(planRestore(parseListing(good), want)).toEqual({ script: '', actions: [] });
  });

  it('fresh install: declare, fill, insert the jump at the top, one transaction', () => {
    const { script } = planRestore(parseListing('-P OUTPUT ACCEPT'), want);
    const lines = script.trim().split('\n');
    expect(lines[0]).toBe('*filter');
    expect(lines[1]).toBe(':PORTCULLIS-OUT - [0:0]');
    expect(lines.slice(2, 2 + want.rules.length)).toEqual(want.rules.map(ruleLine));
    expect(lines.at(-2)).toBe('-I OUTPUT 1 -j PORTCULLIS-OUT');
    expect(lines.at(-1)).toBe('COMMIT');
  });

  it('crash leftovers: duplicated jump not first, stale chain, foreign jumps to ours', () => {
    const text = [
      '-N PORTCULLIS',
      '-N PORTCULLIS-OUT',
      '-A INPUT -j PORTCULLIS',
      '-A OUTPUT -p icmp -j ACCEPT',
      '-A OUTPUT -j PORTCULLIS-OUT',
      '-A OUTPUT -j PORTCULLIS-OUT',
      '-A FORWARD -g PORTCULLIS-OUT',
      '-A PORTCULLIS-OUT -j NFQUEUE --queue-num 9',
    ].join('\n');
    const { script, actions } = planRestore(parseListing(text), want);
    const lines = script.trim().split('\n');
    expect(lines).toContain(':PORTCULLIS-OUT - [0:0]');
    expect(lines.filter((l) => l === '-D OUTPUT -j PORTCULLIS-OUT')).toHaveLength(2);
    expect(lines).toContain('-D INPUT -j PORTCULLIS');
    expect(lines).toContain('-D FORWARD -g PORTCULLIS-OUT');
    expect(lines).toContain('-I OUTPUT 1 -j PORTCULLIS-OUT');
    expect(lines.slice(-3)).toEqual(['-F PORTCULLIS', '-X PORTCULLIS', 'COMMIT']);
    expect(actions).toContain('rewrote chain PORTCULLIS-OUT');
    expect(actions).toContain('deleted chain PORTCULLIS');
  });

  it('remove: wanted nothing deletes jumps then chains; never touches others', () => {
    const { script } = planRestore(parseListing(good), { chains: [], rules: [], jumps: [] });
    expect(script).toBe(
      '*filter\n-D OUTPUT -j PORTCULLIS-OUT\n-F PORTCULLIS-OUT\n-X PORTCULLIS-OUT\nCOMMIT\n',
    );
  });
});

describe('nft ruleset text', () => {
  it('output chain in the same order, with bypass and a queue range', () => {
    expect(
      nftChainRules('out', resolveConfig({ queue: { from: 2, to: 3 }, exempt: { uid: 0 } })),
    ).toEqual([
      'oifname "lo" return',
      'meta mark & 0x4 == 0x4 return',
      'meta skuid 0 return',
      'ct mark & 0x3 == 0x1 accept',
      'meta l4proto tcp ct mark & 0x3 == 0x2 reject with tcp reset',
      'ct mark & 0x3 == 0x2 reject with icmpx admin-prohibited',
      'ct mark & 0x3 == 0x3 drop',
      'meta mark & 0x3 == 0x1 ct mark set ct mark & 0xfffffffc | 0x1 accept',
      'meta l4proto tcp meta mark & 0x3 == 0x2 reject with tcp reset',
      'meta mark & 0x3 == 0x2 reject with icmpx admin-prohibited',
      'meta mark & 0x3 == 0x3 drop',
      'tcp flags & (fin | syn | rst | ack) == syn ct state new queue flags bypass to 2-3',
      'meta l4proto != tcp ct state new queue flags bypass to 2-3',
    ]);
  });

  it('inbound, no bypass, reject, IPv4 only', () => {
    const rules = nftChainRules(
      'in',
      resolveConfig({ queue: 5, bypass: false, denyAction: 'reject', ipv6: false }),
    );
    expect(rules[0]).toBe('iifname "lo" return');
    expect(rules[1]).toBe('meta nfproto ipv6 return');
    // Inbound denials stay silent: a scanner learns nothing.
    expect(rules).toContain('ct mark & 0x3 == 0x2 drop');
    expect(rules).toContain('meta mark & 0x3 == 0x3 drop');
    expect(rules.join('\n')).not.toContain('reject');
    expect(rules.at(-1)).toBe('meta l4proto != tcp ct state new queue to 5');
  });

  it("denyAction 'drop': the output chain drops both denied marks", () => {
    const rules = nftChainRules('out', resolveConfig({ queue: 1, denyAction: 'drop' }));
    expect(rules).toContain('meta mark & 0x3 == 0x2 drop');
    expect(rules.join('\n')).not.toContain('reject');
  });

  it('the script replaces the table atomically; input chain only with inbound', () => {
    const s = nftInstallScript(resolveConfig({ queue: 1 }));
    expect(s.split('\n').slice(0, 3)).toEqual([
      'table inet portcullis',
      'delete table inet portcullis',
      'table inet portcullis {',
    ]);
    expect(s).toContain('type filter hook output priority filter; policy accept;');
    expect(s).not.toContain('hook input');
    expect(nftInstallScript(resolveConfig({ queue: 1, inbound: true }))).toContain('hook input');
  });
});

describe('FirewallRules with a fake runner', () => {
  it('runs everything through ip netns exec, never a shell, and types failures', async () => {
    const calls: { argv: readonly string[]; input?: string }[] = [];
    const runner: CommandRunner = (a, input) => {
      calls.push({ argv: a, ...(input !== undefined ? { input } : {}) });
      if (a.includes('iptables-nft-restore')) {
        return Promise.reject(
          new FirewallError('COMMAND_FAILED', 'boom', {
            command: [...a],
            exitStatus: 2,
            stderr: 'line 3 failed',
          }),
        );
      }
      return Promise.resolve({ stdout: '-P OUTPUT ACCEPT\n', stderr: '' });
    };
    const fw = await FirewallRules.open({ netns: 'blue', runner, detection: detection() });
    expect(fw.backend).toBe('iptables-nft');
    await expect(fw.install({ queue: 1 })).rejects.toMatchObject({
      code: 'COMMAND_FAILED',
      details: { exitStatus: 2, stderr: 'line 3 failed' },
    });
    expect(calls.every((c) => c.argv.slice(0, 4).join(' ') === 'ip netns exec blue')).toBe(true);
    expect(calls[0]!.argv).toEqual([
      'ip',
      'netns',
      'exec',
      'blue',
      'iptables-nft',
      '-w',
      '-t',
      'filter',
      '-S',
    ]);
    expect(calls[1]!.input).toMatch(/^\*filter\n:PORTCULLIS-OUT/);
  });

  it('inNetns leaves argv alone without a namespace', () => {
    expect(inNetns(undefined, ['nft', 'list', 'tables'])).toEqual(['nft', 'list', 'tables']);
  });

  it('chooses nft only when the kernel has nft queue', () => {
    expect(chooseBackend(detection())).toBe('iptables-nft');
    expect(chooseBackend(detection({ nftQueue: { supported: true, reason: '' } }))).toBe('nft');
    const none = detection({
      iptables: { nft: { ipv4: false, ipv6: false }, legacy: { ipv4: true, ipv6: false } },
    });
    expect(chooseBackend(none)).toBe('iptables-legacy');
    expect(() => chooseBackend(detection(), 'nft')).toThrow(/no nft queue/);
  });
});
