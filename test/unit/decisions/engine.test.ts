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

  it('no rule: the prompt decides', async () => {
    const { engine: e, broker } = engine();
    const d = e.decide(req(), { deadline: clock.now() + 60_000 });
    broker.answer({ promptId: 'p0', action: 'allow', duration: { kind: 'once' }, scope: 'any' });
    expect(await d).toEqual({ action: 'allow', reason: 'prompt', ruleId: null });
  });

  it('gives the default with reason deadline when the deadline comes first', async () => {
    const { engine: e, broker } = engine();
    const d = e.decide(req(), { deadline: clock.now() + 2_000 });
    expect(broker.pending()[0]!.held).toBe(1);
    clock.advance(2_000);
    expect(await d).toEqual({ action: 'deny', reason: 'deadline', ruleId: null });
    expect(e.counters.deadline).toBe(1);
    // The prompt stays (the app will retry), with nothing held.
    expect(broker.pending()[0]!.held).toBe(0);
  });

  it('honours the margin before the deadline', async () => {
    const { broker } = engine();
    const e = new DecisionEngine({ rules: sink, broker, clock, deadlineMarginMs: 500 });
    const d = e.decide(req(), { deadline: clock.now() + 2_000 });
    clock.advance(1_500);
    expect(await d).toMatchObject({ reason: 'deadline' });
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

  it('every decision arrives by its deadline (many prompts, random deadlines)', async () => {
    const { engine: e } = engine();
    const started = clock.now();
    const results = Array.from({ length: 50 }, (_, i) => {
      const deadline = started + 100 + ((i * 7919) % 5000);
      const out = { deadline, at: -1, reason: '' };
      void e.decide(req({ dport: i % 5 }), { deadline }).then((d) => {
        out.at = clock.now();
        out.reason = d.reason;
      });
      return out;
    });
    // Step from deadline to deadline, letting settled promises report in between.
    for (const t of [...new Set(results.map((r) => r.deadline))].sort((a, b) => a - b)) {
      clock.advance(t - clock.now());
      await new Promise((r) => setImmediate(r));
    }
    for (const r of results) {
      expect(r.at).toBe(r.deadline);
      expect(r.reason).toBe('deadline');
    }
  });
});
