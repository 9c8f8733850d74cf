/**
 * A decision in words for people: "Blocked" rather than `deny`, and why, naming
 * the rule by its note or what it matches rather than by its id.
 */
import type { Action, Rule, VerdictReason } from '../../../src-main/common/api.js';
import { describeMatch } from '../../../src-main/common/matching.js';

export function verdictWord(action: Action): 'Allowed' | 'Blocked' {
  return action === 'allow' ? 'Allowed' : 'Blocked';
}

/** A rule as a person named it (its note), else what it matches. */
export function ruleName(rule: Rule): string {
  const note = rule.note?.trim();
  return note ? note : describeMatch(rule.match);
}

/**
 * Why, in words. `rules`: the rules known now; a rule that has since been removed is
 * said to be so (its id is of no use to a person).
 */
export function reasonWords(
  d: { reason: VerdictReason; ruleId: string | null },
  rules: readonly Rule[],
): string {
  switch (d.reason) {
    case 'rule': {
      const rule = d.ruleId === null ? undefined : rules.find((r) => r.id === d.ruleId);
      return rule ? `Rule: ${ruleName(rule)}` : 'A rule that has since been removed';
    }
    case 'prompt': {
      if (d.ruleId === null) return 'You answered (this once)';
      const rule = rules.find((r) => r.id === d.ruleId);
      return rule ? `You answered, and made the rule: ${ruleName(rule)}` : 'You answered';
    }
    case 'default':
      return 'Nobody answered in time: the default';
    case 'no-gui':
      return 'No window open to ask: the no-window policy';
    case 'deadline':
      return 'No decision in time: the default';
    case 'error':
      return 'Rules could not be checked (error): the default';
  }
}
