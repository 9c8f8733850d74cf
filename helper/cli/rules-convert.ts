/**
 * `portcullis rules convert-opensnitch DIR [--out FILE]`: converts an OpenSnitch
 * rules directory into a rules document (STATEDIR/rules.json). Offline: needs no
 * helper. Wraps the `rules` command so that its other subcommands are unchanged.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { atomicWrite, nodeFs } from '../common/atomic-write.js';
import { convertOpenSnitchRules, type OpenSnitchSource } from '../decisions/opensnitch.js';
import { CliUsageError, type CliCommand, type CliIo } from './command.js';
import { rulesCommand } from './rules.js';

const CONVERT_HELP = `Usage: portcullis rules convert-opensnitch DIR [--out FILE]

Converts the OpenSnitch rules in DIR (one JSON file per rule, as in
/etc/opensnitchd/rules) into a Portcullis rules document: written to FILE
(atomically, mode 0600; e.g. /var/lib/portcullis/rules.json while the helper is
stopped), or to stdout. Each rule that cannot be represented (a regexp that is
not a literal, an operand we do not match on, duration once) is listed on
stderr with the reason; a converted rule whose meaning changed gets a note.

Options:
  --out FILE     write the document here instead of stdout
  -q, --quiet    do not list converted rules' notes (skipped rules are always listed)
  -h, --help     show this help

Exit status: 0 when converted (even with skipped rules), 1 when DIR cannot be
read, 2 on bad arguments.
`;

/** Reads every *.json file of a directory, sorted by name. */
export function readOpenSnitchDir(dir: string): OpenSnitchSource[] {
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort();
  return names.map((name) => ({ source: name, text: readFileSync(join(dir, name), 'utf8') }));
}

async function runConvertOpenSnitch(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        out: { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new CliUsageError(`rules convert-opensnitch: ${(error as Error).message.split('\n')[0]}`);
  }
  if (parsed.values.help) {
    io.stdout(CONVERT_HELP);
    return 0;
  }
  const out = parsed.values.out;
  const quiet = parsed.values.quiet === true;
  const dirs = parsed.positionals;
  if (dirs.length !== 1) {
    throw new CliUsageError(
      `rules convert-opensnitch: expected one directory, got ${dirs.length} argument(s)`,
    );
  }
  const dir = dirs[0]!;
  let sources: OpenSnitchSource[];
  try {
    sources = readOpenSnitchDir(dir);
  } catch (error) {
    io.stderr(`portcullis: cannot read ${dir}: ${(error as Error).message}\n`);
    return 1;
  }
  const result = convertOpenSnitchRules(sources);
  for (const s of result.skipped) io.stderr(`skipped ${s.source}: ${s.reason}\n`);
  if (!quiet) {
    for (const c of result.converted) {
      for (const note of c.notes) io.stderr(`note ${c.source}: ${note}\n`);
    }
  }
  const text = `${JSON.stringify(result.document, null, 2)}\n`;
  if (out !== undefined) {
    await atomicWrite(nodeFs, dirname(out), basename(out), text);
  } else {
    io.stdout(text);
  }
  io.stderr(
    `converted ${result.converted.length} of ${sources.length} rule file(s), skipped ${result.skipped.length}${out !== undefined ? `; wrote ${out}` : ''}\n`,
  );
  return 0;
}

/** `rules` with `convert-opensnitch` added; every other subcommand goes to rulesCommand. */
export const rulesWithConvertCommand: CliCommand = {
  name: rulesCommand.name,
  summary: `${rulesCommand.summary}; convert-opensnitch`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'convert-opensnitch') return runConvertOpenSnitch(rest, io);
    const code = await rulesCommand.run(argv, io);
    if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
      io.stdout(
        '\nOffline (no helper needed):\n  convert-opensnitch DIR [--out FILE]   OpenSnitch rule files to a rules document\n',
      );
    }
    return code;
  },
};
