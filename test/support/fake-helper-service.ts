// A HelperService double with real (in-memory) behaviour: rules, history and
// flows that the tests fill and inspect, and a log of every call.
import { ServiceError } from '../../helper/protocol/errors.js';
import type {
  Flow,
  HelperState,
  HistoryEntry,
  KillResult,
  Prompt,
  Rule,
  RuleInput,
  Settings,
  Stats,
} from '../../helper/protocol/model.js';
import { ruleFromInput, ruleToInput } from '../../helper/protocol/rules.js';
import type { HelperService } from '../../helper/server/service.js';

export function makeFlow(id: number, overrides: Partial<Flow> = {}): Flow {
  return {
    id,
    family: 'ipv4',
    protocol: 'tcp',
    protocolNumber: 6,
    src: '10.0.0.1',
    dst: '192.0.2.7',
    sport: 40000 + (id % 20000),
    dport: 443,
    replySrc: '192.0.2.7',
    replyDst: '10.0.0.1',
    replySport: 443,
    replyDport: 40000 + (id % 20000),
    state: 'ESTABLISHED',
    status: ['ASSURED', 'SEEN_REPLY'],
    mark: 0,
    zone: null,
    labels: [],
    timeout: 431999,
    start: null,
    bytesOut: 100,
    bytesIn: 200,
    packetsOut: 1,
    packetsIn: 2,
    host: 'example.org',
    process: null,
    ...overrides,
  };
}

export function makeHistoryEntry(seq: number, overrides: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    seq,
    request: {
      time: 1_700_000_000_000 + seq * 1000,
      direction: 'outbound',
      family: 'ipv4',
      protocol: 'tcp',
      protocolNumber: 6,
      src: '10.0.0.1',
      dst: '192.0.2.7',
      sport: 50000,
      dport: 443,
      icmpType: null,
      icmpCode: null,
      inIfindex: null,
      outIfindex: 2,
      host: seq % 2 === 0 ? 'even.example' : 'odd.example',
      uid: 1000,
      process: {
        pid: 4242,
        ppid: 1,
        startTime: 99,
        comm: 'curl',
        exe: '/usr/bin/curl',
        cmdline: ['curl', 'https://example.org'],
        uid: 1000,
        gid: 1000,
        user: 'alice',
        unit: null,
        container: null,
        appId: null,
      },
    },
    action: seq % 3 === 0 ? 'deny' : 'allow',
    reason: 'rule',
    ruleId: null,
    decidedAt: 1_700_000_000_000 + seq * 1000,
    ended: null,
    bytesOut: null,
    bytesIn: null,
    packetsOut: null,
    packetsIn: null,
    ...overrides,
  };
}

export const SETTINGS: Settings = {
  defaultAction: 'deny',
  promptTimeoutSeconds: 30,
  noGuiPolicy: 'deny',
  failOpen: true,
  interceptOutbound: true,
  interceptInbound: false,
};

export function makeStats(time: number): Stats {
  return {
    time,
    allowed: 1,
    denied: 2,
    prompted: 3,
    queueDropped: 0,
    queueUserDropped: 0,
    queueTotal: 0,
    conntrackCount: 10,
    conntrackMax: 65536,
    conntrackInsertFailed: 0,
    conntrackDrop: 0,
    conntrackEarlyDrop: 0,
  };
}

export class FakeHelperService implements HelperService {
  rules: Rule[] = [];
  history: HistoryEntry[] = [];
  flows = new Map<number, Flow>();
  /** What flows.kill answers (null, as a helper of protocol 1.2 does). */
  killResult: KillResult | null = null;
  prompts: Prompt[] = [];
  settings: Settings = { ...SETTINGS };
  calls: { method: string; params: unknown; uid: number }[] = [];
  private nextRule = 1;
  /** Set to make the next call fail with this error. */
  failNext: Error | undefined;
  /** Set to make a method's result break its schema. */
  corruptResult = false;

  private record(method: string, params: unknown, uid: number): void {
    this.calls.push({ method, params, uid });
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
  }

  /** Replaceable by tests (the helper starts following conntrack here). */
  prepareFlows?: () => Promise<void>;

  flowsSnapshot(): Iterable<Flow> {
    return this.flows.values();
  }

