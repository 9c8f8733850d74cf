/**
 * The rules of an import file, one at a time: the same checks `add` applies
 * (schema, host patterns, addresses and prefixes, port ranges), plus the one
 * an import adds (only durations that persist), and the identity that tells
 * a duplicate from a new rule.
 */
import * as v from 'valibot';
import { RuleInput as RuleInputSchema, type Rule, type RuleInput } from '../protocol/model.js';
import { DecisionsError } from './errors.js';
import { compileMatch } from './matcher.js';

/**
 * Checks one rule of an import; throws DecisionsError INVALID_RULE saying
 * what is wrong (the caller adds where in the file it is).
 */
export function checkImportedRule(value: unknown): RuleInput {
  const parsed = v.safeParse(RuleInputSchema, value);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue ? v.getDotPath(issue) : null;
    throw new DecisionsError(
      'INVALID_RULE',
      `${where ? `${where}: ` : ''}${issue?.message ?? 'not a rule'}`,
    );
  }
  const input = parsed.output;
  if (input.duration.kind !== 'forever' && input.duration.kind !== 'minutes') {
    throw new DecisionsError(
      'INVALID_RULE',
      `duration "${input.duration.kind}": only "forever" and "minutes" rules can be imported`,
    );
  }
  compileMatch(input.match);
  return input;
}

/**
 * What makes two rules the same rule: what they match (compared in the
 * matcher's normalised form, so "Example.com." is "example.com" and
 * "192.0.2.1" is "192.0.2.1/32"), their action and their duration. The
 * note, the enabled flag and the counters are not part of it.
 */
export function ruleKey(
  rule: Pick<Rule, 'match' | 'action' | 'duration'> & { denyWith?: Rule['denyWith'] },
): string {
  const c = compileMatch(rule.match);
  const d = rule.duration;
  return JSON.stringify([
    c.exe ?? null,
    c.appId ?? null,
    c.unit ?? null,
    c.uid ?? null,
    c.hostExact ?? null,
    c.hostSuffix ?? null,
    c.network ? [...c.network].join('.') : null,
    c.network ? c.prefix : null,
    c.hasPort ? [c.portFrom, c.portTo] : null,
    c.protocol ?? null,
    c.direction ?? null,
    rule.action,
    d.kind === 'minutes'
      ? `minutes:${d.minutes}`
      : d.kind === 'process'
        ? `process:${d.pid}:${d.startTime}`
        : d.kind,
    // Appended only when set, so that the keys of other rules stay as they were.
    ...(rule.action === 'deny' && rule.denyWith === 'drop' ? ['drop'] : []),
  ]);
}
