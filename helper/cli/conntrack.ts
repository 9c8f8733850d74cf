import { parseArgs } from 'node:util';
import { Conntrack } from '../conntrack/client.js';
import type { CpuStats } from '../conntrack/stats.js';
import { CliUsageError, type CliCommand, type CliIo } from './command.js';

const HELP = `Usage: portcullis conntrack <subcommand> [options]

Subcommands:
  stats    per-CPU connection tracking counters
  count    number of entries in the table (and the table's maximum)

Options:
  --netns NAME   act inside the network namespace NAME (ip netns) or a netns path
  --json         one JSON object per line (counters as decimal strings)
  -h, --help     show this help
`;

interface Common {
  netns?: string;
  json: boolean;
}

function parseCommon(argv: string[]): Common {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        netns: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new CliUsageError((error as Error).message);
  }
  const { netns, json } = parsed.values;
  if (netns !== undefined && netns.length === 0) throw new CliUsageError('--netns needs a name');
  return { json: json ?? false, ...(netns !== undefined ? { netns } : {}) };
}

function statsTable(rows: CpuStats[]): string {
  const keys = [
    'found',
    'invalid',
    'insert',
    'insertFailed',
    'drop',
    'earlyDrop',
    'error',
    'searchRestart',
    'clashResolve',
    'chainTooLong',
  ] as const;
  return (
    rows
      .map(
        (r) =>
          `cpu=${String(r.cpu).padEnd(4)}` +
          keys
            .filter((k) => r[k] !== undefined)
            .map((k) => ` ${k}=${r[k]}`)
            .join(''),
      )
      .join('\n') + '\n'
  );
}

async function withConntrack<T>(common: Common, fn: (ct: Conntrack) => Promise<T>): Promise<T> {
  const ct = Conntrack.open(common.netns !== undefined ? { netns: common.netns } : {});
  try {
    return await fn(ct);
  } finally {
    ct.close();
  }
}

export const conntrackCommand: CliCommand = {
  name: 'conntrack',
  summary: 'inspect the kernel connection tracking table (stats, count)',
  async run(argv: string[], io: CliIo): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '-h' || sub === '--help') {
      io.stdout(HELP);
      return sub === undefined ? 2 : 0;
    }
    if (rest.includes('-h') || rest.includes('--help')) {
      io.stdout(HELP);
      return 0;
    }
    switch (sub) {
      case 'stats': {
        const common = parseCommon(rest);
        const rows = await withConntrack(common, (ct) => ct.stats());
        if (common.json) {
          for (const r of rows)
            io.stdout(
              JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' ? String(v) : v)) + '\n',
            );
        } else io.stdout(statsTable(rows));
        return 0;
      }
      case 'count': {
        const common = parseCommon(rest);
        const g = await withConntrack(common, (ct) => ct.globalStats());
        if (common.json) {
          io.stdout(
            JSON.stringify({
              entries: String(g.entries),
              maxEntries: g.maxEntries === undefined ? undefined : String(g.maxEntries),
            }) + '\n',
          );
        } else io.stdout(`${g.entries}\n`);
        return 0;
      }
      default:
        throw new CliUsageError(`unknown conntrack subcommand '${sub}'`);
    }
  },
};
