/**
 * Is the process of a "process" rule still the one that asked? A pid alone
 * is reused; (pid, start time in clock ticks since boot) is not.
 */
import { readFileSync } from 'node:fs';

/** Injected into RuleSet so tests (and other platforms) need no /proc. */
export type LivenessCheck = (pid: number, startTime: number) => boolean;

/** Field 22 of /proc/PID/stat, after the parenthesised comm (which may hold spaces). */
export function parseStartTime(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = stat.slice(close + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const text = fields[19];
  return text !== undefined && /^\d+$/u.test(text) ? Number(text) : undefined;
}

/** Reads /proc/PID/stat; a missing process or a different start time means gone. */
export const procLiveness: LivenessCheck = (pid, startTime) => {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    // ENOENT/ESRCH: the process is gone, which is the answer, not a failure.
    return false;
  }
  return parseStartTime(stat) === startTime;
};
