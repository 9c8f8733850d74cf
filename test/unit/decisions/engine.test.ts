import { beforeEach, describe, expect, it } from 'vitest';
import {
  DecisionEngine,
  DecisionsError,
  PromptBroker,
  RuleSet,
  type RuleMatcher,
  type RuleSink,
} from '../../../helper/decisions/index.js';
import type { RuleInput } from '../../../helper/protocol/model.js';
import { ManualClock, req, rule } from './fixtures.js';

let clock: ManualClock;
let set: RuleSet;
let sink: RuleSink;

beforeEach(() => {
  clock = new ManualClock();
  set = new RuleSet({ isAlive: () => true });
  sink = {
    insert: (input: RuleInput) => {
      const r = rule(input.match, { action: input.action, duration: input.duration });
      set.add(r);
      return { rule: r, saved: Promise.resolve() };
    },
    match: (request, now = clock.now()) => set.lookup(request, now),
  };
});

function engine(rules: RuleMatcher = sink, gui = true) {
  let n = 0;
  const broker = new PromptBroker({
    rules: sink,
    clock,
    guiConnected: gui,
    settings: { defaultAction: 'deny', promptTimeoutSeconds: 30, noGuiPolicy: 'allow' },
    newId: () => `p${n++}`,
  });
  return { broker, engine: new DecisionEngine({ rules, broker, clock }) };
}

describe('DecisionEngine', () => {
  it('a matching rule decides at once', async () => {
    const r = rule({ host: '*.example.com' }, { action: 'deny' });
    set.add(r);
    const { engine: e } = engine();
    expect(await e.decide(req(), { deadline: clock.now() + 1000 })).toEqual({
      action: 'deny',
      reason: 'rule',
      ruleId: r.id,
    });
    expect(e.counters.byRule).toBe(1);
  });

  it("a deny rule's drop choice goes with its decision (and the default refuses)", async () => {
    const r = { ...rule({ host: '*.example.com' }, { action: 'deny' }), denyWith: 'drop' as const };
    set.add(r);
    const { engine: e } = engine();
    expect(await e.decide(req(), { deadline: clock.now() + 1000 })).toEqual({
      action: 'deny',
      denyWith: 'drop',
      reason: 'rule',
      ruleId: r.id,
    });
    const other = await e.decide(req({ host: 'other.test' }), { deadline: clock.now() });
    expect(other).toEqual({ action: 'deny', reason: 'deadline', ruleId: null });
  });

  it('no rule: the prompt decides', async () => {
    const { engine: e, broker } = engine();
    const d = e.decide(req(), { deadline: clock.now() + 60_000 });
    broker.answer({ promptId: 'p0', action: 'allow', duration: { kind: 'once' }, scope: 'any' });
    expect(await d).toEqual({ action: 'allow', reason: 'prompt', ruleId: null });
  });

  it('abandon(): the request leaves its prompt and gets the default, reason deadline', async () => {
    const { engine: e, broker } = engine();
    const request = req();
    const d = e.decide(request, { deadline: clock.now() + 2_000 });
    expect(broker.pending()[0]!.held).toBe(1);
    e.abandon(request);
    expect(await d).toEqual({ action: 'deny', reason: 'deadline', ruleId: null });
    expect(e.counters.deadline).toBe(1);
    // The prompt stays (the app will retry), with nothing held.
    expect(broker.pending()[0]!.held).toBe(0);
    // A second abandon, or one for a request never held, changes nothing.
    e.abandon(request);
    e.abandon(req({ dport: 9 }));
    expect(e.counters.deadline).toBe(1);
  });

  it('the engine keeps no deadline of its own: an unanswered prompt holds until abandoned', async () => {
    const { engine: e, broker } = engine();
    const request = req();
    let settled = false;
    void e.decide(request, { deadline: clock.now() + 2_000 }).then(() => (settled = true));
    clock.advance(2_500);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    expect(broker.pending()[0]!.held).toBe(1);
    e.abandon(request);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(true);
  });

  it('a deadline already past: decided at once', async () => {
    const { engine: e, broker } = engine();
    expect(await e.decide(req(), { deadline: clock.now() })).toMatchObject({ reason: 'deadline' });
    expect(broker.pending()).toEqual([]);
  });

  it('a failing matcher gives the default with reason error, reported', async () => {
    const boom: RuleMatcher = {
      match: () => {
        throw new Error('index broken');
      },
    };
    const { engine: e } = engine(boom);
    const errors: DecisionsError[] = [];
    e.onError((err) => errors.push(err));
    expect(await e.decide(req(), { deadline: clock.now() + 10 })).toEqual({
      action: 'deny',
      reason: 'error',
      ruleId: null,
    });
    expect(errors).toHaveLength(1);
  });

  it('settings change at run time and are validated', async () => {
    const { engine: e } = engine(sink, false);
    expect(await e.decide(req(), { deadline: clock.now() + 10 })).toMatchObject({
      action: 'allow',
      reason: 'no-gui',
    });
    e.setSettings({ noGuiPolicy: 'deny', defaultAction: 'allow' });
    expect(e.settings).toMatchObject({ noGuiPolicy: 'deny', defaultAction: 'allow' });
    expect(await e.decide(req(), { deadline: clock.now() + 10 })).toMatchObject({ action: 'deny' });
    expect(() => e.setSettings({ promptTimeoutSeconds: 0 })).toThrow(DecisionsError);
  });

  it('abandoned requests leave their prompts; the others still get the answer', async () => {
    const { engine: e, broker } = engine();
    const requests = Array.from({ length: 50 }, (_, i) => req({ dport: i % 5 }));
    const results = requests.map((r) => e.decide(r, { deadline: clock.now() + 30_000 }));
    requests.forEach((r, i) => {
      if (i % 2 === 0) e.abandon(r);
    });
    expect(broker.pending().reduce((n, p) => n + p.held, 0)).toBe(25);
    for (const p of broker.pending()) {
      broker.answer({ promptId: p.id, action: 'allow', duration: { kind: 'once' }, scope: 'any' });
    }
    const decided = await Promise.all(results);
    decided.forEach((d, i) => {
      expect(d.reason).toBe(i % 2 === 0 ? 'deadline' : 'prompt');
      expect(d.action).toBe(i % 2 === 0 ? 'deny' : 'allow');
    });
    expect(e.counters.deadline).toBe(25);
  });
});
