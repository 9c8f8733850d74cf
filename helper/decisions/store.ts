/**
 * The rule store: every rule the helper knows, indexed for matching (RuleSet)
 * and, for the durable kinds ("forever" and "minutes") and "process" rules,
 * persisted to STATEDIR/rules.json. A process rule outlives a helper restart
 * while its process (pid + start time, same boot) runs. Session rules live in
 * memory only; "once" is never a rule.
 *
 * Matching never waits on disk: mutations update memory synchronously and
 * the write follows; hit counters are flushed lazily (debounced).
 */
import * as v from 'valibot';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  RuleInput as RuleInputSchema,
  type ConnectionRequest,
  type Rule,
  type RuleInput,
} from '../protocol/model.js';
import { expiresAt, ruleFromInput } from '../protocol/rules.js';
import { atomicWrite, nodeFs, type StoreFs } from '../common/atomic-write.js';
import { keepAside } from '../common/keep-aside.js';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.js';
import { DecisionsError } from './errors.js';
import { checkImportedRule, ruleKey } from './import.js';
import { procLiveness, type LivenessCheck } from './liveness.js';
import { compileMatch } from './matcher.js';
import { RuleSet } from './ruleset.js';
import {
  MIGRATIONS,
  RULES_VERSION,
  migrate,
  validateDocument,
  type Migration,
  type RulesDocument,
} from './rules-document.js';

export const DEFAULT_STATE_DIR = '/var/lib/portcullis';
export const RULES_FILE = 'rules.json';
/** Durations that survive a helper restart. */
export function isPersistent(rule: { duration: Rule['duration'] }): boolean {
  return rule.duration.kind === 'forever' || rule.duration.kind === 'minutes';
}

/** Written to rules.json: the persistent rules and the process rules (not exported). */
function isKeptOnDisk(rule: { duration: Rule['duration'] }): boolean {
  return isPersistent(rule) || rule.duration.kind === 'process';
}

export type RuleChange =
  | { kind: 'added' | 'updated'; rule: Rule }
  /** `removed` by a caller; `expired` or `exited` (its process) by prune. */
  | { kind: 'removed'; rule: Rule; reason: 'removed' | 'expired' | 'exited' }
  /** Many rules changed at once (import). */
  | { kind: 'reset' };

/** Which boot this is: a (pid, start time) of another boot names another process. */
function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

export interface RuleStoreOptions {
  /** State directory; rules.json lives directly in it. Default /var/lib/portcullis. */
  dir?: string;
  isAlive?: LivenessCheck;
  clock?: Clock;
  /** Delay before hit counters reach disk. Default 30 s. */
  hitFlushDelayMs?: number;
  newId?: () => string;
  fs?: StoreFs;
  migrations?: ReadonlyMap<number, Migration>;
  /** This boot's id (default: /proc/sys/kernel/random/boot_id); null when unknown. */
  bootId?: string | null;
}

export type RulePatch = Partial<RuleInput>;

/** What `importInputs` did. */
export interface InputImportResult {
  added: number;
  /** Rules of the import equal to a kept rule or an earlier rule of the import (`ruleKey`). */
  skipped: number;
  /** Persistent rules dropped by a replace. */
  removed: number;
}

export interface ImportResult {
  added: number;
  /** Imported rules whose id was taken and got a new one. */
  renamed: number;
  /** Persistent rules dropped by a replace. */
  removed: number;
}

/**
 * Callers get copies, so that nobody outside mutates the indexed rules. A
 * hand-written copy: `match` runs for every new connection and structuredClone
 * costs several times more.
 */
function copy(rule: Rule): Rule {
  const match = { ...rule.match };
  if (match.port) match.port = { ...match.port };
  return { ...rule, match, duration: { ...rule.duration } };
}

