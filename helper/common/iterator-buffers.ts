interface IteratorState<T> {
  buffer: T[];
  head: number;
  waiter: (() => void) | undefined;
  done: boolean;
}

/**
 * The async iterators of one event source: each buffers the values offered
 * while it is open, for a consumer that reads at its own pace, and ends when
 * the source ends (after yielding what it holds).
 */
export class IteratorBuffers<T> {
  private readonly open = new Set<IteratorState<T>>();

  /**
   * @param limit values a buffer holds; a value offered to a full buffer is
   *   dropped, unless `stale` is given: then the stale values are dropped instead.
   * @param stale values no longer worth yielding (skipped when read).
   */
  constructor(
    private readonly limit: number,
    private readonly stale?: (value: T) => boolean,
  ) {}

  /** Iterators open now. */
  get size(): number {
    return this.open.size;
  }

  /** A new iterator; one made after the end is done at once. */
  create(ended: boolean): AsyncIterator<T> {
    const state: IteratorState<T> = { buffer: [], head: 0, waiter: undefined, done: ended };
    this.open.add(state);
    return {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          while (state.head < state.buffer.length) {
            const value = state.buffer[state.head]!;
            state.buffer[state.head++] = undefined as unknown as T;
            if (state.head === state.buffer.length) {
              state.buffer = [];
              state.head = 0;
            }
            if (!this.stale?.(value)) return { value, done: false };
          }
          if (state.done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (state.waiter = resolve));
          state.waiter = undefined;
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        state.done = true;
        state.buffer = [];
        state.head = 0;
        this.open.delete(state);
        state.waiter?.();
        return { value: undefined, done: true };
      },
    };
  }

  /** Hands `value` to every open iterator; returns how many had no room for it. */
  offer(value: T): number {
    let dropped = 0;
    for (const it of this.open) {
      if (it.buffer.length - it.head >= this.limit) {
        const stale = this.stale;
        if (!stale) {
          dropped++;
          continue;
        }
        it.buffer = it.buffer.slice(it.head).filter((v) => !stale(v));
        it.head = 0;
      }
      it.buffer.push(value);
      it.waiter?.();
    }
    return dropped;
  }

  /** Ends every iterator: each yields what it holds, then is done. */
  endAll(): void {
    for (const it of [...this.open]) {
      it.done = true;
      it.waiter?.();
    }
    this.open.clear();
  }
}
