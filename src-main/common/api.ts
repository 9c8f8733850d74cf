/**
 * The one contract between the renderer and Electron main (or the web host).
 *
 * Two channel maps, GitHub Desktop / Podman Desktop style:
 * - `InvokeChannels`: request/response operations, each a function of at most
 *   one argument that returns a Promise. The method name is the channel name.
 * - `PushChannels`: main -> renderer events, each mapped to its payload.
 *
 * `PortcullisApi` is derived from both maps, so the preload, the web transport,
 * the in-memory double and the renderer cannot drift apart: add a channel here
 * and every implementation stops compiling until it handles it.
 *
 * This file is `common`: no DOM, no Node, no Electron. Domain types come from
 * the helper's protocol module with `import type` only (erased at build time),
 * so the renderer never bundles helper code.
 */
import type {
  Action,
  Flow,
  HelperState,
  HistoryEntry,
  KillResult,
  Prompt,
  PromptAnswer,
  Rule,
  RuleInput,
  RuleMatch,
  Settings,
  Stats,
} from '../../helper/protocol/model.js';

export type {
  Action,
  AnswerScope,
  AnswerWho,
  AttributionState,
  ConnectionRequest,
  ConntrackAccounting,
  Duration,
  Flow,
  HelperState,
  HistoryEntry,
  KillResult,
  ProcessAncestor,
  ProcessInfo,
  Prompt,
  PromptAnswer,
  Protocol,
  Rule,
  RuleInput,
  RuleMatch,
  Settings,
  Stats,
  VerdictReason,
} from '../../helper/protocol/model.js';

/** Conntrack id (CTA_ID) of a flow. */
export type FlowId = Flow['id'];
export type RuleId = Rule['id'];
export type PromptId = Prompt['id'];

/**
 * The flow subscription: first a snapshot of the whole table, then deltas
 * (coalesced by the sender to a bounded rate). A flow in `upsert` replaces the
 * one with the same id wholesale; ids in `remove` are gone from the table.
 */
export type FlowEvent =
  { kind: 'snapshot'; flows: Flow[] } | { kind: 'delta'; upsert: Flow[]; remove: FlowId[] };

/**
 * The prompt subscription: a snapshot, then prompts that appear or change
 * (`held` grows as a burst is coalesced) and ids that were answered or timed out.
 */
export type PromptEvent =
  { kind: 'snapshot'; prompts: Prompt[] } | { kind: 'delta'; upsert: Prompt[]; remove: PromptId[] };

/** A verdict given by the helper: the history entry it recorded. */
export type VerdictEvent = HistoryEntry;

/**
 * A change of the helper's rules, whoever made it (a client, a prompt answer, the
 * helper's pruning). `removed`'s reason: `removed` by a client, `expired`, or `exited`
 * (a process rule's process ended). `reset`: many changed at once, list them again.
 */
export type RuleEvent =
  | { kind: 'added' | 'updated'; rule: Rule }
  | { kind: 'removed'; id: string; reason: 'removed' | 'expired' | 'exited' }
  | { kind: 'reset' };

/**
 * What the UI knows about the helper: main's connection to it and, when
 * connected, the helper's own state. Kept separate so the UI can say
 * "connecting..." or show the last error instead of nothing.
 */
export interface HelperStatus {
  connection: 'connected' | 'connecting' | 'disconnected';
  /** Null until the first successful handshake. */
  state: HelperState | null;
  /** The last connection error, for the status bar. */
  error: string | null;
  /**
   * Why the last connection to the helper ended: 'stopped' when the helper said it was
   * stopping (a clean stop removes its firewall rules), 'lost' otherwise (a crash or a
   * kill leaves them, and its fail policy decides new connections); null while none has
   * ended. `state` is then the last one seen.
   */
  lastClose?: 'stopped' | 'lost' | null;
}

export interface SetFlowMarkParams {
  id: FlowId;
  mark: number;
}

export interface SetFlowLabelsParams {
  id: FlowId;
  /** The complete set of label bits (0..127) after the change. */
  labels: number[];
}

export interface UpdateRuleParams {
  id: RuleId;
  rule: RuleInput;
}

export interface SetRuleEnabledParams {
  id: RuleId;
  enabled: boolean;
}

