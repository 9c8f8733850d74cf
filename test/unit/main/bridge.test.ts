// The bridge (src-main/node/bridge.ts) against a real IpcServer with the
// scripted FakeHelperService over a temp Unix socket.
import { afterEach, describe, expect, it } from 'vitest';
import type { IpcClient } from '../../../helper/protocol/client.js';
import { IpcError } from '../../../helper/protocol/errors.js';
import type { Prompt } from '../../../helper/protocol/model.js';
import {
  ApiError,
  type FlowEvent,
  type HelperStatus,
  type PromptEvent,
  type RuleEvent,
} from '../../../src-main/common/api.js';
import { HelperBridge } from '../../../src-main/node/bridge.js';
import { makeFlow, makeHistoryEntry } from '../../support/fake-helper-service.js';
import { startHarness, until, type Harness } from '../../support/ipc-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

function makePrompt(id: string): Prompt {
  const entry = makeHistoryEntry(1);
  return {
    id,
    created: 1_700_000_000_000,
    deadline: 1_700_000_030_000,
    defaultAction: 'deny',
    request: entry.request,
    held: 1,
  };
}

async function connected(): Promise<{ bridge: HelperBridge; client: IpcClient }> {
  h = await startHarness({ flowIntervalMs: 10 });
  const client = await h.client();
  const bridge = new HelperBridge();
  await bridge.attach(client);
  bridge.setLink({ connection: 'connected', error: null });
  return { bridge, client };
}

