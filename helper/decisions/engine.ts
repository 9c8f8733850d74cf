/**
 * The decision for one new connection: the rules first, then a prompt; and
 * whatever happens, an answer before the packet's deadline (the kernel holds
 * the packet until we give a verdict, so a late answer is a stalled network).
 */
import * as v from 'valibot';
import { Settings, type ConnectionRequest, type Rule } from '../protocol/model.js';
import { systemClock, type Clock } from '../common/clock.js';
import { DecisionsError } from './errors.js';
import type { Decision, DecisionSettings, PromptBroker } from './prompts.js';

/** What the engine needs from the rules (RuleStore implements it). */
export interface RuleMatcher {
  match(request: ConnectionRequest, now?: number): Rule | undefined;
}

export interface DecisionEngineOptions {
  rules: RuleMatcher;
  broker: PromptBroker;
  clock?: Clock;
  /** Answer this long before the deadline, to leave time for the verdict itself. Default 0. */
  deadlineMarginMs?: number;
}

export interface DecideOptions {
  /** Epoch ms by which a decision must be given. */
  deadline: number;
}

export interface EngineCounters {
  decided: number;
  byRule: number;
  prompted: number;
  /** Decisions given because the deadline came first (should stay 0). */
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
  readonly #margin: number;
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
    this.#margin = options.deadlineMarginMs ?? 0;
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
    const fallback = (reason: Decision['reason']): Decision => ({
      action: this.#broker.settings.defaultAction,
      reason,
      ruleId: null,
    });
    const budget = options.deadline - this.#margin - now;
    if (budget <= 0) {
      this.counters.deadline++;
      return Promise.resolve(fallback('deadline'));
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
      return Promise.resolve(fallback('error'));
    }
    if (rule) {
      this.counters.byRule++;
      return Promise.resolve({ action: rule.action, reason: 'rule', ruleId: rule.id });
    }
    this.counters.prompted++;
    const held = this.#broker.ask(request);
    return new Promise<Decision>((resolve) => {
      let done = false;
      const timer = this.#clock.setTimeout(() => {
        if (done) return;
        done = true;
        held.cancel();
        this.counters.deadline++;
        resolve(fallback('deadline'));
      }, budget);
      void held.decision.then((d) => {
        if (done) return;
        done = true;
        this.#clock.clearTimeout(timer);
        resolve(d);
      });
    });
  }
}