/** Which program's icon (`processIcon`): a ProcessInfo's `exe` and `appId`. */
export interface ProcessIconQuery {
  /** Absolute path of the executable. */
  exe: string;
  /** The flatpak or snap app id, when the process has one. */
  appId: string | null;
}

/**
 * A program's icon as an image `data:` URL (base64), for `<img src>` only: an SVG
 * shown through `<img>` cannot run script or load anything (docs/ui.md).
 */
export interface ProcessIcon {
  mime: 'image/png' | 'image/svg+xml';
  dataUrl: string;
}

/** The file format of rules export/import. */
export interface RulesDocument {
  format: 'portcullis-rules';
  version: 1;
  rules: RuleInput[];
}

/**
 * An import is all or nothing: every rule is checked before any is applied,
 * and a refused one is named by its position in the file ("rule 1500: ...").
 */
export interface ImportRulesParams {
  document: RulesDocument;
  /** Replace every stored rule instead of adding to them. */
  replace: boolean;
}

export interface ImportRulesResult {
  imported: number;
  /** Rules equal to one kept or to an earlier one of the file (match, action, duration): not added. */
  skipped: number;
  removed: number;
}

/** "Would this rule have matched?" over the recorded history. */
export interface DryRunParams {
  match: RuleMatch;
  action: Action;
  /** Only history entries decided at or after this time (epoch ms). */
  since: number | null;
  /** At most this many matching entries are returned (newest first). */
  limit: number;
}

export interface DryRunResult {
  /** Newest first, at most `limit`. */
  matched: HistoryEntry[];
  /** Every match in the scanned range, even beyond `limit`. */
  matchedTotal: number;
  scanned: number;
  /** Matches whose recorded action differs from the rule's action. */
  wouldChange: number;
}

export interface HistoryQuery {
  /** Epoch ms, inclusive; null for unbounded. */
  from: number | null;
  /** Epoch ms, exclusive; null for unbounded. */
  to: number | null;
  /** Case-insensitive text searched in process, path, user, host and addresses. */
  text: string;
  action: Action | null;
  /** Page backwards: only entries with seq below this. */
  beforeSeq: number | null;
  limit: number;
}

export interface HistoryPage {
  /** Newest first. */
  entries: HistoryEntry[];
  /** True when older entries match too (page on with beforeSeq). */
  more: boolean;
}

export interface SeriesQuery {
  from: number;
  to: number;
  bucketMs: number;
}

/** Verdicts per time bucket: parallel arrays, one slot per bucket. */
export interface HistorySeries {
  /** Start of each bucket, epoch ms. */
  time: number[];
  newConnections: number[];
  allowed: number[];
  denied: number[];
  /** Bytes of each bucket's connections that have ended (0 from a helper before 1.2). */
  bytesOut: number[];
  bytesIn: number[];
}

/**
 * Request/response operations. Each takes at most one argument (pinned arity,
 * so a transport can forward exactly one value) and returns a Promise.
 */
export interface InvokeChannels {
  /** Deletes the flow's conntrack entry and destroys its local TCP socket where it can. */
  killFlow(id: FlowId): Promise<KillResult>;
  setFlowMark(params: SetFlowMarkParams): Promise<void>;
  setFlowLabels(params: SetFlowLabelsParams): Promise<void>;

  answerPrompt(answer: PromptAnswer): Promise<void>;

  listRules(): Promise<Rule[]>;
  addRule(rule: RuleInput): Promise<Rule>;
  updateRule(params: UpdateRuleParams): Promise<Rule>;
  removeRule(id: RuleId): Promise<void>;
  setRuleEnabled(params: SetRuleEnabledParams): Promise<Rule>;
  importRules(params: ImportRulesParams): Promise<ImportRulesResult>;
  exportRules(): Promise<RulesDocument>;
  dryRunRule(params: DryRunParams): Promise<DryRunResult>;

  queryHistory(query: HistoryQuery): Promise<HistoryPage>;
  historySeries(query: SeriesQuery): Promise<HistorySeries>;