describe('HelperBridge', () => {
  it('maps invoke channels to wire methods, with paging and the api shapes', async () => {
    const { bridge } = await connected();
    const api = bridge.api;
    const rule = await api.addRule({
      action: 'deny',
      match: { host: 'even.example' },
      duration: { kind: 'forever' },
    });
    expect(rule.id).toBe('r1');
    // More rules than a page: listRules and exportRules page through.
    await api.importRules({
      document: {
        format: 'portcullis-rules',
        version: 1,
        rules: Array.from({ length: 1500 }, (_, i) => ({
          action: 'allow' as const,
          match: { port: { from: i, to: i } },
          duration: { kind: 'forever' as const },
        })),
      },
      replace: false,
    });
    expect((await api.listRules()).length).toBe(1501);
    expect((await api.exportRules()).rules.length).toBe(1501);
    const listCalls = h!.service.calls.filter((c) => c.method === 'rules.list');
    expect(listCalls.length).toBe(2);
    // Imports are staged page by page and applied once.
    expect(h!.service.calls.filter((c) => c.method === 'rules.importPage').length).toBe(2);
    expect(h!.service.calls.filter((c) => c.method === 'rules.importCommit').length).toBe(1);

    expect((await api.updateRule({ id: 'r1', rule: { ...rule, note: 'x' } })).note).toBe('x');
    expect((await api.setRuleEnabled({ id: 'r1', enabled: false })).enabled).toBe(false);
    await api.removeRule('r1');

    for (let i = 0; i < 6; i++) h!.service.history.push(makeHistoryEntry(i));
    const dry = await api.dryRunRule({
      match: { host: 'even.example' },
      action: 'deny',
      since: null,
      limit: 10,
    });
    expect(dry.matchedTotal).toBe(3);
    // Entries 0, 2, 4 are even.example; 0 was denied (seq % 3 === 0).
    expect(dry.wouldChange).toBe(2);

    const page = await api.queryHistory({
      from: null,
      to: null,
      text: '',
      action: null,
      beforeSeq: null,
      limit: 4,
    });
    expect(page.entries.map((e) => e.seq)).toEqual([5, 4, 3, 2]);
    expect(page.more).toBe(true);
    const older = await api.queryHistory({
      from: null,
      to: null,
      text: '',
      action: 'allow',
      beforeSeq: 2,
      limit: 10,
    });
    expect(older.entries.map((e) => e.seq)).toEqual([1]);

    const series = await api.historySeries({
      from: 1_700_000_000_000,
      to: 1_700_000_006_000,
      bucketMs: 3000,
    });
    expect(series.time).toEqual([1_700_000_000_000, 1_700_000_003_000]);
    expect(series.allowed).toEqual([2, 2]);
    expect(series.denied).toEqual([1, 1]);
    expect(series.newConnections).toEqual([3, 3]);

    expect((await api.setSettings({ promptTimeoutSeconds: 9 })).promptTimeoutSeconds).toBe(9);
    expect((await api.getSettings()).promptTimeoutSeconds).toBe(9);
    expect((await api.getStats()).allowed).toBeTypeOf('number');
    const status = await api.getHelperStatus();
    expect(status.connection).toBe('connected');
    expect(status.state?.version).toBe('0.1.0');
  });

  it('maps flow calls: the full label set becomes add/remove bits', async () => {
    const { bridge } = await connected();
    h!.service.flows.set(7, makeFlow(7));
    await bridge.api.setFlowLabels({ id: 7, labels: [1, 5] });
    const call = h!.service.calls.find((c) => c.method === 'flows.setLabels')!;
    const p = call.params as { add: number[]; remove: number[] };
    expect(p.add).toEqual([1, 5]);
    expect(p.remove).toHaveLength(126);
    expect(p.remove).not.toContain(5);
    await bridge.api.setFlowMark({ id: 7, mark: 42 });
    expect(h!.service.flows.get(7)!.mark).toBe(42);
    // A helper of protocol 1.2 answers null: it deleted the entry.
    await expect(bridge.api.killFlow(7)).resolves.toEqual({
      conntrackDeleted: true,
      socketsDestroyed: null,
    });
    expect(h!.service.flows.has(7)).toBe(false);
    // A kernel without SOCK_DESTROY: the entry went, the socket stayed, and the UI hears why.
    h!.service.flows.set(8, makeFlow(8));
    const partial = {
      conntrackDeleted: true,
      socketsDestroyed: null,
      socketError: 'EOPNOTSUPP: this kernel cannot destroy sockets (CONFIG_INET_DIAG_DESTROY)',
    };
    h!.service.killResult = partial;
    await expect(bridge.api.killFlow(8)).resolves.toEqual(partial);
  });

  it('turns wire errors and a missing connection into ApiError with a code', async () => {
    const { bridge, client } = await connected();
    const e = await bridge.api.killFlow(999).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe('not-found');
    const bad = await bridge.api.addRule({ action: 'maybe' } as never).then(
      () => null,
      (x: unknown) => x as ApiError,
    );
    expect(bad?.code).toBe('invalid-params');
    await client.close();
    await until(() => bridge.status.connection === 'connected' && !isAttached(bridge));
    const gone = await bridge.api.getStats().then(
      () => null,
      (x: unknown) => x as ApiError,
    );
    expect(gone?.code).toBe('helper-unavailable');
  });

  it('turns the flows topic into a snapshot (chunks joined) and deltas, for late subscribers too', async () => {
    h = await startHarness({ flowIntervalMs: 10, chunkTargetBytes: 2048 });
    for (let i = 1; i <= 50; i++) h.service.flows.set(i, makeFlow(i));
    const bridge = new HelperBridge();
    const early: FlowEvent[] = [];
    bridge.api.onFlows((e) => early.push(e));
    await bridge.attach(await h.client());
    await until(() => early.length === 1, 5000, 'snapshot');
    expect(early[0]).toMatchObject({ kind: 'snapshot' });
    expect((early[0] as { flows: unknown[] }).flows).toHaveLength(50);

    h.server.publish('flows', { added: [makeFlow(51)], updated: [], removed: [3] });
    await until(() => early.length === 2, 5000, 'delta');
    expect(early[1]).toMatchObject({ kind: 'delta', remove: [3] });
    expect((early[1] as { upsert: { id: number }[] }).upsert.map((f) => f.id)).toEqual([51]);

    const late: FlowEvent[] = [];
    const off = bridge.api.onFlows((e) => late.push(e));
    expect(late).toHaveLength(1);
    const ids = (late[0] as { flows: { id: number }[] }).flows.map((f) => f.id);
    expect(ids).toContain(51);
    expect(ids).not.toContain(3);
    off();
    h.server.publish('flows', { added: [], updated: [], removed: [4] });
    await until(() => early.length === 3, 5000, 'second delta');
    expect(late).toHaveLength(1);
  });

  it('turns the prompts topic into a snapshot and deltas, verdicts and stats pass through', async () => {
    h = await startHarness();
    h.service.prompts.push(makePrompt('p1'));
    const bridge = new HelperBridge();
    await bridge.attach(await h.client());
    const prompts: PromptEvent[] = [];
    bridge.api.onPrompts((e) => prompts.push(e));
    expect(prompts[0]).toMatchObject({ kind: 'snapshot', prompts: [{ id: 'p1' }] });
    const verdicts: number[] = [];
    bridge.api.onVerdicts((e) => verdicts.push(e.seq));
    const stats: number[] = [];
    bridge.api.onStats((s) => stats.push(s.time));

    h.server.publish('prompts', { kind: 'added', prompt: makePrompt('p2') });
    h.server.publish('prompts', { kind: 'resolved', id: 'p1', action: 'allow', reason: 'prompt' });
    h.server.publish('verdicts', makeHistoryEntry(77));
    h.server.publish('stats', {
      ...(await bridge.api.getStats()),
      time: 12345,
    });
    await until(() => prompts.length === 3 && verdicts.length === 1 && stats.length === 1);
    expect(prompts[1]).toMatchObject({ kind: 'delta', upsert: [{ id: 'p2' }], remove: [] });
    expect(prompts[2]).toMatchObject({ kind: 'delta', upsert: [], remove: ['p1'] });
    expect(verdicts).toEqual([77]);
    expect(stats).toEqual([12345]);
  });

  it('reports the link and the helper state on helperStatus', async () => {
    h = await startHarness();
    const bridge = new HelperBridge();
    const seen: HelperStatus[] = [];
    bridge.api.onHelperStatus((s) => seen.push(s));
    expect(seen[0]).toEqual({
      connection: 'disconnected',
      state: null,
      error: null,
      lastClose: null,
    });
    bridge.setLink({ connection: 'connecting', error: 'socket missing' });
    await bridge.attach(await h.client());
    bridge.setLink({ connection: 'connected', error: null });
    const last = seen.at(-1)!;
    expect(last.connection).toBe('connected');
    expect(last.state?.queue).toBe(0);
    expect(seen.some((s) => s.error === 'socket missing')).toBe(true);
    const state = { ...last.state!, pendingPrompts: 3 };
    h.server.publish('state', state);
    await until(() => seen.at(-1)!.state?.pendingPrompts === 3);
  });
});

