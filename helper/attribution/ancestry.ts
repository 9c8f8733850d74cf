/**
 * A process's parent chain from /proc (the ppid walk): for connections the eBPF
 * records do not name, and for owners whose chain those records do not reach.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { parseStat } from './proc-parse.js';
import { ProcFormatError } from './procfs.js';
import type { ProcessAncestor } from './types.js';

/** Ancestors listed at most, unless the caller says otherwise. */
export const DEFAULT_MAX_ANCESTORS = 16;

function code(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

/** The process went away, or another user's without privileges (exe of a zombie). */
function gone(error: unknown): boolean {
  const c = code(error);
  return c === 'ENOENT' || c === 'ESRCH' || c === 'ENOTDIR' || c === 'EACCES' || c === 'EPERM';
}

function readOrGone(read: () => string): string | null {
  try {
    return read();
  } catch (error) {
    if (gone(error)) return null;
    throw error;
  }
}

export interface AncestryOptions {
  /** Where procfs is mounted (default /proc). */
  procRoot?: string;
  /** Ancestors listed at most (default DEFAULT_MAX_ANCESTORS). */
  max?: number;
}

/**
 * The chain above a process whose parent is `ppid` and which started at `startTime`
 * (clock ticks), nearest first; pid 0 ends it. A parent that started after its child
 * is a reused pid (the real parent exited meanwhile), and ends the chain too.
 */
export function procAncestors(
  ppid: number,
  startTime: number,
  options: AncestryOptions = {},
): ProcessAncestor[] {
  const root = (options.procRoot ?? '/proc').replace(/\/+$/, '');
  const max = options.max ?? DEFAULT_MAX_ANCESTORS;
  const out: ProcessAncestor[] = [];
  let pid = ppid;
  let childStart = startTime;
  while (pid > 0 && out.length < max) {
    const path = `${root}/${pid}/stat`;
    const text = readOrGone(() => readFileSync(path, 'utf8'));
    if (text === null) break;
    const stat = parseStat(text);
    if (!stat) throw new ProcFormatError(path, 'unparseable stat line');
    if (stat.startTime > childStart) break;
    const exe = readOrGone(() => readlinkSync(`${root}/${pid}/exe`));
    out.push({ pid, startTime: stat.startTime, exe, comm: stat.comm });
    childStart = stat.startTime;
    // pid 1 has parent 0; `max` bounds the walk whatever /proc says.
    pid = stat.ppid;
  }
  return out;
}
