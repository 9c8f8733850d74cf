/** `portcullis helper`: the privileged daemon (docs/helper.md). */
import { Helper } from '../daemon/helper.js';
import { createLogger } from '../daemon/log.js';
import type { CliCommand, CliIo } from './command.js';
import { HELPER_DEFAULTS, parseHelperArgs } from './helper-args.js';

export const HELP = `Usage: portcullis helper [options]

Runs the Portcullis firewall daemon (as root): installs the interception rules,
decides every new connection, keeps the flow table and statistics. Logs one
line per event to stderr. SIGTERM or SIGINT: removes the rules and exits 0.

Options:
  --socket PATH            the IPC socket (default ${HELPER_DEFAULTS.socket}); served
                           once the IPC server lands, accepted but not served yet
  --netns NAME             work inside the network namespace NAME (ip netns)
  -q, --queue N            the NFQUEUE queue number (default ${HELPER_DEFAULTS.queue})
  --default-action A       allow|deny: the answer when a prompt times out or a
                           decision misses its deadline (default ${HELPER_DEFAULTS.defaultAction})
  --prompt-timeout S       seconds a prompt waits for an answer, 1..600 (default ${HELPER_DEFAULTS.promptTimeoutSeconds})
  --no-gui-policy A        allow|deny: the answer when no GUI is connected
                           (default: the --default-action)
  --fail-closed            drop new connections while the helper is not running or
                           its queue is full (default: fail-open, they pass)
  --inbound                also decide new inbound connections
  --state-dir DIR          rules and history (default ${HELPER_DEFAULTS.stateDir})
  --log-level L            debug|info|warn|error (default ${HELPER_DEFAULTS.logLevel})
  -h, --help               show this help

Exit status: 0 after SIGTERM/SIGINT, 1 when it cannot start or its queue
socket fails (rules removed either way), 2 on bad arguments.
`;

/** Test seam: stop without a signal. */
export interface HelperRunOptions {
  signal?: AbortSignal;
  version?: string;
}

export async function runHelper(
  argv: string[],
  io: CliIo,
  run: HelperRunOptions = {},
): Promise<number> {
  const args = parseHelperArgs(argv);
  if (args.help) {
    io.stdout(HELP);
    return 0;
  }
  const log = createLogger({ level: args.logLevel, write: (line) => io.stderr(line) });
  log.warn('helper', 'IPC server not part of this build: the socket is not served yet', {
    socket: args.socket,
  });
  // Signals are caught before start so that a SIGTERM during start still cleans up.
  let stopRequested: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info('helper', `${signal}: stopping`);
    stopRequested?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onAbort = (): void => stopRequested?.();
  run.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let helper: Helper;
    try {
      helper = await Helper.start({
        ...(args.netns !== undefined ? { netns: args.netns } : {}),
        queue: args.queue,
        defaultAction: args.defaultAction,
        promptTimeoutSeconds: args.promptTimeoutSeconds,
        noGuiPolicy: args.noGuiPolicy,
        failClosed: args.failClosed,
        inbound: args.inbound,
        stateDir: args.stateDir,
        log,
        ...(run.version !== undefined ? { version: run.version } : {}),
      });
    } catch (error) {
      log.error('helper', `cannot start: ${(error as Error).message}`);
      return 1;
    }
    if (run.signal?.aborted) stopRequested?.();
    let code = 0;
    try {
      await Promise.race([stopped, helper.failure]);
    } catch (error) {
      log.error('helper', `stopping after a fatal error: ${(error as Error).message}`);
      code = 1;
    }
    try {
      await helper.stop();
    } catch (error) {
      log.error('helper', `stop failed: ${(error as Error).message}`);
      return 1;
    }
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    run.signal?.removeEventListener('abort', onAbort);
  }
}

export const helperCommand: CliCommand = {
  name: 'helper',
  summary: 'run the firewall daemon (root): rules, verdicts, flows, stats',
  run: (argv, io) => runHelper(argv, io),
};
