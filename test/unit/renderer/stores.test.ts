// @vitest-environment happy-dom
import { createPinia, setActivePinia } from 'pinia';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { nextTick } from 'vue';
import { MemoryPortcullis } from '../../support/memory-api.js';
import { syntheticFlows } from '../../support/synthetic.js';
import {
  appendSample,
  emptySamples,
  useActivityStore,
} from '../../../src-renderer/src/stores/activity.js';
import { useFlowsStore } from '../../../src-renderer/src/stores/flows.js';
import { useHelperStore } from '../../../src-renderer/src/stores/helper.js';
import {
  coalesceKey,
  groupPrompts,
  toDuration,
  usePromptsStore,
} from '../../../src-renderer/src/stores/prompts.js';
import { parseRulesDocument, useRulesStore } from '../../../src-renderer/src/stores/rules.js';
import { sortOrder, type SortInput } from '../../../src-renderer/src/lib/flow-view.js';
import { prompt, request } from './fixtures.js';

const flushMicrotasks = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

beforeEach(() => setActivePinia(createPinia()));
afterEach(() => vi.useRealTimers());

const flowIds = (rows: ReturnType<typeof useFlowsStore>['rows']) =>
  rows.map((r) => (r.kind === 'flow' ? r.flow.id : -1));

describe('flows store', () => {
  it('takes a snapshot, then applies deltas by id', () => {
    const api = new MemoryPortcullis();
    api.upsertFlows(syntheticFlows(1000, 3));
    const store = useFlowsStore();
    store.attach(api);
    expect(store.count).toBe(1000);
    expect(store.rows).toHaveLength(1000);

    const f5 = api.flows.get(5)!;
    const v = store.version;
    api.upsertFlows([{ ...f5, bytesIn: 123_456_789 }], [6, 7, 99_999]);
    expect(store.version).toBe(v + 1);
    expect(store.count).toBe(998);
    expect(store.live(5)?.bytesIn).toBe(123_456_789);
    expect(store.live(6)).toBeUndefined();
  });

  it('re-sorts at a bounded rate on deltas but at once on view changes', async () => {
    vi.useFakeTimers();
    const api = new MemoryPortcullis();
    api.upsertFlows(syntheticFlows(2000, 4));
    const store = useFlowsStore();
    store.attach(api);
    store.sort = { key: 'bytesIn', direction: 'desc' };
    await nextTick();
    expect(flowIds(store.rows)[0]).not.toBe(1);

    // flow 1 becomes the biggest: the order follows only after the refresh interval
    api.upsertFlows([{ ...api.flows.get(1)!, bytesIn: Number.MAX_SAFE_INTEGER }]);
    api.upsertFlows([{ ...api.flows.get(2)!, bytesIn: Number.MAX_SAFE_INTEGER - 1 }]);
    expect(flowIds(store.rows)[0]).not.toBe(1);
    vi.advanceTimersByTime(10_000);
    expect(flowIds(store.rows).slice(0, 2)).toEqual([1, 2]);

    // a filter is the person's: applied on the next tick, no waiting
    store.filter.protocol = 'udp';
    await nextTick();
    expect(store.rows.every((r) => r.kind === 'flow' && r.flow.protocol === 'udp')).toBe(true);
    store.filter.protocol = '';
    store.groupByProcess = true;
    await nextTick();
    expect(store.rows[0]?.kind).toBe('group');
  });

  it('does not re-sort for updates that cannot move a row', async () => {
    vi.useFakeTimers();
    const api = new MemoryPortcullis();
    api.upsertFlows(syntheticFlows(300, 9));
    const store = useFlowsStore();
    store.attach(api);
    store.sort = { key: 'age', direction: 'asc' };
    await nextTick();
    const rows = store.rows;
    api.upsertFlows([{ ...api.flows.get(1)!, bytesIn: 1 }]); // a counter, not the sort key
    vi.advanceTimersByTime(10_000);
    expect(store.rows).toBe(rows);
    api.upsertFlows([{ ...api.flows.get(1)!, start: 0 }]); // the sort key: re-sorted
    vi.advanceTimersByTime(10_000);
    expect(store.rows).not.toBe(rows);
    expect(flowIds(store.rows).at(-1)).toBe(1);
  });

  it('sorts live deltas through an async sorter, dropping superseded replies', async () => {
    vi.useFakeTimers();
    const api = new MemoryPortcullis();
    api.upsertFlows(syntheticFlows(30_000, 10));
    const store = useFlowsStore();
    const requests: Array<{ input: SortInput; resolve: (o: Uint32Array | null) => void }> = [];
    store.setSorter({
      sort: (input) => new Promise((resolve) => requests.push({ input, resolve })),
      dispose: () => undefined,
    });
    store.attach(api);
    store.sort = { key: 'bytesOut', direction: 'desc' };
    await nextTick();
    expect(requests).toHaveLength(1); // the person's change goes to the worker too
    requests[0]!.resolve(sortOrder(requests[0]!.input));
    await flushMicrotasks();
    const top = Math.max(...[...api.flows.values()].map((f) => f.bytesOut ?? 0));
    expect(store.rows[0]?.kind === 'flow' && store.rows[0].flow.bytesOut).toBe(top);

    api.upsertFlows([{ ...api.flows.get(7)!, bytesOut: Number.MAX_SAFE_INTEGER }]);
    vi.advanceTimersByTime(10_000);
    expect(requests).toHaveLength(2);
    api.upsertFlows([{ ...api.flows.get(8)!, bytesOut: Number.MAX_SAFE_INTEGER }]);
    vi.advanceTimersByTime(10_000);
    expect(requests).toHaveLength(3);
    const before = store.rows;
    requests[1]!.resolve(sortOrder(requests[1]!.input)); // stale: dropped
    await flushMicrotasks();
    expect(store.rows).toBe(before);
    requests[2]!.resolve(sortOrder(requests[2]!.input));
    await flushMicrotasks();
    expect(flowIds(store.rows).slice(0, 2)).toEqual([7, 8]);
    expect(store.rows).toHaveLength(30_000);
  }, 30_000);

  it('freezing the order holds re-sorts until thawed', () => {
    vi.useFakeTimers();
    const api = new MemoryPortcullis();
    api.upsertFlows(syntheticFlows(100, 5));
    const store = useFlowsStore();
    store.attach(api);
    store.setPaused(true);
    api.removeFlows([1, 2, 3]);
    vi.advanceTimersByTime(10_000);
    expect(store.rows).toHaveLength(100);
    store.setPaused(false);
    expect(store.rows).toHaveLength(97);
  });

  it('sorts, filters and groups 100,000 flows', async () => {
    const api = new MemoryPortcullis();
    api.upsertFlows(syntheticFlows(100_000, 6));
    const store = useFlowsStore();
    store.attach(api);
    store.setSort('packetsOut');
    await nextTick();
    const first = store.rows[0];
    expect(first?.kind === 'flow' && first.flow.packetsOut).toBe(
      Math.min(...[...api.flows.values()].map((f) => f.packetsOut ?? -1)),
    );
    store.setSort('packetsOut'); // again: descending
    await nextTick();
    expect(store.sort.direction).toBe('desc');
    store.filter.process = 'ssh';
    store.groupByProcess = true;
    await nextTick();
    const want = [...api.flows.values()].filter((f) => f.process?.comm === 'ssh').length;
    expect(store.rows).toHaveLength(want + 1);
    expect(store.shown).toBe(want);
    store.toggleGroup('/usr/bin/ssh');
    await nextTick();
    expect(store.rows).toHaveLength(1);
  }, 30_000);

  it('kill, mark and labels go to the API', async () => {
    const api = new MemoryPortcullis();
    api.upsertFlows(syntheticFlows(10, 8));
    const store = useFlowsStore();
    store.attach(api);
    const kill = vi.spyOn(api, 'killFlow');
    await store.kill(3);
    expect(kill).toHaveBeenCalledWith(3);
    expect(store.live(3)).toBeUndefined();
    await store.setMark(4, 0x2a);
    expect(store.live(4)?.mark).toBe(42);
    await store.setLabels(4, [3, 1]);
    expect(store.live(4)?.labels).toEqual([1, 3]);
  });
});

