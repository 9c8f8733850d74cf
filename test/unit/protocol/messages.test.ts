import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  ClientFrame,
  FlowsEvent,
  MAX_PAGE,
  PROTOCOL_VERSION,
  PromptsEvent,
  ServerFrame,
  methods,
  topics,
  type MethodName,
} from '../../../helper/protocol/messages.js';
import type { Rule } from '../../../helper/protocol/model.js';
import {
  SETTINGS,
  makeFlow,
  makeHistoryEntry,
  makeStats,
} from '../../support/fake-helper-service.js';

const rule: Rule = {
  id: 'r1',
  enabled: true,
  action: 'allow',
  match: { exe: '/usr/bin/curl', port: { from: 443, to: 443 } },
  duration: { kind: 'forever' },
  created: 1,
  expires: null,
  hits: 0,
  lastHit: null,
};
const ruleInput = {
  action: 'deny',
  match: { host: '*.example.com' },
  duration: { kind: 'session' },
};
const entry = makeHistoryEntry(3);
const state = {
  version: '1',
  pid: 1,
  startedAt: 1,
  netns: null,
  firewallBackend: 'nft',
  queue: 0,
  settings: SETTINGS,
  clients: 0,
  pendingPrompts: 0,
  rules: 0,
};
const prompt = {
  id: 'p1',
  created: 1,
  deadline: 2,
  defaultAction: 'deny',
  request: entry.request,
  held: 2,
};

/** For each method: params that pass, params that fail, a result that passes, one that fails. */
const cases: Record<
  MethodName,
  { ok: unknown[]; bad: unknown[]; result: unknown; badResult: unknown }
