/**
 * The argument of every invoke channel as a runtime schema, checked by both
 * transports a page calls main through: Electron's trusted IPC (api-host.ts)
 * and the web host's WebSocket (web-host.ts). The domain parts are the
 * helper's wire schemas, so a value that passes here has the shape the helper
 * will accept too (it validates again).
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
import type { InvokeArg, InvokeChannel } from '../common/api.js';

const None = v.undefined();
const Limit = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000));
const Label = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(127));

/** The argument schema of each invoke channel (`undefined` for none). */
export const INVOKE_ARG_SCHEMAS = {
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

// Each schema's output must be what its channel takes: a schema that drifts
// from api.ts stops the build here.
type Agrees = {
  [K in InvokeChannel]: v.InferOutput<(typeof INVOKE_ARG_SCHEMAS)[K]> extends InvokeArg<K>
    ? true
    : false;
};
const _argsAgree: Agrees extends Record<InvokeChannel, true> ? true : never = true;
void _argsAgree;

export type InvokeArgCheck<K extends InvokeChannel> =
  { ok: true; arg: InvokeArg<K> } | { ok: false; message: string };

/** `arg` checked against `channel`'s schema; a refusal names the channel and the first issue. */
export function checkInvokeArg<K extends InvokeChannel>(
  channel: K,
  arg: unknown,
): InvokeArgCheck<K> {
  const r = v.safeParse(INVOKE_ARG_SCHEMAS[channel], arg);
  if (r.success) return { ok: true, arg: r.output as InvokeArg<K> };
  return { ok: false, message: `${channel}: ${r.issues[0]?.message ?? 'invalid argument'}` };
}
