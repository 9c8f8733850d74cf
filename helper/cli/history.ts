/** `portcullis history`: the helper's decided connections, newest first. */
import * as v from 'valibot';
import { Action } from '../protocol/model.js';
import { queryHistory } from '../protocol/paging.js';
import { CliUsageError, type CliCommand, type CliIo } from './command.js';
import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  parseCommandArgs,
  stringOption,
  withClient,
} from './ipc-connect.js';
import { formatHistory } from './ipc-format.js';

const HISTORY_HELP = `Usage: portcullis history [options]

The connections the helper decided, newest first.

Options:
  --since T            only from T on
  --until T            only up to T
                       T: an ISO 8601 time ("2026-11-25T18:00:00Z"), epoch
                       milliseconds, or an age: 30s, 15m, 2h, 7d (ago)
  --text S             host, address, executable, command line or user containing S
  --action A           only allow or deny decisions
  --limit N            at most N entries (default 50)
  --json               one JSON object per line (the HistoryEntry schema of docs/protocol.md)

${CONNECTION_HELP}

Exit status: 0 on success, 1 on errors from the helper, 2 on bad arguments.
`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  since: { type: 'string' },
  until: { type: 'string' },
  text: { type: 'string' },
  action: { type: 'string' },
  limit: { type: 'string' },
} as const;

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An absolute or relative ("2h" = two hours ago) time, as epoch ms. */
export function parseTime(text: string, now: number, what: string): number {
  const age = /^(\d+)([smhd])$/u.exec(text);
  if (age) return Math.max(0, now - Number(age[1]) * UNIT_MS[age[2]!]!);
  if (/^\d+$/u.test(text)) return Number(text);
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed) || parsed < 0) {
    throw new CliUsageError(
      `${what}: expected a time (ISO 8601, epoch ms or an age like 2h), got '${text}'`,
    );
  }
  return parsed;
}

export const historyCommand: CliCommand = {
  name: 'history',
  summary: 'the connections the helper decided (filter by time, text, action)',
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    if (args.values['help']) {
      io.stdout(HISTORY_HELP);
      return 0;
    }
    if (args.positionals.length > 0) {
      throw new CliUsageError(`history: unexpected argument '${args.positionals[0]}'`);
    }
    const now = Date.now();
    const since = stringOption(args, 'since');
    const until = stringOption(args, 'until');
    const text = stringOption(args, 'text');
    const action = stringOption(args, 'action');
    const limitText = stringOption(args, 'limit') ?? '50';
    if (!/^\d+$/u.test(limitText) || Number(limitText) < 1 || Number(limitText) > 1_000_000) {
      throw new CliUsageError(`--limit: expected 1..1000000, got '${limitText}'`);
    }
    if (action !== undefined && !v.is(Action, action)) {
      throw new CliUsageError(`--action: expected allow or deny, got '${action}'`);
    }
    const query = {
      limit: Number(limitText),
      ...(since !== undefined ? { since: parseTime(since, now, '--since') } : {}),
      ...(until !== undefined ? { until: parseTime(until, now, '--until') } : {}),
      ...(text !== undefined ? { text } : {}),
      ...(action !== undefined ? { action: v.parse(Action, action) } : {}),
    };
    if (query.since !== undefined && query.until !== undefined && query.since > query.until) {
      throw new CliUsageError('--since is after --until');
    }
    return withClient(args, async (client) => {
      const { entries, more } = await queryHistory(client, query);
      if (args.values['json'] === true) {
        for (const e of entries) io.stdout(JSON.stringify(e) + '\n');
      } else if (entries.length === 0) {
        io.stdout('no matching connections\n');
      } else {
        io.stdout(formatHistory(entries));
        if (more) io.stderr(`(more entries match: raise --limit or narrow with --since/--until)\n`);
      }
      return 0;
    });
  },
};
