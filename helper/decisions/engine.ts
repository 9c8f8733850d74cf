/**
 * The decision for one new connection: the rules first, then a prompt. The
 * caller owns the packet's deadline (the kernel holds the packet until it gets a
 * verdict, and only the caller gives verdicts): when it stops waiting it calls
 * abandon(), and the request leaves its prompt. docs/helper.md, "The deadline path".
 */
import * as v from 'valibot';
import { Settings, type ConnectionRequest, type Rule } from '../protocol/model.js';
import { systemClock, type Clock } from '../common/clock.js';
import { DecisionsError } from './errors.js';
import {
  ruleDecision,
  type Decision,
  type DecisionSettings,
  type PromptBroker,
} from './prompts.js';

/** What the engine needs from the rules (RuleStore implements it). */
export interface RuleMatcher {
  match(request: ConnectionRequest, now?: number): Rule | undefined;
}

export interface DecisionEngineOptions {
  rules: RuleMatcher;
  broker: PromptBroker;
  clock?: Clock;
}

export interface DecideOptions {
  /** Epoch ms after which the caller no longer waits (a deadline already past decides at once). */
  deadline: number;
}

export interface EngineCounters {
  decided: number;
  byRule: number;
  prompted: number;
  /** Requests past their deadline: at decide(), or abandoned under a prompt (should stay 0). */
  deadline: number;
  /** Rule matching threw: the default action was given. */
  errors: number;
}

const SettingsPatch = v.partial(
  v.pick(Settings, ['defaultAction', 'promptTimeoutSeconds', 'noGuiPolicy']),
);

export class DecisionEngine {
  readonly #rules: RuleMatcher;
  readonly #broker: PromptBroker;
  readonly #clock: Clock;
  /** Requests waiting under a prompt, until answered or abandoned. */
  readonly #waiting = new Map<
    ConnectionRequest,
    { cancel: () => void; resolve: (d: Decision) => void }
  >();
  readonly #errorListeners = new Set<(e: DecisionsError, request: ConnectionRequest) => void>();
  readonly counters: EngineCounters = {
    decided: 0,
    byRule: 0,
    prompted: 0,
    deadline: 0,
    errors: 0,
  };

  constructor(options: DecisionEngineOptions) {
    this.#rules = options.rules;
    this.#broker = options.broker;
    this.#clock = options.clock ?? systemClock;
  }

  get settings(): Readonly<DecisionSettings> {
    return this.#broker.settings;
  }

  /** Validated run-time change (default action, prompt timeout, no-GUI policy). */
  setSettings(patch: Partial<DecisionSettings>): void {
    const parsed = v.safeParse(SettingsPatch, patch);
    if (!parsed.success) {
      throw new DecisionsError('INVALID_RULE', `invalid settings: ${parsed.issues[0]?.message}`);
    }
    this.#broker.setSettings(parsed.output);
  }

  /** Rule matching failed for a request (reported, and the default action given). */
  onError(listener: (e: DecisionsError, request: ConnectionRequest) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  decide(request: ConnectionRequest, options: DecideOptions): Promise<Decision> {
    this.counters.decided++;
    const now = this.#clock.now();
    if (options.deadline <= now) {
      this.counters.deadline++;
      return Promise.resolve(this.#fallback('deadline'));
    }
    let rule: Rule | undefined;
    try {
      rule = this.#rules.match(request, now);
    } catch (e) {
      this.counters.errors++;
      const err =
        e instanceof DecisionsError
          ? e
          : new DecisionsError('INVALID_RULE', `matching rules: ${String(e)}`, { cause: e });
      for (const l of this.#errorListeners) l(err, request);
      return Promise.resolve(this.#fallback('error'));
    }
    if (rule) {
      this.counters.byRule++;
      return Promise.resolve(ruleDecision(rule));
    }
    this.counters.prompted++;
    const held = this.#broker.ask(request);
    return new Promise<Decision>((resolve) => {
      this.#waiting.set(request, { cancel: () => held.cancel(), resolve });
      void held.decision.then((d) => {
        if (this.#waiting.delete(request)) resolve(d);
      });
    });
  }

  /**
   * The caller stopped waiting for `request` (its deadline passed): it leaves its
   * prompt, and decide() resolves with the default action, reason `deadline`.
   */
  abandon(request: ConnectionRequest): void {
    const waiting = this.#waiting.get(request);
    if (!waiting) return;
    this.#waiting.delete(request);
    waiting.cancel();
    this.counters.deadline++;
    waiting.resolve(this.#fallback('deadline'));
  }

  #fallback(reason: Decision['reason']): Decision {
    return { action: this.#broker.settings.defaultAction, reason, ruleId: null };
  }
}
