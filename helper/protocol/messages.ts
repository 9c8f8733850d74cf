/**
 * The IPC wire catalogue: every frame, method and topic between the helper
 * and its clients (the CLI and Electron main). One module, imported by
 * both ends, so that a method's params and result are checked against the
 * same valibot schema on each side and typed end to end:
 * `client.call('rules.add', input)` resolves to a `Rule`.
 *
 * Framing (helper/protocol/framing.ts): u32 big-endian length + UTF-8 JSON,
 * at most MAX_FRAME_BYTES of JSON per frame. See docs/protocol.md.
 *
 * Unknown object keys are dropped by the schemas (valibot `object`), so a
 * peer of a newer minor version can add optional fields without breaking an
 * older one; anything else incompatible bumps the major version.
 */
import * as v from 'valibot';
import { ErrorBody } from './errors.js';
import {
  Action,
  Count,
  EpochMs,
  Flow,
  HelperState,
  HistoryEntry,
  KillResult,
  Prompt,
  PromptAnswer,
  Rule,
  RuleId,
  RuleInput,
  RuleMatch,
  Settings,
  Stats,
  Uint32,
  VerdictReason,
} from './model.js';

/** This build's protocol version: a major mismatch is refused at Hello. What each
 * minor version added is listed in docs/protocol.md. */
export const PROTOCOL_VERSION = { major: 1, minor: 5 } as const;

/** Largest JSON payload of one frame (the 4-byte length prefix excluded).
 * Bigger data is paged (list methods) or chunked (the flow snapshot). */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** Largest frame the helper reads before the Hello succeeded: a Hello is
 * small, and an unauthenticated peer should pin little memory. */
export const HELLO_MAX_BYTES = 16 * 1024;

/** What the helper aims for per snapshot or delta frame: well under the
 * limit, so that one chunk never monopolises a slow socket. */
export const CHUNK_TARGET_BYTES = 256 * 1024;

/** Most items a list method returns (or rules.import takes) per call. */
export const MAX_PAGE = 1000;

/** Most rules one staged import may hold (rules.importBegin's `maxRules`). */
export const MAX_IMPORT_RULES = 20_000;

/** Most buckets history.series computes per call. */
export const MAX_BUCKETS = 5000;

// ---------------------------------------------------------------------------
// Envelopes

export const ProtocolVersion = v.object({
  major: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535)),
  minor: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535)),
});
export type ProtocolVersion = v.InferOutput<typeof ProtocolVersion>;

const Build = v.pipe(v.string(), v.maxLength(128));
/** The per-launch token (docs/protocol.md "Authentication"). */
export const Token = v.pipe(v.string(), v.minLength(1), v.maxLength(512));
export const RequestId = Count;
const MethodText = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
const TopicText = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

export const ClientHello = v.object({
  type: v.literal('hello'),
  protocol: ProtocolVersion,
  build: Build,
  token: Token,
});
export type ClientHello = v.InferOutput<typeof ClientHello>;

export const ServerHello = v.object({
  type: v.literal('hello'),
  protocol: ProtocolVersion,
  build: Build,
  /** The helper's pid, for diagnostics. */
  pid: Count,
});
export type ServerHello = v.InferOutput<typeof ServerHello>;

/** A request before method-specific validation: `params` is checked against
 * the method's schema once the method is known. */
export const RequestFrame = v.object({
  type: v.literal('request'),
  id: RequestId,
  method: MethodText,
  params: v.optional(v.unknown()),
});
export type RequestFrame = v.InferOutput<typeof RequestFrame>;

/** Everything a client may send. */
export const ClientFrame = v.variant('type', [ClientHello, RequestFrame]);
export type ClientFrame = v.InferOutput<typeof ClientFrame>;

export const ResponseFrame = v.variant('ok', [
  v.object({
    type: v.literal('response'),
    id: RequestId,
    ok: v.literal(true),
    result: v.unknown(),
  }),
  v.object({ type: v.literal('response'), id: RequestId, ok: v.literal(false), error: ErrorBody }),
]);
export type ResponseFrame = v.InferOutput<typeof ResponseFrame>;

export const EventFrame = v.object({
  type: v.literal('event'),
  topic: TopicText,
  data: v.unknown(),
});
export type EventFrame = v.InferOutput<typeof EventFrame>;

/** A connection-level error (not an answer to a request). `fatal`: the
 * helper closes the connection after sending it. `protocol` is the helper's
 * version, set on a protocol-mismatch so the client can say which it needs. */
