import type { NfQueueError } from './errors.js';
import { NfQueue, type NfQueueCounters, type NfQueueOptions, type NfQueuePacket } from './queue.js';
import type { QueueProcStats } from './types.js';

export interface NfQueueGroupOptions extends Omit<NfQueueOptions, 'queue' | 'transport'> {
  /** The queues to bind: a list, or the range of `--queue-balance from:to` (inclusive). */
  queues: number[] | { from: number; to: number };
}

function queueList(q: NfQueueGroupOptions['queues']): number[] {
  if (Array.isArray(q)) return [...new Set(q)];
  if (!Number.isInteger(q.from) || !Number.isInteger(q.to) || q.from > q.to) {
    throw new RangeError(`bad queue range ${q.from}:${q.to}`);
  }
  if (q.to - q.from >= 1024) throw new RangeError('at most 1024 queues in a group');
  return Array.from({ length: q.to - q.from + 1 }, (_, i) => q.from + i);
}

/**
 * Several queues as one (fan-out: `-j NFQUEUE --queue-balance 20:23`, with
 * `--queue-cpu-fanout` or by flow hash). Each queue has its own socket and
 * its own packet ids, so packets and verdicts never mix; listeners, the
 * iterator, errors and counters are merged.
 */
export class NfQueueGroup {
  private constructor(readonly queues: readonly NfQueue[]) {}

  static async open(options: NfQueueGroupOptions): Promise<NfQueueGroup> {
    const { queues, ...rest } = options;
    const list = queueList(queues);
    if (list.length === 0) throw new RangeError('no queues given');
    const opened: NfQueue[] = [];
    try {
      for (const queue of list) opened.push(await NfQueue.open({ ...rest, queue }));
    } catch (error) {
      await Promise.allSettled(opened.map((q) => q.close()));
      throw error;
    }
    return new NfQueueGroup(opened);
  }

  onPacket(listener: (packet: NfQueuePacket) => void): () => void {
    const offs = this.queues.map((q) => q.onPacket(listener));
    return () => offs.forEach((off) => off());
  }

  onError(listener: (error: NfQueueError) => void): () => void {
    const offs = this.queues.map((q) => q.onError(listener));
    return () => offs.forEach((off) => off());
  }

  /** Packets of every queue, in arrival order. */
  [Symbol.asyncIterator](): AsyncIterator<NfQueuePacket> {
    const iterators = this.queues.map((q) => q[Symbol.asyncIterator]());
    const pending = new Map<number, Promise<{ i: number; r: IteratorResult<NfQueuePacket> }>>();
    const pull = (i: number) =>
      pending.set(
        i,
        iterators[i]!.next().then((r) => ({ i, r })),
      );
    iterators.forEach((_, i) => pull(i));
    return {
      next: async (): Promise<IteratorResult<NfQueuePacket>> => {
        while (pending.size > 0) {
          const { i, r } = await Promise.race(pending.values());
          if (r.done) {
            pending.delete(i);
            continue;
          }
          pull(i);
          return r;
        }
        return { value: undefined, done: true };
      },
      return: async (): Promise<IteratorResult<NfQueuePacket>> => {
        pending.clear();
        await Promise.all(iterators.map((it) => it.return?.()));
        return { value: undefined, done: true };
      },
    };
  }

  /** Counters summed over the queues. */
  get counters(): NfQueueCounters {
    const sum = { ...this.queues[0]!.counters };
    for (const q of this.queues.slice(1)) {
      for (const k of Object.keys(sum) as (keyof NfQueueCounters)[]) sum[k] += q.counters[k];
    }
    return sum;
  }

  async procStats(): Promise<(QueueProcStats | undefined)[]> {
    return Promise.all(this.queues.map((q) => q.procStats()));
  }

  async close(options: { verdict?: 'accept' | 'drop' } = {}): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close(options)));
  }
}
