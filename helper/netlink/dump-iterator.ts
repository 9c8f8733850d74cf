/** Dumps as AsyncIterables: buffering, backpressure by pausing the socket, breaking off. */
import { DumpInterruptedError } from './errors.js';
import type { NetlinkMessage } from './message.js';
import type { Pending, RequestOptions, RequestOutcome } from './requests.js';

export interface DumpOptions extends RequestOptions {
  /** Called instead of throwing DumpInterruptedError when NLM_F_DUMP_INTR is seen. */
  onInterrupted?: () => void;
}

export interface DumpResult {
  messages: number;
  interrupted: boolean;
}

/** A finished dump's result; throws DumpInterruptedError if it was flagged inconsistent. */
export function finishDump(
  result: { messages: number; interrupted: boolean },
  options: DumpOptions,
): DumpResult {
  if (result.interrupted) {
    if (options.onInterrupted) options.onInterrupted();
    else throw new DumpInterruptedError(options.operation ?? 'dump');
  }
  return { messages: result.messages, interrupted: result.interrupted };
}

/** What the iterator needs of the connection. */
export interface DumpSource {
  /** Starts the dump: `onMessage` gets each message (copied), `expose` its request record. */
  start(
    onMessage: (msg: NetlinkMessage) => void,
    expose: (p: Pending) => void,
  ): Promise<RequestOutcome>;
  /** Messages buffered before reading is paused. */
  highWaterMark: number;
  pause(): void;
  resume(): void;
  /** Stops delivering the dump's messages (the consumer broke off). */
  abandon(p: Pending): void;
}

export function dumpIterator(
  source: DumpSource,
  options: DumpOptions,
): AsyncIterator<NetlinkMessage> {
  const buffered: NetlinkMessage[] = [];
  let head = 0;
  let done = false;
  let failure: Error | undefined;
  // Every waiting next() call: the protocol allows several at once.
  const waiters: (() => void)[] = [];
  let pausedHere = false;
  const notify = () => {
    for (const w of waiters.splice(0)) w();
  };
  const unpause = () => {
    if (pausedHere) {
      pausedHere = false;
      source.resume();
    }
  };
  let pending: Pending | undefined;
  const started = source
    .start(
      (msg) => {
        buffered.push(msg);
        if (buffered.length - head >= source.highWaterMark && !pausedHere) {
          pausedHere = true;
          source.pause();
        }
        notify();
      },
      (p) => (pending = p),
    )
    .then(
      (result) => {
        try {
          finishDump(result, options);
        } catch (error) {
          failure = error as Error;
        }
        done = true;
        notify();
      },
      (error: Error) => {
        failure = error;
        done = true;
        notify();
      },
    );
  void started;
  return {
    next: async (): Promise<IteratorResult<NetlinkMessage>> => {
      while (true) {
        if (head < buffered.length) {
          const value = buffered[head]!;
          buffered[head++] = undefined as unknown as NetlinkMessage;
          if (head > 1024 && head * 2 > buffered.length) {
            buffered.splice(0, head);
            head = 0;
          }
          if (buffered.length - head < source.highWaterMark / 2) unpause();
          return { value, done: false };
        }
        unpause();
        if (failure) throw failure;
        if (done) return { value: undefined, done: true };
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    return: async (): Promise<IteratorResult<NetlinkMessage>> => {
      unpause();
      if (!done && pending) source.abandon(pending);
      done = true;
      buffered.length = 0;
      notify(); // a next() still waiting ends too
      return { value: undefined, done: true };
    },
  };
}
