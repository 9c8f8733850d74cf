/**
 * The lifeline of a helper started for one app (`--token-stdin`, `--parent-pid`): it
 * tells the helper that the app is gone, however it ended (quit, crash, SIGKILL), so
 * that the helper stops cleanly and removes its rules. It can only ask for a stop:
 * nothing read here starts, changes or weakens anything.
 *
 * - stdin (pkexec): the app keeps the write end of the pipe whose first line was the
 *   token; the kernel closes it when the app ends, so EOF (or an error) means gone.
 * - the parent's pid (sudo-prompt, which leaves no pipe): polled in /proc; a start
 *   time other than the one the app passed means the pid was reused, hence gone too.
 */
import { readFileSync } from 'node:fs';

/** How often the parent is looked at: a stop within the 2 s the launcher promises. */
export const PARENT_POLL_MS = 250;

/** The fields of /proc/PID/stat the lifeline needs. */
export interface ProcStat {
  /** One letter: R, S, D, Z (zombie: it has ended), X... */
  state: string;
  /** Field 22, in clock ticks after boot: with the pid, names one process for good. */
  startTime: string;
}

/**
 * Parses /proc/PID/stat. The command name (field 2) is in parentheses and may hold
 * spaces and ')', so the fields are counted after the last ')'.
 */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/u);
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const state = fields[0];
  const startTime = fields[19];
  if (state === undefined || startTime === undefined || !/^[0-9]+$/u.test(startTime)) return null;
  return { state, startTime };
}

/** Reads a process's stat; null when there is no such process. */
export type StatReader = (pid: number) => string | null;

const readProcStat: StatReader = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw error;
  }
};

/** The start time of a live process, or null when it has ended (or never was). */
export function processStartTime(pid: number, read: StatReader = readProcStat): string | null {
  const text = read(pid);
  if (text === null) return null;
  const stat = parseProcStat(text);
  if (stat === null) throw new Error(`/proc/${pid}/stat: unexpected format`);
  return stat.state === 'Z' || stat.state === 'X' ? null : stat.startTime;
}

/** Why the parent counts as gone, or null while it lives. */
export function parentGone(
  pid: number,
  startTime: string,
  read: StatReader = readProcStat,
): string | null {
  const now = processStartTime(pid, read);
  if (now === null) return `the parent process ${pid} has ended`;
  if (BigInt(now) !== BigInt(startTime)) {
    return `the parent process ${pid} has ended (its pid now names another process)`;
  }
  return null;
}

export interface ParentWatch {
  pid: number;
  startTime: string;
  onGone(reason: string): void;
  /** Called when /proc cannot be read: the watch goes on. */
  onError?(error: Error): void;
  intervalMs?: number;
  read?: StatReader;
}

/** Polls the parent until it is gone (then calls onGone once); returns the stop. */
export function watchParent(w: ParentWatch): () => void {
  const timer = setInterval(() => {
    let reason: string | null;
    try {
      reason = parentGone(w.pid, w.startTime, w.read);
    } catch (error) {
      w.onError?.(error as Error);
      return;
    }
    if (reason === null) return;
    clearInterval(timer);
    w.onGone(reason);
  }, w.intervalMs ?? PARENT_POLL_MS);
  // The helper's own sockets keep it alive; this timer alone must not.
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * After the token line: reads on (discarding what comes) until EOF, an error or the
 * stream's close, then calls onGone once. Returns the stop (which leaves the stream
 * to its owner).
 */
export function watchStdinEnd(
  stream: NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean },
  onGone: (reason: string) => void,
): () => void {
  let done = false;
  const finish = (reason: string): void => {
    if (done) return;
    dispose();
    onGone(reason);
  };
  const onData = (): void => undefined;
  const onEnd = (): void => finish('stdin closed (the app is gone)');
  const onClose = (): void => finish('stdin closed (the app is gone)');
  const onError = (e: Error): void => finish(`stdin failed (${e.message}): the app is gone`);
  // The error listener stays: a late error on a stream nobody listens to would
  // crash the helper in the middle of its clean stop.
  const dispose = (): void => {
    done = true;
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('close', onClose);
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('close', onClose);
  stream.on('error', onError);
  if (stream.readableEnded === true || stream.destroyed === true) {
    finish('stdin closed (the app is gone)');
  } else stream.resume();
  return dispose;
}
