/**
 * How a rule is built, for both sides of the socket: the match a prompt
 * answer's scope keeps and the Rule a RuleInput becomes. The helper saves
 * what these functions build and the UI previews the same call's result, so
 * the preview a person reads is the rule that gets saved. Pure: no Node, no
 * DOM, only the model's types.
 */
import type {
  AnswerScope,
  AnswerWho,
  ConnectionRequest,
  Duration,
  Rule,
  RuleInput,
  RuleMatch,
} from './model.js';

/** The remote end of a request: the destination of an outbound one, the source of an inbound one. */
export function remoteAddress(
  request: Pick<ConnectionRequest, 'direction' | 'src' | 'dst'>,
): string {
  return request.direction === 'outbound' ? request.dst : request.src;
}

/** Lower case and drop one trailing dot: "Example.COM." and "example.com" are the same name. */
export function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * Second-level labels under a two-letter country code that are public suffixes
 * themselves ("example.co.uk" is registrable, "co.uk" is not). A short list, not
 * the Public Suffix List: a name it misses gets a narrower pattern than it
 * could, never one spanning unrelated owners under a common two-label suffix.
 */
const CC_SECOND_LEVEL = new Set([
  'ac',
  'co',
  'com',
  'edu',
  'gob',
  'go',
  'gov',
  'ltd',
  'mil',
  'ne',
  'net',
  'nic',
  'or',
  'org',
  'plc',
  'sch',
]);

/**
 * The `*.domain` pattern of a host: every name under its registrable domain
 * ("api.example.com" and "a.b.example.com" give "*.example.com"). Null when the
 * host has no parent to widen to: an address, a single label ("localhost") or the
 * registrable domain itself ("example.com", which "*.example.com" would not match).
 */
export function domainPattern(host: string): string | null {
  const name = normalizeHost(host);
  if (name.includes(':') || /^[0-9.]+$/u.test(name)) return null;
  const labels = name.split('.');
  const last = labels[labels.length - 1] ?? '';
  const second = labels[labels.length - 2] ?? '';
  const keep = last.length === 2 && CC_SECOND_LEVEL.has(second) ? 3 : 2;
  if (labels.length <= keep) return null;
  return `*.${labels.slice(-keep).join('.')}`;
}

/**
 * The rule match an answer keeps (docs/rules.md). Whom: "app" (the default) the
 * app (app id for sandboxed apps, else the executable) and the uid, "user" the
 * uid only, "anyone" neither. The uid stays with the app so that one user's
 * answer never decides for another user's copy of the same program. Where:
 * "destination" the remote host exactly (or the address), "domain" the host's
 * `*.domain` (the exact host when it has no parent, never wider than asked),
 * "address" the remote IP, each with port and protocol; "port" port and
 * protocol; "any" nothing more. The direction is always kept.
 */
export function matchForScope(
  request: ConnectionRequest,
  scope: AnswerScope,
  who: AnswerWho = 'app',
): RuleMatch {
  const p = request.process;
  const m: RuleMatch = {};
  if (who === 'app') {
    if (p?.appId != null) m.appId = p.appId;
    else if (p?.exe != null) m.exe = p.exe;
  }
  const uid = request.uid ?? p?.uid ?? null;
  if (uid !== null && who !== 'anyone') m.uid = uid;
  if (scope === 'destination' || scope === 'domain') {
    const pattern = request.host && scope === 'domain' ? domainPattern(request.host) : null;
    if (pattern !== null) m.host = pattern;
    else if (request.host) m.host = normalizeHost(request.host);
    else m.address = remoteAddress(request);
  } else if (scope === 'address') {
    m.address = remoteAddress(request);
  }
  if (scope !== 'any') {
    if (request.dport !== null) m.port = { from: request.dport, to: request.dport };
    m.protocol = request.protocol;
  }
  m.direction = request.direction;
  return m;
}

/** When a rule of this duration, made at `from`, lapses: null for those without a deadline. */
export function expiresAt(duration: Duration, from: number): number | null {
  if (duration.kind === 'minutes') return from + duration.minutes * 60_000;
  if (duration.kind === 'seconds') return from + duration.seconds * 1000;
  return null;
}

/** A new rule from what a client submitted: enabled unless it says not, no hits yet. */
export function ruleFromInput(input: RuleInput, id: string, created: number): Rule {
  const rule: Rule = {
    id,
    enabled: input.enabled ?? true,
    action: input.action,
    match: input.match,
    duration: input.duration,
    created,
    expires: expiresAt(input.duration, created),
    hits: 0,
    lastHit: null,
  };
  // Only the non-default choice is stored: absent means reject, and allow rules have none.
  if (input.action === 'deny' && input.denyWith === 'drop') rule.denyWith = 'drop';
  if (input.note !== undefined) rule.note = input.note;
  return rule;
}

/** The RuleInput that rebuilds `rule` (what rules.export sends): its settings
 * without the id, times and hit counts the helper keeps. */
export function ruleToInput(rule: Rule): RuleInput {
  return {
    enabled: rule.enabled,
    action: rule.action,
    ...(rule.denyWith !== undefined ? { denyWith: rule.denyWith } : {}),
    match: rule.match,
    duration: rule.duration,
    ...(rule.note !== undefined ? { note: rule.note } : {}),
  };
}
