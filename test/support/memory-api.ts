/**
 * An in-memory `PortcullisApi`: the whole contract with no helper behind it.
 *
 * It is the renderer's test double (component and store tests drive it and
 * assert on what the UI asked for) and the back end of the synthetic data
 * source used by the UI benchmark. It lives under test/ so that it never
 * reaches dist/ or a package: the real API is the preload (Electron) or the
 * WebSocket transport (web host).
 *
 * Like a real transport, it delivers snapshots on subscribe and deltas on
 * change, and it never mutates an object after handing it out (updates
 * replace objects), so receivers may keep references.
 */
import {
  ApiError,
  type DryRunParams,
  type DryRunResult,
  type Flow,
  type FlowEvent,
  type FlowId,
  type HelperStatus,
  type HistoryEntry,
  type HistoryPage,
  type HistoryQuery,
  type HistorySeries,
  type ImportRulesParams,
  type ImportRulesResult,
  type KillResult,
  type PortcullisApi,
  type ProcessIcon,
  type ProcessIconQuery,
  type Prompt,
  type PromptAnswer,
  type PromptEvent,
  type PromptId,
  type PushChannel,
  type PushChannels,
  type Rule,
  type RuleEvent,
  type RuleInput,
  type RulesDocument,
  type SeriesQuery,
  type SetFlowLabelsParams,
  type SetFlowMarkParams,
  type SetRuleEnabledParams,
  type Settings,
  type Stats,
  type Unsubscribe,
  type UpdateRuleParams,
} from '../../src-main/common/api.js';
import { matchForScope } from '../../src-main/common/matching.js';
import { ruleFromInput } from '../../helper/protocol/rules.js';
import { matchProblem, requestMatches } from './memory-matching.js';

const DEFAULT_SETTINGS: Settings = {
  defaultAction: 'deny',
  promptTimeoutSeconds: 30,
  noGuiPolicy: 'deny',
  failOpen: false,
  interceptOutbound: true,
  interceptInbound: false,
};

function emptyStats(time: number): Stats {
  return {
    time,
    allowed: 0,
    denied: 0,
    prompted: 0,
    queueDropped: 0,
    queueUserDropped: 0,
    queueTotal: 0,
    conntrackCount: 0,
    conntrackMax: 262144,
    conntrackInsertFailed: 0,
    conntrackDrop: 0,
    conntrackEarlyDrop: 0,
  };
}

export interface MemoryApiOptions {
  /** The clock (epoch ms); injectable so tests control time. */
  now?: () => number;
  settings?: Settings;
}

type Listeners = { [K in PushChannel]: Set<(payload: PushChannels[K]) => void> };

function notFound(what: string): ApiError {
  return new ApiError({ name: 'NotFoundError', message: `${what} not found`, code: 'not-found' });
}

function invalid(message: string): ApiError {
  return new ApiError({ name: 'ValidationError', message, code: 'invalid' });
}

function searchText(entry: HistoryEntry): string {
  const r = entry.request;
  const p = r.process;
  return [p?.comm, p?.exe, p?.user, p?.appId, p?.unit, r.host, r.src, r.dst, r.dport, r.protocol]
    .filter((x) => x !== null && x !== undefined)
    .join(' ')
    .toLowerCase();
}

/** What makes two rules the same (the helper's ruleKey, approximately): match, action, duration. */
function ruleKey(rule: Pick<RuleInput, 'match' | 'action' | 'duration'>): string {
  const m = rule.match;
  const host = m.host?.toLowerCase().replace(/\.$/u, '');
  const address =
    m.address === undefined || m.address.includes('/')
      ? m.address
      : `${m.address}/${m.address.includes(':') ? 128 : 32}`;
  return JSON.stringify([
    m.exe,
    m.appId,
    m.unit,
    m.uid,
    host,
    address?.toLowerCase(),
    m.port ? [m.port.from, m.port.to] : null,
    m.protocol,
    m.direction,
    rule.action,
    rule.duration,
  ]);
}

export class MemoryPortcullis implements PortcullisApi {
  readonly flows = new Map<FlowId, Flow>();
  readonly prompts = new Map<PromptId, Prompt>();
  rules: Rule[] = [];
  /** Oldest first; seq increases. */
  readonly history: HistoryEntry[] = [];
  settings: Settings;
  stats: Stats;
  status: HelperStatus;
  /** Every answer given, oldest first (tests assert on it). */
  readonly answers: PromptAnswer[] = [];
  /** How many times the UI asked to retry the helper link (tests assert on it). */
  retries = 0;
  /** Icons by executable path, served by processIcon (null when absent). */
  readonly icons = new Map<string, ProcessIcon>();
  /** Every processIcon query, oldest first (tests assert on deduplication). */
  readonly iconQueries: ProcessIconQuery[] = [];

