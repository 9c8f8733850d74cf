/**
 * Argument parsing for `portcullis helper`. Pure, unit-tested; every mistake is a
 * CliUsageError (exit status 2).
 */
import { JIT_MODES, type JitMode } from './jit.js';
import type { Action } from '../protocol/model.js';
import type { LogLevel } from '../daemon/log.js';
import { CliUsageError, optionTokens, type OptionSpec } from './command.js';
import { parseUnsigned } from './conntrack-values.js';

export interface HelperArgs {
  help: boolean;
  /** Where the IPC server listens; the token file goes next to it. */
  socket: string;
  netns?: string;
  queue: number;
  defaultAction: Action;
  promptTimeoutSeconds: number;
  /** Defaults to defaultAction. */
  noGuiPolicy: Action;
  failClosed: boolean;
  inbound: boolean;
  stateDir: string;
  logLevel: LogLevel;
  /** Non-root uids allowed on the socket (--allow-uid, repeatable); the first owns the token file. */
  allowUids: number[];
  /**
   * Read the token from stdin's first line (the GUI launcher passes it) instead of
   * generating one; stdin's end then stops the helper (cli/lifeline.ts).
   */
  tokenStdin: boolean;
  /** Read the token from the first line of this file (sudo-prompt's private file). */
  tokenFile?: string;
  /** Stop when this process ends (the app that started the helper; cli/lifeline.ts). */
  parentPid?: number;
  /** The parent's start time (/proc/PID/stat field 22): guards against pid reuse. */
  parentStartTime?: string;
  /** Service mode: a group whose members may connect and read the token. */
  accessGroup?: string;
  /** Leave nf_conntrack_acct and nf_conntrack_timestamp as they are (--no-conntrack-accounting). */
  noConntrackAccounting: boolean;
  /** How much of V8's JIT to use (--jit; see cli/jit.ts). */
  jit: JitMode;
  /** 'auto': eBPF owner records when the kernel allows them; 'procfs': sock_diag + /proc only. */
  attribution: 'auto' | 'procfs';
  /** Settings given explicitly (they win over the settings saved by the GUI). */
  explicit: (
    'defaultAction' | 'promptTimeoutSeconds' | 'noGuiPolicy' | 'failOpen' | 'interceptInbound'
  )[];
}

export const HELPER_DEFAULTS = {
  socket: '/run/portcullis/helper.sock',
  queue: 7,
  defaultAction: 'allow',
  promptTimeoutSeconds: 30,
  stateDir: '/var/lib/portcullis',
  logLevel: 'info',
} as const;

const OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h' },
  socket: { type: 'string' },
  netns: { type: 'string' },
  queue: { type: 'string', short: 'q' },
  'default-action': { type: 'string' },
  'prompt-timeout': { type: 'string' },
  'no-gui-policy': { type: 'string' },
  'fail-closed': { type: 'boolean' },
  inbound: { type: 'boolean' },
  'state-dir': { type: 'string' },
  'log-level': { type: 'string' },
  'allow-uid': { type: 'string' },
  'token-stdin': { type: 'boolean' },
  'token-file': { type: 'string' },
  // The launcher's name for --allow-uid: the desktop user who owns this helper.
  'owner-uid': { type: 'string' },
  'access-group': { type: 'string' },
  'parent-pid': { type: 'string' },
  'parent-start-time': { type: 'string' },
  'no-conntrack-accounting': { type: 'boolean' },
  jit: { type: 'string' },
  attribution: { type: 'string' },
};

const EXPLICIT = {
  'default-action': 'defaultAction',
  'prompt-timeout': 'promptTimeoutSeconds',
  'no-gui-policy': 'noGuiPolicy',
  'fail-closed': 'failOpen',
  inbound: 'interceptInbound',
} as const;

function action(name: string, v: string): Action {
  if (v === 'allow' || v === 'deny') return v;
  throw new CliUsageError(`--${name}: '${v}' is not allow or deny`);
}

function absolute(name: string, v: string): string {
  if (!v.startsWith('/')) throw new CliUsageError(`--${name}: '${v}' is not an absolute path`);
  return v;
}

/** Each option's value by name (given once), and the uids of the repeatable --allow-uid. */
function readOptions(argv: string[]): {
  seen: Map<string, string | undefined>;
  allowUids: number[];
} {
  const seen = new Map<string, string | undefined>();
  const allowUids: number[] = [];
  for (const t of optionTokens(argv, OPTIONS)) {
    if (t.name === 'allow-uid' || t.name === 'owner-uid') {
      if (t.value === undefined || t.value === '')
        throw new CliUsageError(`--${t.name} needs a value`);
      const uid = parseUnsigned(t.value, 0xfffffffe, t.name);
      if (uid !== 0 && !allowUids.includes(uid)) allowUids.push(uid);
      continue;
    }
    if (seen.has(t.name)) throw new CliUsageError(`${t.rawName} given twice`);
    seen.set(t.name, t.value);
  }
  return { seen, allowUids };
}

