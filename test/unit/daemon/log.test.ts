import { describe, expect, it } from 'vitest';
import { createLogger, formatLogLine } from '../../../helper/daemon/log.js';
import { PolicyFallbackDecider } from '../../../helper/daemon/fallback-decider.js';
import { ssKillArgv, SsSocketDestroyer } from '../../../helper/daemon/socket-destroy.js';

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

describe('socket destroyer (ss -K)', () => {
  const t4 = {
    family: 'ipv4',
    protocol: 6,
    src: '198.18.0.1',
    dst: '198.18.0.2',
    sport: 40000,
    dport: 80,
  } as const;

  it('an exact 4-tuple filter; IPv6 addresses in brackets', () => {
    expect(ssKillArgv(t4)).toEqual(
      'ss -K -H -n -t -4 src 198.18.0.1 sport = :40000 dst 198.18.0.2 dport = :80'.split(' '),
    );
    expect(ssKillArgv({ ...t4, family: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' })).toContain(
      '[2001:db8::1]',
    );
  });

  it('runs in the namespace and counts the destroyed sockets; not TCP: nothing', async () => {
    const calls: string[][] = [];
    const d = new SsSocketDestroyer('blue', async (argv) => {
      calls.push([...argv]);
      return { stdout: 'ESTAB 0 0 198.18.0.1:40000 198.18.0.2:80\n', stderr: '' };
    });
    expect(await d.destroy(t4)).toBe(1);
    expect(calls[0]!.slice(0, 5)).toEqual(['ip', 'netns', 'exec', 'blue', 'ss']);
    expect(await d.destroy({ ...t4, protocol: 17 })).toBe(0);
    expect(calls).toHaveLength(1);
  });
});
