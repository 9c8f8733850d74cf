import type { NfQueuePacket } from './packet.js';

interface IteratorState {
  buffer: NfQueuePacket[];
  head: number;
  waiter: (() => void) | undefined;
  done: boolean;
}

/** The async iterators of one queue: each buffers copies of the packets that
 * arrive while it is open and yields those not yet decided. */
export class PacketIterators {
  private readonly open = new Set<IteratorState>();

  /** @param limit undecided packets a buffer may hold; the kernel holds at most
   * maxQueueLength undecided ones, so a limit at least that never loses one. */
  constructor(private readonly limit: number) {}

  /** A new iterator; one made after the end is done at once. */
  create(ended: boolean): AsyncIterator<NfQueuePacket> {
    const state: IteratorState = { buffer: [], head: 0, waiter: undefined, done: ended };
    this.open.add(state);
    const finish = () => {
      state.done = true;
      state.buffer = [];
      state.head = 0;
      this.open.delete(state);
      state.waiter?.();
    };
    return {
      next: async (): Promise<IteratorResult<NfQueuePacket>> => {
        for (;;) {
          while (state.head < state.buffer.length) {
            const p = state.buffer[state.head]!;
            state.buffer[state.head++] = undefined as unknown as NfQueuePacket;
            if (state.head === state.buffer.length) {
              state.buffer = [];
              state.head = 0;
            }
            if (!p.decided) return { value: p, done: false };
          }
          if (state.done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (state.waiter = resolve));
          state.waiter = undefined;
        }
      },
      return: async (): Promise<IteratorResult<NfQueuePacket>> => {
        finish();
        return { value: undefined, done: true };
      },
    };
  }

  /** Hands a copy of an undecided packet (its payload outlives the read) to every iterator. */
  offer(packet: NfQueuePacket): void {
    if (this.open.size === 0 || packet.decided) return;
    const copy = packet.copy();
    for (const it of this.open) {
      if (it.buffer.length - it.head >= this.limit) {
        // Only decided packets can be dropped from a buffer (see the limit).
        it.buffer = it.buffer.slice(it.head).filter((p) => !p.decided);
        it.head = 0;
      }
      it.buffer.push(copy);
      it.waiter?.();
    }
  }

  /** Ends every iterator: each yields its undecided packets, then is done. */
  endAll(): void {
    for (const it of [...this.open]) {
      it.done = true;
      it.waiter?.();
    }
    this.open.clear();
  }
}