> = {
  'state.get': {
    ok: [undefined, {}],
    bad: [1, 'x'],
    result: state,
    badResult: { ...state, pid: -1 },
  },
  'settings.get': {
    ok: [{}],
    bad: ['x', 3],
    result: SETTINGS,
    badResult: { defaultAction: 'maybe' },
  },
  'settings.set': {
    ok: [{}, { defaultAction: 'allow' }, { promptTimeoutSeconds: 600 }],
    bad: [{ promptTimeoutSeconds: 0 }, { failOpen: 'yes' }],
    result: SETTINGS,
    badResult: null,
  },
  subscribe: {
    ok: [{ topics: [] }, { topics: ['flows', 'prompts', 'verdicts', 'stats', 'state'] }],
    bad: [{ topics: ['dropped'] }, { topics: ['nope'] }, {}],
    result: { topics: ['flows'] },
    badResult: { topics: ['x'] },
  },
  unsubscribe: {
    ok: [{ topics: ['stats'] }],
    bad: [{ topics: 'stats' }],
    result: { topics: [] },
    badResult: {},
  },
  'flows.kill': {
    ok: [{ id: 7 }],
    bad: [{ id: -1 }, { id: 2 ** 32 }, {}],
    result: null,
    badResult: {},
  },
  'flows.setMark': {
    ok: [
      { id: 1, mark: 0xffffffff },
      { id: 1, mark: 1, mask: 0xff },
    ],
    bad: [{ id: 1 }, { id: 1, mark: 1.5 }],
    result: null,
    badResult: 1,
  },
  'flows.setLabels': {
    ok: [{ id: 1, add: [0, 127], remove: [] }],
    bad: [
      { id: 1, add: [128], remove: [] },
      { id: 1, add: [] },
    ],
    result: null,
    badResult: 'x',
  },
  'prompts.list': { ok: [{}], bad: [null], result: [prompt], badResult: [{ ...prompt, held: -1 }] },
  'prompts.answer': {
    ok: [{ promptId: 'p1', action: 'allow', duration: { kind: 'once' }, scope: 'destination' }],
    bad: [
      { promptId: '', action: 'allow', duration: { kind: 'once' }, scope: 'destination' },
      { promptId: 'p', action: 'allow', duration: { kind: 'minutes', minutes: 0 }, scope: 'any' },
      { promptId: 'p', action: 'allow', duration: { kind: 'once' }, scope: 'everything' },
    ],
    result: { decided: 3, rule },
    badResult: { decided: 3 },
  },
  'rules.list': {
    ok: [undefined, {}, { offset: 10, limit: MAX_PAGE }],
    bad: [{ limit: 0 }, { limit: MAX_PAGE + 1 }, { offset: -1 }],
    result: { rules: [rule], total: 1 },
    badResult: { rules: [{ ...rule, id: 'has space' }], total: 1 },
  },
  'rules.add': {
    ok: [
      ruleInput,
      { ...ruleInput, match: { address: '2001:db8::/32', port: { from: 1, to: 2 } } },
    ],
    bad: [
      { ...ruleInput, action: 'maybe' },
      { ...ruleInput, match: { port: { from: 2, to: 1 } } },
      { ...ruleInput, match: { address: 'not an address' } },
    ],
    result: rule,
    badResult: { ...rule, hits: -1 },
  },
  'rules.update': {
    ok: [
      { id: 'r1', patch: {} },
      { id: 'r1', patch: { action: 'deny' } },
    ],
    bad: [
      { id: 'r 1', patch: {} },
      { id: 'r1', patch: { action: 1 } },
    ],
    result: rule,
    badResult: {},
  },
  'rules.remove': {
    ok: [{ id: 'abc_-1' }],
    bad: [{ id: '' }, { id: 'a/b' }],
    result: null,
    badResult: {},
  },
  'rules.setEnabled': {
    ok: [{ id: 'r1', enabled: false }],
    bad: [{ id: 'r1', enabled: 'no' }],
    result: rule,
    badResult: null,
  },
  'rules.import': {
    ok: [
      { rules: [ruleInput], mode: 'merge' },
      { rules: [], mode: 'replace' },
    ],
    bad: [
      { rules: [ruleInput], mode: 'append' },
      { rules: Array.from({ length: MAX_PAGE + 1 }, () => ruleInput), mode: 'merge' },
    ],
    result: { added: 1, removed: 0, skipped: 0 },
    badResult: { added: 1 },
  },
  'rules.importBegin': {
    ok: [undefined, {}, { total: 2000 }],
    bad: [{ total: -1 }, 'x'],
    result: { staging: 's1', maxRules: 20000 },
    badResult: { staging: '', maxRules: 1 },
  },
  'rules.importPage': {
    // The rules themselves are checked by the helper, which names them by position.
    ok: [{ staging: 's1', offset: 0, rules: [ruleInput, { action: 'x' }] }],
    bad: [
      { staging: 's1', rules: [] },
      { staging: 's1', offset: 0, rules: Array.from({ length: MAX_PAGE + 1 }, () => ruleInput) },
    ],
    result: { staged: 2 },
    badResult: { staged: -2 },
  },
  'rules.importCommit': {
    ok: [{ staging: 's1', mode: 'replace' }],
    bad: [{ staging: 's1', mode: 'append' }, { mode: 'merge' }],
    result: { added: 1, skipped: 3, removed: 0 },
    badResult: { added: 1, removed: 0 },
  },
  'rules.importAbort': {
    ok: [{ staging: 's1' }],
    bad: [{}],
    result: null,
    badResult: {},
  },
  'rules.export': {
    ok: [{}, { offset: 0, limit: 5 }],
    bad: [{ limit: 'all' }],
    result: { rules: [ruleInput], total: 1 },
    badResult: { rules: [rule.match], total: 1 },
  },
  'rules.dryRun': {
    ok: [{ match: {} }, { match: { host: 'x.org' }, since: 1, until: 2, limit: 10 }],
    bad: [{ match: { host: 'x.org' }, since: 3, until: 2 }, { match: { uid: -1 } }, {}],
    result: { entries: [entry], total: 1 },
    badResult: { entries: [{ ...entry, action: 'maybe' }], total: 1 },
  },
  'history.query': {
    ok: [
      { limit: 1 },
      { limit: 50, since: 1, until: 1, text: 'curl', action: 'deny', beforeSeq: 9 },
    ],
    bad: [{}, { limit: 0 }, { limit: 5, since: 2, until: 1 }, { limit: 5, text: 'x'.repeat(300) }],
    result: { entries: [entry], more: false },
    badResult: { entries: [entry] },
  },
  'history.series': {
    ok: [{ since: 0, until: 60_000, bucketMs: 1000 }],
    bad: [
      { since: 5, until: 5, bucketMs: 1000 },
      { since: 0, until: 10_000_000_000, bucketMs: 1000 },
      { since: 0, until: 1000, bucketMs: 10 },
    ],
    result: { bucketMs: 1000, buckets: [{ start: 0, allowed: 1, denied: 0, prompted: 0 }] },
    badResult: { bucketMs: 1000, buckets: [{ start: 0 }] },
  },
  'stats.get': {
    ok: [{}],
    bad: [7],
    result: makeStats(1),
    badResult: { ...makeStats(1), allowed: 0.5 },
  },
};