  private readonly now: () => number;
  private nextRule = 1;
  private nextSeq = 1;
  private readonly listeners: Listeners = {
    flows: new Set(),
    prompts: new Set(),
    verdicts: new Set(),
    stats: new Set(),
    helperStatus: new Set(),
    rules: new Set(),
  };

  constructor(options: MemoryApiOptions = {}) {
    this.now = options.now ?? (() => Date.now());
    this.settings = { ...(options.settings ?? DEFAULT_SETTINGS) };
    this.stats = emptyStats(this.now());
    this.status = {
      connection: 'connected',
      error: null,
      state: {
        version: 'memory',
        pid: 1,
        startedAt: this.now(),
        netns: null,
        firewallBackend: 'none',
        queue: 0,
        settings: this.settings,
        clients: 1,
        pendingPrompts: 0,
        rules: 0,
        conntrack: { accounting: true, timestamps: true, enabledByHelper: true, optOut: false },
      },
    };
  }

  // ---- driving the double (what the helper would do) ----

  private emit<K extends PushChannel>(channel: K, payload: PushChannels[K]): void {
    for (const listener of this.listeners[channel]) listener(payload);
  }

  private subscribe<K extends PushChannel>(
    channel: K,
    listener: (payload: PushChannels[K]) => void,
    initial: PushChannels[K] | null,
  ): Unsubscribe {
    const set = this.listeners[channel];
    set.add(listener);
    if (initial !== null) listener(initial);
    return () => set.delete(listener);
  }

  /** Adds or replaces flows and sends one delta. */
  upsertFlows(flows: Flow[], remove: FlowId[] = []): void {
    for (const f of flows) this.flows.set(f.id, f);
    const removed = remove.filter((id) => this.flows.delete(id));
    this.emit('flows', { kind: 'delta', upsert: flows, remove: removed });
  }

  removeFlows(ids: FlowId[]): void {
    this.upsertFlows([], ids);
  }

  /** Adds or replaces a pending prompt. */
  upsertPrompt(prompt: Prompt): void {
    this.prompts.set(prompt.id, prompt);
    this.emit('prompts', { kind: 'delta', upsert: [prompt], remove: [] });
    this.refreshState();
  }

  /** Records a verdict and pushes it to subscribers. */
  recordVerdict(entry: Omit<HistoryEntry, 'seq'>): HistoryEntry {
    const full: HistoryEntry = { ...entry, seq: this.nextSeq++ };
    this.history.push(full);
    this.emit('verdicts', full);
    return full;
  }

  pushStats(stats: Stats): void {
    this.stats = stats;
    this.emit('stats', stats);
  }

  setHelperStatus(status: HelperStatus): void {
    this.status = status;
    this.emit('helperStatus', status);
  }

  /** Prompts whose deadline passed get the default action, as the helper would. */
  expirePrompts(): void {
    const now = this.now();
    for (const p of [...this.prompts.values()]) {
      if (p.deadline > now) continue;
      this.prompts.delete(p.id);
      this.emit('prompts', { kind: 'delta', upsert: [], remove: [p.id] });
      this.recordVerdict(this.entryFor(p, p.defaultAction, 'default', null));
    }
    this.refreshState();
  }

  private refreshState(): void {
    const state = this.status.state;
    if (!state) return;
    this.setHelperStatus({
      ...this.status,
      state: {
        ...state,
        settings: this.settings,
        pendingPrompts: this.prompts.size,
        rules: this.rules.length,
      },
    });
  }

  private entryFor(
    prompt: Prompt,
    action: Rule['action'],
    reason: HistoryEntry['reason'],
    ruleId: string | null,
  ): Omit<HistoryEntry, 'seq'> {
    return {
      request: prompt.request,
      action,
      reason,
      ruleId,
      decidedAt: this.now(),
      ended: null,
      bytesOut: null,
      bytesIn: null,
      packetsOut: null,
      packetsIn: null,
    };
  }

  // ---- subscriptions ----

  onFlows(listener: (event: FlowEvent) => void): Unsubscribe {
    return this.subscribe('flows', listener, {
      kind: 'snapshot',
      flows: [...this.flows.values()],
    });
  }

  onPrompts(listener: (event: PromptEvent) => void): Unsubscribe {
    return this.subscribe('prompts', listener, {
      kind: 'snapshot',
      prompts: [...this.prompts.values()],
    });
  }

  /** What the helper's `rules` topic would say (a prune, a change by another client). */
  emitRuleEvent(event: RuleEvent): void {
    this.emit('rules', event);
  }

