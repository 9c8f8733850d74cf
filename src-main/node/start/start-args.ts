/**
 * Argument parsing for `portcullis start`. Pure; every mistake is a StartUsageError
 * (exit status 2) before anything is started.
 */

export type UiChoice = 'auto' | 'web' | 'electron' | 'none';

export interface StartArgs {
  help: boolean;
  /** A throw-away network namespace with programs in it instead of this machine's network. */
  demo: boolean;
  ui: UiChoice;
  /** Never hand the link to xdg-open (it is printed either way). */
  noOpen: boolean;
  /** The web UI's port (0: any free one). */
  port: number;
  /** Guard this named network namespace instead of the machine's own (not with --demo). */
  netns?: string;
  /** The helper's socket; the token goes next to it. Default: the service's, or the demo's temp dir. */
  socket?: string;
  stateDir?: string;
  /** Every helper log line on stderr, not only its warnings and errors. */
  verbose: boolean;
  /** Options after `--`, handed to `portcullis helper` as they are. */
  helperArgs: string[];
}

export class StartUsageError extends Error {}

export const GUARD_SOCKET = '/run/portcullis/helper.sock';
export const GUARD_STATE_DIR = '/var/lib/portcullis';

/** The options `start` sets on the helper itself: given after `--` they would clash. */
const OWN_HELPER_OPTIONS = [
  '--socket',
  '--state-dir',
  '--netns',
  '--allow-uid',
  '--owner-uid',
  '--parent-pid',
  '--parent-start-time',
  '--token-stdin',
  '--token-file',
];

function absolute(name: string, v: string): string {
  if (!v.startsWith('/')) throw new StartUsageError(`${name}: '${v}' is not an absolute path`);
  return v;
}

function checkHelperArgs(rest: string[]): string[] {
  for (const a of rest) {
    const name = a.split('=')[0]!;
    if (OWN_HELPER_OPTIONS.includes(name)) {
      throw new StartUsageError(`${name} after --: give it to start itself, or not at all`);
    }
  }
  return rest;
}

function setValue(a: StartArgs, arg: string, value: () => string): void {
  switch (arg) {
    case '--ui': {
      const v = value();
      if (v !== 'auto' && v !== 'web' && v !== 'electron' && v !== 'none') {
        throw new StartUsageError(`--ui: '${v}' is not auto, web, electron or none`);
      }
      a.ui = v;
      return;
    }
    case '--port': {
      const v = value();
      if (!/^\d{1,5}$/u.test(v) || Number(v) > 65535) {
        throw new StartUsageError(`--port: '${v}' is not a port`);
      }
      a.port = Number(v);
      return;
    }
    case '--netns': {
      const v = value();
      if (!/^[A-Za-z0-9_.-]+$/u.test(v) || v === '.' || v === '..') {
        throw new StartUsageError(`--netns: '${v}' is not a namespace name`);
      }
      a.netns = v;
      return;
    }
    case '--socket':
      a.socket = absolute('--socket', value());
      return;
    case '--state-dir':
      a.stateDir = absolute('--state-dir', value());
      return;
    default:
      throw new StartUsageError(`unknown option '${arg}'`);
  }
}

export function parseStartArgs(argv: readonly string[]): StartArgs {
  const a: StartArgs = {
    help: false,
    demo: false,
    ui: 'auto',
    noOpen: false,
    port: 0,
    verbose: false,
    helperArgs: [],
  };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      a.helperArgs = checkHelperArgs(argv.slice(i + 1));
      break;
    }
    if (seen.has(arg)) throw new StartUsageError(`${arg} given twice`);
    seen.add(arg);
    if (arg === '-h' || arg === '--help') a.help = true;
    else if (arg === '--demo') a.demo = true;
    else if (arg === '--no-open') a.noOpen = true;
    else if (arg === '--verbose') a.verbose = true;
    else {
      setValue(a, arg, () => {
        const next = argv[++i];
        if (next === undefined || next === '') throw new StartUsageError(`${arg} needs a value`);
        return next;
      });
    }
  }
  if (a.demo && a.netns !== undefined) {
    throw new StartUsageError('--demo makes its own namespace: leave out --netns');
  }
  return a;
}
