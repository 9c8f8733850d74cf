import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RuleSet, linearLookup } from '../../../helper/decisions/index.js';
import type { ConnectionRequest, Rule, RuleMatch } from '../../../helper/protocol/model.js';
import { proc, req } from './fixtures.js';

// Small pools so that random rules and requests actually meet.
const exes = ['/usr/bin/curl', '/usr/bin/firefox', '/usr/lib/a'];
const appIds = ['org.mozilla.firefox', 'com.spotify.Client'];
const hosts = ['example.com', 'a.example.com', 'b.a.example.com', 'example.org', 'x.example.org'];
const v4 = ['192.0.2.1', '192.0.2.130', '198.51.100.7', '10.1.2.3'];
const v6 = ['2001:db8::1', '2001:db8:1::2', 'fe80::1'];

const arbMatch: fc.Arbitrary<RuleMatch> = fc.record(
  {
    exe: fc.constantFrom(...exes),
    appId: fc.constantFrom(...appIds),
    unit: fc.constantFrom('a.service', 'b.scope'),
    uid: fc.constantFrom(0, 1000),
    host: fc.oneof(
      fc.constantFrom(...hosts),
      fc.constantFrom(...hosts).map((h) => `*.${h}`),
      fc.constantFrom(...hosts).map((h) => h.toUpperCase() + '.'),
    ),
    address: fc.oneof(
      fc.constantFrom(...v4, ...v6),
      fc
        .tuple(fc.constantFrom(...v4), fc.integer({ min: 0, max: 32 }))
        .map(([a, p]) => `${a}/${p}`),
      fc
        .tuple(fc.constantFrom(...v6), fc.integer({ min: 0, max: 128 }))
        .map(([a, p]) => `${a}/${p}`),
    ),
    port: fc
      .tuple(fc.integer({ min: 0, max: 1100 }), fc.integer({ min: 0, max: 1100 }))
      .map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) })),
    protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    direction: fc.constantFrom('outbound' as const, 'inbound' as const),
  },
  { requiredKeys: [] },
);

const arbRule = (i: number): fc.Arbitrary<Rule> =>
  fc
    .record({
      match: arbMatch,
      action: fc.constantFrom('allow' as const, 'deny' as const),
      enabled: fc.boolean(),
      created: fc.integer({ min: 0, max: 5 }),
      expires: fc.option(fc.integer({ min: 0, max: 20 }), { nil: null }),
      pid: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }),
    })
    .map(({ match, action, enabled, created, expires, pid }) => ({
      id: `r${i}`,
      enabled,
      action,
      match,
      duration:
        pid !== null
          ? { kind: 'process' as const, pid, startTime: 1 }
          : expires !== null
            ? { kind: 'minutes' as const, minutes: 1 }
            : { kind: 'forever' as const },
      created,
      expires: pid !== null ? null : expires,
      hits: 0,
      lastHit: null,
    }));

const arbRules = fc
  .integer({ min: 0, max: 60 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbRule(i))));

const arbRequest: fc.Arbitrary<ConnectionRequest> = fc
  .record({
    exe: fc.option(fc.constantFrom(...exes), { nil: null }),
    appId: fc.option(fc.constantFrom(...appIds), { nil: null }),
    hasProcess: fc.boolean(),
    uid: fc.option(fc.constantFrom(0, 1000), { nil: null }),
    host: fc.option(fc.constantFrom(...hosts, 'Example.COM.', 'c.b.a.example.com'), { nil: null }),
    remote: fc.constantFrom(...v4, ...v6, '::ffff:192.0.2.1'),
    dport: fc.option(fc.integer({ min: 0, max: 1100 }), { nil: null }),
    protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    direction: fc.constantFrom('outbound' as const, 'inbound' as const),
    unit: fc.constantFrom('a.service', 'b.scope'),
  })
  .map((r) => {
    const family = r.remote.includes(':') ? ('ipv6' as const) : ('ipv4' as const);
    const local = family === 'ipv6' ? '2001:db8::99' : '10.0.0.2';
    return req({
      direction: r.direction,
      family,
      protocol: r.protocol,
      src: r.direction === 'outbound' ? local : r.remote,
      dst: r.direction === 'outbound' ? r.remote : local,
      dport: r.dport,
      host: r.host,
      uid: r.uid,
      process: r.hasProcess ? proc({ exe: r.exe, appId: r.appId, unit: r.unit }) : null,
    });
  });

const isAlive = (pid: number) => pid % 2 === 0;

// One field each from a tiny pool: many rules tie on specificity across
// buckets, so deny-over-allow and the newer-wins tie-break are exercised.
const arbTie = (i: number): fc.Arbitrary<Rule> =>
  fc
    .record({
      match: fc.oneof(
        fc.constantFrom(...exes).map((exe) => ({ exe })),
        fc.constantFrom(...appIds).map((appId) => ({ appId })),
        fc.constant({ uid: 1000 }),
        fc.constant({ protocol: 'tcp' as const }),
        fc.constant({ direction: 'outbound' as const }),
      ),
      action: fc.constantFrom('allow' as const, 'deny' as const),
      created: fc.integer({ min: 0, max: 3 }),
    })
    .map(({ match, action, created }) => ({
      id: `t${i}`,
      enabled: true,
      action,
      match,
      duration: { kind: 'forever' as const },
      created,
      expires: null,
      hits: 0,
      lastHit: null,
    }));

describe('RuleSet lookup equals the linear reference scan', () => {
  it('when many rules tie on specificity', () => {
    const arbTies = fc
      .integer({ min: 1, max: 12 })
      .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbTie(i))));
    fc.assert(
      fc.property(arbTies, arbRequest, (rules, request) => {
        const set = new RuleSet({ isAlive });
        for (const r of rules) set.add(r);
        expect(set.lookup(request, 0)?.id).toBe(linearLookup(rules, request, 0, isAlive)?.id);
      }),
      { numRuns: 500 },
    );
  });

  it('over random rules and requests', () => {
    fc.assert(
      fc.property(
        arbRules,
        fc.array(arbRequest, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 25 }),
        (rules, requests, now) => {
          const set = new RuleSet({ isAlive });
          for (const r of rules) set.add(r);
          for (const request of requests) {
            expect(set.lookup(request, now)?.id).toBe(
              linearLookup(rules, request, now, isAlive)?.id,
            );
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('after removals and replacements', () => {
    fc.assert(
      fc.property(
        arbRules,
        fc.array(fc.nat(), { maxLength: 20 }),
        arbRequest,
        (rules, removals, request) => {
          const set = new RuleSet({ isAlive });
          for (const r of rules) set.add(r);
          let live = [...rules];
          for (const k of removals) {
            if (live.length === 0) break;
            const victim = live[k % live.length]!;
            if (k % 3 === 0) {
              // Replace in place: same id, flipped action.
              const flipped: Rule = {
                ...victim,
                action: victim.action === 'allow' ? 'deny' : 'allow',
              };
              set.add(flipped);
              live = live.map((r) => (r.id === victim.id ? flipped : r));
            } else {
              expect(set.remove(victim.id)).toBe(true);
              live = live.filter((r) => r.id !== victim.id);
            }
          }
          expect(set.size).toBe(live.length);
          expect(set.lookup(request, 10)?.id).toBe(linearLookup(live, request, 10, isAlive)?.id);
        },
      ),
      { numRuns: 300 },
    );
  });
});
