/**
 * Pending prompts: the connections no rule decides wait here for a person.
 *
 * One prompt per app and destination: a burst of connections from one app to
 * one place is one question whose `held` count grows, and its answer applies
 * to every held connection. Nothing waits forever: a prompt times out to the
 * default action, no GUI means the no-GUI policy at once, and the number of
 * prompts and of connections per prompt is bounded (beyond: the default at
 * once, counted). Packet deadlines are the caller's (engine.ts).
 *
 * A program that was told no retries: a "deny once" answer or a prompt that timed
 * out is remembered for its app and destination for `recentAnswerMs`, and the
 * retries get the same answer instead of a new prompt each (an allow once is not
 * remembered: it was meant for that one connection).
 */
import * as v from 'valibot';
import { randomUUID } from 'node:crypto';
import {
  PromptAnswer as PromptAnswerSchema,
  type Action,
  type ConnectionRequest,
  type DenyWith,
  type Prompt,
  type PromptAnswer,
  type Rule,
  type RuleInput,
  type VerdictReason,
} from '../protocol/model.js';
import { matchForScope, normalizeHost, remoteAddress } from '../protocol/rules.js';
import { setNewest } from '../common/bounded-map.js';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.js';
import { DecisionsError } from './errors.js';

/** The settings that decisions depend on (a subset of the model's Settings). */
export interface DecisionSettings {
  defaultAction: Action;
  promptTimeoutSeconds: number;
  noGuiPolicy: Action;
}

export interface Decision {
  action: Action;
  /** With deny: "drop" denies silently; absent refuses (reject). */
  denyWith?: DenyWith;
  reason: VerdictReason;
  /** The rule that decided (reason 'rule'), or the rule an answer created; null otherwise. */
  ruleId: string | null;
}

/** What the broker needs from the rule store (RuleStore implements it). */
export interface RuleSink {
  /** Adds a rule to memory at once; `saved` settles when it is durable. */
  insert(input: RuleInput): { rule: Rule; saved: Promise<void> };
  match(request: ConnectionRequest, now?: number): Rule | undefined;
}

/** One connection waiting under a prompt. */
export interface HeldConnection {
  /** Always fulfils (never rejects): with the answer, the default or the no-GUI policy. */
  readonly decision: Promise<Decision>;
  /** Stop waiting (the packet's deadline passed): `held` drops, the prompt stays. */
  cancel(): void;
}

export interface PromptResolution {
  prompt: Prompt;
  decision: Decision;
  /** Connections released by this resolution. */
  released: number;
}

export interface PromptEvents {
  added: (prompt: Prompt) => void;
  updated: (prompt: Prompt) => void;
  resolved: (resolution: PromptResolution) => void;
  /** A rule created by an answer could not be saved (it still applies in memory). */
  error: (error: DecisionsError) => void;
}

export interface PromptCounters {
  prompts: number;
  answered: number;
  timedOut: number;
  noGui: number;
  /** Connections given the default at once because `maxPending` prompts were open. */
  pendingOverflow: number;
  /** Connections given the default at once because their prompt held `maxHeldPerPrompt`. */
  heldOverflow: number;
  /** Connections given a recent answer for their app and destination instead of a new prompt. */
  remembered: number;
}

export interface PromptBrokerOptions {
  rules: RuleSink;
  /**
   * The values (changed with setSettings), or a function that gives the current ones at
   * each use, for settings that have their owner elsewhere (setSettings is then refused).
   */
  settings: DecisionSettings | (() => Readonly<DecisionSettings>);
  /** Whether a GUI is there to ask; default false (the no-GUI policy applies). */
  guiConnected?: boolean;
  clock?: Clock;
  /** Default 64. */
  maxPending?: number;
  /** Default 256. */
  maxHeldPerPrompt?: number;
  newId?: () => string;
  /** How many resolved prompt ids are remembered to answer "already resolved". Default 1024. */
  rememberResolved?: number;
  /** How long a deny-once answer or a timed-out prompt answers its app and destination (ms). Default 30 s; 0: never. */
  recentAnswerMs?: number;
}

