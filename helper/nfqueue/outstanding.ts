import { NfQueueError } from './errors.js';
import { isPlainVerdict, type VerdictOptions } from './encode.js';

export const WAITING = 0;
export const DECIDED = 1;
export const SENT = 2;
export type EntryState = typeof WAITING | typeof DECIDED | typeof SENT;

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
 */
export class OutstandingTable {
  private readonly byId = new Map<number, PendingEntry>();
  private fifo: PendingEntry[] = [];
  private head = 0;
  private decided: PendingEntry[] = [];

  constructor(private readonly batching: boolean) {}

  /** Packets without a verdict sent yet (waiting or decided). */
  get size(): number {
    return this.byId.size;
  }

  /** Decisions recorded but not drained. */
  get undrained(): number {
    return this.decided.length;
  }

  get(id: number): PendingEntry | undefined {
    return this.byId.get(id);
  }

  add(id: number, deadline: number): PendingEntry {
    const stale = this.byId.get(id);
    // Only after 2^32 packets with one never answered: forget the old one.
    if (stale) stale.state = SENT;
    const e: PendingEntry = {
      id,
      deadline,
      state: WAITING,
      verdict: 0,
      options: undefined,
      byDeadline: false,
    };
    this.byId.set(id, e);
    this.fifo.push(e);
    return e;
  }

  /** Records a verdict; throws NfQueueError for an unknown or decided id. */
  decide(id: number, verdict: number, options?: VerdictOptions, byDeadline = false): PendingEntry {
    const e = this.byId.get(id);
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
    this.decided.push(e);
  }

  /** Gives `verdict` to every waiting packet whose deadline is <= now, in
   * order; returns how many. */
  expire(now: number, verdict: number): number {
    this.popSent();
    let n = 0;
    for (let i = this.head; i < this.fifo.length; i++) {
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
    for (let i = this.head; i < this.fifo.length; i++) {
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
    for (let i = this.head; i < this.fifo.length; i++) {
      const e = this.fifo[i]!;
      if (e.state === WAITING) return e.deadline;
    }
    return undefined;
  }

  private popSent(): void {
    while (this.head < this.fifo.length && this.fifo[this.head]!.state === SENT) {
      this.fifo[this.head] = undefined as unknown as PendingEntry;
      this.head++;
    }
    if (this.head === this.fifo.length) {
      this.fifo = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    }
  }

  private send(e: PendingEntry): void {
    e.state = SENT;
    if (this.byId.get(e.id) === e) this.byId.delete(e.id);
  }

  /** The messages for every decision recorded since the last drain. */
  drain(): VerdictOp[] {
    const ops: VerdictOp[] = [];
    if (this.decided.length === 0) return ops;
    if (this.batching) {
      let run: VerdictOp | undefined;
      const endRun = () => {
        if (run) ops.push(run.count > 1 ? run : { ...run, batch: false });
        run = undefined;
      };
      this.popSent();
      while (this.head < this.fifo.length) {
        const e = this.fifo[this.head]!;
        if (e.state === WAITING) break;
        if (e.state === DECIDED) {
          if (e.options === undefined) {
            if (run && run.verdict === e.verdict) {
              run.id = e.id;
              run.count++;
            } else {
              endRun();
              run = { batch: true, verdict: e.verdict, id: e.id, firstId: e.id, count: 1 };
            }
          } else {
            endRun();
            ops.push(single(e));
          }
          this.send(e);
        }
        this.fifo[this.head] = undefined as unknown as PendingEntry;
        this.head++;
      }
      endRun();
      this.popSent();
    }
    for (const e of this.decided) {
      if (e.state !== DECIDED) continue;
      ops.push(single(e));
      this.send(e);
    }
    this.decided = [];
    return ops;
  }
}

function single(e: PendingEntry): VerdictOp {
  const op: VerdictOp = { batch: false, verdict: e.verdict, id: e.id, firstId: e.id, count: 1 };
  if (e.options) op.options = e.options;
  return op;
}
