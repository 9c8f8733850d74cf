/**
 * The helper's log: one line per event on stderr (journald adds its own time stamp and
 * reads the level from the line), `TIME LEVEL component: message key=value ...`.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

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

/** One log line (without the newline). */
export function formatLogLine(
  time: Date,
  level: LogLevel,
  component: string,
  message: string,
  fields: LogFields = {},
): string {
  const extra = Object.entries(fields)
    .filter((e): e is [string, string | number | boolean | null] => e[1] !== undefined)
    .map(([k, v]) => ` ${k}=${formatValue(v)}`)
    .join('');
  // A message never spans lines: one event, one line.
  const text = message.replace(/\s*\n\s*/gu, ' ');
  return `${time.toISOString()} ${level} ${component}: ${text}${extra}`;
}

export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void; now?: () => Date } = {},
): Logger {
  const min = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const at =
    (level: LogLevel) =>
    (component: string, message: string, fields?: LogFields): void => {
      if (RANK[level] >= min) write(formatLogLine(now(), level, component, message, fields) + '\n');
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
