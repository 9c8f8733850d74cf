/**
 * How a rule is built, for both sides of the socket: the match a prompt
 * answer's scope keeps and the Rule a RuleInput becomes. The helper saves
 * what these functions build and the UI previews the same call's result, so
 * the preview a person reads is the rule that gets saved. Pure: no Node, no
 * DOM, only the model's types.
 */
import type { AnswerScope, ConnectionRequest, Rule, RuleInput, RuleMatch } from './model.js';

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
 * The rule match an answer's scope keeps (docs/rules.md): always the app (app
 * id for sandboxed apps, else the executable), the uid and the direction;
 * "destination" adds the remote host (or address), port and protocol; "port"
 * adds port and protocol; "any" nothing more. The uid stays even when the app
 * is known, so that one user's answer never decides for another user's copy
 * of the same program.
 */
export function matchForScope(request: ConnectionRequest, scope: AnswerScope): RuleMatch {
  const p = request.process;
  const m: RuleMatch = {};
  if (p?.appId != null) m.appId = p.appId;
  else if (p?.exe != null) m.exe = p.exe;
  const uid = request.uid ?? p?.uid ?? null;
  if (uid !== null) m.uid = uid;
  if (scope === 'destination') {
    if (request.host) m.host = normalizeHost(request.host);
    else m.address = remoteAddress(request);
  }
  if (scope !== 'any') {
    if (request.dport !== null) m.port = { from: request.dport, to: request.dport };
    m.protocol = request.protocol;
  }
  m.direction = request.direction;
  return m;
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
    expires: input.duration.kind === 'minutes' ? created + input.duration.minutes * 60_000 : null,
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
