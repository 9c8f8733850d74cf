import { describe, expect, it } from 'vitest';
import { createLogger, formatLogLine } from '../../../helper/daemon/log.js';
import { PolicyFallbackDecider } from '../../../helper/daemon/fallback-decider.js';

describe('log', () => {
  it('one line: time, level, component, message, fields (quoted when needed, undefined left out)', () => {
    expect(
      formatLogLine(new Date(0), 'warn', 'interceptor', 'two\n lines', {
        a: 1,
        b: 'x y',
        c: null,
        d: undefined,
        e: true,
      }),
    ).toBe('1970-01-01T00:00:00.000Z warn interceptor: two lines a=1 b="x y" c=null e=true');
  });

  it('filters by level', () => {
    const lines: string[] = [];
    const log = createLogger({
      level: 'warn',
      write: (l) => lines.push(l),
      now: () => new Date(0),
    });
    log.debug('x', 'no');
    log.info('x', 'no');
    log.warn('x', 'yes');
    log.error('x', 'yes too');
    expect(lines).toEqual([
      '1970-01-01T00:00:00.000Z warn x: yes\n',
      '1970-01-01T00:00:00.000Z error x: yes too\n',
    ]);
  });
});

describe('fallback decider', () => {
  it('answers the no-GUI policy at once, without a rule', async () => {
    for (const action of ['allow', 'deny'] as const) {
      await expect(
        new PolicyFallbackDecider(action).decide({} as never, { deadline: 0 }),
      ).resolves.toEqual({ action, reason: 'no-gui', ruleId: null });
    }
  });
});