function isAttached(bridge: HelperBridge): boolean {
  return (bridge as unknown as { client: unknown }).client !== null;
}

describe('HelperBridge rules topic', () => {
  it("passes the helper's rule events on, after a reset when it subscribes", async () => {
    h = await startHarness({ flowIntervalMs: 10 });
    const client = await h.client();
    const bridge = new HelperBridge();
    const seen: RuleEvent[] = [];
    bridge.api.onRules((e) => seen.push(e));
    await bridge.attach(client);
    expect(h.server.clients()[0]?.subscriptions).toContain('rules');
    h.server.publish('rules', { kind: 'removed', id: 'r9', reason: 'expired' });
    await until(() => seen.length >= 2);
    expect(seen).toEqual([{ kind: 'reset' }, { kind: 'removed', id: 'r9', reason: 'expired' }]);
  });

  it('attaches to a helper older than the topic (it refuses `rules` as invalid-params)', async () => {
    h = await startHarness({ flowIntervalMs: 10 });
    const client = await h.client();
    const refusing = {
      call: ((method: string, params: unknown) => {
        const topics = (params as { topics?: string[] } | undefined)?.topics;
        if (method === 'subscribe' && topics?.includes('rules')) {
          return Promise.reject(new IpcError('invalid-params', 'topics: invalid option'));
        }
        return client.call(method as 'state.get', params as never);
      }) as IpcClient['call'],
      on: client.on.bind(client),
      onClose: client.onClose.bind(client),
    };
    const bridge = new HelperBridge();
    await expect(bridge.attach(refusing)).resolves.toBeUndefined();
    expect(h.server.clients()[0]?.subscriptions).toContain('flows');
  });
});