  getStats(): Promise<Stats>;
  getSettings(): Promise<Settings>;
  /** Changes the given settings; returns the complete settings after the change. */
  setSettings(patch: Partial<Settings>): Promise<Settings>;
  getHelperStatus(): Promise<HelperStatus>;
  /**
   * Try to reach the helper again now: after the link gave up (a dismissed
   * password dialog, a helper that exited) or instead of waiting out a backoff.
   * Served by whoever owns the link (Electron main's launcher, the web host's
   * reconnect loop); does nothing while connected or already connecting.
   */
  retryHelper(): Promise<void>;

  /**
   * The icon a desktop shows for a program (its .desktop entry's Icon= in the icon
   * themes), or null. Resolved by main as the user, cached per executable.
   */
  processIcon(query: ProcessIconQuery): Promise<ProcessIcon | null>;
}

/** Main -> renderer events, by channel. */
export interface PushChannels {
  flows: FlowEvent;
  prompts: PromptEvent;
  verdicts: VerdictEvent;
  stats: Stats;
  helperStatus: HelperStatus;
  rules: RuleEvent;
}

export type InvokeChannel = keyof InvokeChannels;
export type PushChannel = keyof PushChannels;

/** What an invoke channel takes: its one argument, or `undefined` for none. */
export type InvokeArg<K extends InvokeChannel> =
  Parameters<InvokeChannels[K]> extends [infer A] ? A : undefined;
/** What an invoke channel's promise resolves to. */
export type InvokeResult<K extends InvokeChannel> = Awaited<ReturnType<InvokeChannels[K]>>;

/** Stops a subscription. Idempotent. */
export type Unsubscribe = () => void;

/**
 * One `onXxx(listener)` per push channel. Subscribing to `flows` or `prompts`
 * delivers a snapshot first; `helperStatus` delivers the current status first.
 */
export type SubscribeApi = {
  [K in PushChannel as `on${Capitalize<K>}`]: (
    listener: (payload: PushChannels[K]) => void,
  ) => Unsubscribe;
};

/** Everything the renderer may do: `window.portcullis` in Electron. */
export type PortcullisApi = InvokeChannels & SubscribeApi;

/**
 * The invoke channels as data, for the preload and the web transport that
 * build one function per channel. `satisfies` makes a missing or extra name a
 * compile error.
 */
const invokeChannelSet = {
  killFlow: true,
  setFlowMark: true,
  setFlowLabels: true,
  answerPrompt: true,
  listRules: true,
  addRule: true,
  updateRule: true,
  removeRule: true,
  setRuleEnabled: true,
  importRules: true,
  exportRules: true,
  dryRunRule: true,
  queryHistory: true,
  historySeries: true,
  getStats: true,
  getSettings: true,
  setSettings: true,
  getHelperStatus: true,
  retryHelper: true,
  processIcon: true,
} as const satisfies Record<InvokeChannel, true>;

export const INVOKE_CHANNELS = Object.keys(invokeChannelSet) as readonly InvokeChannel[];

const pushChannelSet = {
  flows: true,
  prompts: true,
  verdicts: true,
  stats: true,
  helperStatus: true,
  rules: true,
} as const satisfies Record<PushChannel, true>;

export const PUSH_CHANNELS = Object.keys(pushChannelSet) as readonly PushChannel[];

/** The IPC channel string for an operation or event: "portcullis:killFlow". */
export function channelName(name: InvokeChannel | PushChannel): `portcullis:${string}` {
  return `portcullis:${name}`;
}

/** The subscribe method for a push channel: "flows" -> "onFlows". */
export function subscribeMethod<K extends PushChannel>(channel: K): `on${Capitalize<K>}` {
  return `on${channel.charAt(0).toUpperCase()}${channel.slice(1)}` as `on${Capitalize<K>}`;
}

/**
 * Errors cross the boundary as data (Electron carries only `message` across
 * invoke); the preload or transport rebuilds an `ApiError` from it.
 */
export interface ApiErrorData {
  name: string;
  message: string;
  /** Stable machine-readable code: "not-found", "invalid", "helper-unavailable"... */
  code: string;
}

export type ApiResult<T> = { ok: true; result: T } | { ok: false; error: ApiErrorData };

export class ApiError extends Error {
  readonly code: string;
  constructor(data: ApiErrorData) {
    super(data.message);
    this.name = data.name;
    this.code = data.code;
  }
}
