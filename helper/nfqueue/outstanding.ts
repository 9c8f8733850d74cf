import { NfQueueError } from './errors.js';
import { isPlainVerdict, type VerdictOptions } from './encode.js';

export const WAITING = 0;
const DECIDED = 1;
const SENT = 2;
type EntryState = typeof WAITING | typeof DECIDED | typeof SENT;

/** A packet waiting for its verdict, in arrival (= id) order. */
export interface PendingEntry {
  readonly id: number;
  /** When the default verdict is given, in the clock of the table. */
  readonly deadline: number;
  state: EntryState;
  verdict: number;
  options: VerdictOptions | undefined;
  /** The verdict came from the deadline (or close), not from the caller. */
  byDeadline: boolean;
}

/** One message to send: a single verdict, or a batch for every id <= `id`. */
export interface VerdictOp {
  batch: boolean;
  verdict: number;
  id: number;
  /** Packets this op decides (the run length of a batch). */
  count: number;
  /** The first id a batch covers. */
  firstId: number;
  options?: VerdictOptions;
}

/** Receives the messages drain work out, one call per message, without
 * allocating (see OutstandingTable.drainTo). */
export interface VerdictOpSink {
  op(
    batch: boolean,
    verdict: number,
    id: number,
    firstId: number,
    count: number,
    options: VerdictOptions | undefined,
  ): void;
}

/**
 * The packets of one queue that wait for a verdict: decisions, deadlines and
 * the batch coalescer. Pure (no timers, no sockets), so it is tested alone.
 *
 * Coalescing: NFQNL_MSG_VERDICT_BATCH with id N gives the verdict to every
 * packet in the kernel's queue up to N (in queue order, wrap-aware). So a batch
 * may only cover a contiguous prefix of the waiting packets, in arrival order,
 * that were all given the same plain verdict (no mark, connmark, payload or
 * priority). Everything else is sent as single verdicts. Ids are u32 and wrap:
 * order is arrival order, never numeric order.
 *
 * Lookup by id needs no Map: the kernel numbers a queue's packets 1, 2, 3, ...
 * (u32, wrapping) in the order it sends them, so an id's place in the arrival
 * list is its distance from the oldest entry's id; where the kernel skipped ids
 * (a packet it could not deliver) a binary search over the distances finds it.
 * The per-packet path allocates only the entry itself (a Map shrinks and
 * regrows its table as packets come and go, which showed up as GC pauses).
 */
export class OutstandingTable {
  /** Arrival list: entries [head, tail). The array is never shortened (a
   * `length = 0` drops its backing store, so the next push would allocate
   * again, every tick); slots past the tail hold undefined. */
  private fifo: PendingEntry[] = [];
  private head = 0;
  private tail = 0;
  private live = 0;
  private decided: PendingEntry[] = [];
  private decidedCount = 0;
  /** Ids in the list grow (mod 2^32) with the position: lookup by distance. */
  private ordered = true;

  constructor(private readonly batching: boolean) {}

  /** Packets without a verdict sent yet (waiting or decided). */
  get size(): number {
    return this.live;
  }

  /** Decisions recorded but not drained. */
  get undrained(): number {
    return this.decidedCount;
  }