describe('prompts store', () => {
  it('coalesces prompts per app and destination', () => {
    const a1 = prompt('a1', 100, { held: 2 });
    const a2 = prompt('a2', 200, { held: 3, deadline: 5_000 });
    const b = prompt('b', 150, { request: request({ dport: 80 }) });
    const c = prompt('c', 50, {
      request: request({ process: { ...request().process!, exe: '/usr/bin/wget' } }),
    });
    expect(coalesceKey(a1.request)).toBe(coalesceKey(a2.request));
    expect(coalesceKey(a1.request)).not.toBe(coalesceKey(b.request));
    const groups = groupPrompts([a2, b, a1, c]);
    expect(groups.map((g) => g.prompts.map((p) => p.id))).toEqual([['c'], ['a1', 'a2'], ['b']]);
    expect(groups[1]).toMatchObject({ held: 5, deadline: 5_000 });
  });

  it('counts down to the default once a second', () => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
    const api = new MemoryPortcullis();
    api.upsertPrompt(prompt('p', 1_000_000, { deadline: 1_010_000 }));
    const store = usePromptsStore();
    store.attach(api);
    const group = store.groups[0]!;
    expect(store.secondsLeft(group)).toBe(10);
    vi.advanceTimersByTime(3_100);
    expect(store.secondsLeft(group)).toBe(7);
    vi.advanceTimersByTime(20_000);
    expect(store.secondsLeft(group)).toBe(0);
  });

  it('answers every prompt of a group, with process durations per prompt', async () => {
    const api = new MemoryPortcullis();
    const p1 = prompt('p1', 1);
    const p2 = prompt('p2', 2, {
      request: request({ process: { ...request().process!, pid: 9, startTime: 99 } }),
    });
    api.upsertPrompt(p1);
    api.upsertPrompt(p2);
    const store = usePromptsStore();
    store.attach(api);
    expect(store.count).toBe(1);
    await store.answer(store.groups[0]!, 'allow', 'port', { kind: 'process' });
    expect(api.answers).toEqual([
      {
        promptId: 'p1',
        action: 'allow',
        scope: 'port',
        duration: { kind: 'process', pid: 4242, startTime: 777 },
      },
      {
        promptId: 'p2',
        action: 'allow',
        scope: 'port',
        duration: { kind: 'process', pid: 9, startTime: 99 },
      },
    ]);
    expect(store.count).toBe(0);
    expect(toDuration({ kind: 'process' }, request({ process: null }))).toEqual({
      kind: 'session',
    });
  });

  it('keyboard selection moves within the list', () => {
    const api = new MemoryPortcullis();
    api.upsertPrompt(prompt('x', 1));
    api.upsertPrompt(prompt('y', 2, { request: request({ host: 'other.example' }) }));
    const store = usePromptsStore();
    store.attach(api);
    expect(store.selected?.first.id).toBe('x');
    store.move(1);
    expect(store.selected?.first.id).toBe('y');
    store.move(5);
    expect(store.selected?.first.id).toBe('y');
    store.move(-3);
    expect(store.selected?.first.id).toBe('x');
  });
});

