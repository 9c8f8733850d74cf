/**
 * Staged rules imports (rules.importBegin / importPage / importCommit): a
 * file bigger than one frame is checked page by page here, and reaches the
 * rule store only at the commit, in one write. A staging belongs to the
 * client that began it; it is dropped when that client disconnects, when it
 * sits idle for `idleMs`, or when one of its pages is refused, so that a
 * client that gives up pins no memory. Bounds per client and overall keep
 * a misbehaving client from filling the helper's memory.
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.js';
import { DecisionsError, checkImportedRule } from '../decisions/index.js';
import { ServiceError } from '../protocol/errors.js';
import { MAX_IMPORT_RULES } from '../protocol/messages.js';
import type { RuleInput } from '../protocol/model.js';

export interface ImportStagingOptions {
  clock?: Clock;
  /** Most rules in one staging. Default MAX_IMPORT_RULES. */
  maxRules?: number;
  /** Most stagings open at once per client. Default 2. */
  maxPerClient?: number;
  /** Most rules staged over every client. Default 2 × MAX_IMPORT_RULES. */
  maxTotalRules?: number;
  /** A staging untouched this long is dropped. Default 60 s. */
  idleMs?: number;
  newId?: () => string;
}

interface Staging {
  readonly id: string;
  readonly clientId: number;
  readonly rules: RuleInput[];
  timer: TimerHandle;
}

export class ImportStaging {
  readonly maxRules: number;
  readonly #clock: Clock;
  readonly #maxPerClient: number;
  readonly #maxTotal: number;
  readonly #idleMs: number;
  readonly #newId: () => string;
  readonly #stagings = new Map<string, Staging>();
  #totalRules = 0;

  constructor(options: ImportStagingOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.maxRules = options.maxRules ?? MAX_IMPORT_RULES;
    this.#maxPerClient = options.maxPerClient ?? 2;
    this.#maxTotal = options.maxTotalRules ?? 2 * MAX_IMPORT_RULES;
    this.#idleMs = options.idleMs ?? 60_000;
    this.#newId = options.newId ?? (() => randomUUID());
  }

  /** Stagings open now (for diagnostics and tests). */
  get size(): number {
    return this.#stagings.size;
  }

  /** Rules staged now over every client. */
  get stagedRules(): number {
    return this.#totalRules;
  }

  begin(clientId: number, total?: number): { staging: string; maxRules: number } {
    if (total !== undefined && total > this.maxRules) {
      throw new ServiceError(
        'invalid-params',
        `an import may hold at most ${this.maxRules} rules; this one has ${total}`,
      );
    }
    let open = 0;
    for (const s of this.#stagings.values()) if (s.clientId === clientId) open++;
    if (open >= this.#maxPerClient) {
      throw new ServiceError(
        'conflict',
        `this client already has ${open} imports staged: commit or abort one first`,
      );
    }
    const id = this.#newId();
    const staging: Staging = { id, clientId, rules: [], timer: this.#arm(id) };
    this.#stagings.set(id, staging);
    return { staging: id, maxRules: this.maxRules };
  }

  /**
   * Checks and stages rules at positions offset.. of the file. A bad rule
   * drops the whole staging: its error names the rule's position (from 1).
   */
  page(clientId: number, id: string, offset: number, rules: readonly unknown[]): number {
    const staging = this.#mine(clientId, id);
    if (offset !== staging.rules.length) {
      throw new ServiceError(
        'conflict',
        `import ${id}: expected the rules from position ${staging.rules.length}, got ${offset}`,
      );
    }
    const size = staging.rules.length + rules.length;
    if (size > this.maxRules) {
      this.#drop(staging);
      throw new ServiceError(
        'invalid-params',
        `an import may hold at most ${this.maxRules} rules (rule ${this.maxRules + 1} is beyond); nothing was imported`,
      );
    }
    if (this.#totalRules + rules.length > this.#maxTotal) {
      this.#drop(staging);
      throw new ServiceError(
        'unavailable',
        'too many rules are being imported at once: try again when the other imports are done',
      );
    }
    const checked: RuleInput[] = [];
    for (const [i, rule] of rules.entries()) {
      try {
        checked.push(checkImportedRule(rule));
      } catch (e) {
        if (!(e instanceof DecisionsError)) throw e;
        this.#drop(staging);
        throw new ServiceError(
          'invalid-params',
          `rule ${offset + i + 1}: ${e.message}; nothing was imported`,
        );
      }
    }
    staging.rules.push(...checked);
    this.#totalRules += checked.length;
    this.#clock.clearTimeout(staging.timer);
    staging.timer = this.#arm(id);
    return staging.rules.length;
  }

  /** Ends the staging and hands over its rules (for the commit). */
  take(clientId: number, id: string): RuleInput[] {
    const staging = this.#mine(clientId, id);
    this.#drop(staging);
    return staging.rules;
  }

  abort(clientId: number, id: string): void {
    this.#drop(this.#mine(clientId, id));
  }

  /** The client disconnected: its stagings go with it. */
  dropClient(clientId: number): void {
    for (const s of [...this.#stagings.values()]) if (s.clientId === clientId) this.#drop(s);
  }

  /** Drops every staging (the helper stops). */
  clear(): void {
    for (const s of [...this.#stagings.values()]) this.#drop(s);
  }

  #mine(clientId: number, id: string): Staging {
    const staging = this.#stagings.get(id);
    // Another client's staging is reported as absent: its id is not a secret
    // worth guessing, but nothing about it is this client's business.
    if (!staging || staging.clientId !== clientId) {
      throw new ServiceError(
        'not-found',
        `no import ${id} is staged (it was committed, aborted, refused, or idle for more than ${Math.round(this.#idleMs / 1000)} s)`,
      );
    }
    return staging;
  }

  #arm(id: string): TimerHandle {
    return this.#clock.setTimeout(() => {
      const staging = this.#stagings.get(id);
      if (staging) this.#drop(staging);
    }, this.#idleMs);
  }

  #drop(staging: Staging): void {
    if (this.#stagings.get(staging.id) !== staging) return;
    this.#stagings.delete(staging.id);
    this.#clock.clearTimeout(staging.timer);
    this.#totalRules -= staging.rules.length;
  }
}
