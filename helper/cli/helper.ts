/** `portcullis helper`: the privileged daemon (docs/helper.md). */
import { Daemon, type DaemonOptions } from '../daemon/daemon.js';
import { createLogger, type Logger } from '../daemon/log.js';
import { createReadStream } from 'node:fs';
import { generateToken, resolveAccessGroup, type AccessGroup } from '../server/index.js';
import type { CliCommand, CliIo } from './command.js';
import { packageVersion } from './version.js';
import { HELPER_DEFAULTS, parseHelperArgs, type HelperArgs } from './helper-args.js';
import { applyJitMode } from './jit.js';
import {
  PARENT_POLL_MS,
  parentGone,
  processStartTime,
  watchParent,
  watchStdinEnd,
} from './lifeline.js';

export const HELP = `Usage: portcullis helper [options]

Runs the Portcullis firewall daemon (as root): installs the interception rules,
decides every new connection by the rules or by asking the GUI, keeps the
history, the flow table and statistics, and serves the GUI and the CLI on a
Unix socket. Logs one line per event to stderr. SIGTERM or SIGINT: removes
the rules, the socket and the token and exits 0.

Options:
  --socket PATH            the IPC socket (default ${HELPER_DEFAULTS.socket}); the
                           per-launch token is written next to it as 'token'
  --allow-uid UID          a user allowed to connect (repeatable; root always is);
                           the first owns the token file and the socket's group
  --owner-uid UID          the same as --allow-uid (the launcher's word)
  --token-stdin            read the token from the first line of stdin (the GUI
                           launcher passes it) instead of generating one; the
                           token file is then written only with --allow-uid.
                           stdin stays open: its end stops the helper as SIGTERM
                           does (the app that holds it is gone)
  --token-file PATH        read the token from the first line of PATH
                           (sudo-prompt's private file)
  --parent-pid PID         stop as SIGTERM does when process PID ends (the app
                           that started the helper; checked every ${PARENT_POLL_MS} ms)
  --parent-start-time T    PID's start time (field 22 of /proc/PID/stat), so that
                           a reused pid counts as ended (default: read at start)
  --access-group NAME      service mode: the socket directory, the socket and the
                           token (root:NAME 0440) belong to group NAME, and its
                           members may connect (membership read at start)
  --netns NAME             work inside the network namespace NAME (ip netns)
  -q, --queue N            the NFQUEUE queue number (default ${HELPER_DEFAULTS.queue})
  --default-action A       allow|deny: the answer when a prompt times out or a
                           decision misses its deadline (default ${HELPER_DEFAULTS.defaultAction})
  --prompt-timeout S       seconds a prompt waits for an answer, 1..600 (default ${HELPER_DEFAULTS.promptTimeoutSeconds})
  --no-gui-policy A        allow|deny: the answer when no client listens for
                           prompts (default: the --default-action)
  --fail-closed            drop new connections while the helper is not running or
                           its queue is full (default: fail-open, they pass)
  --inbound                also decide new inbound connections
  --no-conntrack-accounting
                           leave net.netfilter.nf_conntrack_acct and
                           nf_conntrack_timestamp alone (by default the helper
                           turns them on in its namespace, for the flows' bytes,
                           packets and age, and restores them when it stops)
  --attribution MODE       auto|procfs: auto (default) names the program of each
                           outbound connection from eBPF records made when it
                           connected or sent, and falls back to sock_diag + /proc
                           (logged, shown in the app) where the kernel refuses
                           BPF; procfs uses sock_diag + /proc only
                           (docs/attribution.md)
  --jit MODE               full|baseline: full (default) lets V8 optimise the
                           decision path (highest rates, lowest median);
                           baseline never runs the optimising compiler, so the
                           first seconds have no compile tails (p99 about 4x
                           lower then) at a 20-30 % higher median
  --state-dir DIR          rules, history and saved settings (default ${HELPER_DEFAULTS.stateDir})
  --log-level L            debug|info|warn|error (default ${HELPER_DEFAULTS.logLevel})
  -h, --help               show this help

Exit status: 0 after SIGTERM/SIGINT or the app's end, 1 when it cannot start or its queue
socket fails (rules removed either way), 2 on bad arguments.
`;

/** Test seam: stop without a signal. */
export interface HelperRunOptions {
  signal?: AbortSignal;
  version?: string;
  /** Where --token-stdin reads (default process.stdin). */
  stdin?: NodeJS.ReadableStream;
}

/** The first line of a stream (the launcher may keep it open). */
export function readTokenLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (error?: Error): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.pause();
      const token = text.split('\n')[0]!.trim();
      if (error) reject(error);
      else if (token === '') reject(new Error('no token on the first line'));
      else resolve(token);
    };
    const onData = (chunk: Buffer | string): void => {
      text += chunk.toString();
      if (text.includes('\n') || text.length > 4096) done();
    };
    const onEnd = (): void => done();
    const onError = (e: Error): void => done(e);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