  'state.get': HelperService['state.get'] = async (p, c) => {
    this.record('state.get', p, c.peer.uid);
    const state: HelperState = {
      version: '0.1.0',
      pid: process.pid,
      startedAt: 1,
      netns: null,
      firewallBackend: 'iptables',
      queue: 0,
      settings: this.settings,
      clients: 1,
      pendingPrompts: this.prompts.length,
      rules: this.rules.length,
    };
    if (this.corruptResult) (state as { pid: unknown }).pid = 'not a number';
    return state;
  };
  'settings.get': HelperService['settings.get'] = async (p, c) => {
    this.record('settings.get', p, c.peer.uid);
    return this.settings;
  };
  'settings.set': HelperService['settings.set'] = async (p, c) => {
    this.record('settings.set', p, c.peer.uid);
    this.settings = { ...this.settings, ...p };
    return this.settings;
  };
  'flows.kill': HelperService['flows.kill'] = async (p, c) => {
    this.record('flows.kill', p, c.peer.uid);
    if (!this.flows.delete(p.id)) throw new ServiceError('not-found', `no flow ${p.id}`);
    return this.killResult;
  };
  'flows.setMark': HelperService['flows.setMark'] = async (p, c) => {
    this.record('flows.setMark', p, c.peer.uid);
    const flow = this.flows.get(p.id);
    if (!flow) throw new ServiceError('not-found', `no flow ${p.id}`);
    const mask = p.mask ?? 0xffffffff;
    flow.mark = ((flow.mark & ~mask) ^ p.mark) >>> 0;
    return null;
  };
  'flows.setLabels': HelperService['flows.setLabels'] = async (p, c) => {
    this.record('flows.setLabels', p, c.peer.uid);
    if (!this.flows.has(p.id)) throw new ServiceError('not-found', `no flow ${p.id}`);
    return null;
  };
  'prompts.list': HelperService['prompts.list'] = async (p, c) => {
    this.record('prompts.list', p, c.peer.uid);
    return this.prompts;
  };
  'prompts.answer': HelperService['prompts.answer'] = async (p, c) => {
    this.record('prompts.answer', p, c.peer.uid);
    const i = this.prompts.findIndex((x) => x.id === p.promptId);
    if (i < 0) throw new ServiceError('not-found', `no prompt ${p.promptId}`);
    const [prompt] = this.prompts.splice(i, 1);
    return { decided: prompt!.held, rule: null };
  };
  'rules.list': HelperService['rules.list'] = async (p, c) => {
    this.record('rules.list', p, c.peer.uid);
    return { rules: this.rules.slice(p.offset, p.offset + p.limit), total: this.rules.length };
  };
  'rules.add': HelperService['rules.add'] = async (p, c) => {
    this.record('rules.add', p, c.peer.uid);
    const rule = ruleFromInput(p, `r${this.nextRule++}`, 1_700_000_000_000);
    this.rules.push(rule);
    return rule;
  };
  'rules.update': HelperService['rules.update'] = async (p, c) => {
    this.record('rules.update', p, c.peer.uid);
    const i = this.rules.findIndex((r) => r.id === p.id);
    if (i < 0) throw new ServiceError('not-found', `no rule ${p.id}`);
    const rule = { ...this.rules[i]!, ...p.patch } as Rule;
    this.rules[i] = rule;
    return rule;
  };
  'rules.remove': HelperService['rules.remove'] = async (p, c) => {
    this.record('rules.remove', p, c.peer.uid);
    const i = this.rules.findIndex((r) => r.id === p.id);
    if (i < 0) throw new ServiceError('not-found', `no rule ${p.id}`);
    this.rules.splice(i, 1);
    return null;
  };
  'rules.setEnabled': HelperService['rules.setEnabled'] = async (p, c) => {
    this.record('rules.setEnabled', p, c.peer.uid);
    const rule = this.rules.find((r) => r.id === p.id);
    if (!rule) throw new ServiceError('not-found', `no rule ${p.id}`);
    rule.enabled = p.enabled;
    return rule;
  };
  'rules.import': HelperService['rules.import'] = async (p, c) => {
    this.record('rules.import', p, c.peer.uid);
    const removed = p.mode === 'replace' ? this.rules.length : 0;
    if (p.mode === 'replace') this.rules = [];
    for (const input of p.rules) this.rules.push(ruleFromInput(input, `r${this.nextRule++}`, 1));
    return { added: p.rules.length, removed };
  };
  /** Staged imports by id. No rule checks beyond the wire's: tests of those
   * use the real service (helper/daemon/service.ts). */
  readonly stagings = new Map<string, RuleInput[]>();
  private nextStaging = 1;
  private staged(id: string): RuleInput[] {
    const rules = this.stagings.get(id);
    if (!rules) throw new ServiceError('not-found', `no import ${id} is staged`);
    return rules;
  }
  'rules.importBegin': HelperService['rules.importBegin'] = async (p, c) => {
    this.record('rules.importBegin', p, c.peer.uid);
    const staging = `s${this.nextStaging++}`;
    this.stagings.set(staging, []);
    return { staging, maxRules: 20_000 };
  };
  'rules.importPage': HelperService['rules.importPage'] = async (p, c) => {
    this.record('rules.importPage', p, c.peer.uid);
    const rules = this.staged(p.staging);
    if (p.offset !== rules.length) throw new ServiceError('conflict', 'wrong offset');
    rules.push(...(p.rules as RuleInput[]));
    return { staged: rules.length };
  };
  'rules.importCommit': HelperService['rules.importCommit'] = async (p, c) => {
    this.record('rules.importCommit', p, c.peer.uid);
    const rules = this.staged(p.staging);
    this.stagings.delete(p.staging);
    const removed = p.mode === 'replace' ? this.rules.length : 0;
    if (p.mode === 'replace') this.rules = [];
    for (const input of rules) this.rules.push(ruleFromInput(input, `r${this.nextRule++}`, 1));
    return { added: rules.length, skipped: 0, removed };
  };
  'rules.importAbort': HelperService['rules.importAbort'] = async (p, c) => {
    this.record('rules.importAbort', p, c.peer.uid);
    this.staged(p.staging);
    this.stagings.delete(p.staging);
    return null;
  };
  'rules.export': HelperService['rules.export'] = async (p, c) => {
    this.record('rules.export', p, c.peer.uid);
    const persistent = this.rules.filter((r) => r.duration.kind === 'forever');
    return {
      rules: persistent.slice(p.offset, p.offset + p.limit).map(ruleToInput),
      total: persistent.length,
    };
  };
  'rules.dryRun': HelperService['rules.dryRun'] = async (p, c) => {
    this.record('rules.dryRun', p, c.peer.uid);
    const hits = this.history.filter(
      (e) =>
        (p.match.host === undefined || e.request.host === p.match.host) &&
        (p.since === undefined || e.decidedAt >= p.since) &&
        (p.until === undefined || e.decidedAt <= p.until),
    );
    return { entries: hits.slice(0, p.limit), total: hits.length };
  };
  'history.query': HelperService['history.query'] = async (p, c) => {
    this.record('history.query', p, c.peer.uid);
    const text = p.text?.toLowerCase();
    const hits = this.history
      .filter(
        (e) =>
          (p.since === undefined || e.decidedAt >= p.since) &&
          (p.until === undefined || e.decidedAt <= p.until) &&
          (p.action === undefined || e.action === p.action) &&
          (p.beforeSeq === undefined || e.seq < p.beforeSeq) &&
          (text === undefined || (e.request.host ?? '').includes(text)),
      )
      .sort((a, b) => b.seq - a.seq);
    return { entries: hits.slice(0, p.limit), more: hits.length > p.limit };
  };
  'history.series': HelperService['history.series'] = async (p, c) => {
    this.record('history.series', p, c.peer.uid);
    const buckets = [];
    for (let start = p.since; start < p.until; start += p.bucketMs) {
      const inside = this.history.filter(
        (e) => e.decidedAt >= start && e.decidedAt < start + p.bucketMs,
      );
      buckets.push({
        start,
        allowed: inside.filter((e) => e.action === 'allow').length,
        denied: inside.filter((e) => e.action === 'deny').length,
        prompted: inside.filter((e) => e.reason === 'prompt').length,
      });
    }
    return { bucketMs: p.bucketMs, buckets };
  };
  'stats.get': HelperService['stats.get'] = async (p, c) => {
    this.record('stats.get', p, c.peer.uid);
    return makeStats(Date.now());
  };
}
