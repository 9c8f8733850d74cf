/**
 * The in-memory rule index. A lookup must stay cheap with 10,000 rules, so
 * rules are bucketed by the most selective field they name (exe, app id,
 * exact host, wildcard host suffix, one whole address, one port; the rest in
 * one catch-all list: with the peer benchmark's 8,334 converted rules, 5,001
 * address- or port-only rules scanned there cost 37 µs a lookup) and each
 * bucket is kept sorted by precedence. A lookup scans only the buckets the
 * request can hit, and stops in each at the first eligible match, or as soon
 * as the bucket's remaining rules cannot beat the best found so far.
 */
import type { ConnectionRequest, Rule } from '../protocol/model.js';
import {
  compareRank,
  comparePrecedence,
  compileMatch,
  matchesView,
  requestView,
  type CompiledMatch,
  type RequestView,
} from './matcher.js';
import { procLiveness, type LivenessCheck } from './liveness.js';

export interface RuleSetOptions {
  /** Whether a "process" rule's process still runs; default reads /proc. */
  isAlive?: LivenessCheck;
}

interface Entry {
  readonly rule: Rule;
  readonly compiled: CompiledMatch;
  readonly bucket: Entry[];
}

/** Whether a rule can match at all now: enabled, not expired, its process alive. */
export function isEligible(rule: Rule, now: number, isAlive: LivenessCheck): boolean {
  if (!rule.enabled) return false;
  if (rule.expires !== null && rule.expires <= now) return false;
  if (rule.duration.kind === 'process') {
    return isAlive(rule.duration.pid, rule.duration.startTime);
  }
  return true;
}

function insertSorted(list: Entry[], entry: Entry): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (comparePrecedence(list[mid]!, entry) <= 0) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, entry);
}

export class RuleSet {
  readonly #isAlive: LivenessCheck;
  readonly #byId = new Map<string, Entry>();
  readonly #byExe = new Map<string, Entry[]>();
  readonly #byAppId = new Map<string, Entry[]>();
  readonly #byHost = new Map<string, Entry[]>();
  readonly #byHostSuffix = new Map<string, Entry[]>();
  /** Rules for one whole address (/32, /128), by its bytes. */
  readonly #byAddress = new Map<string, Entry[]>();
  /** Rules for one port (not a range). */
  readonly #byPort = new Map<number, Entry[]>();
  readonly #rest: Entry[] = [];

  constructor(options: RuleSetOptions = {}) {
    this.#isAlive = options.isAlive ?? procLiveness;
  }

  get size(): number {
    return this.#byId.size;
  }

  get isAlive(): LivenessCheck {
    return this.#isAlive;
  }

  /** Adds a rule, or replaces the rule with the same id. Throws INVALID_RULE. */
  add(rule: Rule): void {
    const compiled = compileMatch(rule.match);
    this.remove(rule.id);
    const bucket = this.#bucketFor(compiled);
    const entry: Entry = { rule, compiled, bucket };
    insertSorted(bucket, entry);
    this.#byId.set(rule.id, entry);
  }

  remove(id: string): boolean {
    const entry = this.#byId.get(id);
    if (!entry) return false;
    this.#byId.delete(id);
    const at = entry.bucket.indexOf(entry);
    if (at >= 0) entry.bucket.splice(at, 1);
    if (entry.bucket.length === 0) this.#dropEmpty(entry);
    return true;
  }

  get(id: string): Rule | undefined {
    return this.#byId.get(id)?.rule;
  }

