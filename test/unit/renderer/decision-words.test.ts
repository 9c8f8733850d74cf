import { describe, expect, it } from 'vitest';
import type { Rule } from '../../../src-main/common/api.js';
import {
  reasonWords,
  ruleName,
  verdictWord,
} from '../../../src-renderer/src/lib/decision-words.js';

const rule = (id: string, over: Partial<Rule> = {}): Rule =>
  ({
    id,
    action: 'deny',
    match: { exe: '/usr/bin/curl', host: 'example.com', port: { from: 443, to: 443 } },
    duration: { kind: 'forever' },
    enabled: true,
    created: 1,
    ...over,
  }) as Rule;

describe('decisions in words', () => {
  it('says Allowed and Blocked', () => {
    expect(verdictWord('allow')).toBe('Allowed');
    expect(verdictWord('deny')).toBe('Blocked');
  });

  it('names the rule by its note, else by what it matches, never by its id', () => {
    const rules = [rule('f46821dc-1', { note: 'No telemetry' }), rule('a2')];
    expect(reasonWords({ reason: 'rule', ruleId: 'f46821dc-1' }, rules)).toBe('Rule: No telemetry');
    expect(reasonWords({ reason: 'rule', ruleId: 'a2' }, rules)).toBe(
      'Rule: /usr/bin/curl example.com port 443',
    );
    expect(reasonWords({ reason: 'rule', ruleId: 'gone' }, rules)).toBe(
      'A rule that has since been removed',
    );
    expect(ruleName(rule('x', { note: '  ' }))).toBe('/usr/bin/curl example.com port 443');
  });

  it('says who decided otherwise', () => {
    expect(reasonWords({ reason: 'prompt', ruleId: null }, [])).toBe('You answered (this once)');
    expect(reasonWords({ reason: 'prompt', ruleId: 'a2' }, [rule('a2')])).toContain(
      'made the rule: /usr/bin/curl',
    );
    for (const reason of ['default', 'no-gui', 'deadline', 'error'] as const) {
      const words = reasonWords({ reason, ruleId: null }, []);
      expect(words).not.toContain(reason === 'no-gui' ? 'no-gui' : `${reason}:`);
      expect(words.length).toBeGreaterThan(10);
    }
  });
});
