import { afterEach, describe, expect, it } from 'vitest';
import type { IpcClient } from '../../../helper/protocol/client.js';
import type { FlowsEvent, PromptsEvent } from '../../../helper/protocol/messages.js';
import { MAX_FRAME_BYTES } from '../../../helper/protocol/messages.js';
import type { Flow, HistoryEntry, Stats } from '../../../helper/protocol/model.js';
import { makeFlow, makeHistoryEntry, makeStats } from '../../support/fake-helper-service.js';
import {
  startHarness,
  tick,
  until,
  type Harness,
  type RawClient,
} from '../../support/ipc-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

/** Applies flows events to a table the way a client should. */
class FlowTable {
  flows = new Map<number, Flow>();
  events: FlowsEvent[] = [];
  snapshots = 0;
  private incoming: Map<number, Flow> | null = null;
  apply(e: FlowsEvent): void {
    this.events.push(e);
    switch (e.kind) {
      case 'snapshot-begin':
        this.incoming = new Map();
        break;
      case 'snapshot-chunk':
        for (const f of e.flows) this.incoming!.set(f.id, f);
        break;
      case 'snapshot-end':
        this.flows = this.incoming!;
        this.incoming = null;
        this.snapshots++;
        break;
      case 'delta':
        for (const f of [...e.added, ...e.updated]) this.flows.set(f.id, f);
        for (const id of e.removed) this.flows.delete(id);
    }
  }
  deltas(): Extract<FlowsEvent, { kind: 'delta' }>[] {
    return this.events.filter((e) => e.kind === 'delta') as Extract<
      FlowsEvent,
      { kind: 'delta' }
    >[];
  }
}

function follow(c: IpcClient): FlowTable {
  const t = new FlowTable();
  c.on('flows', (e) => t.apply(e));
  return t;
}