  onRules(listener: (event: RuleEvent) => void): Unsubscribe {
    return this.subscribe('rules', listener, null);
  }

  onVerdicts(listener: (entry: HistoryEntry) => void): Unsubscribe {
    return this.subscribe('verdicts', listener, null);
  }

  onStats(listener: (stats: Stats) => void): Unsubscribe {
    return this.subscribe('stats', listener, this.stats);
  }

  onHelperStatus(listener: (status: HelperStatus) => void): Unsubscribe {
    return this.subscribe('helperStatus', listener, this.status);
  }

  // ---- flows ----

  async killFlow(id: FlowId): Promise<KillResult> {
    const flow = this.flows.get(id);
    if (!flow) throw notFound(`flow ${id}`);
    this.removeFlows([id]);
    return { conntrackDeleted: true, socketsDestroyed: flow.protocol === 'tcp' ? 1 : null };
  }

  async setFlowMark({ id, mark }: SetFlowMarkParams): Promise<void> {
    const flow = this.flows.get(id);
    if (!flow) throw notFound(`flow ${id}`);
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw invalid('mark: u32');
    this.upsertFlows([{ ...flow, mark }]);
  }

  async setFlowLabels({ id, labels }: SetFlowLabelsParams): Promise<void> {
    const flow = this.flows.get(id);
    if (!flow) throw notFound(`flow ${id}`);
    if (labels.some((l) => !Number.isInteger(l) || l < 0 || l > 127)) {
      throw invalid('labels: 0..127');
    }
    this.upsertFlows([{ ...flow, labels: [...new Set(labels)].sort((a, b) => a - b) }]);
  }

  // ---- prompts ----

  async answerPrompt(answer: PromptAnswer): Promise<void> {
    const prompt = this.prompts.get(answer.promptId);
    if (!prompt) throw notFound(`prompt ${answer.promptId}`);
    this.answers.push(answer);
    let ruleId: string | null = null;
    if (answer.duration.kind !== 'once') {
      const rule = await this.addRule({
        action: answer.action,
        ...(answer.denyWith ? { denyWith: answer.denyWith } : {}),
        duration: answer.duration,
        match: answer.match ?? matchForScope(prompt.request, answer.scope, answer.who),
      });
      ruleId = rule.id;
    }
    this.prompts.delete(prompt.id);
    this.emit('prompts', { kind: 'delta', upsert: [], remove: [prompt.id] });
    this.recordVerdict(this.entryFor(prompt, answer.action, 'prompt', ruleId));
    this.refreshState();
  }

  // ---- rules ----

  private indexOf(id: string): number {
    const i = this.rules.findIndex((r) => r.id === id);
    if (i < 0) throw notFound(`rule ${id}`);
    return i;
  }

  async listRules(): Promise<Rule[]> {
    return [...this.rules];
  }

  async addRule(input: RuleInput): Promise<Rule> {
    if (input.duration.kind === 'once') throw invalid('a rule cannot last "once"');
    const rule = ruleFromInput(input, `r${this.nextRule++}`, this.now());
    this.rules = [...this.rules, rule];
    this.refreshState();
    return rule;
  }

  async updateRule({ id, rule: input }: UpdateRuleParams): Promise<Rule> {
    const i = this.indexOf(id);
    const old = this.rules[i] as Rule;
    const rule = { ...ruleFromInput(input, id, old.created), hits: old.hits, lastHit: old.lastHit };
    this.rules = this.rules.map((r, j) => (j === i ? rule : r));
    return rule;
  }

  async removeRule(id: string): Promise<void> {
    const i = this.indexOf(id);
    this.rules = this.rules.filter((_, j) => j !== i);
    this.refreshState();
  }

  async setRuleEnabled({ id, enabled }: SetRuleEnabledParams): Promise<Rule> {
    const i = this.indexOf(id);
    const rule = { ...(this.rules[i] as Rule), enabled };
    this.rules = this.rules.map((r, j) => (j === i ? rule : r));
    return rule;
  }

