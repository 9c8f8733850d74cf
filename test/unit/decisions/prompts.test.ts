import { beforeEach, describe, expect, it } from 'vitest';
import {
  DecisionsError,
  PromptBroker,
  RuleSet,
  matchForScope,
  ruleMatches,
  type Decision,
  type PromptBrokerOptions,
  type PromptResolution,
  type RuleSink,
} from '../../../helper/decisions/index.js';
import type { Prompt, Rule, RuleInput } from '../../../helper/protocol/model.js';
import { ManualClock, proc, req } from './fixtures.js';

/** An in-memory RuleSink over a real RuleSet. */
class MemoryRules implements RuleSink {
  readonly set = new RuleSet({ isAlive: () => true });
  readonly inserted: Rule[] = [];
  #n = 0;
  constructor(private readonly clock: ManualClock) {}
  insert(input: RuleInput): { rule: Rule; saved: Promise<void> } {
    const rule: Rule = {
      id: `rule${this.#n++}`,
      enabled: true,
      action: input.action,
      ...(input.denyWith ? { denyWith: input.denyWith } : {}),
      match: input.match,
      duration: input.duration,
      created: this.clock.now(),
      expires: null,
      hits: 0,
      lastHit: null,
    };
    this.set.add(rule);
    this.inserted.push(rule);
    return { rule, saved: Promise.resolve() };
  }
  match(request: Parameters<RuleSink['match']>[0], now = this.clock.now()): Rule | undefined {
    return this.set.lookup(request, now);
  }
}

let clock: ManualClock;
let rules: MemoryRules;
let events: string[];

function broker(over: Partial<PromptBrokerOptions> = {}): PromptBroker {
  let n = 0;
  const b = new PromptBroker({
    rules,
    clock,
    guiConnected: true,
    settings: { defaultAction: 'deny', promptTimeoutSeconds: 30, noGuiPolicy: 'allow' },
    newId: () => `p${n++}`,
    ...over,
  });
  b.on('added', (p: Prompt) => events.push(`added ${p.id} held=${p.held}`));
  b.on('updated', (p: Prompt) => events.push(`updated ${p.id} held=${p.held}`));
  b.on('resolved', (r: PromptResolution) =>
    events.push(
      `resolved ${r.prompt.id} ${r.decision.action}/${r.decision.reason} released=${r.released}`,
    ),
  );
  return b;
}

/** Resolves a pending promise's state without waiting on timers. */
async function state(p: Promise<Decision>): Promise<Decision | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);
}

beforeEach(() => {
  clock = new ManualClock();
  rules = new MemoryRules(clock);
  events = [];
});

describe('coalescing', () => {
  it('a burst from one app to one destination is one prompt; the answer releases all', async () => {
    const b = broker();
    const held = [0, 1, 2].map((i) => b.ask(req({ sport: 40000 + i })));
    expect(b.pending()).toHaveLength(1);
    expect(b.pending()[0]!.held).toBe(3);
    const { decision, rule } = b.answer({
      promptId: 'p0',
      action: 'allow',
      duration: { kind: 'forever' },
      scope: 'destination',
    });
    expect(decision).toEqual({ action: 'allow', reason: 'prompt', ruleId: rule!.id });
    for (const h of held) expect(await h.decision).toEqual(decision);
    expect(events).toEqual([
      'added p0 held=1',
      'updated p0 held=2',
      'updated p0 held=3',
      'resolved p0 allow/prompt released=3',
    ]);
    expect(b.pending()).toEqual([]);
  });

  it.each([
    ['another app', req({ process: proc({ exe: '/usr/bin/wget' }) })],
    ['another uid', req({ uid: 0 })],
    ['another host', req({ host: 'other.example.com' })],
    ['another port', req({ dport: 80 })],
    ['another protocol', req({ protocol: 'udp', protocolNumber: 17 })],
    ['another direction', req({ direction: 'inbound', src: '192.0.2.10', dst: '10.0.0.2' })],
    ['no host: another address', req({ host: null, dst: '192.0.2.11' })],
  ])('%s is a separate prompt', (_n, other) => {
    const b = broker();
    b.ask(req());
    b.ask(other);
    expect(b.pending()).toHaveLength(2);
  });

  it('same host through another address is the same prompt', () => {
    const b = broker();
    b.ask(req());
    b.ask(req({ dst: '192.0.2.99', host: 'WWW.api.example.com.' }));
    expect(b.pending()).toHaveLength(1);
  });
});

