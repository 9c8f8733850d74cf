/**
 * `portcullis conntrack -L|-G|-I|-A|-U|-D|-F|-C|-S|-E|-R ...`: the
 * conntrack-tools 1.4.7 command syntax, with its output, messages and exit
 * statuses, on the Portcullis conntrack library; plus --json and --netns.
 * See docs/conntrack-cli.md.
 */
import { IPPROTO } from '../../conntrack/constants.js';
import { ConntrackArgumentError } from '../../conntrack/encode.js';
import type { CliIo } from '../command.js';
import {
  COMPAT_PREFIX,
  CompatUsageError,
  NotSupported,
  OperationFailed,
  TRY_HELP,
} from './errors.js';
import { labelMapLoader } from './label-map.js';
import { loadFileRequest, runLoadFile } from './load-file.js';
import type { ConntrackRunOptions } from './open-table.js';
import { parseCompatArgs } from './parse.js';
import { runCompatEvents } from './run-events.js';
import { execute } from './run-table.js';
import { checkSupported } from './supported.js';
import { COMPAT_USAGE } from './usage.js';

/** Runs a conntrack-tools style command line; resolves with the exit status. */
export async function runConntrackCompat(
  argv: readonly string[],
  io: CliIo,
  seams: ConntrackRunOptions = {},
): Promise<number> {
  try {
    return await run(argv, io, seams);
  } catch (error) {
    const status = reportFailure(error, io);
    if (status === undefined) throw error;
    return status;
  }
}

async function run(
  argv: readonly string[],
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  const load = loadFileRequest(argv);
  if (load) return await runLoadFile(load.file, load.prefix, io, seams);
  const a = parseCompatArgs(argv, {
    loadLabelMap: labelMapLoader(io),
    warn: (text) => io.stderr(text),
  });
  if (a.command === 'h') {
    io.stdout(COMPAT_USAGE);
    return 0;
  }
  if (a.command === 'V') {
    io.stdout('conntrack v1.4.7 (conntrack-tools)\n');
    return 0;
  }
  checkSupported(a);
  if (a.command === 'E') return await runCompatEvents(a, io);
  if (a.proto === IPPROTO.icmp && a.family === 'ipv6' && a.command !== 'L') {
    throw new CompatUsageError('mismatched address family');
  }
  return await execute(a, io, seams);
}

/** A failure's message as 1.4.7 prints it, and the exit status; undefined for a bug. */
function reportFailure(error: unknown, io: CliIo): number | undefined {
  if (error instanceof CompatUsageError) {
    io.stderr(`${COMPAT_PREFIX}${error.message}\n${error.exitStatus === 2 ? TRY_HELP : ''}`);
    return error.exitStatus;
  }
  if (error instanceof OperationFailed) {
    io.stderr(`${COMPAT_PREFIX}Operation failed: ${error.message}\n`);
    return 1;
  }
  if (error instanceof NotSupported) {
    io.stderr(`portcullis conntrack: ${error.message} (docs/conntrack-cli.md)\n`);
    return 1;
  }
  if (error instanceof ConntrackArgumentError) {
    io.stderr(`${COMPAT_PREFIX}${error.message}\n${TRY_HELP}`);
    return 2;
  }
  return undefined;
}