export const ErrorFrame = v.object({
  type: v.literal('error'),
  error: ErrorBody,
  fatal: v.boolean(),
  protocol: v.optional(ProtocolVersion),
});
export type ErrorFrame = v.InferOutput<typeof ErrorFrame>;

/** Everything the helper may send. The variant on `type` is tried first;
 * ResponseFrame is itself a variant on `ok`. */
export const ServerFrame = v.union([ServerHello, ResponseFrame, EventFrame, ErrorFrame]);
export type ServerFrame = v.InferOutput<typeof ServerFrame>;

// ---------------------------------------------------------------------------
// Methods

/** No parameters: `{}` or absent. */
const NoParams = v.optional(v.object({}), {});

const Page = v.object({
  offset: v.optional(Count, 0),
  limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_PAGE)), MAX_PAGE),
});

const Label = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(127));
const Labels = v.pipe(v.array(Label), v.maxLength(128));

/** Topics a client can subscribe to. `dropped` is sent without asking. `rules`: protocol 1.5
 * (a helper of 1.4 refuses it as invalid-params: subscribe to it in a call of its own). */
export const SubscribableTopic = v.picklist([
  'flows',
  'prompts',
  'verdicts',
  'stats',
  'state',
  'rules',
]);
export type SubscribableTopic = v.InferOutput<typeof SubscribableTopic>;
export const SUBSCRIBABLE_TOPICS = SubscribableTopic.options;

const Topics = v.object({
  topics: v.pipe(v.array(SubscribableTopic), v.maxLength(16)),
});

/** since <= until when both are given. */
function timeRange<T extends { since?: number | undefined; until?: number | undefined }>() {
  return v.check<T, string>(
    (r) => r.since === undefined || r.until === undefined || r.since <= r.until,
    'since must not be after until',
  );
}

export const HistoryQuery = v.pipe(
  v.object({
    since: v.optional(EpochMs),
    until: v.optional(EpochMs),
    /** Case-insensitive substring of host, address, executable, command or user. */
    text: v.optional(v.pipe(v.string(), v.maxLength(256))),
    action: v.optional(Action),
    limit: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_PAGE)),
    /** Page backwards: only entries with seq < beforeSeq (newest first). */
    beforeSeq: v.optional(Count),
  }),
  timeRange(),
);
export type HistoryQuery = v.InferOutput<typeof HistoryQuery>;

export const SeriesQuery = v.pipe(
  v.object({
    since: EpochMs,
    until: EpochMs,
    bucketMs: v.pipe(v.number(), v.integer(), v.minValue(1000), v.maxValue(31 * 86_400_000)),
  }),
  v.check((q) => q.since < q.until, 'since must be before until'),
  v.check(
    (q) => Math.ceil((q.until - q.since) / q.bucketMs) <= MAX_BUCKETS,
    `at most ${MAX_BUCKETS} buckets: use a larger bucketMs`,
  ),
);
export type SeriesQuery = v.InferOutput<typeof SeriesQuery>;

export const SeriesBucket = v.object({
  /** Bucket start (epoch ms); the bucket is [start, start + bucketMs). */
  start: EpochMs,
  allowed: Count,
  denied: Count,
  prompted: Count,
  /** Bytes of the bucket's connections that have ended (optional: older helpers send none). */
  bytesOut: v.optional(Count),
  bytesIn: v.optional(Count),
});
export type SeriesBucket = v.InferOutput<typeof SeriesBucket>;

export const DryRunQuery = v.pipe(
  v.object({
    match: RuleMatch,
    since: v.optional(EpochMs),
    until: v.optional(EpochMs),
    limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_PAGE)), 100),
  }),
  timeRange(),
);
export type DryRunQuery = v.InferOutput<typeof DryRunQuery>;

export const ImportMode = v.picklist(['merge', 'replace']);
export type ImportMode = v.InferOutput<typeof ImportMode>;

/** A staged import, named by the helper at rules.importBegin. */
export const StagingId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

/**
 * Every method: name -> params schema + result schema (the Desktop
 * `RequestResponseChannels` idea, with runtime schemas instead of bare types).
 * `subscribe`/`unsubscribe` are served by the IPC server itself; every other
 * method is a HelperService function (helper/server/service.ts).
 */