describe('answers', () => {
  it('the first answer wins; later ones get ALREADY_RESOLVED, unknown ids NOT_FOUND', async () => {
    const b = broker();
    const h = b.ask(req());
    b.answer({ promptId: 'p0', action: 'deny', duration: { kind: 'once' }, scope: 'destination' });
    const again = () =>
      b.answer({
        promptId: 'p0',
        action: 'allow',
        duration: { kind: 'once' },
        scope: 'destination',
      });
    expect(again).toThrow(DecisionsError);
    expect(() => again()).toThrow(expect.objectContaining({ code: 'ALREADY_RESOLVED' }));
    expect(() =>
      b.answer({ promptId: 'zzz', action: 'allow', duration: { kind: 'once' }, scope: 'any' }),
    ).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(await h.decision).toEqual({ action: 'deny', reason: 'prompt', ruleId: null });
  });

  it('deny with drop: the decision, the rule it creates and what that rule decides drop silently', async () => {
    const b = broker();
    const first = b.ask(req());
    const otherPort = b.ask(req({ sport: 40001 }));
    const { rule, decision } = b.answer({
      promptId: 'p0',
      action: 'deny',
      denyWith: 'drop',
      duration: { kind: 'session' },
      scope: 'destination',
    });
    expect(decision).toEqual({
      action: 'deny',
      denyWith: 'drop',
      reason: 'prompt',
      ruleId: rule!.id,
    });
    expect(rule!.denyWith).toBe('drop');
    expect(await first.decision).toEqual(decision);
    expect(await otherPort.decision).toEqual(decision);
    b.ask(req({ host: 'other.example', dst: '198.51.100.9' }));
    const plain = b.answer({
      promptId: 'p1',
      action: 'deny',
      duration: { kind: 'once' },
      scope: 'any',
    });
    // Without the choice a deny refuses (the default reject): no denyWith at all.
    expect(plain.decision).toEqual({ action: 'deny', reason: 'prompt', ruleId: null });
  });

  it('"once" creates no rule; the next connection prompts again', () => {
    const b = broker();
    b.ask(req());
    b.answer({ promptId: 'p0', action: 'allow', duration: { kind: 'once' }, scope: 'destination' });
    expect(rules.inserted).toEqual([]);
    b.ask(req());
    expect(b.pending().map((p) => p.id)).toEqual(['p1']);
  });

  it('a remembered answer resolves the other prompts it now matches', async () => {
    const b = broker();
    const same = b.ask(req());
    const otherHost = b.ask(req({ host: 'cdn.example.net', dst: '198.51.100.1' }));
    const otherApp = b.ask(req({ process: proc({ exe: '/usr/bin/wget' }) }));
    const { rule } = b.answer({
      promptId: 'p0',
      action: 'allow',
      duration: { kind: 'session' },
      scope: 'port',
    });
    expect(rule!.match).toEqual({
      exe: '/usr/bin/curl',
      uid: 1000,
      port: { from: 443, to: 443 },
      protocol: 'tcp',
      direction: 'outbound',
    });
    expect((await same.decision).action).toBe('allow');
    expect(await otherHost.decision).toEqual({ action: 'allow', reason: 'rule', ruleId: rule!.id });
    expect(await state(otherApp.decision)).toBe('pending');
    expect(b.pending().map((p) => p.id)).toEqual(['p2']);
  });

  it('an edited match overrides the scope; a bad one is refused and the prompt stays', () => {
    const b = broker();
    b.ask(req());
    expect(() =>
      b.answer({
        promptId: 'p0',
        action: 'deny',
        duration: { kind: 'forever' },
        scope: 'any',
        match: { address: '10.0.0.0/99' },
      }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_RULE' }));
    expect(b.pending()).toHaveLength(1);
    const { rule } = b.answer({
      promptId: 'p0',
      action: 'deny',
      duration: { kind: 'forever' },
      scope: 'any',
      match: { host: '*.example.com' },
    });
    expect(rule!.match).toEqual({ host: '*.example.com' });
  });

  it('reports a rule that fails to save through the error event', async () => {
    const failing: RuleSink = {
      insert: (input) => ({
        ...rules.insert(input),
        saved: Promise.reject(new DecisionsError('IO', 'disk full')),
      }),
      match: (r, now) => rules.match(r, now),
    };
    const b = broker({ rules: failing });
    const errors: string[] = [];
    b.on('error', (e) => errors.push(e.code));
    b.ask(req());
    b.answer({ promptId: 'p0', action: 'allow', duration: { kind: 'forever' }, scope: 'any' });
    await new Promise((r) => setImmediate(r));
    expect(errors).toEqual(['IO']);
  });
});

describe('answers with where and whom', () => {
  it('*.domain for any app of this user saves that rule and settles a sibling name at once', async () => {
    const b = broker();
    b.ask(req());
    const sibling = b.ask(req({ host: 'cdn.example.com', dst: '192.0.2.99' }));
    const { rule } = b.answer({
      promptId: 'p0',
      action: 'allow',
      duration: { kind: 'minutes', minutes: 5 },
      scope: 'domain',
      who: 'user',
    });
    expect(rule!.match).toEqual({
      uid: 1000,
      host: '*.example.com',
      port: { from: 443, to: 443 },
      protocol: 'tcp',
      direction: 'outbound',
    });
    expect(await sibling.decision).toMatchObject({ action: 'allow', reason: 'rule' });
  });

  it('refuses an unknown whom with INVALID_RULE and keeps the prompt', () => {
    const b = broker();
    b.ask(req());
    const bad = { promptId: 'p0', action: 'allow', duration: { kind: 'forever' }, scope: 'any' };
    expect(() => b.answer({ ...bad, who: 'group' } as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_RULE' }),
    );
    expect(b.pending()).toHaveLength(1);
  });
});

describe('matchForScope', () => {
  it.each([
    [
      'destination',
      {
        exe: '/usr/bin/curl',
        uid: 1000,
        host: 'www.api.example.com',
        port: { from: 443, to: 443 },
        protocol: 'tcp',
        direction: 'outbound',
      },
    ],
    [
      'port',
      {
        exe: '/usr/bin/curl',
        uid: 1000,
        port: { from: 443, to: 443 },
        protocol: 'tcp',
        direction: 'outbound',
      },
    ],
    ['any', { exe: '/usr/bin/curl', uid: 1000, direction: 'outbound' }],
  ] as const)('%s', (scope, expected) => {
    expect(matchForScope(req(), scope)).toEqual(expected);
    expect(ruleMatches(matchForScope(req(), scope), req())).toBe(true);
  });

  it('uses the app id for sandboxed apps and the address without a host', () => {
    const r = req({ host: null, process: proc({ appId: 'org.example.App' }) });
    expect(matchForScope(r, 'destination')).toMatchObject({
      appId: 'org.example.App',
      address: '192.0.2.10',
    });
    expect(matchForScope(r, 'destination').exe).toBeUndefined();
  });
});

describe('nobody answers', () => {
  it('times out to the default action (reason default)', async () => {
    const b = broker();
    const h = b.ask(req());
    expect(b.pending()[0]).toMatchObject({ deadline: clock.now() + 30_000, defaultAction: 'deny' });
    clock.advance(29_999);
    expect(await state(h.decision)).toBe('pending');
    clock.advance(1);
    expect(await h.decision).toEqual({ action: 'deny', reason: 'default', ruleId: null });
    expect(b.counters.timedOut).toBe(1);
    expect(() =>
      b.answer({ promptId: 'p0', action: 'allow', duration: { kind: 'once' }, scope: 'any' }),
    ).toThrow(expect.objectContaining({ code: 'ALREADY_RESOLVED' }));
  });

  it('no GUI: the no-GUI policy at once, no prompt', async () => {
    const b = broker({ guiConnected: false });
    expect(await b.ask(req()).decision).toEqual({
      action: 'allow',
      reason: 'no-gui',
      ruleId: null,
    });
    expect(b.pending()).toEqual([]);
    expect(b.counters.noGui).toBe(1);
  });

  it('the last GUI leaving resolves open prompts with the no-GUI policy', async () => {
    const b = broker();
    const h = b.ask(req());
    b.setGuiConnected(false);
    expect(await h.decision).toMatchObject({ action: 'allow', reason: 'no-gui' });
    expect(clock.pending).toBe(0);
  });

  it('new settings apply to new prompts only', async () => {
    const b = broker();
    const first = b.ask(req());
    b.setSettings({ defaultAction: 'allow', promptTimeoutSeconds: 5 });
    const second = b.ask(req({ dport: 80 }));
    clock.advance(5_000);
    expect(await second.decision).toMatchObject({ action: 'allow', reason: 'default' });
    expect(await state(first.decision)).toBe('pending');
    clock.advance(25_000);
    expect(await first.decision).toMatchObject({ action: 'deny', reason: 'default' });
  });

  it('settings owned elsewhere: read at each use, never copied; setSettings is refused', async () => {
    let owned = {
      defaultAction: 'deny' as const,
      promptTimeoutSeconds: 30,
      noGuiPolicy: 'allow' as const,
    };
    const b = broker({ settings: () => owned });
    const first = b.ask(req());
    owned = { defaultAction: 'allow', promptTimeoutSeconds: 5, noGuiPolicy: 'deny' } as never;
    expect(b.settings).toBe(owned);
    const second = b.ask(req({ dport: 80 }));
    clock.advance(5_000);
    expect(await second.decision).toMatchObject({ action: 'allow', reason: 'default' });
    expect(await state(first.decision)).toBe('pending');
    b.setGuiConnected(false);
    expect(await first.decision).toMatchObject({ action: 'deny', reason: 'no-gui' });
    expect(() => b.setSettings({ defaultAction: 'deny' })).toThrow(
      expect.objectContaining({ code: 'READ_ONLY' }),
    );
  });

  it('close releases everything with the default', async () => {
    const b = broker();
    const h = b.ask(req());
    b.close();
    expect(await h.decision).toMatchObject({ action: 'deny', reason: 'default' });
    expect(await b.ask(req()).decision).toMatchObject({ reason: 'default' });
  });
});

describe('retries of a program told no', () => {
  it('a deny-once answer answers the same app and destination for 30 s, without a prompt', async () => {
    const b = broker();
    b.ask(req());
    b.answer({ promptId: 'p0', action: 'deny', duration: { kind: 'once' }, scope: 'any' });
    clock.advance(29_999);
    // The program tries again (a new connection, another source port).
    expect(await b.ask(req({ sport: 40001 })).decision).toEqual({
      action: 'deny',
      reason: 'prompt',
      ruleId: null,
    });
    expect(b.pending()).toEqual([]);
    expect(b.counters.remembered).toBe(1);
    // Another destination, or the same one later, is asked again.
    b.ask(req({ dport: 444 }));
    expect(b.pending()).toHaveLength(1);
    clock.advance(1);
    b.ask(req({ sport: 40002 }));
    expect(b.pending()).toHaveLength(2);
  });

  it('a timed-out prompt is remembered too; an allow once is not', async () => {
    const b = broker();
    b.ask(req());
    clock.advance(30_000);
    expect(await b.ask(req({ sport: 40001 })).decision).toEqual({
      action: 'deny',
      reason: 'default',
      ruleId: null,
    });
    const other = req({ dport: 8443 });
    b.ask(other);
    const id = b.pending()[0]!.id;
    b.answer({ promptId: id, action: 'allow', duration: { kind: 'once' }, scope: 'any' });
    b.ask(req({ dport: 8443, sport: 40003 }));
    expect(b.pending()).toHaveLength(1);
  });

  it('recentAnswerMs 0 remembers nothing', async () => {
    const b = broker({ recentAnswerMs: 0 });
    b.ask(req());
    b.answer({ promptId: 'p0', action: 'deny', duration: { kind: 'once' }, scope: 'any' });
    b.ask(req({ sport: 40001 }));
    expect(b.pending()).toHaveLength(1);
    expect(b.counters.remembered).toBe(0);
  });
});

describe('bounds', () => {
  it('beyond maxPending prompts: the default at once, counted', async () => {
    const b = broker({ maxPending: 2 });
    b.ask(req({ dport: 1 }));
    b.ask(req({ dport: 2 }));
    expect(await b.ask(req({ dport: 3 })).decision).toEqual({
      action: 'deny',
      reason: 'default',
      ruleId: null,
    });
    expect(b.counters.pendingOverflow).toBe(1);
    // Joining an existing prompt is still fine.
    b.ask(req({ dport: 1 }));
    expect(b.pending()[0]!.held).toBe(2);
  });

  it('beyond maxHeldPerPrompt connections: the default at once, counted', async () => {
    const b = broker({ maxHeldPerPrompt: 2 });
    b.ask(req());
    b.ask(req());
    expect(await b.ask(req()).decision).toMatchObject({ reason: 'default' });
    expect(b.counters.heldOverflow).toBe(1);
    expect(b.pending()[0]!.held).toBe(2);
  });

  it('cancel lowers held and keeps the prompt', async () => {
    const b = broker();
    const a = b.ask(req());
    b.ask(req());
    a.cancel();
    a.cancel();
    expect(b.pending()[0]!.held).toBe(1);
    b.answer({ promptId: 'p0', action: 'allow', duration: { kind: 'once' }, scope: 'any' });
    expect(events.at(-1)).toBe('resolved p0 allow/prompt released=1');
    expect(await state(a.decision)).toBe('pending');
  });
});
