/**
 * The one /proc read the eBPF owner source still needs: the executable of a
 * process that was running before the programs were loaded (no exec record).
 * A process is only trusted when its pid still has the recorded start time.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseStat } from '../../attribution/proc-parse.js';

export interface LiveProcess {
  pid: number;
  ppid: number;
  comm: string;
  startTime: number;
  exe: string | null;
}

function isGone(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES' || code === 'ENOTDIR';
}

export class ProcessProbe {
  constructor(private readonly procRoot: string) {}

  /** The process with this pid now, or null when it is gone. */
  process(pid: number): LiveProcess | null {
    let stat;
    try {
      stat = parseStat(readFileSync(join(this.procRoot, String(pid), 'stat'), 'utf8'));
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
    if (!stat) return null;
    const exe = this.exe(pid);
    // The pid may have been reused while the link was read: the start time says.
    const again = this.startTime(pid);
    return again === stat.startTime ? { ...stat, exe } : null;
  }

  /** /proc/PID/exe when pid is still the process that started at startTime. */
  exeIfSame(pid: number, startTime: number): string | null {
    const live = this.process(pid);
    return live && live.startTime === startTime ? live.exe : null;
  }

  private startTime(pid: number): number | null {
    try {
      return (
        parseStat(readFileSync(join(this.procRoot, String(pid), 'stat'), 'utf8'))?.startTime ?? null
      );
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
  }

  private exe(pid: number): string | null {
    try {
      return readlinkSync(join(this.procRoot, String(pid), 'exe'));
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
  }
}