export class RuleStore {
  readonly dir: string;
  readonly path: string;
  readonly #set: RuleSet;
  readonly #clock: Clock;
  readonly #fs: StoreFs;
  readonly #newId: () => string;
  readonly #hitDelay: number;
  readonly #migrations: ReadonlyMap<number, Migration>;
  readonly #isAlive: LivenessCheck;
  readonly #bootId: string | null;
  readonly #changeListeners = new Set<(c: RuleChange) => void>();
  readonly #errorListeners = new Set<(e: DecisionsError) => void>();
  #loadProblem: DecisionsError | null = null;
  #dirty = false;
  #saveRun: Promise<void> | null = null;
  #hitTimer: TimerHandle | null = null;
  #closed = false;

  private constructor(options: RuleStoreOptions) {
    this.dir = options.dir ?? DEFAULT_STATE_DIR;
    this.path = join(this.dir, RULES_FILE);
    this.#set = new RuleSet(options.isAlive ? { isAlive: options.isAlive } : {});
    this.#clock = options.clock ?? systemClock;
    this.#fs = options.fs ?? nodeFs;
    this.#newId = options.newId ?? (() => randomUUID());
    this.#hitDelay = options.hitFlushDelayMs ?? 30_000;
    this.#migrations = options.migrations ?? MIGRATIONS;
    this.#isAlive = options.isAlive ?? procLiveness;
    this.#bootId = options.bootId !== undefined ? options.bootId : readBootId();
  }

  /**
   * Loads rules.json (creating the directory, 0700). A corrupt file is moved
   * aside and the store starts empty (see `loadProblem`); a newer or
   * unmigratable version throws and leaves the file untouched.
   */
  static async open(options: RuleStoreOptions = {}): Promise<RuleStore> {
    const store = new RuleStore(options);
    await store.#load();
    return store;
  }

  /** Why the store started empty although a file existed (CORRUPT, with `movedTo`). */
  get loadProblem(): DecisionsError | null {
    return this.#loadProblem;
  }

  get size(): number {
    return this.#set.size;
  }

  list(): Rule[] {
    return this.#set.rules().map(copy);
  }

  get(id: string): Rule | undefined {
    const r = this.#set.get(id);
    return r && copy(r);
  }

  /** The winning rule for a request, counting the hit (in memory; flushed later). */
  match(request: ConnectionRequest, now = this.#clock.now()): Rule | undefined {
    const rule = this.#set.lookup(request, now);
    if (!rule) return undefined;
    rule.hits++;
    rule.lastHit = now;
    if (isPersistent(rule)) this.#scheduleHitFlush();
    return copy(rule);
  }

