import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NF_ACCEPT, NF_DROP } from '../../../helper/nfqueue/constants.js';
import { NfQueueError } from '../../../helper/nfqueue/errors.js';
import { OutstandingTable, type VerdictOp } from '../../../helper/nfqueue/outstanding.js';

const ids = (start: number, n: number) => Array.from({ length: n }, (_, i) => (start + i) >>> 0);

function table(batching: boolean, list: number[], deadline = 1000): OutstandingTable {
  const t = new OutstandingTable(batching);
  for (const id of list) t.add(id, deadline);
  return t;
}

/**
 * A model of the kernel's queue: NFQNL_MSG_VERDICT_BATCH gives its verdict to
 * every queued packet from the head while !nfq_id_after(id, max), i.e.
 * (int32)(max - id) >= 0; NFQNL_MSG_VERDICT to one id.
 */
function applyInKernel(queue: number[], ops: VerdictOp[]): Map<number, number> {
  const fate = new Map<number, number>();
  const q = [...queue];
  for (const op of ops) {
    if (op.batch) {
      let n = 0;
      while (q.length > 0 && ((op.id - q[0]!) | 0) >= 0) {
        fate.set(q.shift()!, op.verdict);
        n++;
      }
      expect(n, `batch up to ${op.id} found nothing`).toBeGreaterThan(0);
    } else {
      const i = q.indexOf(op.id);
      expect(i, `verdict for ${op.id} not queued`).toBeGreaterThanOrEqual(0);
      q.splice(i, 1);
      fate.set(op.id, op.verdict);
    }
  }
  return fate;
}

