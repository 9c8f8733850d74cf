/** Reconnect delays for the helper client: exponential with full jitter,
 * capped, so that many GUIs restarting at once do not hammer the helper. */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  factor?: number;
  /** Injectable for tests: returns a number in [0, 1). */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 250;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.random = options.random ?? Math.random;
    if (this.initialMs <= 0 || this.maxMs < this.initialMs || this.factor < 1) {
      throw new RangeError('Backoff: need 0 < initialMs <= maxMs and factor >= 1');
    }
  }

  /** The delay before the next attempt. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
    this.attempt++;
    return Math.max(1, Math.floor(this.random() * ceiling));
  }

  /** Call after a successful connection. */
  reset(): void {
    this.attempt = 0;
  }
}