describe('rules, activity and helper stores', () => {
  it('deleting a rule already gone is one plain outcome, not an error; removals elsewhere leave the list', async () => {
    const api = new MemoryPortcullis();
    const store = useRulesStore();
    store.attach(api);
    const a = await api.addRule({ action: 'deny', match: {}, duration: { kind: 'forever' } });
    const b = await api.addRule({ action: 'allow', match: {}, duration: { kind: 'forever' } });
    await store.load();
    await api.removeRule(a.id);
    expect(await store.remove(a.id)).toBe('gone');
    expect(store.error).toBeNull();
    expect(store.rules.map((r) => r.id)).toEqual([b.id]);
    // The helper's event for a rule removed by somebody else (or pruned).
    api.emitRuleEvent({ kind: 'removed', id: b.id, reason: 'expired' });
    expect(store.rules).toEqual([]);
    expect(await store.remove('nope')).toBe('gone');
  });

  it('edits rules through the API and reloads them', async () => {
    const api = new MemoryPortcullis();
    const store = useRulesStore();
    store.attach(api);
    await store.load();
    store.startNew({ exe: '/usr/bin/curl' }, 'deny');
    expect(
      await store.saveDraft({
        id: null,
        rule: { action: 'deny', match: { exe: '/usr/bin/curl' }, duration: { kind: 'forever' } },
      }),
    ).toBe(true);
    expect(store.rules).toHaveLength(1);
    const id = store.rules[0]!.id;
    await store.setEnabled(id, false);
    expect(store.rules[0]!.enabled).toBe(false);
    store.search = 'wget';
    expect(store.filtered).toHaveLength(0);
    store.search = 'CURL';
    expect(store.filtered).toHaveLength(1);
    const doc = await store.exportDocument();
    expect(await store.importText(JSON.stringify(doc), true)).toEqual({
      imported: 1,
      skipped: 0,
      removed: 1,
    });
    expect(await store.importText('{"format":"x"}', false)).toBeNull();
    expect(store.error).toMatch(/Not a Portcullis rules file/u);
    await store.remove(store.rules[0]!.id);
    expect(store.rules).toHaveLength(0);
    expect(() => parseRulesDocument('nope')).toThrow(/not JSON/u);
  });

  it('dry-runs a match over the history', async () => {
    const api = new MemoryPortcullis();
    const base = {
      reason: 'prompt' as const,
      ruleId: null,
      decidedAt: 10,
      ended: null,
      bytesOut: null,
      bytesIn: null,
      packetsOut: null,
      packetsIn: null,
    };
    api.recordVerdict({ ...base, request: request(), action: 'allow' });
    api.recordVerdict({ ...base, request: request({ dport: 22 }), action: 'deny' });
    api.recordVerdict({ ...base, request: request({ host: 'x.example.org' }), action: 'allow' });
    const store = useRulesStore();
    store.attach(api);
    await store.runDryRun({ exe: '/usr/bin/curl', port: { from: 443, to: 443 } }, 'deny', null);
    expect(store.dryRun).toMatchObject({ matchedTotal: 2, scanned: 3, wouldChange: 2 });
    await store.runDryRun({ host: '*.example.org' }, 'allow', null);
    expect(store.dryRun).toMatchObject({ matchedTotal: 1, wouldChange: 0 });
  });

  it('keeps a bounded ring of stats samples with per-sample drops', () => {
    const api = new MemoryPortcullis();
    const store = useActivityStore();
    store.attach(api);
    const s0 = api.stats;
    api.pushStats({ ...s0, time: 2_000, conntrackCount: 10, queueDropped: 5 });
    api.pushStats({ ...s0, time: 3_000, conntrackCount: 12, queueDropped: 8 });
    expect(store.samples.conntrackCount).toEqual([0, 10, 12]);
    expect(store.samples.queueDrops).toEqual([0, 5, 3]);
    let samples = emptySamples();
    let prev = null;
    for (let i = 0; i < 10; i++) {
      const s = { ...s0, time: i * 1000, conntrackCount: i, queueDropped: 10 - i };
      samples = appendSample(samples, prev, s, 4);
      prev = s;
    }
    expect(samples.conntrackCount).toEqual([6, 7, 8, 9]);
    expect(samples.queueDrops).toEqual([0, 0, 0, 0]); // counters reset: never negative
  });

  it('charts conntrack trouble per second per CPU (invalid, drops, failures), and restarts the lines when the CPUs change', () => {
    const api = new MemoryPortcullis();
    const base = api.stats;
    // The trouble is spread over the counters; inserts are not counted (0 on new kernels).
    const cpu = (n: number, count: number) => ({
      cpu: n,
      found: 0,
      insert: 999,
      insertFailed: Math.floor(count / 4),
      drop: Math.floor(count / 4),
      earlyDrop: 0,
      invalid: count - 3 * Math.floor(count / 4),
      error: 0,
      searchRestart: Math.floor(count / 4),
    });
    let samples = emptySamples();
    let prev: typeof base | null = null;
    const push = (time: number, cpus: ReturnType<typeof cpu>[]) => {
      const s = { ...base, time, conntrackCpus: cpus };
      samples = appendSample(samples, prev, s, 5);
      prev = s;
    };
    push(1_000, [cpu(0, 100), cpu(1, 50)]);
    push(2_000, [cpu(0, 130), cpu(1, 50)]);
    push(4_000, [cpu(0, 150), cpu(1, 90)]); // 2 s later: per second
    expect(samples.cpus).toEqual([0, 1]);
    expect(samples.cpuTrouble).toEqual([
      [0, 30, 10],
      [0, 0, 20],
    ]);
    push(5_000, [cpu(0, 10), cpu(1, 95)]); // CPU 0's counter went back (a reboot): 0, not negative
    expect(samples.cpuTrouble.map((a) => a[a.length - 1])).toEqual([0, 5]);
    // A third CPU: the earlier samples have nothing for the new set of lines.
    push(6_000, [cpu(0, 20), cpu(1, 95), cpu(2, 7)]);
    expect(samples.cpus).toEqual([0, 1, 2]);
    expect(samples.cpuTrouble).toEqual([
      [0, 0, 0, 0, 10],
      [0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0],
    ]);
    // A helper before protocol 1.2 sends none: no lines.
    push(7_000, []);
    expect(samples).toMatchObject({ cpus: [], cpuTrouble: [] });
  });

  it('loads settings on connect and saves a patch', async () => {
    const api = new MemoryPortcullis();
    const store = useHelperStore();
    store.attach(api);
    await vi.waitFor(() => expect(store.settings).not.toBeNull());
    expect(await store.saveSettings({ promptTimeoutSeconds: 45 })).toBe(true);
    expect(api.settings.promptTimeoutSeconds).toBe(45);
    expect(await store.saveSettings({ promptTimeoutSeconds: 0 })).toBe(false);
    expect(store.error).toMatch(/promptTimeoutSeconds/u);
    expect(store.status?.state?.settings.promptTimeoutSeconds).toBe(45);
  });
});