  /** The entry with this id that has no verdict sent yet. */
  get(id: number): PendingEntry | undefined {
    const fifo = this.fifo;
    const head = this.head;
    const n = this.tail - head;
    if (n <= 0) return undefined;
    if (!this.ordered) {
      for (let i = head; i < this.tail; i++) {
        const e = fifo[i]!;
        if (e.id === id && e.state !== SENT) return e;
      }
      return undefined;
    }
    const base = fifo[head]!.id;
    const distance = (id - base) >>> 0;
    // The usual case: no ids were skipped, so the distance is the index.
    if (distance < n) {
      const e = fifo[head + distance]!;
      if (e.id === id) return e.state === SENT ? undefined : e;
    }
    // Ids were skipped before this one (or it is not here): distances grow with the index.
    let lo = 0;
    let hi = Math.min(n - 1, distance);
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const d = (fifo[head + mid]!.id - base) >>> 0;
      if (d === distance) {
        const e = fifo[head + mid]!;
        return e.state === SENT ? undefined : e;
      }
      if (d < distance) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  add(id: number, deadline: number): PendingEntry {
    const fifo = this.fifo;
    if (this.tail > this.head) {
      const base = fifo[this.head]!.id;
      const last = fifo[this.tail - 1]!.id;
      if (!this.ordered || (id - base) >>> 0 <= (last - base) >>> 0) {
        // Not after the newest id: a numbering the kernel does not produce, or
        // 2^32 packets with one never answered. Forget a live entry with this
        // id, and find entries by scanning until the list is empty again.
        const stale = this.get(id);
        if (stale) this.send(stale);
        this.ordered = false;
      }
    }
    const e: PendingEntry = {
      id,
      deadline,
      state: WAITING,
      verdict: 0,
      options: undefined,
      byDeadline: false,
    };
    fifo[this.tail++] = e;
    this.live++;
    return e;
  }

  /** Records a verdict; throws NfQueueError for an unknown or decided id. */
  decide(id: number, verdict: number, options?: VerdictOptions, byDeadline = false): PendingEntry {
    const e = this.get(id);
    if (!e)
      throw new NfQueueError('UNKNOWN_PACKET', `no packet with id ${id} is waiting for a verdict`, {
        ids: [id],
      });
    if (e.state !== WAITING) {
      throw new NfQueueError(
        'ALREADY_DECIDED',
        `packet ${id} already has a verdict${e.byDeadline ? ' (given by the deadline)' : ''}`,
        { ids: [id] },
      );
    }
    this.record(e, verdict, options, byDeadline);
    return e;
  }

  private record(
    e: PendingEntry,
    verdict: number,
    options: VerdictOptions | undefined,
    byDeadline: boolean,
  ): void {
    e.state = DECIDED;
    e.verdict = verdict;
    e.options = isPlainVerdict(options) ? undefined : options;
    e.byDeadline = byDeadline;
    this.decided[this.decidedCount++] = e;
  }

  /** Gives `verdict` to every waiting packet whose deadline is <= now, in
   * order; returns how many. */
  expire(now: number, verdict: number): number {
    this.popSent();
    let n = 0;
    for (let i = this.head; i < this.tail; i++) {
      const e = this.fifo[i]!;
      if (e.state !== WAITING) continue;
      if (e.deadline > now) break;
      this.record(e, verdict, undefined, true);
      n++;
    }
    return n;
  }

  /** Gives `verdict` to every waiting packet (closing). */
  decideAll(verdict: number): number {
    let n = 0;
    for (let i = this.head; i < this.tail; i++) {
      const e = this.fifo[i]!;
      if (e.state === WAITING) {
        this.record(e, verdict, undefined, true);
        n++;
      }
    }
    return n;
  }

  /** The earliest deadline of a waiting packet, or undefined. */
  nextDeadline(): number | undefined {
    this.popSent();
    for (let i = this.head; i < this.tail; i++) {
      const e = this.fifo[i]!;
      if (e.state === WAITING) return e.deadline;
    }
    return undefined;
  }

  private popSent(): void {
    const fifo = this.fifo;
    while (this.head < this.tail && fifo[this.head]!.state === SENT) {
      fifo[this.head] = undefined as unknown as PendingEntry;
      this.head++;
    }
    if (this.head === this.tail) {
      // Keep the array and its capacity: no reallocation per tick.
      this.head = 0;
      this.tail = 0;
      this.ordered = true;
    } else if (this.head > 1024 && this.head * 2 > this.tail) {
      const live = this.tail - this.head;
      fifo.copyWithin(0, this.head, this.tail);
      fifo.fill(undefined as unknown as PendingEntry, live, this.tail);
      this.head = 0;
      this.tail = live;
    }
  }

  private send(e: PendingEntry): void {
    e.state = SENT;
    this.live--;
  }

  /** The messages for every decision recorded since the last drain, as an array. */
  drain(): VerdictOp[] {
    const ops: VerdictOp[] = [];
    this.drainTo({
      op(batch, verdict, id, firstId, count, options) {
        const op: VerdictOp = { batch, verdict, id, firstId, count };
        if (options) op.options = options;
        ops.push(op);
      },
    });
    return ops;
  }

  /** The messages for every decision recorded since the last drain, handed to
   * `sink` one by one (in the order they must be sent). Returns how many. */
  drainTo(sink: VerdictOpSink): number {
    if (this.decidedCount === 0) return 0;
    let ops = 0;
    if (this.batching) {
      // The current run of plain verdicts: its verdict, first and last id, length.
      let runCount = 0;
      let runVerdict = 0;
      let runFirst = 0;
      let runLast = 0;
      this.popSent();
      const fifo = this.fifo;
      while (this.head < this.tail) {
        const e = fifo[this.head]!;
        if (e.state === WAITING) break;
        if (e.state === DECIDED) {
          if (e.options === undefined && runCount > 0 && runVerdict === e.verdict) {
            runLast = e.id;
            runCount++;
          } else {
            if (runCount > 0) {
              sink.op(runCount > 1, runVerdict, runLast, runFirst, runCount, undefined);
              ops++;
              runCount = 0;
            }
            if (e.options === undefined) {
              runVerdict = e.verdict;
              runFirst = runLast = e.id;
              runCount = 1;
            } else {
              sink.op(false, e.verdict, e.id, e.id, 1, e.options);
              ops++;
            }
          }
          this.send(e);
        }
        fifo[this.head] = undefined as unknown as PendingEntry;
        this.head++;
      }
      if (runCount > 0) {
        sink.op(runCount > 1, runVerdict, runLast, runFirst, runCount, undefined);
        ops++;
      }
      this.popSent();
    }
    const decided = this.decided;
    for (let i = 0; i < this.decidedCount; i++) {
      const e = decided[i]!;
      decided[i] = undefined as unknown as PendingEntry;
      if (e.state !== DECIDED) continue;
      sink.op(false, e.verdict, e.id, e.id, 1, e.options);
      ops++;
      this.send(e);
    }
    this.decidedCount = 0;
    return ops;
  }
}
