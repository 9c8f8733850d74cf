import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseStartTime, procLiveness } from '../../../helper/decisions/index.js';

describe('process liveness', () => {
  it('parses field 22 after a comm holding spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    const stat = `123 (a (b) c) ${fields.join(' ')}`;
    expect(parseStartTime(stat)).toBe(22);
    expect(parseStartTime('garbage')).toBeUndefined();
  });

  it('this process is alive with its own start time, not with another', () => {
    const start = parseStartTime(readFileSync('/proc/self/stat', 'latin1'));
    expect(start).toBeTypeOf('number');
    expect(procLiveness(process.pid, start!)).toBe(true);
    expect(procLiveness(process.pid, start! + 1)).toBe(false);
  });

  it('a pid that does not exist is gone', () => {
    expect(procLiveness(2 ** 22 + 12345, 1)).toBe(false);
  });
});