describe('HelperBridge when the helper goes', () => {
  it('a helper that says it is stopping is reported as stopped, with its last state kept', async () => {
    const { bridge } = await connected();
    expect(bridge.status.lastClose).toBeNull();
    const state = bridge.status.state;
    expect(state).not.toBeNull();
    await h!.server.close();
    await until(() => bridge.status.lastClose !== null);
    expect(bridge.status.lastClose).toBe('stopped');
    expect(bridge.status.state).toEqual(state);
  });
});

describe('HelperBridge with promptsWhileWatched (the web host)', () => {
  it('asks the helper for prompts only while a page listens, and lets go after the grace time', async () => {
    h = await startHarness({ flowIntervalMs: 10 });
    const client = await h.client();
    const bridge = new HelperBridge({ promptsWhileWatched: { graceMs: 50 } });
    await bridge.attach(client);
    const watchers = (): number => h!.server.subscriberCount('prompts');
    // No page yet: the helper sees no GUI, the other topics flow.
    expect(watchers()).toBe(0);
    expect(h.server.subscriberCount('state')).toBe(1);

    const events: PromptEvent[] = [];
    const off = bridge.api.onPrompts((e) => events.push(e));
    await until(() => watchers() === 1);
    await until(() => events.some((e) => e.kind === 'snapshot'));

    // A reload: the page leaves and comes back within the grace time; nothing changes.
    off();
    const again = bridge.api.onPrompts((e) => events.push(e));
    await new Promise((r) => setTimeout(r, 120));
    expect(watchers()).toBe(1);

    // The tab closed: after the grace time the helper has no GUI to ask.
    again();
    await until(() => watchers() === 0);
    // A new page: subscribed again, with a fresh snapshot.
    const before = events.length;
    const third = bridge.api.onPrompts((e) => events.push(e));
    await until(() => watchers() === 1);
    await until(() => events.slice(before).some((e) => e.kind === 'snapshot'));
    third();
  });

  it('without the option (Electron main) the prompts stay subscribed with no listener', async () => {
    const { bridge } = await connected();
    expect(h!.server.subscriberCount('prompts')).toBe(1);
    bridge.api.onPrompts(() => undefined)();
    await new Promise((r) => setTimeout(r, 50));
    expect(h!.server.subscriberCount('prompts')).toBe(1);
  });
});

describe('HelperBridge without a helper', () => {
  it('processIcon asks its icon source (no helper needed); retryHelper calls the link owner', async () => {
    const asked: [string, string | null][] = [];
    const icon = { mime: 'image/png' as const, dataUrl: 'data:image/png;base64,AAAA' };
    const bridge = new HelperBridge({
      icons: {
        resolve: async (exe, appId) => {
          asked.push([exe, appId]);
          return exe === '/usr/bin/app' ? icon : null;
        },
      },
    });
    expect(await bridge.api.processIcon({ exe: '/usr/bin/app', appId: 'org.x.App' })).toEqual(icon);
    expect(await bridge.api.processIcon({ exe: '/usr/bin/other', appId: null })).toBeNull();
    expect(asked).toEqual([
      ['/usr/bin/app', 'org.x.App'],
      ['/usr/bin/other', null],
    ]);
    // Another call while disconnected still needs the helper.
    await expect(bridge.api.getStats()).rejects.toMatchObject({ code: 'helper-unavailable' });

    let retries = 0;
    await bridge.api.retryHelper(); // nobody owns the link yet: nothing happens
    bridge.setRetry(() => void retries++);
    await bridge.api.retryHelper();
    expect(retries).toBe(1);
  });
});