/** The token: from --token-file, from stdin (which then stays the app's lifeline), or new. */
async function readToken(
  args: HelperArgs,
  stdin: NodeJS.ReadableStream,
  watchStdin: () => void,
): Promise<string> {
  if (args.tokenFile !== undefined) {
    const stream = createReadStream(args.tokenFile);
    try {
      return await readTokenLine(stream);
    } finally {
      stream.destroy();
    }
  }
  if (!args.tokenStdin) return generateToken();
  const token = await readTokenLine(stdin);
  watchStdin();
  // An end that came with the token surfaces within a turn of the loop.
  await new Promise((resolve) => setImmediate(resolve));
  return token;
}

/** The command line as the daemon's options. */
function daemonOptions(
  args: HelperArgs,
  given: {
    token: string;
    accessGroup: AccessGroup | undefined;
    log: Logger;
    run: HelperRunOptions;
  },
): DaemonOptions {
  const { token, accessGroup, log, run } = given;
  return {
    ...(args.netns !== undefined ? { netns: args.netns } : {}),
    queue: args.queue,
    settings: {
      defaultAction: args.defaultAction,
      promptTimeoutSeconds: args.promptTimeoutSeconds,
      noGuiPolicy: args.noGuiPolicy,
      failOpen: !args.failClosed,
      interceptOutbound: true,
      interceptInbound: args.inbound,
    },
    explicit: new Set(args.explicit),
    stateDir: args.stateDir,
    socket: args.socket,
    token,
    allowUids: args.allowUids,
    writeToken:
      (!args.tokenStdin && args.tokenFile === undefined) ||
      args.allowUids.length > 0 ||
      accessGroup !== undefined,
    ...(accessGroup !== undefined ? { accessGroup } : {}),
    conntrackAccounting: !args.noConntrackAccounting,
    attribution: args.attribution,
    log,
    ...(run.version !== undefined ? { version: run.version } : {}),
  };
}

/**
 * --parent-pid: the app's end stops the helper. Null (logged) when the parent is gone
 * already or cannot be read: the helper does not start.
 */
function watchParentPid(
  pid: number,
  givenStartTime: string | undefined,
  log: Logger,
  onGone: (reason: string) => void,
): (() => void) | null {
  let startTime: string | null;
  let gone: string | null;
  try {
    startTime = givenStartTime ?? processStartTime(pid);
    gone = startTime === null ? `the parent process ${pid} has ended` : parentGone(pid, startTime);
  } catch (error) {
    log.error('helper', `cannot start: --parent-pid ${pid}: ${(error as Error).message}`);
    return null;
  }
  if (startTime === null || gone !== null) {
    log.error('helper', `cannot start: ${gone ?? 'the parent process has ended'}`);
    return null;
  }
  return watchParent({
    pid,
    startTime,
    onGone,
    onError: (e) => log.warn('helper', `--parent-pid ${pid}: ${e.message}`),
  });
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
  applyJitMode(args.jit);
  if (args.jit !== 'full') log.info('helper', `jit ${args.jit}: V8's optimising compiler is off`);
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
  // The app's end stops the helper (cli/lifeline.ts); the service passes neither option.
  const lifelines: (() => void)[] = [];
  let appGone: string | undefined;
  const onAppGone = (reason: string): void => {
    appGone = reason;
    log.info('helper', `${reason}: stopping`);
    stopRequested?.();
  };
  const stdin = run.stdin ?? process.stdin;
  try {
    if (args.parentPid !== undefined) {
      const stop = watchParentPid(args.parentPid, args.parentStartTime, log, onAppGone);
      if (stop === null) return 1;
      lifelines.push(stop);
    }
    let helper: Daemon;
    try {
      const accessGroup =
        args.accessGroup !== undefined ? resolveAccessGroup(args.accessGroup) : undefined;
      const token = await readToken(args, stdin, () =>
        lifelines.push(watchStdinEnd(stdin, onAppGone)),
      );
      // Nobody is left to serve: install nothing.
      if (appGone !== undefined) throw new Error(appGone);
      helper = await Daemon.start(daemonOptions(args, { token, accessGroup, log, run }));
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
    for (const stop of lifelines) stop();
    // An open stdin pipe must not keep the stopped process alive.
    if (args.tokenStdin && stdin === process.stdin) process.stdin.destroy();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    run.signal?.removeEventListener('abort', onAbort);
  }
}

export const helperCommand: CliCommand = {
  name: 'helper',
  summary: 'run the firewall daemon (root): rules, prompts, verdicts, history, IPC',
  run: (argv, io) => runHelper(argv, io, { version: packageVersion() }),
};