export const methods = {
  'state.get': { params: NoParams, result: HelperState },
  'settings.get': { params: NoParams, result: Settings },
  /** Only the fields given change; resolves to the settings now in force. */
  'settings.set': { params: v.partial(Settings), result: Settings },
  /** Adds topics; resolves to every topic now subscribed. `flows` starts
   * with a snapshot (snapshot-begin, chunks, snapshot-end), then deltas. */
  subscribe: { params: Topics, result: Topics },
  unsubscribe: { params: Topics, result: Topics },
  /** Ends a flow: conntrack delete, and a socket destroy for TCP where allowed. The
   * entry is deleted even when the socket cannot be destroyed; `socketError` says why
   * (a kernel without SOCK_DESTROY: EOPNOTSUPP). Null from helpers of protocol 1.2. */
  'flows.kill': {
    params: v.object({ id: Uint32 }),
    result: v.nullable(KillResult),
  },
  'flows.setMark': {
    params: v.object({ id: Uint32, mark: Uint32, mask: v.optional(Uint32) }),
    result: v.null(),
  },
  'flows.setLabels': {
    params: v.object({ id: Uint32, add: Labels, remove: Labels }),
    result: v.null(),
  },
  'prompts.list': { params: NoParams, result: v.array(Prompt) },
  /** The first answer to a prompt wins; a later one gets `not-found`. */
  'prompts.answer': {
    params: PromptAnswer,
    result: v.object({ decided: Count, rule: v.nullable(Rule) }),
  },
  /** Rules in precedence order, paged. */
  'rules.list': {
    params: v.optional(Page, {}),
    result: v.object({ rules: v.array(Rule), total: Count }),
  },
  'rules.add': { params: RuleInput, result: Rule },
  'rules.update': { params: v.object({ id: RuleId, patch: v.partial(RuleInput) }), result: Rule },
  'rules.remove': { params: v.object({ id: RuleId }), result: v.null() },
  'rules.setEnabled': { params: v.object({ id: RuleId, enabled: v.boolean() }), result: Rule },
  /** One call, all or nothing, at most MAX_PAGE rules; duplicates are skipped
   * (`skipped`). Bigger imports are staged: rules.importBegin. */
  'rules.import': {
    params: v.object({
      rules: v.pipe(v.array(RuleInput), v.maxLength(MAX_PAGE)),
      mode: ImportMode,
    }),
    result: v.object({ added: Count, removed: Count, skipped: v.optional(Count) }),
  },
  /** Starts a staged import (any size up to `maxRules`); `total`, when
   * given, is refused at once if too big. Nothing changes until the commit. */
  'rules.importBegin': {
    params: v.optional(v.object({ total: v.optional(Count) }), {}),
    result: v.object({ staging: StagingId, maxRules: Count }),
  },
  /** Stages the file's rules from position `offset` (0-based; the count
   * already staged). Each rule is checked as rules.add checks it; a bad one
   * is `invalid-params` naming its position in the file ("rule 1500: ..."),
   * and drops the staging. Rules are unknown here so that the helper, not the
   * frame schema, reports them by position. */
  'rules.importPage': {
    params: v.object({
      staging: StagingId,
      offset: Count,
      rules: v.pipe(v.array(v.unknown()), v.maxLength(MAX_PAGE)),
    }),
    result: v.object({ staged: Count }),
  },
  /** Applies the staged rules in one write and ends the staging. */
  'rules.importCommit': {
    params: v.object({ staging: StagingId, mode: ImportMode }),
    result: v.object({ added: Count, skipped: Count, removed: Count }),
  },
  'rules.importAbort': { params: v.object({ staging: StagingId }), result: v.null() },
  /** The persistent rules as RuleInput (portable: no ids, no counters), paged. */
  'rules.export': {
    params: v.optional(Page, {}),
    result: v.object({ rules: v.array(RuleInput), total: Count }),
  },
  /** Which decided connections in the history a rule would have matched. */
  'rules.dryRun': {
    params: DryRunQuery,
    result: v.object({ entries: v.array(HistoryEntry), total: Count }),
  },
  /** Newest first; `more` says whether older entries match too. */
  'history.query': {
    params: HistoryQuery,
    result: v.object({ entries: v.array(HistoryEntry), more: v.boolean() }),
  },
  'history.series': {
    params: SeriesQuery,
    result: v.object({ bucketMs: Count, buckets: v.array(SeriesBucket) }),
  },
  'stats.get': { params: NoParams, result: Stats },
} as const satisfies Record<string, { params: v.GenericSchema; result: v.GenericSchema }>;