  /**
   * All or nothing, like the helper: every rule is checked first (a refused
   * one is named by its position in the file), duplicates of a kept rule or
   * of an earlier rule of the file are skipped and counted.
   */
  async importRules({ document, replace }: ImportRulesParams): Promise<ImportRulesResult> {
    if (document.format !== 'portcullis-rules' || document.version !== 1) {
      throw invalid('not a Portcullis rules document (format portcullis-rules, version 1)');
    }
    document.rules.forEach((input, i) => {
      const kind = input.duration.kind;
      const problem =
        kind === 'forever' || kind === 'minutes'
          ? matchProblem(input.match)
          : `duration "${kind}": only "forever" and "minutes" rules can be imported`;
      if (problem !== null) throw invalid(`rule ${i + 1}: ${problem}; nothing was imported`);
    });
    // A replace drops the persistent rules, as the helper does; session rules stay.
    const kept = replace
      ? this.rules.filter((r) => r.duration.kind !== 'forever' && r.duration.kind !== 'minutes')
      : this.rules;
    const seen = new Set(kept.map(ruleKey));
    const added: Rule[] = [];
    let skipped = 0;
    const now = this.now();
    for (const input of document.rules) {
      const key = ruleKey(input);
      if (seen.has(key)) {
        skipped++;
        continue;
      }
      seen.add(key);
      added.push(ruleFromInput(input, `r${this.nextRule++}`, now));
    }
    const removed = this.rules.length - kept.length;
    this.rules = [...kept, ...added];
    this.refreshState();
    return { imported: added.length, skipped, removed };
  }

  async exportRules(): Promise<RulesDocument> {
    return {
      format: 'portcullis-rules',
      version: 1,
      rules: this.rules.map(({ enabled, action, match, duration, note }) => ({
        enabled,
        action,
        match,
        duration,
        ...(note !== undefined ? { note } : {}),
      })),
    };
  }

  async dryRunRule({ match, action, since, limit }: DryRunParams): Promise<DryRunResult> {
    const matched: HistoryEntry[] = [];
    let matchedTotal = 0;
    let scanned = 0;
    let wouldChange = 0;
    for (let i = this.history.length - 1; i >= 0; i--) {
      const entry = this.history[i] as HistoryEntry;
      if (since !== null && entry.decidedAt < since) continue;
      scanned++;
      if (!requestMatches(match, entry.request)) continue;
      matchedTotal++;
      if (entry.action !== action) wouldChange++;
      if (matched.length < limit) matched.push(entry);
    }
    return { matched, matchedTotal, scanned, wouldChange };
  }

  // ---- history ----

  async queryHistory(q: HistoryQuery): Promise<HistoryPage> {
    const text = q.text.trim().toLowerCase();
    const entries: HistoryEntry[] = [];
    for (let i = this.history.length - 1; i >= 0; i--) {
      const e = this.history[i] as HistoryEntry;
      if (q.beforeSeq !== null && e.seq >= q.beforeSeq) continue;
      if (q.from !== null && e.decidedAt < q.from) continue;
      if (q.to !== null && e.decidedAt >= q.to) continue;
      if (q.action !== null && e.action !== q.action) continue;
      if (text !== '' && !searchText(e).includes(text)) continue;
      if (entries.length === q.limit) return { entries, more: true };
      entries.push(e);
    }
    return { entries, more: false };
  }

  async historySeries({ from, to, bucketMs }: SeriesQuery): Promise<HistorySeries> {
    if (!(bucketMs > 0) || to < from) throw invalid('series: need bucketMs > 0 and from <= to');
    const n = Math.min(10_000, Math.ceil((to - from) / bucketMs));
    const series: HistorySeries = {
      time: Array.from({ length: n }, (_, i) => from + i * bucketMs),
      newConnections: new Array<number>(n).fill(0),
      allowed: new Array<number>(n).fill(0),
      denied: new Array<number>(n).fill(0),
      bytesOut: new Array<number>(n).fill(0),
      bytesIn: new Array<number>(n).fill(0),
    };
    for (const e of this.history) {
      if (e.decidedAt < from || e.decidedAt >= to) continue;
      const b = Math.floor((e.decidedAt - from) / bucketMs);
      if (b >= n) continue;
      series.newConnections[b]! += 1;
      if (e.action === 'allow') series.allowed[b]! += 1;
      else series.denied[b]! += 1;
      series.bytesOut[b]! += e.bytesOut ?? 0;
      series.bytesIn[b]! += e.bytesIn ?? 0;
    }
    return series;
  }

  // ---- stats, settings, state ----

  async getStats(): Promise<Stats> {
    return this.stats;
  }

  async getSettings(): Promise<Settings> {
    return { ...this.settings };
  }

  async setSettings(patch: Partial<Settings>): Promise<Settings> {
    const next = { ...this.settings, ...patch };
    const t = next.promptTimeoutSeconds;
    if (!Number.isInteger(t) || t < 1 || t > 600) throw invalid('promptTimeoutSeconds: 1..600');
    this.settings = next;
    this.refreshState();
    return { ...next };
  }

  async getHelperStatus(): Promise<HelperStatus> {
    return this.status;
  }

  async retryHelper(): Promise<void> {
    this.retries++;
  }

  async processIcon(query: ProcessIconQuery): Promise<ProcessIcon | null> {
    this.iconQueries.push(query);
    return this.icons.get(query.exe) ?? null;
  }
}