describe('method catalogue', () => {
  it('has a test case for every method and no case for an unknown one', () => {
    expect(Object.keys(cases).sort()).toEqual(Object.keys(methods).sort());
  });

  for (const [name, c] of Object.entries(cases) as [MethodName, (typeof cases)[MethodName]][]) {
    it(`${name}: validates params and results`, () => {
      const spec = methods[name];
      for (const p of c.ok)
        expect(v.safeParse(spec.params, p).success, JSON.stringify(p)).toBe(true);
      for (const p of c.bad) {
        expect(v.safeParse(spec.params, p).success, JSON.stringify(p)?.slice(0, 80)).toBe(false);
      }
      expect(v.safeParse(spec.result, c.result).success).toBe(true);
      expect(v.safeParse(spec.result, c.badResult).success).toBe(false);
    });
  }

  it('applies paging defaults so the helper always gets numbers', () => {
    expect(v.parse(methods['rules.list'].params, undefined)).toEqual({
      offset: 0,
      limit: MAX_PAGE,
    });
    expect(v.parse(methods['rules.dryRun'].params, { match: {} }).limit).toBe(100);
  });
});

describe('frames and topics', () => {
  it('tells client frames apart and rejects unknown ones', () => {
    const hello = { type: 'hello', protocol: PROTOCOL_VERSION, build: 'x', token: 't' };
    expect(v.safeParse(ClientFrame, hello).success).toBe(true);
    expect(v.safeParse(ClientFrame, { ...hello, token: '' }).success).toBe(false);
    expect(v.safeParse(ClientFrame, { type: 'request', id: 1, method: 'x' }).success).toBe(true);
    expect(v.safeParse(ClientFrame, { type: 'request', id: -1, method: 'x' }).success).toBe(false);
    expect(v.safeParse(ClientFrame, { type: 'event', topic: 'x', data: 1 }).success).toBe(false);
  });

  it('tells server frames apart', () => {
    const ok = { type: 'response', id: 1, ok: true, result: null };
    const err = { type: 'response', id: 1, ok: false, error: { code: 'not-found', message: 'm' } };
    expect(v.safeParse(ServerFrame, ok).success).toBe(true);
    expect(v.safeParse(ServerFrame, err).success).toBe(true);
    expect(v.safeParse(ServerFrame, { ...err, error: { code: 'nope', message: '' } }).success).toBe(
      false,
    );
    expect(v.safeParse(ServerFrame, { type: 'error', error: err.error, fatal: true }).success).toBe(
      true,
    );
  });

  it('validates every topic payload', () => {
    const flow = makeFlow(1);
    expect(v.safeParse(FlowsEvent, { kind: 'snapshot-chunk', flows: [flow] }).success).toBe(true);
    expect(
      v.safeParse(FlowsEvent, { kind: 'delta', added: [], updated: [flow], removed: [1] }).success,
    ).toBe(true);
    expect(v.safeParse(FlowsEvent, { kind: 'delta', added: [] }).success).toBe(false);
    expect(v.safeParse(PromptsEvent, { kind: 'added', prompt }).success).toBe(true);
    expect(
      v.safeParse(PromptsEvent, { kind: 'resolved', id: 'p1', action: 'deny', reason: 'default' })
        .success,
    ).toBe(true);
    expect(v.safeParse(PromptsEvent, { kind: 'resolved', id: 'p1', action: 'deny' }).success).toBe(
      false,
    );
    expect(v.safeParse(topics.verdicts, entry).success).toBe(true);
    expect(v.safeParse(topics.stats, makeStats(1)).success).toBe(true);
    expect(v.safeParse(topics.state, state).success).toBe(true);
    expect(
      v.safeParse(topics.dropped, { topics: ['flows'], reason: 'slow-consumer', message: 'm' })
        .success,
    ).toBe(true);
  });
});