describe('OutstandingTable: the batch coalescer', () => {
  it('batches a contiguous prefix with the same verdict, across the u32 wrap', () => {
    const list = ids(0xfffffffd, 6); // fffffffd fffffffe ffffffff 0 1 2
    const t = table(true, list);
    for (const id of list.slice(0, 5)) t.decide(id, NF_ACCEPT);
    const ops = t.drain();
    expect(ops).toEqual([
      { batch: true, verdict: NF_ACCEPT, id: 1, firstId: 0xfffffffd, count: 5 },
    ]);
    expect(t.size).toBe(1);
    expect(t.get(2)?.state).toBe(0);
  });

  it('never batches past an undecided packet: later ones go one by one', () => {
    const t = table(true, [10, 11, 12, 13]);
    t.decide(10, NF_ACCEPT);
    t.decide(12, NF_ACCEPT);
    t.decide(13, NF_ACCEPT);
    const ops = t.drain();
    expect(ops.map((o) => [o.batch, o.id])).toEqual([
      [false, 10],
      [false, 12],
      [false, 13],
    ]);
    // 11 decided later: it is now the head alone.
    t.decide(11, NF_DROP);
    expect(t.drain()).toEqual([{ batch: false, verdict: NF_DROP, id: 11, firstId: 11, count: 1 }]);
    expect(t.size).toBe(0);
  });

  it('splits runs at a different verdict and at verdicts with options', () => {
    const t = table(true, ids(1, 7));
    t.decide(1, NF_ACCEPT);
    t.decide(2, NF_ACCEPT);
    t.decide(3, NF_DROP);
    t.decide(4, NF_DROP);
    t.decide(5, NF_ACCEPT, { mark: 1 });
    t.decide(6, NF_ACCEPT);
    t.decide(7, NF_ACCEPT);
    const ops = t.drain();
    expect(ops.map((o) => [o.batch, o.verdict, o.id, o.count])).toEqual([
      [true, NF_ACCEPT, 2, 2],
      [true, NF_DROP, 4, 2],
      [false, NF_ACCEPT, 5, 1],
      [true, NF_ACCEPT, 7, 2],
    ]);
    expect(ops[2]!.options).toEqual({ mark: 1 });
  });

  it('without batching every decision is its own message, in decision order', () => {
    const t = table(false, [1, 2, 3]);
    t.decide(3, NF_DROP);
    t.decide(1, NF_ACCEPT);
    t.decide(2, NF_ACCEPT);
    expect(t.drain().map((o) => [o.batch, o.id])).toEqual([
      [false, 3],
      [false, 1],
      [false, 2],
    ]);
  });

  it('property: coalesced ops give every packet exactly its own verdict in the kernel model', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.array(fc.constantFrom('a', 'd', 'm', 'w'), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        (start, plan, rounds) => {
          const list = ids(start, plan.length);
          const t = table(true, list);
          const want = new Map<number, number>();
          const kernelQueue = [...list];
          const fate = new Map<number, number>();
          // Decide in several rounds; 'w' packets are decided only in the last round.
          for (let r = 0; r < rounds; r++) {
            const last = r === rounds - 1;
            list.forEach((id, i) => {
              const kind = plan[i]!;
              if (want.has(id) || (kind === 'w' && !last) || (!last && (i + r) % rounds !== 0))
                return;
              const verdict = kind === 'd' ? NF_DROP : NF_ACCEPT;
              t.decide(id, verdict, kind === 'm' ? { mark: 7 } : undefined);
              want.set(id, verdict);
            });
            const ops = t.drain();
            for (const [id, v] of applyInKernel(kernelQueue, ops)) {
              expect(fate.has(id)).toBe(false);
              fate.set(id, v);
              kernelQueue.splice(kernelQueue.indexOf(id), 1);
            }
          }
          expect(fate).toEqual(want);
          expect(t.size).toBe(0);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('OutstandingTable: errors and deadlines', () => {
  it('a verdict for an unknown or decided id is a typed error', () => {
    const t = table(true, [5]);
    expect(() => t.decide(6, NF_ACCEPT)).toThrow(
      expect.objectContaining({ name: 'NfQueueError', code: 'UNKNOWN_PACKET' }),
    );
    t.decide(5, NF_ACCEPT);
    expect(() => t.decide(5, NF_DROP)).toThrow(
      expect.objectContaining({ code: 'ALREADY_DECIDED' }),
    );
    t.drain();
    try {
      t.decide(5, NF_DROP);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NfQueueError);
      expect((e as NfQueueError).code).toBe('UNKNOWN_PACKET');
      expect((e as NfQueueError).details.ids).toEqual([5]);
    }
  });

  it('expire gives the default verdict to waiting packets past their deadline, in order', () => {
    const t = new OutstandingTable(true);
    t.add(1, 100);
    t.add(2, 100);
    t.add(3, 200);
    t.add(4, 300);
    t.decide(2, NF_ACCEPT);
    expect(t.nextDeadline()).toBe(100);
    expect(t.expire(150, NF_DROP)).toBe(1);
    expect(t.get(1)?.byDeadline).toBe(true);
    expect(t.drain().map((o) => [o.batch, o.verdict, o.id])).toEqual([
      [false, NF_DROP, 1],
      [false, NF_ACCEPT, 2],
    ]);
    expect(t.nextDeadline()).toBe(200);
    expect(t.expire(1000, NF_DROP)).toBe(2);
    expect(t.drain()).toEqual([{ batch: true, verdict: NF_DROP, id: 4, firstId: 3, count: 2 }]);
    expect(t.nextDeadline()).toBeUndefined();
  });

  it('decideAll (close) decides every waiting packet and nothing else', () => {
    const t = table(true, [1, 2, 3]);
    t.decide(2, NF_DROP);
    expect(t.decideAll(NF_ACCEPT)).toBe(2);
    expect(t.drain().map((o) => [o.verdict, o.id])).toEqual([
      [NF_ACCEPT, 1],
      [NF_DROP, 2],
      [NF_ACCEPT, 3],
    ]);
  });

  it('stays compact under a long stream with one old packet waiting', () => {
    const t = new OutstandingTable(true);
    t.add(0, 10);
    for (let i = 1; i < 5000; i++) {
      t.add(i, 10 + i);
      t.decide(i, NF_ACCEPT);
      t.drain();
    }
    expect(t.size).toBe(1);
    t.decide(0, NF_ACCEPT);
    expect(t.drain()).toEqual([{ batch: false, verdict: NF_ACCEPT, id: 0, firstId: 0, count: 1 }]);
    expect(t.size).toBe(0);
  });

  it('moves the waiting packets to the front when most of the arrival list is sent, and reuses its slots', () => {
    const t = new OutstandingTable(true);
    const fifo = () => (t as unknown as { fifo: unknown[] }).fifo;
    for (let round = 0; round < 20; round++) {
      const base = round * 4000;
      for (let i = 0; i < 3000; i++) t.add(base + i, 1e9);
      for (let i = 0; i < 2000; i++) t.decide(base + i, NF_ACCEPT);
      expect(t.drain()).toEqual([
        { batch: true, verdict: NF_ACCEPT, id: base + 1999, firstId: base, count: 2000 },
      ]);
      // Compacted: the 1,000 waiting ones are found by id at their new places.
      for (const i of [2000, 2001, 2500, 2999]) expect(t.get(base + i)?.id).toBe(base + i);
      expect(t.get(base + 1999)).toBeUndefined();
      t.add(base + 3000, 1e9);
      for (let i = 2000; i <= 3000; i++) t.decide(base + i, i % 2 ? NF_DROP : NF_ACCEPT);
      const ops = t.drain();
      expect(ops).toHaveLength(1001);
      expect(ops.every((o, k) => o.id === base + 2000 + k && o.count === 1)).toBe(true);
      expect(t.size).toBe(0);
      // The next round's first packet must not be taken for a stale one.
      t.add(base + 3001, 1e9);
      t.decide(base + 3001, NF_ACCEPT);
      expect(t.drain()).toEqual([
        { batch: false, verdict: NF_ACCEPT, id: base + 3001, firstId: base + 3001, count: 1 },
      ]);
    }
    // Slots are reused, never appended round after round.
    expect(fifo().length).toBeLessThanOrEqual(3001);
    expect(fifo().every((e) => e === undefined)).toBe(true);
  });

  it('finds packets by id where the kernel skipped ids, and by scanning when ids arrive out of order', () => {
    // The kernel skips an id when it could not deliver a packet (socket full).
    const t = table(true, [7, 8, 10, 11, 15, 0xffffffff, 0, 2]);
    for (const id of [7, 8, 10, 11, 15, 0xffffffff, 0, 2]) expect(t.get(id)?.id).toBe(id);
    for (const id of [6, 9, 12, 14, 16, 1, 3]) expect(t.get(id)).toBeUndefined();
    t.decide(11, NF_DROP);
    t.decide(0, NF_ACCEPT);
    t.drain();
    expect(t.get(11)).toBeUndefined();
    expect(t.get(15)?.id).toBe(15);
    expect(t.size).toBe(6);
    // Out of order (not what the kernel does): still found, and an id that is
    // already waiting replaces the old entry.
    const u = table(true, [5, 3, 9]);
    expect([u.get(5)?.id, u.get(3)?.id, u.get(9)?.id, u.get(4)]).toEqual([5, 3, 9, undefined]);
    const again = u.add(3, 2000);
    expect(u.get(3)).toBe(again);
    expect(u.size).toBe(3);
  });
});
