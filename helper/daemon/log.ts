import { fstatSync } from 'node:fs';

/**
 * The helper's log: one line per event on stderr, `TIME LEVEL component: message
 * key=value ...`. When stderr is the journal's stream, journald files a plain line at the
 * unit's one default priority; so there each line starts with the sd-daemon prefix `<N>`
 * (syslog priority) instead of the time, which journald stamps itself.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The syslog priority of each level (sd-daemon(3): `<7>` debug ... `<3>` err). */
export const SYSLOG_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(component: string, message: string, fields?: LogFields): void;
  info(component: string, message: string, fields?: LogFields): void;
  warn(component: string, message: string, fields?: LogFields): void;
  error(component: string, message: string, fields?: LogFields): void;
}

/** Quotes a value only when it would otherwise be ambiguous on the line. */
function formatValue(v: string | number | boolean | null): string {
  const s = String(v);
  return /^[^\s"=]+$/u.test(s) ? s : JSON.stringify(s);
}

/** A line without its time: `LEVEL component: message key=value ...`. */
function formatLogBody(
  level: LogLevel,
  component: string,
  message: string,
  fields: LogFields,
): string {
  const extra = Object.entries(fields)
    .filter((e): e is [string, string | number | boolean | null] => e[1] !== undefined)
    .map(([k, v]) => ` ${k}=${formatValue(v)}`)
    .join('');
  // A message never spans lines: one event, one line.
  const text = message.replace(/\s*\n\s*/gu, ' ');
  return `${level} ${component}: ${text}${extra}`;
}

/** One log line (without the newline). */
export function formatLogLine(
  time: Date,
  level: LogLevel,
  component: string,
  message: string,
  fields: LogFields = {},
): string {
  return `${time.toISOString()} ${formatLogBody(level, component, message, fields)}`;
}

/** One journal line: the sd-daemon priority prefix, no time (journald stamps it). */
export function formatJournalLine(
  level: LogLevel,
  component: string,
  message: string,
  fields: LogFields = {},
): string {
  return `<${SYSLOG_PRIORITY[level]}>${formatLogBody(level, component, message, fields)}`;
}

/**
 * Whether file descriptor `fd` is the stream systemd connected to the journal. systemd
 * sets JOURNAL_STREAM to that stream's `device:inode`; a child whose stderr was redirected
 * elsewhere inherits the variable, so the descriptor itself must match it (sd-daemon's rule).
 */
export function isJournalStream(
  fd = 2,
  journalStream: string | undefined = process.env['JOURNAL_STREAM'],
): boolean {
  const m = /^(\d+):(\d+)$/u.exec(journalStream ?? '');
  if (!m) return false;
  let st;
  try {
    st = fstatSync(fd, { bigint: true });
  } catch {
    return false; // a closed stderr is no journal stream
  }
  return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  now?: () => Date;
  /** Lines for journald (sd-daemon prefixes); default: whether stderr is the journal's stream. */
  journal?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const journal = options.journal ?? isJournalStream();
  const at =
    (level: LogLevel) =>
    (component: string, message: string, fields?: LogFields): void => {
      if (RANK[level] < min) return;
      const line = journal
        ? formatJournalLine(level, component, message, fields)
        : formatLogLine(now(), level, component, message, fields);
      write(line + '\n');
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Discards everything (tests that do not look at the log). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
