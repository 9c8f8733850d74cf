import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../../../helper/daemon/deadlines.js';
import { Interceptor } from '../../../helper/daemon/interceptor.js';
import { createLogger } from '../../../helper/daemon/log.js';
import type { DecisionRecord } from '../../../helper/daemon/ports.js';
import { PolicyFallbackDecider } from '../../../helper/daemon/fallback-decider.js';
import type { ConnectionRequest } from '../../../helper/protocol/model.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Deadlines', () => {
  it('fires what is due, in order, and not what was cancelled', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    d.add(1_000_100, () => fired.push('a'));
    const cancelB = d.add(1_000_200, () => fired.push('b'));
    d.add(1_000_300, () => fired.push('c'));
    cancelB();
    vi.advanceTimersByTime(150);
    expect(fired).toEqual(['a']);
    vi.advanceTimersByTime(200);
    expect(fired).toEqual(['a', 'c']);
    expect(d.size).toBe(0);
  });

  it('gives an earlier deadline than the last one its own timer', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    d.add(1_000_500, () => fired.push('late'));
    d.add(1_000_100, () => fired.push('early'));
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['early']);
    vi.advanceTimersByTime(400);
    expect(fired).toEqual(['early', 'late']);
  });

  it('keeps no timer that holds the process once nothing waits', () => {
    const d = new Deadlines();
    const cancel = d.add(1_031_000, () => undefined);
    const timer = vi.getTimerCount();
    expect(timer).toBe(1);
    cancel();
    // Still armed (reused by the next entry) but unref'd: it no longer holds the loop.
    const t = (d as unknown as { timer: NodeJS.Timeout }).timer;
    expect(t.hasRef()).toBe(false);
    d.add(1_031_001, () => undefined);
    expect(t.hasRef()).toBe(true);
    expect(vi.getTimerCount()).toBe(1);
  });
});

describe('Deadlines behind a long-lived entry', () => {
  it('keeps the ring small while thousands of later entries come and go (an open prompt)', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    d.add(1_031_000, () => fired.push('prompt'));
    for (let i = 0; i < 10_000; i++) {
      const cancel = d.add(1_031_000 + i, () => fired.push(`x${i}`));
      cancel();
    }
    const kept = d.add(1_045_000, () => fired.push('kept'));
    expect(d.size).toBe(2);
    expect(d.slots).toBeLessThan(64);
    vi.advanceTimersByTime(31_000);
    expect(fired).toEqual(['prompt']);
    vi.advanceTimersByTime(14_000);
    expect(fired).toEqual(['prompt', 'kept']);
    kept();
    expect(d.size).toBe(0);
    expect(d.slots).toBe(0);
  });
});

describe('Deadlines against a model (property)', () => {
  it('fires exactly the entries not cancelled by their deadline, in order; cancelled ones do not pile up', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('add' as const), after: fc.integer({ min: 0, max: 50 }) }),
            fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }),
            fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 80 }) }),
          ),
          { maxLength: 300 },
        ),
        (ops) => {
          vi.setSystemTime(1_000_000);
          const d = new Deadlines();
          const fired: number[] = [];
          const expected: number[] = [];
          const open = new Map<number, { at: number; cancel: () => void }>();
          let last = Date.now();
          let next = 0;
          for (const o of ops) {
            if (o.op === 'add') {
              // Non-decreasing deadlines, the interceptor's case (an earlier one has its own timer).
              last = Math.max(last, Date.now()) + o.after;
              const id = next++;
              open.set(id, { at: last, cancel: d.add(last, () => fired.push(id)) });
            } else if (o.op === 'cancel' && open.size > 0) {
              const ids = [...open.keys()];
              const id = ids[o.pick % ids.length]!;
              open.get(id)!.cancel();
              open.delete(id);
            } else if (o.op === 'advance') {
              vi.advanceTimersByTime(o.ms);
              for (const [id, e] of [...open]) {
                if (e.at <= Date.now()) {
                  expected.push(id);
                  open.delete(id);
                }
              }
            }
            expect(d.size).toBe(open.size);
            // Cancelled entries are dropped or compacted away: at most 4x the live ones + 16.
            expect(d.slots).toBeLessThanOrEqual(4 * open.size + 17);
          }
          vi.advanceTimersByTime(1_000_000);
          expected.push(...[...open.keys()]);
          expect(fired).toEqual(expected);
          expect(d.size).toBe(0);
          d.clear();
        },
      ),
      { numRuns: 200 },
    );
  });
});

function entry(i: number, action: 'allow' | 'deny' = 'allow'): DecisionRecord {
  const request: ConnectionRequest = {
    time: Date.now(),
    direction: 'outbound',
    family: 'ipv4',
    protocol: 'tcp',
    protocolNumber: 6,
    src: '198.18.0.1',
    dst: '198.18.0.2',
    sport: 40000 + i,
    dport: 443,
    icmpType: null,
    icmpCode: null,
    inIfindex: null,
    outIfindex: 2,
    host: null,
    uid: 0,
    process: null,
  };
  return { request, action, reason: 'no-gui', ruleId: null, decidedAt: Date.now() };
}

describe('Interceptor decision log', () => {
  function make(decisionLogPerSecond?: number) {
    const lines: string[] = [];
    const sunk: DecisionRecord[] = [];
    const keys: (string | undefined)[] = [];
    const interceptor = new Interceptor({
      queue: 0,
      policy: {
        defaultAction: 'allow',
        decisionTimeoutMs: 1000,
        failClosed: false,
        inbound: false,
      },
      decider: new PolicyFallbackDecider('allow'),
      log: createLogger({ write: (l) => lines.push(l) }),
      sinks: [
        {
          record: (e, key) => {
            sunk.push(e);
            keys.push(key);
          },
        },
      ],
      ...(decisionLogPerSecond !== undefined ? { decisionLogPerSecond } : {}),
    });
    const record = (e: DecisionRecord) =>
      (interceptor as unknown as { record(e: DecisionRecord, key: string): void }).record(
        e,
        `key-${e.request.sport}`,
      );
    return { interceptor, lines, sunk, keys, record };
  }

  it('logs each decision up to the limit, then one summary per second; sinks get all', () => {
    const { interceptor, lines, sunk, keys, record } = make(3);
    for (let i = 0; i < 10; i++) record(entry(i, i === 9 ? 'deny' : 'allow'));
    // Sinks get the tuple key the interceptor made, with each decision.
    expect(keys).toEqual(sunk.map((e) => `key-${e.request.sport}`));
    expect(
      lines.filter((l) => / info interceptor: (allow|deny) outbound tcp /u.test(l)),
    ).toHaveLength(3);
    expect(sunk).toHaveLength(10);
    expect(interceptor.counters.logSuppressed).toBe(7);
    expect(interceptor.counters.allowed).toBe(9);
    vi.advanceTimersByTime(1000);
    expect(lines.at(-1)).toMatch(
      / info interceptor: 7 more decisions not logged one by one \(over 3\/s\) allowed=6 denied=1\n$/u,
    );
    // A new window logs again.
    record(entry(20));
    expect(lines.at(-1)).toMatch(/allow outbound tcp .*sport=40020/u);
    expect(lines).toHaveLength(5);
  });

  it('logs every decision under the default limit', () => {
    const { lines, record } = make();
    for (let i = 0; i < 50; i++) record(entry(i));
    expect(lines).toHaveLength(50);
    record(entry(50));
    vi.advanceTimersByTime(1000);
    expect(lines.at(-1)).toMatch(/1 more decisions not logged/u);
  });
});