  /** Adds a rule to memory at once; `saved` settles when it is on disk (if it persists). */
  insert(input: RuleInput): { rule: Rule; saved: Promise<void> } {
    this.#checkOpen();
    const parsed = v.safeParse(RuleInputSchema, input);
    if (!parsed.success) {
      throw new DecisionsError('INVALID_RULE', `invalid rule: ${parsed.issues[0]?.message}`);
    }
    const now = this.#clock.now();
    const rule = this.#fromInput(parsed.output, this.#freshId(), now);
    this.#set.add(rule);
    this.#emit({ kind: 'added', rule: copy(rule) });
    return { rule: copy(rule), saved: isKeptOnDisk(rule) ? this.#save() : Promise.resolve() };
  }

  async add(input: RuleInput): Promise<Rule> {
    const { rule, saved } = this.insert(input);
    await saved;
    return rule;
  }

  /** Changes the fields given; a new "minutes" duration restarts its clock. */
  async update(id: string, patch: RulePatch): Promise<Rule> {
    this.#checkOpen();
    const old = this.#mustGet(id);
    const merged: RuleInput = {
      enabled: patch.enabled ?? old.enabled,
      action: patch.action ?? old.action,
      ...(patch.denyWith !== undefined || old.denyWith !== undefined
        ? { denyWith: patch.denyWith ?? old.denyWith }
        : {}),
      match: patch.match ?? old.match,
      duration: patch.duration ?? old.duration,
      ...(patch.note !== undefined || old.note !== undefined
        ? { note: patch.note ?? old.note }
        : {}),
    };
    const parsed = v.safeParse(RuleInputSchema, merged);
    if (!parsed.success) {
      throw new DecisionsError('INVALID_RULE', `invalid rule: ${parsed.issues[0]?.message}`);
    }
    const rule = this.#fromInput(parsed.output, id, old.created);
    rule.hits = old.hits;
    rule.lastHit = old.lastHit;
    if (patch.duration === undefined) rule.expires = old.expires;
    else rule.expires = expiresAt(rule.duration, this.#clock.now());
    this.#set.add(rule);
    this.#emit({ kind: 'updated', rule: copy(rule) });
    if (isKeptOnDisk(rule) || isKeptOnDisk(old)) await this.#save();
    return copy(rule);
  }

  async setEnabled(id: string, enabled: boolean): Promise<Rule> {
    return this.update(id, { enabled });
  }

  async remove(id: string): Promise<Rule> {
    this.#checkOpen();
    const old = this.#mustGet(id);
    this.#set.remove(id);
    this.#emit({ kind: 'removed', rule: copy(old), reason: 'removed' });
    if (isKeptOnDisk(old)) await this.#save();
    return copy(old);
  }

  /** The persistent rules as a document that `import` (here or elsewhere) accepts. */
  export(): RulesDocument {
    return { version: RULES_VERSION, rules: this.#set.rules().filter(isPersistent).map(copy) };
  }

  /**
   * Imports a rules document (any version the migrations reach). Validated as
   * a whole first: on any problem nothing changes (INVALID_IMPORT). Only
   * persistent durations are accepted; ids already taken get new ones.
   */
  async import(doc: unknown, options: { mode: 'merge' | 'replace' }): Promise<ImportResult> {
    this.#checkOpen();
    let rules: Rule[];
    try {
      rules = validateDocument(
        migrate(doc, this.#migrations, 'import'),
        'INVALID_IMPORT',
        'import',
      );
    } catch (e) {
      if (e instanceof DecisionsError && e.code !== 'INVALID_IMPORT') {
        throw new DecisionsError('INVALID_IMPORT', e.message, { ...e.details, cause: e });
      }
      throw e;
    }
    const transient = rules.find((r) => !isPersistent(r));
    if (transient) {
      throw new DecisionsError(
        'INVALID_IMPORT',
        `import: rule ${transient.id} has duration "${transient.duration.kind}"; only "forever" and "minutes" rules can be imported`,
      );
    }
    let removed = 0;
    if (options.mode === 'replace') {
      for (const r of this.#set.rules().filter(isPersistent)) {
        this.#set.remove(r.id);
        removed++;
      }
    }
    let renamed = 0;
    for (const r of rules) {
      const rule = copy(r);
      if (this.#set.get(rule.id)) {
        rule.id = this.#freshId();
        renamed++;
      }
      this.#set.add(rule);
    }
    this.#emit({ kind: 'reset' });
    await this.#save();
    return { added: rules.length, renamed, removed };
  }

  /**
   * Imports the rules of a file (as clients send them: no ids) all or
   * nothing. Every rule is checked first as `add` checks it; the first bad
   * one is INVALID_IMPORT naming its position (`rule N`, counting from 1 +
   * `firstPosition`) and nothing changes. Rules equal to a rule that stays
   * (merge: every rule; replace: the session rules) or to an earlier rule of
   * the import are skipped and counted. The change is one write of
   * rules.json; if that write fails, memory is put back as it was.
   */
  async importInputs(
    inputs: readonly unknown[],
    options: { mode: 'merge' | 'replace'; firstPosition?: number },
  ): Promise<InputImportResult> {
    this.#checkOpen();
    const first = options.firstPosition ?? 0;
    const checked = inputs.map((input, i) => {
      try {
        return checkImportedRule(input);
      } catch (e) {
        if (!(e instanceof DecisionsError)) throw e;
        throw new DecisionsError('INVALID_IMPORT', `rule ${first + i + 1}: ${e.message}`, {
          cause: e,
        });
      }
    });
    const replacing = options.mode === 'replace';
    const dropped = replacing ? this.#set.rules().filter(isPersistent) : [];
    const seen = new Set(
      this.#set
        .rules()
        .filter((r) => !replacing || !isPersistent(r))
        .map(ruleKey),
    );
    const now = this.#clock.now();
    const fresh: Rule[] = [];
    let skipped = 0;
    for (const r of dropped) this.#set.remove(r.id);
    try {
      for (const input of checked) {
        const key = ruleKey(input);
        if (seen.has(key)) {
          skipped++;
          continue;
        }
        seen.add(key);
        const rule = this.#fromInput(input, this.#freshId(), now);
        this.#set.add(rule);
        fresh.push(rule);
      }
      this.#emit({ kind: 'reset' });
      await this.#save();
    } catch (e) {
      for (const r of fresh) this.#set.remove(r.id);
      for (const r of dropped) this.#set.add(r);
      this.#emit({ kind: 'reset' });
      throw e;
    }
    return { added: fresh.length, skipped, removed: dropped.length };
  }

  /** Drops expired rules and process rules whose process has exited. */
  async prune(now = this.#clock.now()): Promise<Rule[]> {
    const gone = this.#set.prune(now);
    for (const r of gone) {
      const expired = r.expires !== null && r.expires <= now;
      this.#emit({ kind: 'removed', rule: copy(r), reason: expired ? 'expired' : 'exited' });
    }
    if (gone.some(isKeptOnDisk)) await this.#save();
    return gone.map(copy);
  }

  onChange(listener: (change: RuleChange) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Failures of background writes (the hit-counter flush): nothing else would see them. */
  onError(listener: (error: DecisionsError) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  /** Writes pending changes (hit counters included) now. */
  async flush(): Promise<void> {
    if (this.#hitTimer !== null) {
      this.#clock.clearTimeout(this.#hitTimer);
      this.#hitTimer = null;
      this.#dirty = true;
    }
    if (this.#dirty || this.#saveRun) await this.#save();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
  }

  #fromInput(input: RuleInput, id: string, created: number): Rule {
    const rule = ruleFromInput(input, id, created);
    // Fails on a bad CIDR or host pattern before anything changes.
    compileMatch(rule.match);
    return rule;
  }

  #freshId(): string {
    // A generator that keeps repeating itself is a bug, not a reason to spin forever.
    for (let attempt = 0; attempt < 100; attempt++) {
      const id = this.#newId();
      if (!this.#set.get(id)) return id;
    }
    throw new Error('id generator returned 100 ids already in use');
  }

  #mustGet(id: string): Rule {
    const r = this.#set.get(id);
    if (!r) throw new DecisionsError('NOT_FOUND', `no rule with id ${id}`);
    return r;
  }

  #checkOpen(): void {
    if (this.#closed) throw new DecisionsError('CLOSED', 'the rule store is closed');
  }

  #emit(change: RuleChange): void {
    for (const l of this.#changeListeners) l(change);
  }

  #scheduleHitFlush(): void {
    if (this.#hitTimer !== null || this.#closed) return;
    this.#hitTimer = this.#clock.setTimeout(() => {
      this.#hitTimer = null;
      this.#save().catch((e: unknown) => {
        const err =
          e instanceof DecisionsError
            ? e
            : new DecisionsError('IO', `flushing hit counters: ${String(e)}`, { cause: e });
        for (const l of this.#errorListeners) l(err);
      });
    }, this.#hitDelay);
  }

  /** One writer at a time; changes made during a write are picked up by another pass. */
  #save(): Promise<void> {
    this.#dirty = true;
    this.#saveRun ??= this.#runSaves().finally(() => {
      this.#saveRun = null;
    });
    return this.#saveRun;
  }

