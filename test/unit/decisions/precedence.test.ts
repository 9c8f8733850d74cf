import { describe, expect, it } from 'vitest';
import { RuleSet, linearLookup } from '../../../helper/decisions/index.js';
import type { Rule, RuleMatch } from '../../../helper/protocol/model.js';
import { req, rule } from './fixtures.js';

const exe = '/usr/bin/curl';
const alive = () => true;

/**
 * Rule kinds in strict precedence order, every one matching `req()` (host
 * www.api.example.com, 192.0.2.10, tcp/443 outbound, /usr/bin/curl, uid 1000).
 */
const ordered: [string, RuleMatch][] = [
  [
    'exe+host+port+protocol',
    { exe, host: 'www.api.example.com', port: { from: 443, to: 443 }, protocol: 'tcp' },
  ],
  ['exe+host+port', { exe, host: 'www.api.example.com', port: { from: 443, to: 443 } }],
  ['exe+long wildcard+port', { exe, host: '*.api.example.com', port: { from: 443, to: 443 } }],
  ['exe+short wildcard+port', { exe, host: '*.example.com', port: { from: 443, to: 443 } }],
  ['exe+address+port', { exe, address: '192.0.2.10', port: { from: 443, to: 443 } }],
  ['exe+/24+port', { exe, address: '192.0.2.0/24', port: { from: 443, to: 443 } }],
  ['exe+/24+narrow range', { exe, address: '192.0.2.0/24', port: { from: 400, to: 500 } }],
  ['exe+/24+wide range', { exe, address: '192.0.2.0/24', port: { from: 0, to: 65535 } }],
  ['exe+host', { exe, host: 'www.api.example.com' }],
  ['exe+wildcard', { exe, host: '*.example.com' }],
  ['exe+address', { exe, address: '192.0.2.10' }],
  ['exe+/16', { exe, address: '192.0.0.0/16' }],
  ['exe+port', { exe, port: { from: 443, to: 443 } }],
  ['exe+protocol', { exe, protocol: 'tcp' }],
  ['host', { host: 'www.api.example.com' }],
  ['wildcard', { host: '*.example.com' }],
  ['address', { address: '192.0.2.10' }],
  ['/8', { address: '192.0.0.0/8' }],
  ['port', { port: { from: 443, to: 443 } }],
  ['port range', { port: { from: 1, to: 1024 } }],
  ['exe', { exe }],
  ['nothing (catch-all)', {}],
];

/** One-field kinds of equal specificity (no finer value to compare). */
const equal: [string, RuleMatch][] = [
  ['exe', { exe }],
  ['uid', { uid: 1000 }],
  ['unit', { unit: 'app-curl.scope' }],
  ['protocol', { protocol: 'tcp' }],
  ['direction', { direction: 'outbound' }],
];

function winner(rules: Rule[]): Rule | undefined {
  const set = new RuleSet({ isAlive: alive });
  for (const r of rules) set.add(r);
  const found = set.lookup(req(), 10);
  // The index and the reference scan must always agree.
  expect(found?.id).toBe(linearLookup(rules, req(), 10, alive)?.id);
  return found;
}

const pairs = ordered.flatMap(([a, ma], i) =>
  ordered.slice(i + 1).map(([b, mb]) => [a, ma, b, mb] as const),
);

describe('more specific wins, whatever the actions and insertion order', () => {
  it.each(pairs)('%s beats %s', (_a, ma, _b, mb) => {
    for (const [actA, actB] of [
      ['allow', 'deny'],
      ['deny', 'allow'],
      ['allow', 'allow'],
    ] as const) {
      const a = rule(ma, { action: actA, created: 1 });
      const b = rule(mb, { action: actB, created: 2 }); // newer, and deny half the time
      expect(winner([a, b])?.id).toBe(a.id);
      expect(winner([b, a])?.id).toBe(a.id);
    }
  });
});

describe('deny beats allow at equal specificity', () => {
  const all = [...ordered, ...equal];
  it.each(all)('%s: deny over allow', (_name, m) => {
    const allow = rule(m, { action: 'allow', created: 5 });
    const deny = rule(m, { action: 'deny', created: 1 });
    expect(winner([allow, deny])?.id).toBe(deny.id);
    expect(winner([deny, allow])?.id).toBe(deny.id);
  });

  const equalPairs = equal.flatMap(([a, ma], i) =>
    equal.slice(i + 1).map(([b, mb]) => [a, ma, b, mb] as const),
  );
  it.each(equalPairs)('%s vs %s: the deny wins either way', (_a, ma, _b, mb) => {
    const a = rule(ma, { action: 'deny', created: 1 });
    const b = rule(mb, { action: 'allow', created: 9 });
    expect(winner([a, b])?.id).toBe(a.id);
    const c = rule(ma, { action: 'allow', created: 9 });
    const d = rule(mb, { action: 'deny', created: 1 });
    expect(winner([c, d])?.id).toBe(d.id);
  });

  it('same specificity and action: the newer rule wins', () => {
    const old = rule({ exe }, { created: 1 });
    const young = rule({ uid: 1000 }, { created: 2 });
    expect(winner([old, young])?.id).toBe(young.id);
  });
});

describe('rules that never match', () => {
  const specific = { exe, host: 'www.api.example.com' };
  const fallback = rule({}, { action: 'allow' });

  it('a disabled rule is skipped', () => {
    const r = rule(specific, { action: 'deny', enabled: false });
    expect(winner([r, fallback])?.id).toBe(fallback.id);
  });

  it('an expired rule is skipped (expires <= now)', () => {
    const r = rule(specific, {
      action: 'deny',
      duration: { kind: 'minutes', minutes: 1 },
      expires: 10,
    });
    expect(winner([r, fallback])?.id).toBe(fallback.id);
    const live = { ...r, id: 'live', expires: 11 };
    expect(winner([live, fallback])?.id).toBe('live');
  });

  it('a process rule stops matching when its process is gone', () => {
    const living = new Set(['1:100']);
    const isAlive = (pid: number, start: number) => living.has(`${pid}:${start}`);
    const set = new RuleSet({ isAlive });
    const r = rule(specific, {
      action: 'deny',
      duration: { kind: 'process', pid: 1, startTime: 100 },
    });
    const reused = rule(specific, {
      action: 'deny',
      duration: { kind: 'process', pid: 2, startTime: 5 },
    });
    set.add(r);
    set.add(reused);
    set.add(fallback);
    expect(set.lookup(req(), 0)?.id).toBe(r.id);
    living.clear();
    living.add('1:101'); // pid 1 reused by another process
    expect(set.lookup(req(), 0)?.id).toBe(fallback.id);
    expect(
      set
        .prune(0)
        .map((x) => x.id)
        .sort(),
    ).toEqual([r.id, reused.id].sort());
    expect(set.size).toBe(1);
  });

  it('no rule: undefined', () => {
    expect(winner([rule({ exe: '/bin/other' })])).toBeUndefined();
  });
});