interface Waiter {
  resolve: (d: Decision) => void;
}

interface Pending {
  prompt: Prompt;
  key: string;
  waiters: Set<Waiter>;
  timer: TimerHandle;
}

/** The coalescing key: app (app id or exe) and uid, destination, port, protocol, direction. */
function promptKey(request: ConnectionRequest): string {
  const p = request.process;
  const app = p?.appId != null ? `app:${p.appId}` : p?.exe != null ? `exe:${p.exe}` : '-';
  const uid = request.uid ?? p?.uid ?? '-';
  const dest = request.host
    ? `host:${normalizeHost(request.host)}`
    : `addr:${remoteAddress(request)}`;
  return `${app}|${uid}|${dest}|${request.dport ?? '-'}|${request.protocol}|${request.direction}`;
}

export class PromptBroker {
  readonly #rules: RuleSink;
  readonly #clock: Clock;
  readonly #maxPending: number;
  readonly #maxHeld: number;
  readonly #newId: () => string;
  readonly #remember: number;
  readonly #byId = new Map<string, Pending>();
  readonly #byKey = new Map<string, Pending>();
  readonly #resolvedIds = new Map<string, true>();
  /** Recent answers by prompt key, oldest first, bounded like the resolved ids. */
  readonly #recent = new Map<string, { until: number; decision: Decision }>();
  readonly #recentMs: number;
  readonly #listeners: { [K in keyof PromptEvents]: Set<PromptEvents[K]> } = {
    added: new Set(),
    updated: new Set(),
    resolved: new Set(),
    error: new Set(),
  };
  /** The settings this broker owns; null when they are read from `#read`'s owner. */
  #own: DecisionSettings | null;
  readonly #read: () => Readonly<DecisionSettings>;
  #gui: boolean;
  #closed = false;
  readonly counters: PromptCounters = {
    prompts: 0,
    answered: 0,
    timedOut: 0,
    noGui: 0,
    pendingOverflow: 0,
    heldOverflow: 0,
    remembered: 0,
  };

  constructor(options: PromptBrokerOptions) {
    this.#rules = options.rules;
    const s = options.settings;
    this.#own = typeof s === 'function' ? null : { ...s };
    this.#read = typeof s === 'function' ? s : () => this.#own!;
    this.#gui = options.guiConnected ?? false;
    this.#clock = options.clock ?? systemClock;
    this.#maxPending = options.maxPending ?? 64;
    this.#maxHeld = options.maxHeldPerPrompt ?? 256;
    this.#newId = options.newId ?? (() => randomUUID());
    this.#remember = options.rememberResolved ?? 1024;
    this.#recentMs = options.recentAnswerMs ?? 30_000;
  }

  get settings(): Readonly<DecisionSettings> {
    return this.#read();
  }

  /** New settings apply to new prompts; open prompts keep their deadline and default. */
  setSettings(settings: Partial<DecisionSettings>): void {
    if (this.#own === null) {
      throw new DecisionsError('READ_ONLY', 'these settings are changed where they are owned');
    }
    this.#own = { ...this.#own, ...settings };
  }

  get guiConnected(): boolean {
    return this.#gui;
  }

  /** When the last GUI goes, open prompts get the no-GUI policy at once. */
  setGuiConnected(connected: boolean): void {
    this.#gui = connected;
    if (!connected) {
      for (const p of [...this.#byId.values()]) {
        this.counters.noGui++;
        this.#resolve(p, { action: this.#read().noGuiPolicy, reason: 'no-gui', ruleId: null });
      }
    }
  }

  on<K extends keyof PromptEvents>(event: K, listener: PromptEvents[K]): () => void {
    const set = this.#listeners[event] as Set<PromptEvents[K]>;
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Open prompts, oldest first (copies). */
  pending(): Prompt[] {
    return [...this.#byId.values()].map((p) => ({ ...p.prompt }));
  }

  get(id: string): Prompt | undefined {
    const p = this.#byId.get(id);
    return p && { ...p.prompt };
  }

  /** Holds a connection under its app+destination prompt (creating it) until decided. */
  ask(request: ConnectionRequest): HeldConnection {
    const s = this.#read();
    if (this.#closed) return settled({ action: s.defaultAction, reason: 'default', ruleId: null });
    if (!this.#gui) {
      this.counters.noGui++;
      return settled({ action: s.noGuiPolicy, reason: 'no-gui', ruleId: null });
    }
    const key = promptKey(request);
    const recent = this.#recentAnswer(key);
    if (recent) {
      this.counters.remembered++;
      return settled(recent);
    }
    let p = this.#byKey.get(key);
    if (p && p.waiters.size >= this.#maxHeld) {
      this.counters.heldOverflow++;
      return settled({ action: s.defaultAction, reason: 'default', ruleId: null });
    }
    const created = !p;
    if (!p) {
      if (this.#byId.size >= this.#maxPending) {
        this.counters.pendingOverflow++;
        return settled({ action: s.defaultAction, reason: 'default', ruleId: null });
      }
      p = this.#open(key, request);
    }
    const pending = p;
    let waiter!: Waiter;
    const decision = new Promise<Decision>((resolve) => {
      waiter = { resolve };
    });
    pending.waiters.add(waiter);
    pending.prompt.held = pending.waiters.size;
    this.#emit(created ? 'added' : 'updated', { ...pending.prompt });
    return {
      decision,
      cancel: () => {
        if (!pending.waiters.delete(waiter)) return;
        pending.prompt.held = pending.waiters.size;
        if (this.#byId.has(pending.prompt.id)) this.#emit('updated', { ...pending.prompt });
      },
    };
  }

  /**
   * Applies a person's answer. The first answer wins: a later one throws
   * ALREADY_RESOLVED (NOT_FOUND for an id never seen). Unless the duration is
   * "once", a rule is created and any other open prompt it now decides is
   * resolved too.
   */
  answer(answer: PromptAnswer): { decision: Decision; rule: Rule | null; prompt: Prompt } {
    const parsed = v.safeParse(PromptAnswerSchema, answer);
    if (!parsed.success) {
      throw new DecisionsError('INVALID_RULE', `invalid answer: ${parsed.issues[0]?.message}`);
    }
    const a = parsed.output;
    const p = this.#byId.get(a.promptId);
    if (!p) {
      if (this.#resolvedIds.has(a.promptId)) {
        throw new DecisionsError('ALREADY_RESOLVED', `prompt ${a.promptId} was already resolved`);
      }
      throw new DecisionsError('NOT_FOUND', `no prompt with id ${a.promptId}`);
    }
    let rule: Rule | null = null;
    if (a.duration.kind !== 'once') {
      // Throws INVALID_RULE for a bad edited match, before anything is resolved.
      const inserted = this.#rules.insert({
        action: a.action,
        ...(a.denyWith ? { denyWith: a.denyWith } : {}),
        match: a.match ?? matchForScope(p.prompt.request, a.scope, a.who),
        duration: a.duration,
      });
      rule = inserted.rule;
      inserted.saved.catch((e: unknown) => {
        const err =
          e instanceof DecisionsError
            ? e
            : new DecisionsError('IO', `saving rule: ${String(e)}`, { cause: e });
        for (const l of this.#listeners.error) l(err);
      });
    }
    const decision: Decision = {
      action: a.action,
      ...(a.action === 'deny' && a.denyWith === 'drop' ? { denyWith: 'drop' as const } : {}),
      reason: 'prompt',
      ruleId: rule?.id ?? null,
    };
    this.counters.answered++;
    const prompt = { ...p.prompt };
    this.#resolve(p, decision);
    if (!rule && a.action === 'deny') this.#rememberAnswer(p.key, decision);
    if (rule) this.reevaluate();
    return { decision, rule, prompt };
  }

  /** Resolves open prompts that a rule now decides (after an answer or a rule change). */
  reevaluate(now = this.#clock.now()): number {
    let n = 0;
    for (const p of [...this.#byId.values()]) {
      const rule = this.#rules.match(p.prompt.request, now);
      if (rule) {
        this.#resolve(p, ruleDecision(rule));
        n++;
      }
    }
    return n;
  }

  /** Releases every held connection with the default action; later asks get it at once. */
  close(): void {
    this.#closed = true;
    for (const p of [...this.#byId.values()]) {
      this.#resolve(p, { action: p.prompt.defaultAction, reason: 'default', ruleId: null });
    }
  }

  #open(key: string, request: ConnectionRequest): Pending {
    const now = this.#clock.now();
    const s = this.#read();
    const prompt: Prompt = {
      id: this.#freshId(),
      created: now,
      deadline: now + s.promptTimeoutSeconds * 1000,
      defaultAction: s.defaultAction,
      request,
      held: 0,
    };
    const p: Pending = {
      prompt,
      key,
      waiters: new Set(),
      timer: this.#clock.setTimeout(() => {
        this.counters.timedOut++;
        const decision: Decision = {
          action: prompt.defaultAction,
          reason: 'default',
          ruleId: null,
        };
        this.#resolve(p, decision);
        this.#rememberAnswer(key, decision);
      }, s.promptTimeoutSeconds * 1000),
    };
    this.#byId.set(prompt.id, p);
    this.#byKey.set(key, p);
    this.counters.prompts++;
    return p;
  }

  #rememberAnswer(key: string, decision: Decision): void {
    if (this.#recentMs <= 0) return;
    const until = this.#clock.now() + this.#recentMs;
    setNewest(this.#recent, key, { until, decision: { ...decision } }, this.#remember);
  }

  #recentAnswer(key: string): Decision | null {
    const r = this.#recent.get(key);
    if (!r) return null;
    if (r.until <= this.#clock.now()) {
      this.#recent.delete(key);
      return null;
    }
    return { ...r.decision };
  }

  #freshId(): string {
    // A generator that keeps repeating itself is a bug, not a reason to spin forever.
    for (let attempt = 0; attempt < 100; attempt++) {
      const id = this.#newId();
      if (!this.#byId.has(id) && !this.#resolvedIds.has(id)) return id;
    }
    throw new Error('id generator returned 100 ids already in use');
  }

  #resolve(p: Pending, decision: Decision): void {
    if (this.#byId.get(p.prompt.id) !== p) return;
    this.#byId.delete(p.prompt.id);
    this.#byKey.delete(p.key);
    this.#clock.clearTimeout(p.timer);
    setNewest(this.#resolvedIds, p.prompt.id, true, this.#remember);
    const released = p.waiters.size;
    for (const w of p.waiters) w.resolve({ ...decision });
    p.waiters.clear();
    this.#emit('resolved', { prompt: { ...p.prompt }, decision: { ...decision }, released });
  }

  #emit<K extends 'added' | 'updated' | 'resolved'>(
    event: K,
    arg: Parameters<PromptEvents[K]>[0],
  ): void {
    for (const l of this.#listeners[event]) (l as (x: typeof arg) => void)(arg);
  }
}

function settled(decision: Decision): HeldConnection {
  return { decision: Promise.resolve(decision), cancel: () => undefined };
}

/** The decision a matching rule gives (its drop choice included). */
export function ruleDecision(rule: Rule): Decision {
  return {
    action: rule.action,
    ...(rule.denyWith ? { denyWith: rule.denyWith } : {}),
    reason: 'rule',
    ruleId: rule.id,
  };
}
