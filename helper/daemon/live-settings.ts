/**
 * The helper's settings while it runs, held in one place: the verdict loop, the prompt
 * broker and HelperState read them here at each use, so a `settings.set` is seen by all
 * of them at once and no copy has to be kept in step.
 */
import type { Action, Settings } from '../protocol/model.js';
import type { VerdictPolicy } from './interceptor.js';

/**
 * How long a packet's decision may take beyond the prompt timeout before it gets the
 * default verdict: a prompt opened just before the packet arrived is answered first.
 */
export const DECISION_SLACK_MS = 1000;

export class LiveSettings {
  #current: Settings;
  /** The verdict loop's view of these settings (Interceptor's `policy`). */
  readonly policy: VerdictPolicy;

  constructor(initial: Settings) {
    this.#current = { ...initial };
    const read = (): Settings => this.#current;
    this.policy = {
      get defaultAction(): Action {
        return read().defaultAction;
      },
      get decisionTimeoutMs(): number {
        return read().promptTimeoutSeconds * 1000 + DECISION_SLACK_MS;
      },
      get failClosed(): boolean {
        return !read().failOpen;
      },
      get inbound(): boolean {
        return read().interceptInbound;
      },
    };
  }

  get current(): Readonly<Settings> {
    return this.#current;
  }

  /** Replaces them all (already validated); returns the ones replaced. */
  replace(next: Settings): Settings {
    const previous = this.#current;
    this.#current = { ...next };
    return previous;
  }
}
