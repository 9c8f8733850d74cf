/**
 * The queue of requestBatch() calls: pulls their messages lazily into member
 * requests, counts the kernel's refusals per index, and settles each batch once
 * with one timer (reset by progress) and one abort listener for all its members.
 */
import { NetlinkAbortError, NetlinkError, NetlinkTimeoutError } from './errors.js';
import {
  newPending,
  type Batch,
  type BatchResult,
  type Pending,
  type RequestOptions,
} from './requests.js';

export class BatchQueue {
  readonly #batches: Batch[] = [];

  /** `inFlight`: the connection's requests sent and not yet answered. */
  constructor(private readonly inFlight: () => Iterable<Pending>) {}

  get length(): number {
    return this.#batches.length;
  }

  /** Queues a batch; the caller schedules the flush that sends its members. */
  add(
    messages: Iterable<Uint8Array | Error>,
    options: RequestOptions & { ackEach?: boolean },
    operation: string,
    defaultTimeoutMs: number,
  ): Promise<BatchResult> {
    return new Promise((resolve, reject) => {
      const b: Batch = {
        source: messages[Symbol.iterator](),
        ackEach: options.ackEach ?? false,
        next: 0,
        exhausted: false,
        outstanding: 0,
        ok: 0,
        errors: [],
        operation,
        timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
        timer: undefined,
        progress: 0,
        done: false,
        signal: options.signal,
        onAbort: undefined,
        resolve,
        reject,
      };
      if (b.signal) {
        b.onAbort = () => this.fail(b, new NetlinkAbortError(operation));
        b.signal.addEventListener('abort', b.onAbort, { once: true });
      }
      if (b.timeoutMs > 0 && Number.isFinite(b.timeoutMs)) {
        let seen = -1;
        const check = () => {
          if (b.done) return;
          if (b.progress !== seen) {
            seen = b.progress;
            b.timer = setTimeout(check, b.timeoutMs);
            return;
          }
          this.fail(b, new NetlinkTimeoutError(operation, b.timeoutMs));
        };
        b.timer = setTimeout(check, b.timeoutMs);
      }
      this.#batches.push(b);
    });
  }

  /** The next member request to send, or undefined when no queued batch has one left. */
  nextMember(): Pending | undefined {
    while (this.#batches.length > 0) {
      const member = this.#pull(this.#batches[0]!);
      if (member) return member;
      if (this.#batches[0]?.exhausted) this.#batches.shift();
    }
    return undefined;
  }

  /** A member was answered: counts it, and settles the batch when it was the last. */
  settleMember(b: Batch, p: Pending, error?: Error): void {
    b.outstanding--;
    b.progress++;
    if (b.done) return;
    if (!error) b.ok++;
    else if (error instanceof NetlinkError && error.operation === b.operation)
      b.errors.push({ index: p.index, error });
    else {
      this.fail(b, error);
      return;
    }
    this.#finishIfDone(b);
  }

  fail(b: Batch, error: Error): void {
    if (b.done) return;
    b.done = true;
    b.exhausted = true;
    this.#release(b);
    // Members still in flight are dropped when their answers come.
    for (const p of this.inFlight()) if (p.batch === b) p.discarding = true;
    b.reject(error);
  }

  failAll(error: Error): void {
    for (const b of [...this.#batches]) this.fail(b, error);
  }

  /** Pulls the next message of a batch into a member request, or undefined when none is left. */
  #pull(b: Batch): Pending | undefined {
    while (!b.exhausted) {
      let item: IteratorResult<Uint8Array | Error>;
      try {
        item = b.source.next();
      } catch (error) {
        this.fail(b, error as Error);
        return undefined;
      }
      if (item.done) {
        b.exhausted = true;
        break;
      }
      const index = b.next++;
      if (item.value instanceof Error) {
        b.errors.push({ index, error: item.value });
        continue;
      }
      if (item.value.byteLength < 16) {
        b.errors.push({ index, error: new RangeError('message shorter than nlmsghdr') });
        continue;
      }
      b.outstanding++;
      return newPending(b.operation, item.value, { batch: b, index, silent: !b.ackEach });
    }
    this.#finishIfDone(b);
    return undefined;
  }

  #finishIfDone(b: Batch): void {
    if (b.done || !b.exhausted || b.outstanding > 0) return;
    b.done = true;
    this.#release(b);
    b.errors.sort((x, y) => x.index - y.index);
    b.resolve({ ok: b.ok, errors: b.errors });
  }

  #release(b: Batch): void {
    if (b.timer) clearTimeout(b.timer);
    if (b.signal && b.onAbort) b.signal.removeEventListener('abort', b.onAbort);
    const i = this.#batches.indexOf(b);
    if (i >= 0) this.#batches.splice(i, 1);
  }
}