/** The parent process the helper's lifeline watches: its pid and, to tell a
 * reused pid apart, its start time. */
function parseParent(str: (name: string) => string | undefined): {
  parentPid?: number;
  parentStartTime?: string;
} {
  const parent = str('parent-pid');
  // PID_MAX_LIMIT is 2^22; pid 0 is no process.
  const parentPid =
    parent === undefined ? undefined : parseUnsigned(parent, 4_194_304, 'parent-pid');
  if (parentPid === 0) throw new CliUsageError('--parent-pid: 0 is not a process');
  const parentStartTime = str('parent-start-time');
  if (parentStartTime !== undefined) {
    if (parentPid === undefined) throw new CliUsageError('--parent-start-time needs --parent-pid');
    if (!/^[0-9]{1,20}$/u.test(parentStartTime)) {
      throw new CliUsageError(`--parent-start-time: '${parentStartTime}' is not a number`);
    }
  }
  return {
    ...(parentPid !== undefined ? { parentPid } : {}),
    ...(parentStartTime !== undefined ? { parentStartTime } : {}),
  };
}

export function parseHelperArgs(argv: string[]): HelperArgs {
  const { seen, allowUids } = readOptions(argv);
  const str = (name: string): string | undefined => {
    const v = seen.get(name);
    if (seen.has(name) && (v === undefined || v === '')) {
      throw new CliUsageError(`--${name} needs a value`);
    }
    return v;
  };
  const netns = str('netns');
  if (
    netns !== undefined &&
    (!/^[A-Za-z0-9_.-]+$/u.test(netns) || netns === '.' || netns === '..')
  ) {
    throw new CliUsageError(`--netns: '${netns}' is not a namespace name`);
  }
  const q = str('queue');
  const timeout = str('prompt-timeout');
  const promptTimeoutSeconds =
    timeout === undefined
      ? HELPER_DEFAULTS.promptTimeoutSeconds
      : parseUnsigned(timeout, 600, 'prompt-timeout');
  if (promptTimeoutSeconds < 1) throw new CliUsageError('--prompt-timeout: must be 1..600 seconds');
  const da = str('default-action');
  const defaultAction =
    da === undefined ? HELPER_DEFAULTS.defaultAction : action('default-action', da);
  const ng = str('no-gui-policy');
  const level = str('log-level') ?? HELPER_DEFAULTS.logLevel;
  const tokenFile = str('token-file');
  if (tokenFile !== undefined && seen.has('token-stdin')) {
    throw new CliUsageError('--token-file and --token-stdin: give one of them');
  }
  const accessGroup = str('access-group');
  if (accessGroup !== undefined && !/^[a-z_][a-z0-9_-]*\$?$/u.test(accessGroup)) {
    throw new CliUsageError(`--access-group: '${accessGroup}' is not a group name`);
  }
  const parent = parseParent(str);
  const jit = str('jit') ?? 'full';
  if (!(JIT_MODES as readonly string[]).includes(jit)) {
    throw new CliUsageError(`--jit: '${jit}' is not ${JIT_MODES.join(' or ')}`);
  }
  const attribution = str('attribution') ?? 'auto';
  if (attribution !== 'auto' && attribution !== 'procfs') {
    throw new CliUsageError(`--attribution: '${attribution}' is not auto or procfs`);
  }
  if (!['debug', 'info', 'warn', 'error'].includes(level)) {
    throw new CliUsageError(`--log-level: '${level}' is not debug, info, warn or error`);
  }
  return {
    help: seen.has('help'),
    socket: absolute('socket', str('socket') ?? HELPER_DEFAULTS.socket),
    ...(netns !== undefined ? { netns } : {}),
    queue: q === undefined ? HELPER_DEFAULTS.queue : parseUnsigned(q, 0xffff, 'queue'),
    defaultAction,
    promptTimeoutSeconds,
    noGuiPolicy: ng === undefined ? defaultAction : action('no-gui-policy', ng),
    failClosed: seen.has('fail-closed'),
    inbound: seen.has('inbound'),
    stateDir: absolute('state-dir', str('state-dir') ?? HELPER_DEFAULTS.stateDir),
    logLevel: level as LogLevel,
    allowUids,
    tokenStdin: seen.has('token-stdin'),
    noConntrackAccounting: seen.has('no-conntrack-accounting'),
    jit: jit as JitMode,
    attribution,
    ...(tokenFile !== undefined ? { tokenFile: absolute('token-file', tokenFile) } : {}),
    ...(accessGroup !== undefined ? { accessGroup } : {}),
    ...parent,
    explicit: (Object.keys(EXPLICIT) as (keyof typeof EXPLICIT)[])
      .filter((k) => seen.has(k))
      .map((k) => EXPLICIT[k]),
  };
}