describe('subscriptions', () => {
  it('delivers verdicts and prompts in order to every subscriber, and nothing unasked', async () => {
    h = await startHarness();
    const a = await h.client();
    const b = await h.client();
    const quiet = await h.client();
    const got: Record<string, HistoryEntry[]> = { a: [], b: [], quiet: [] };
    const prompts: PromptsEvent[] = [];
    a.on('verdicts', (e) => void got['a']!.push(e));
    b.on('verdicts', (e) => void got['b']!.push(e));
    quiet.on('verdicts', (e) => void got['quiet']!.push(e));
    b.on('prompts', (e) => void prompts.push(e));
    expect(await a.call('subscribe', { topics: ['verdicts'] })).toEqual({ topics: ['verdicts'] });
    expect(await b.call('subscribe', { topics: ['prompts', 'verdicts'] })).toEqual({
      topics: ['prompts', 'verdicts'],
    });
    expect(h.server.subscriberCount('verdicts')).toBe(2);
    expect(h.server.subscriberCount('prompts')).toBe(1);
    for (let i = 0; i < 100; i++) h.server.publish('verdicts', makeHistoryEntry(i));
    h.server.publish('prompts', { kind: 'resolved', id: 'p1', action: 'deny', reason: 'default' });
    await until(() => got['a']!.length === 100 && got['b']!.length === 100 && prompts.length === 1);
    expect(got['a']!.map((e) => e.seq)).toEqual([...Array(100).keys()]);
    expect(got['b']!.map((e) => e.seq)).toEqual([...Array(100).keys()]);
    expect(prompts[0]).toEqual({ kind: 'resolved', id: 'p1', action: 'deny', reason: 'default' });
    // unsubscribe stops them
    expect(await a.call('unsubscribe', { topics: ['verdicts'] })).toEqual({ topics: [] });
    h.server.publish('verdicts', makeHistoryEntry(100));
    await until(() => got['b']!.length === 101);
    await quiet.call('stats.get'); // a round trip: anything sent earlier has arrived
    await a.call('stats.get');
    expect(got['a']).toHaveLength(100);
    expect(got['quiet']).toHaveLength(0);
  });

  it('keeps only the latest stats and state for a client', async () => {
    h = await startHarness();
    const c = await h.client();
    const stats: Stats[] = [];
    c.on('stats', (s) => void stats.push(s));
    await c.call('subscribe', { topics: ['stats', 'state'] });
    for (let i = 1; i <= 1000; i++) h.server.publish('stats', makeStats(i));
    await until(() => stats.length > 0);
    await c.call('stats.get');
    expect(stats.map((s) => s.time)).toEqual([1000]);
  });

  it('sends a large flow snapshot in chunks below the frame limit, then deltas', async () => {
    h = await startHarness();
    const N = 100_000;
    for (let i = 1; i <= N; i++) h.service.flows.set(i, makeFlow(i));
    const raw = await h.raw();
    raw.hello();
    await raw.waitFor((f) => f['type'] === 'hello');
    raw.send({ type: 'request', id: 1, method: 'subscribe', params: { topics: ['flows'] } });
    const end = await raw.waitFor(
      (f) => f['type'] === 'event' && (f['data'] as { kind: string }).kind === 'snapshot-end',
      30_000,
    );
    expect(end).toBeDefined();
    const events = raw.frames.filter((f) => (f as { type: string }).type === 'event') as {
      data: FlowsEvent;
    }[];
    // The subscribe response comes before the snapshot.
    const responseAt = raw.frames.findIndex((f) => (f as { id?: number }).id === 1);
    const beginAt = raw.frames.findIndex(
      (f) => (f as { data?: { kind?: string } }).data?.kind === 'snapshot-begin',
    );
    expect(responseAt).toBeLessThan(beginAt);
    expect(events[0]!.data).toEqual({ kind: 'snapshot-begin', total: N });
    const chunks = events.filter((e) => e.data.kind === 'snapshot-chunk');
    expect(chunks.length).toBeGreaterThan(10);
    const ids = new Set<number>();
    for (const c of chunks) {
      for (const f of (c.data as { flows: Flow[] }).flows) ids.add(f.id);
    }
    expect(ids.size).toBe(N);
    expect(Math.max(...raw.sizes)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    // A change after the snapshot arrives as a delta.
    h.server.publish('flows', { added: [], updated: [makeFlow(5, { mark: 9 })], removed: [6] });
    const delta = await raw.waitFor(
      (f) => f['type'] === 'event' && (f['data'] as { kind: string }).kind === 'delta',
    );
    expect(delta['data']).toMatchObject({ added: [], removed: [6] });
    expect((delta['data'] as { updated: Flow[] }).updated.map((f) => f.mark)).toEqual([9]);
  }, 60_000);

  it('merges flow changes per id and flushes them at a bounded rate', async () => {
    h = await startHarness({ flowIntervalMs: 200 });
    h.service.flows.set(1000, makeFlow(1000));
    const c = await h.client();
    const table = follow(c);
    await c.call('subscribe', { topics: ['flows'] });
    await until(() => table.snapshots === 1);
    // One burst: 100 new flows, 50 updates of flow 1, flows 2..10 come and go,
    // flow 1000 (known to the client) goes.
    h.server.publish('flows', {
      added: Array.from({ length: 100 }, (_, i) => makeFlow(i + 1)),
      updated: [],
      removed: [],
    });
    for (let m = 1; m <= 50; m++) {
      h.server.publish('flows', { added: [], updated: [makeFlow(1, { mark: m })], removed: [] });
    }
    h.server.publish('flows', {
      added: [],
      updated: [],
      removed: [2, 3, 4, 5, 6, 7, 8, 9, 10, 1000],
    });
    await until(() => table.deltas().length === 1);
    const [first] = table.deltas();
    expect(first!.added.map((f) => f.id).sort((a, b) => a - b)).toEqual([
      1,
      ...Array.from({ length: 90 }, (_, i) => i + 11),
    ]);
    expect(first!.added.find((f) => f.id === 1)!.mark).toBe(50);
    expect(first!.updated).toEqual([]);
    expect(first!.removed).toEqual([1000]);
    // A stream of changes for 1 s: 50 publishes, at most one flush per 200 ms.
    const started = Date.now();
    for (let m = 51; m <= 100; m++) {
      h.server.publish('flows', { added: [], updated: [makeFlow(1, { mark: m })], removed: [] });
      await new Promise((r) => setTimeout(r, 20));
    }
    const elapsed = Date.now() - started;
    await until(() => table.flows.get(1)?.mark === 100);
    const flushes = table.deltas().length - 1;
    expect(flushes).toBeGreaterThanOrEqual(2);
    expect(flushes).toBeLessThanOrEqual(Math.ceil(elapsed / 200) + 1);
    expect(flushes).toBeLessThan(50);
    expect(table.flows.size).toBe(91);
  });
});

describe('slow clients', () => {
  async function rawSubscriber(topics: string[]): Promise<RawClient> {
    const raw = await h!.raw();
    raw.hello();
    await raw.waitFor((f) => f['type'] === 'hello');
    raw.send({ type: 'request', id: 1, method: 'subscribe', params: { topics } });
    await raw.waitFor((f) => f['id'] === 1);
    return raw;
  }

  it('cuts off a client that never reads, then closes it, while another keeps receiving', async () => {
    h = await startHarness({ maxQueuedBytes: 256 * 1024, cutoffGraceMs: 300 });
    const stuck = await rawSubscriber(['verdicts', 'flows', 'stats']);
    stuck.socket.pause(); // never reads again
    const good = await h.client();
    const seen: number[] = [];
    good.on('verdicts', (e) => void seen.push(e.seq));
    await good.call('subscribe', { topics: ['verdicts'] });
    const total = 4000;
    let published = 0;
    let maxQueued = 0;
    // Bursts as a verdict loop would make them, one event-loop turn apart.
    for (let i = 0; i < total; i += 40) {
      for (let j = i; j < i + 40; j++) {
        h.server.publish('verdicts', makeHistoryEntry(j));
        h.server.publish('flows', { added: [makeFlow(j + 1)], updated: [], removed: [] });
        published++;
      }
      await tick();
      // Bounded whatever the stuck client does: its queue plus its socket's buffer.
      for (const info of h.server.clients()) {
        maxQueued = Math.max(maxQueued, info.queuedBytes);
      }
    }
    expect(published).toBe(total);
    expect(maxQueued).toBeGreaterThan(64 * 1024);
    expect(maxQueued).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);
    await until(() => seen.length === total, 10_000, 'the good client to get every verdict');
    expect(seen).toEqual([...Array(total).keys()]);
    expect(h.server.metrics.cutOff).toBe(1);
    const cut = h.logs.find((l) => l.event === 'client-cut-off')!;
    expect(cut.message).toMatch(/verdicts/);
    await until(() =>
      h!.logs.some((l) => /slow-consumer: the client stopped reading/.test(l.message)),
    );
    expect(h.server.subscriberCount('verdicts')).toBe(1);
    expect(h.server.metrics.connections).toBe(1);
    // The good client is unaffected.
    expect((await good.call('stats.get')).allowed).toBe(1);
  }, 20_000);

  it('tells a client that catches up that it was cut off; it resubscribes and gets a fresh snapshot', async () => {
    h = await startHarness({ maxQueuedBytes: 128 * 1024, cutoffGraceMs: 300 });
    h.service.flows.set(1, makeFlow(1));
    const slow = await rawSubscriber(['verdicts', 'flows']);
    await slow.waitFor(
      (f) => (f['data'] as { kind?: string } | undefined)?.kind === 'snapshot-end',
    );
    slow.socket.pause();
    for (let i = 0; i < 3000 && h.server.metrics.cutOff === 0; i++) {
      h.server.publish('verdicts', makeHistoryEntry(i));
      if (i % 20 === 0) await tick();
    }
    expect(h.server.metrics.cutOff).toBe(1);
    expect(h.server.subscriberCount('verdicts')).toBe(0);
    const mark = slow.frames.length;
    slow.socket.resume();
    const dropped = await slow.waitFor((f) => f['topic'] === 'dropped', 5000, mark);
    expect(dropped['data']).toMatchObject({
      topics: ['flows', 'verdicts'],
      reason: 'slow-consumer',
    });
    const after = slow.frames.length;
    slow.send({ type: 'request', id: 2, method: 'subscribe', params: { topics: ['flows'] } });
    await slow.waitFor(
      (f) => (f['data'] as { kind?: string } | undefined)?.kind === 'snapshot-end',
      5000,
      after,
    );
    // It reads again, so the grace period after the cut-off does not close it.
    await new Promise((r) => setTimeout(r, 700));
    expect(slow.closed).toBe(false);
    expect(h.server.subscriberCount('flows')).toBe(1);
  }, 20_000);
});
