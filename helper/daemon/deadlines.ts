/**
 * Deadlines for work that nearly always finishes long before them (a decision is due
 * 31 s after its packet and usually takes microseconds): one timer for all of them
 * instead of a setTimeout and clearTimeout per packet.
 *
 * Entries sit in a ring in insertion order, which is deadline order as long as
 * deadlines do not decrease; one that is earlier than the previous one gets a timer of
 * its own. A cancelled entry is only marked: the ring drops it when it reaches the
 * head, and is compacted when cancelled entries pile up behind a long-lived one (an
 * open prompt). A Set with an add and a delete per packet allocated a new hash table
 * on almost every call (V8 shrinks and regrows it around one element), which was a
 * measurable part of the verdict loop's garbage (docs/benchmarks.md).
 */

interface DeadlineEntry {
  at: number;
  /** null once cancelled or fired. */
  fire: (() => void) | null;
}

const MIN_CAPACITY = 16;

export class Deadlines {
  private ring: (DeadlineEntry | undefined)[] = new Array<DeadlineEntry | undefined>(MIN_CAPACITY);
  private mask = MIN_CAPACITY - 1;
  /** Positions only ever grow; slots are `position & mask`. */
  private head = 0;
  private tail = 0;
  private live = 0;
  private lastAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Pending entries (for tests). */
  get size(): number {
    return this.live;
  }

  /** Slots in use, cancelled ones included (for tests: stays bounded). */
  get slots(): number {
    return this.tail - this.head;
  }

  /** Calls `fire` at `at` (epoch ms) unless the returned function is called first. */
  add(at: number, fire: () => void): () => void {
    if (at < this.lastAt) {
      const t = setTimeout(fire, Math.max(0, at - this.now()));
      return () => clearTimeout(t);
    }
    this.lastAt = at;
    const entry: DeadlineEntry = { at, fire };
    this.push(entry);
    this.live++;
    // The timer stays armed while the ring empties and fills again (the usual case: one
    // decision at a time), but keeps the process alive only while something waits.
    if (this.timer === undefined) this.arm(at);
    else if (this.live === 1) this.timer.ref();
    return () => {
      if (entry.fire === null) return;
      entry.fire = null;
      this.live--;
      this.dropCancelledHead();
      if (this.live === 0) this.timer?.unref();
      else if (this.tail - this.head > 4 * this.live + MIN_CAPACITY) this.compact();
    };
  }

  /** Drops every pending entry without firing it. */
  clear(): void {
    for (let i = this.head; i < this.tail; i++) {
      const e = this.ring[i & this.mask];
      if (e) e.fire = null;
      this.ring[i & this.mask] = undefined;
    }
    this.head = this.tail = this.live = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private push(entry: DeadlineEntry): void {
    if (this.tail - this.head === this.ring.length) this.resize(this.ring.length * 2);
    this.ring[this.tail++ & this.mask] = entry;
  }

  private dropCancelledHead(): void {
    while (this.head < this.tail) {
      const slot = this.head & this.mask;
      if (this.ring[slot]!.fire !== null) return;
      this.ring[slot] = undefined;
      this.head++;
    }
  }

  /** Keeps the entries still pending, in order, in a ring sized for them. */
  private compact(): void {
    const kept: DeadlineEntry[] = [];
    for (let i = this.head; i < this.tail; i++) {
      const e = this.ring[i & this.mask]!;
      if (e.fire !== null) kept.push(e);
    }
    let capacity = MIN_CAPACITY;
    while (capacity < kept.length * 2) capacity *= 2;
    this.ring = new Array<DeadlineEntry | undefined>(capacity);
    this.mask = capacity - 1;
    for (let i = 0; i < kept.length; i++) this.ring[i] = kept[i];
    this.head = 0;
    this.tail = kept.length;
  }

  private resize(capacity: number): void {
    const next = new Array<DeadlineEntry | undefined>(capacity);
    const n = this.tail - this.head;
    for (let i = 0; i < n; i++) next[i] = this.ring[(this.head + i) & this.mask];
    this.ring = next;
    this.mask = capacity - 1;
    this.head = 0;
    this.tail = n;
  }

  private arm(at: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - this.now()));
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.now();
    while (this.head < this.tail) {
      const slot = this.head & this.mask;
      const entry = this.ring[slot]!;
      const fire = entry.fire;
      if (fire !== null && entry.at > now) {
        this.arm(entry.at);
        return;
      }
      this.ring[slot] = undefined;
      this.head++;
      if (fire === null) continue;
      entry.fire = null;
      this.live--;
      fire();
    }
  }
}
