/**
 * Runtime schemas of what a page may send the web host: the envelope of
 * src-main/common/web-protocol.ts and, per invoke channel, its argument. The
 * domain parts are the helper's wire schemas, so a value that passes here has
 * the shape the helper will accept too (it validates again).
 */
import * as v from 'valibot';
import {
  Action,
  Count,
  EpochMs,
  MAX_BUCKETS,
  MAX_PAGE,
  PromptAnswer,
  RuleId,
  RuleInput,
  RuleMatch,
  RulesDocument,
  Settings,
  Uint32,
} from '../../helper/protocol/index.js';
import {
  INVOKE_CHANNELS,
  PUSH_CHANNELS,
  type InvokeChannel,
  type InvokeChannels,
} from '../common/api.js';

const None = v.undefined();
const Limit = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000));
const Label = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(127));

/** The argument schema of each invoke channel (`undefined` for none). */
export const invokeArgs = {
  killFlow: Uint32,
  setFlowMark: v.object({ id: Uint32, mark: Uint32 }),
  setFlowLabels: v.object({ id: Uint32, labels: v.pipe(v.array(Label), v.maxLength(128)) }),
  answerPrompt: PromptAnswer,
  listRules: None,
  addRule: RuleInput,
  updateRule: v.object({ id: RuleId, rule: RuleInput }),
  removeRule: RuleId,
  setRuleEnabled: v.object({ id: RuleId, enabled: v.boolean() }),
  importRules: v.object({ document: RulesDocument, replace: v.boolean() }),
  exportRules: None,
  dryRunRule: v.object({
    match: RuleMatch,
    action: Action,
    since: v.nullable(EpochMs),
    limit: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_PAGE)),
  }),
  queryHistory: v.object({
    from: v.nullable(EpochMs),
    to: v.nullable(EpochMs),
    text: v.pipe(v.string(), v.maxLength(256)),
    action: v.nullable(Action),
    beforeSeq: v.nullable(Count),
    limit: Limit,
  }),
  historySeries: v.pipe(
    v.object({
      from: EpochMs,
      to: EpochMs,
      bucketMs: v.pipe(v.number(), v.integer(), v.minValue(1000)),
    }),
    v.check((q) => q.from < q.to, 'from must be before to'),
    v.check((q) => Math.ceil((q.to - q.from) / q.bucketMs) <= MAX_BUCKETS, 'too many buckets'),
  ),
  getStats: None,
  getSettings: None,
  setSettings: v.partial(Settings),
  getHelperStatus: None,
  retryHelper: None,
  processIcon: v.object({
    exe: v.pipe(
      v.string(),
      v.maxLength(4096),
      v.startsWith('/'),
      v.check((s) => !s.includes('\0'), 'NUL in path'),
    ),
    appId: v.nullable(
      v.pipe(v.string(), v.maxLength(255), v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/u)),
    ),
  }),
} as const satisfies Record<InvokeChannel, v.GenericSchema>;

/** Each schema's output is what the channel takes (a compile-time check). */
type ArgOf<K extends InvokeChannel> =
  Parameters<InvokeChannels[K]> extends [infer A] ? A : undefined;
type SchemaOut<K extends InvokeChannel> = v.InferOutput<(typeof invokeArgs)[K]>;
const _argsAgree: { [K in InvokeChannel]: SchemaOut<K> extends ArgOf<K> ? true : false } = {
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
};
void _argsAgree;

const RequestId = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(0),
  v.maxValue(Number.MAX_SAFE_INTEGER),
);
const PushChannelName = v.picklist(PUSH_CHANNELS as [string, ...string[]]);

export const ClientMessage = v.variant('type', [
  v.object({ type: v.literal('hello'), session: v.pipe(v.string(), v.maxLength(512)) }),
  v.object({
    type: v.literal('invoke'),
    id: RequestId,
    channel: v.picklist(INVOKE_CHANNELS as [InvokeChannel, ...InvokeChannel[]]),
    arg: v.optional(v.unknown()),
  }),
  v.object({ type: v.literal('subscribe'), channel: PushChannelName }),
  v.object({ type: v.literal('unsubscribe'), channel: PushChannelName }),
]);
export type ClientMessage = v.InferOutput<typeof ClientMessage>;