  async #runSaves(): Promise<void> {
    while (this.#dirty) {
      this.#dirty = false;
      const doc = {
        version: RULES_VERSION,
        // Names the boot of the process rules' (pid, start time); older helpers ignore it.
        ...(this.#bootId !== null ? { bootId: this.#bootId } : {}),
        rules: this.#set.rules().filter(isKeptOnDisk).map(copy),
      };
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      try {
        await atomicWrite(this.#fs, this.dir, RULES_FILE, text);
      } catch (e) {
        // Still dirty: the next change or flush retries.
        this.#dirty = true;
        throw new DecisionsError('IO', `writing ${this.path}: ${(e as Error).message}`, {
          path: this.path,
          cause: e,
        });
      }
    }
  }

  async #load(): Promise<void> {
    const fs = this.#fs;
    try {
      await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
      // Leftovers of a crash between write and rename: the real file is intact.
      for (const name of await fs.readdir(this.dir)) {
        if (name.startsWith(`${RULES_FILE}.tmp-`)) await fs.unlink(join(this.dir, name));
      }
    } catch (e) {
      throw new DecisionsError('IO', `preparing ${this.dir}: ${(e as Error).message}`, {
        path: this.dir,
        cause: e,
      });
    }
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new DecisionsError('IO', `reading ${this.path}: ${(e as Error).message}`, {
        path: this.path,
        cause: e,
      });
    }
    let rules: Rule[];
    let migratedFrom: number | null = null;
    let savedBoot: unknown = null;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (e) {
        throw new DecisionsError('CORRUPT', `${this.path}: not JSON: ${(e as Error).message}`, {
          path: this.path,
          cause: e,
        });
      }
      if (typeof raw === 'object' && raw !== null) savedBoot = (raw as { bootId?: unknown }).bootId;
      const doc = migrate(raw, this.#migrations, this.path);
      // migrate() has checked that raw is an object with an integer version.
      const version = (raw as { version: number }).version;
      if (version !== RULES_VERSION) migratedFrom = version;
      rules = validateDocument(doc, 'CORRUPT', this.path);
      const ids = new Set<string>();
      for (const r of rules) {
        if (ids.has(r.id)) {
          throw new DecisionsError('CORRUPT', `${this.path}: duplicate rule id ${r.id}`, {
            path: this.path,
          });
        }
        ids.add(r.id);
      }
    } catch (e) {
      if (e instanceof DecisionsError && e.code === 'CORRUPT') {
        await this.#moveAside(e);
        return;
      }
      throw e;
    }
    const now = this.#clock.now();
    const sameBoot = this.#bootId !== null && savedBoot === this.#bootId;
    let dropped = 0;
    for (const r of rules) {
      // Expired "minutes" rules are dropped (and vanish from disk at the next write).
      if (r.expires !== null && r.expires <= now) continue;
      const d = r.duration;
      // A process rule stays while its process runs: same boot, same pid and start time.
      if (d.kind === 'process' && !(sameBoot && this.#isAlive(d.pid, d.startTime))) {
        dropped++;
        continue;
      }
      this.#set.add(r);
    }
    if (dropped > 0 && migratedFrom === null) await this.#save();
    if (migratedFrom !== null) {
      // Keep the original next to the upgraded file: a downgrade can go back to it.
      await fs.copyFile(this.path, `${this.path}.v${migratedFrom}.bak`);
      await this.#save();
    }
  }

  /** Moves the corrupt file aside (common/keep-aside.ts): the store starts without it. */
  async #moveAside(problem: DecisionsError): Promise<void> {
    let movedTo: string;
    try {
      movedTo = await keepAside(this.#fs, this.path, this.#clock.now(), { move: true });
    } catch (e) {
      throw new DecisionsError('IO', `moving corrupt ${this.path} aside: ${(e as Error).message}`, {
        path: this.path,
        cause: e,
      });
    }
    this.#loadProblem = new DecisionsError(
      'CORRUPT',
      `${problem.message}; moved to ${movedTo}, starting with no rules`,
      { path: this.path, movedTo, cause: problem },
    );
  }
}
