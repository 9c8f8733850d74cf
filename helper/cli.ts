import { packageVersion } from './cli/version.js';
import { CliUsageError, type CliCommand, type CliIo } from './cli/command.js';
import { conntrackCommand } from './cli/conntrack.js';
import { helperCommand } from './cli/helper.js';
import { historyCommand } from './cli/history.js';
import { nfqueueCommand } from './cli/nfqueue.js';
import { rulesWithConvertCommand } from './cli/rules-convert.js';

const commands: CliCommand[] = [
  conntrackCommand,
  nfqueueCommand,
  helperCommand,
  rulesWithConvertCommand,
  historyCommand,
];

function usage(): string {
  const lines = [
    'Usage: portcullis <command> [options]',
    '',
    'Portcullis: a Linux firewall and connection inspector over netfilter netlink.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(12)}${c.summary}`),
    `  ${'start'.padEnd(12)}the firewall with its UI (root; --demo: in a namespace of its own, touching nothing)`,
    `  ${'ui'.padEnd(12)}the UI in a browser: ui --web (src-main/node/web-cli.ts, via bin/portcullis.js)`,
    '',
    'Options:',
    '  -h, --help     show help (also `portcullis <command> --help`)',
    '  -V, --version  print the version',
  ];
  return lines.join('\n') + '\n';
}

const defaultIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

/** Runs the CLI; resolves with the exit code (2 for usage errors). */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    io.stdout(usage());
    return first === undefined ? 2 : 0;
  }
  if (first === '-V' || first === '--version') {
    io.stdout(`portcullis ${packageVersion()}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === first);
  try {
    if (!command) throw new CliUsageError(`unknown command '${first}'`);
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof CliUsageError) {
      io.stderr(`portcullis: ${error.message}\nTry 'portcullis --help'.\n`);
      return 2;
    }
    const e = error as Error & { code?: string };
    io.stderr(`portcullis: ${e.message}\n`);
    return 1;
  }
}