  /** Every rule, in insertion order. */
  rules(): Rule[] {
    return [...this.#byId.values()].map((e) => e.rule);
  }

  clear(): void {
    this.#byId.clear();
    this.#byExe.clear();
    this.#byAppId.clear();
    this.#byHost.clear();
    this.#byHostSuffix.clear();
    this.#byAddress.clear();
    this.#byPort.clear();
    this.#rest.length = 0;
  }

  /** The winning rule for a request at `now`, or undefined when none applies. */
  lookup(request: ConnectionRequest, now: number): Rule | undefined {
    return this.lookupView(requestView(request), now);
  }

  lookupView(view: RequestView, now: number): Rule | undefined {
    let best: Entry | undefined;
    const scan = (list: Entry[] | undefined): void => {
      if (!list) return;
      for (const e of list) {
        // Sorted by precedence: once a rule ranks below the best, all the rest do too.
        if (best && compareRank(e.compiled.rank, best.compiled.rank) > 0) return;
        if (!matchesView(e.compiled, view)) continue;
        if (!isEligible(e.rule, now, this.#isAlive)) continue;
        if (!best || comparePrecedence(e, best) < 0) best = e;
        return;
      }
    };
    if (view.exe !== null) scan(this.#byExe.get(view.exe));
    if (view.appId !== null) scan(this.#byAppId.get(view.appId));
    const host = view.host;
    if (host !== null) {
      scan(this.#byHost.get(host));
      for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
        scan(this.#byHostSuffix.get(host.slice(dot + 1)));
      }
    }
    if (view.address !== null) scan(this.#byAddress.get(addressKey(view.address)));
    if (view.port !== null) scan(this.#byPort.get(view.port));
    scan(this.#rest);
    return best?.rule;
  }

  /** Removes expired rules and "process" rules whose process is gone; returns them. */
  prune(now: number): Rule[] {
    const gone: Rule[] = [];
    for (const e of this.#byId.values()) {
      const r = e.rule;
      const expired = r.expires !== null && r.expires <= now;
      const dead =
        r.duration.kind === 'process' && !this.#isAlive(r.duration.pid, r.duration.startTime);
      if (expired || dead) gone.push(r);
    }
    for (const r of gone) this.remove(r.id);
    return gone;
  }

  #bucketFor(c: CompiledMatch): Entry[] {
    const get = (map: Map<string, Entry[]>, key: string): Entry[] => {
      let list = map.get(key);
      if (!list) map.set(key, (list = []));
      return list;
    };
    if (c.exe !== undefined) return get(this.#byExe, c.exe);
    if (c.appId !== undefined) return get(this.#byAppId, c.appId);
    if (c.hostExact !== undefined) return get(this.#byHost, c.hostExact);
    if (c.hostSuffix !== undefined) return get(this.#byHostSuffix, c.hostSuffix);
    if (isWholeAddress(c)) {
      let list = this.#byAddress.get(addressKey(c.network!));
      if (!list) this.#byAddress.set(addressKey(c.network!), (list = []));
      return list;
    }
    if (isOnePort(c)) {
      let list = this.#byPort.get(c.portFrom);
      if (!list) this.#byPort.set(c.portFrom, (list = []));
      return list;
    }
    return this.#rest;
  }

  #dropEmpty(entry: Entry): void {
    const c = entry.compiled;
    if (c.exe !== undefined) this.#byExe.delete(c.exe);
    else if (c.appId !== undefined) this.#byAppId.delete(c.appId);
    else if (c.hostExact !== undefined) this.#byHost.delete(c.hostExact);
    else if (c.hostSuffix !== undefined) this.#byHostSuffix.delete(c.hostSuffix);
    else if (isWholeAddress(c)) this.#byAddress.delete(addressKey(c.network!));
    else if (isOnePort(c)) this.#byPort.delete(c.portFrom);
  }
}

/** A match on one whole address (not a network): indexed by the address. */
function isWholeAddress(c: CompiledMatch): boolean {
  return c.network !== undefined && c.prefix === c.network.length * 8;
}

/** A match on one port (not a range): indexed by the port. */
function isOnePort(c: CompiledMatch): boolean {
  return c.hasPort && c.portFrom === c.portTo;
}

/** The same key for a rule's address and a request's (both already IPv4 when mapped). */
function addressKey(bytes: Uint8Array): string {
  return bytes.join('.');
}

/**
 * The reference semantics: every eligible matching rule, best first. The
 * indexed lookup must return exactly its first element (property-tested).
 */
export function linearLookup(
  rules: readonly Rule[],
  request: ConnectionRequest,
  now: number,
  isAlive: LivenessCheck,
): Rule | undefined {
  const view = requestView(request);
  const hits = rules
    .map((rule) => ({ rule, compiled: compileMatch(rule.match) }))
    .filter((e) => matchesView(e.compiled, view) && isEligible(e.rule, now, isAlive));
  hits.sort(comparePrecedence);
  return hits[0]?.rule;
}
