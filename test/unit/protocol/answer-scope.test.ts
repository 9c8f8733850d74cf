import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { RuleSet, ruleMatches } from '../../../helper/decisions/index.js';
import { formatDuration } from '../../../helper/cli/ipc-format.js';
import { Duration, PromptAnswer } from '../../../helper/protocol/model.js';
import { domainPattern, matchForScope, ruleFromInput } from '../../../helper/protocol/rules.js';
import { proc, req } from '../decisions/fixtures.js';

describe('domainPattern', () => {
  it.each([
    ['api.example.com', '*.example.com'],
    ['www.api.example.com', '*.example.com'],
    ['API.Example.COM.', '*.example.com'],
    ['cdn.shop.example.co.uk', '*.example.co.uk'],
    ['example.com', null],
    ['example.co.uk', null],
    ['localhost', null],
    ['192.0.2.10', null],
    ['2001:db8::1', null],
  ])('%s gives %s', (host, expected) => {
    expect(domainPattern(host)).toBe(expected);
  });
});

describe('matchForScope: where and whom', () => {
  const r = req(); // curl, uid 1000, www.api.example.com (192.0.2.10) port 443 tcp
  const dest = { port: { from: 443, to: 443 }, protocol: 'tcp', direction: 'outbound' } as const;
  const app = { exe: '/usr/bin/curl', uid: 1000 } as const;

  it.each([
    ['domain', 'app', { ...app, host: '*.example.com', ...dest }],
    ['address', 'app', { ...app, address: '192.0.2.10', ...dest }],
    ['port', 'app', { ...app, ...dest }],
    ['any', 'app', { ...app, direction: 'outbound' }],
    ['destination', 'user', { uid: 1000, host: 'www.api.example.com', ...dest }],
    ['domain', 'anyone', { host: '*.example.com', ...dest }],
    ['any', 'anyone', { direction: 'outbound' }],
  ] as const)('%s for %s', (scope, who, expected) => {
    const m = matchForScope(r, scope, who);
    expect(m).toEqual(expected);
    expect(ruleMatches(m, r)).toBe(true);
  });

  it('*.domain covers sibling names, not the apex or another domain', () => {
    const m = matchForScope(r, 'domain');
    expect(ruleMatches(m, req({ host: 'cdn.example.com', dst: '192.0.2.99' }))).toBe(true);
    expect(ruleMatches(m, req({ host: 'example.com' }))).toBe(false);
    expect(ruleMatches(m, req({ host: 'api.example.org' }))).toBe(false);
  });

  it('*.domain of a host without a parent keeps the host exactly; without a host, the address', () => {
    expect(matchForScope(req({ host: 'example.com' }), 'domain').host).toBe('example.com');
    expect(matchForScope(req({ host: null }), 'domain')).toMatchObject({ address: '192.0.2.10' });
  });

  it('this user matches any app of the uid, and no other uid', () => {
    const m = matchForScope(r, 'port', 'user');
    const other = req({ process: proc({ exe: '/usr/bin/wget', comm: 'wget' }) });
    expect(ruleMatches(m, other)).toBe(true);
    expect(ruleMatches(m, req({ uid: 1001, process: proc({ uid: 1001 }) }))).toBe(false);
    expect(ruleMatches(matchForScope(r, 'port', 'anyone'), req({ uid: 1001 }))).toBe(true);
  });

  it('without whom, an answer keeps the app and the uid as before', () => {
    expect(matchForScope(r, 'any')).toEqual(matchForScope(r, 'any', 'app'));
  });
});

describe('PromptAnswer and Duration validation', () => {
  const base = { promptId: 'p', action: 'allow', scope: 'destination' } as const;

  it('keeps answers from before scopes and whom valid', () => {
    const old = { ...base, duration: { kind: 'minutes', minutes: 5 } };
    expect(v.safeParse(PromptAnswer, old).success).toBe(true);
    expect(v.parse(PromptAnswer, old).who).toBeUndefined();
  });

  it('accepts the new scopes, whom and 30 seconds', () => {
    for (const scope of ['domain', 'address', 'port', 'any']) {
      for (const who of ['app', 'user', 'anyone']) {
        const a = { ...base, scope, who, duration: { kind: 'seconds', seconds: 30 } };
        expect(v.safeParse(PromptAnswer, a).success).toBe(true);
      }
    }
  });

  it.each([
    [{ ...base, scope: 'subnet', duration: { kind: 'once' } }],
    [{ ...base, who: 'group', duration: { kind: 'once' } }],
    [{ ...base, duration: { kind: 'seconds', seconds: 0 } }],
    [{ ...base, duration: { kind: 'seconds', seconds: 1.5 } }],
    [{ ...base, duration: { kind: 'seconds', seconds: 86401 } }],
    [{ ...base, duration: { kind: 'seconds' } }],
  ])('refuses %j', (answer) => {
    expect(v.safeParse(PromptAnswer, answer).success).toBe(false);
  });

  it('a 30 s rule lapses after 30 s and is shown with its deadline', () => {
    const duration = v.parse(Duration, { kind: 'seconds', seconds: 30 });
    const rule = ruleFromInput(
      { action: 'allow', match: matchForScope(req(), 'destination'), duration },
      'r1',
      10_000,
    );
    expect(rule.expires).toBe(40_000);
    const set = new RuleSet({ isAlive: () => true });
    set.add(rule);
    expect(set.lookup(req(), 39_999)?.id).toBe('r1');
    expect(set.lookup(req(), 40_000)).toBeUndefined();
    expect(formatDuration(duration, null)).toBe('30s');
    expect(formatDuration(duration, 40_000)).toBe(`until ${new Date(40_000).toISOString()}`);
  });
});