export type Methods = typeof methods;
export type MethodName = keyof Methods;
/** What a caller passes (defaults not yet applied). */
export type ParamsInput<M extends MethodName> = v.InferInput<Methods[M]['params']>;
/** What the helper receives after validation (defaults applied). */
export type Params<M extends MethodName> = v.InferOutput<Methods[M]['params']>;
export type Result<M extends MethodName> = v.InferOutput<Methods[M]['result']>;

export function isMethodName(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(methods, name);
}

// ---------------------------------------------------------------------------
// Topics

/** What the daemon publishes for `flows`: upserts and removals since the last
 * publish. The server merges these per flow id for each client. */
export const FlowsDelta = v.object({
  added: v.array(Flow),
  updated: v.array(Flow),
  removed: v.array(Uint32),
});
export type FlowsDelta = v.InferOutput<typeof FlowsDelta>;

export const FlowsEvent = v.variant('kind', [
  /** A snapshot follows: `total` flows in chunks, then snapshot-end. A client
   * replaces its table with the snapshot. */
  v.object({ kind: v.literal('snapshot-begin'), total: Count }),
  v.object({ kind: v.literal('snapshot-chunk'), flows: v.array(Flow) }),
  v.object({ kind: v.literal('snapshot-end') }),
  /** Changes since the previous delta (or the snapshot). `added` and `updated`
   * are both upserts of whole flows; `removed` lists conntrack ids. */
  v.object({
    kind: v.literal('delta'),
    added: v.array(Flow),
    updated: v.array(Flow),
    removed: v.array(Uint32),
  }),
]);
export type FlowsEvent = v.InferOutput<typeof FlowsEvent>;

export const PromptsEvent = v.variant('kind', [
  v.object({ kind: v.literal('added'), prompt: Prompt }),
  v.object({ kind: v.literal('updated'), prompt: Prompt }),
  v.object({
    kind: v.literal('resolved'),
    id: Prompt.entries.id,
    action: Action,
    reason: VerdictReason,
  }),
]);
export type PromptsEvent = v.InferOutput<typeof PromptsEvent>;

/**
 * Every change of the rules (protocol 1.5), whoever made it: a client, a prompt answer,
 * the helper's pruning. `removed` says why: `removed` by a client, `expired` (a
 * "minutes" rule's time is up), `exited` (a "process" rule's process ended). `reset`:
 * many rules changed at once (an import): list them again.
 */
export const RulesEvent = v.variant('kind', [
  v.object({ kind: v.literal('added'), rule: Rule }),
  v.object({ kind: v.literal('updated'), rule: Rule }),
  v.object({
    kind: v.literal('removed'),
    id: RuleId,
    reason: v.picklist(['removed', 'expired', 'exited']),
  }),
  v.object({ kind: v.literal('reset') }),
]);
export type RulesEvent = v.InferOutput<typeof RulesEvent>;

/** Sent (unasked) when the helper cut this client off from events because it
 * did not read them fast enough: its subscriptions are gone. It may subscribe
 * again and gets a fresh snapshot. */
export const DroppedEvent = v.object({
  topics: v.array(SubscribableTopic),
  reason: v.literal('slow-consumer'),
  message: v.pipe(v.string(), v.maxLength(1024)),
});
export type DroppedEvent = v.InferOutput<typeof DroppedEvent>;

/** Topic -> event payload as the client receives it (Podman's typed push map). */
export const topics = {
  flows: FlowsEvent,
  prompts: PromptsEvent,
  verdicts: HistoryEntry,
  stats: Stats,
  state: HelperState,
  rules: RulesEvent,
  dropped: DroppedEvent,
} as const satisfies Record<string, v.GenericSchema>;

export type Topics = typeof topics;
export type TopicName = keyof Topics;
export type TopicData<T extends TopicName> = v.InferOutput<Topics[T]>;

/** Topic -> what the daemon passes to server.publish(). */
export interface PublishMap {
  flows: FlowsDelta;
  prompts: PromptsEvent;
  verdicts: HistoryEntry;
  stats: Stats;
  state: HelperState;
  rules: RulesEvent;
}

export function isTopicName(name: string): name is TopicName {
  return Object.prototype.hasOwnProperty.call(topics, name);
}

/** The rules file format of `portcullis rules export` / `import`. */
export const RulesDocument = v.object({
  format: v.literal('portcullis-rules'),
  version: v.literal(1),
  rules: v.array(RuleInput),
});
export type RulesDocument = v.InferOutput<typeof RulesDocument>;
