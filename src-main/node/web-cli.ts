/**
 * `portcullis ui --web [--port N] [--socket PATH] [--token-file PATH] [--open]`:
 * connects to a running helper (reconnecting with backoff), serves the UI on
 * 127.0.0.1 and prints the URL to open. bin/portcullis.js sends `ui` here:
 * helper/ must not import src-main/ (eslint.config.js layering).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DEFAULT_SOCKET_PATH, DEFAULT_TOKEN_PATH } from '../../helper/protocol/index.js';
import { Backoff } from '../common/backoff.js';
import { HelperBridge } from './bridge.js';
import { connectHelper } from './helper-client.js';
import { startWebHost, type WebHost } from './web-host.js';

export interface UiArgs {
  web: boolean;
  port: number;
  socket: string;
  tokenFile: string;
  open: boolean;
  help: boolean;
}

export class UiUsageError extends Error {}

/**
 * How long the link handed to xdg-open lives unused. Whatever is in a
 * command line can be read by every local user (/proc/PID/cmdline) for as
 * long as the browser runs; the page exchanges it at once.
 */
const OPEN_CODE_TTL_MS = 60_000;

const UI_USAGE = `Usage: portcullis ui --web [--port N] [--socket PATH] [--token-file PATH] [--open]

Serves the Portcullis UI to a browser on 127.0.0.1 (the desktop app's Electron
window is started by the packaged app, not by this command).

  --web              required: serve the UI over HTTP + WebSocket on loopback
  --port N           port to listen on (default: any free port)
  --socket PATH      the helper's socket (default ${DEFAULT_SOCKET_PATH})
  --token-file PATH  the helper's token (default ${DEFAULT_TOKEN_PATH}, or $PORTCULLIS_TOKEN)
  --open             also open the UI in the browser with xdg-open

It prints a one-time link: the first page that opens it gets a session (reloads
keep working), and the link is dead from then on. --open hands xdg-open a
second link of its own, which expires after ${OPEN_CODE_TTL_MS / 1000} s.
`;

export function parseUiArgs(argv: readonly string[]): UiArgs {
  const a: UiArgs = {
    web: false,
    port: 0,
    socket: DEFAULT_SOCKET_PATH,
    tokenFile: DEFAULT_TOKEN_PATH,
    open: false,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new UiUsageError(`${arg} needs a value`);
      return next;
    };
    switch (arg) {
      case '--web':
        a.web = true;
        break;
      case '--open':
        a.open = true;
        break;
      case '-h':
      case '--help':
        a.help = true;
        break;
      case '--port': {
        const text = value();
        const n = Number(text);
        if (!/^\d+$/u.test(text) || n > 65535) throw new UiUsageError(`bad port '${text}'`);
        a.port = n;
        break;
      }
      case '--socket':
        a.socket = value();
        break;
      case '--token-file':
        a.tokenFile = value();
        break;
      default:
        throw new UiUsageError(`unknown option '${arg}'`);
    }
  }
  if (!a.web && !a.help) {
    throw new UiUsageError('only the web host is available from the command line: use --web');
  }
  return a;
}

function readHelperToken(args: UiArgs): string {
  const env = process.env['PORTCULLIS_TOKEN'];
  if (env) return env.trim();
  return readFileSync(args.tokenFile, 'utf8').trim();
}

export interface RunningUi {
  host: WebHost;
  bridge: HelperBridge;
  stop(): Promise<void>;
}

/** Starts the bridge's reconnect loop and the web host. */
export async function startUi(
  args: UiArgs,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<RunningUi> {
  // A page that closed no longer answers prompts; one reloading comes back within 5 s.
  const bridge = new HelperBridge({ promptsWhileWatched: { graceMs: 5000 } });
  const backoff = new Backoff({ initialMs: 250, maxMs: 5000 });
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let close: (() => Promise<void>) | null = null;

  const attempt = async (): Promise<void> => {
    timer = null;
    if (stopped) return;
    bridge.setLink({ connection: 'connecting', error: bridge.status.error });
    try {
      const token = readHelperToken(args);
      const client = await connectHelper(args.socket, token, 'portcullis-ui-web');
      if (stopped) {
        await client.close();
        return;
      }
      close = () => client.close();
      client.onClose((error) => {
        close = null;
        bridge.detach();
        retry(error ? error.message : 'the helper closed the connection');
      });
      await bridge.attach(client);
      backoff.reset();
      bridge.setLink({ connection: 'connected', error: null });
      log('portcullis ui: connected to the helper');
    } catch (error) {
      retry(error instanceof Error ? error.message : String(error));
    }
  };
  const retry = (reason: string): void => {
    if (stopped || timer) return;
    const delay = backoff.next();
    bridge.setLink({ connection: 'connecting', error: reason });
    log(`portcullis ui: helper: ${reason}; retrying in ${delay} ms`);
    timer = setTimeout(() => void attempt(), delay);
  };

  // The page's Retry button: skip the rest of the backoff wait. While
  // connected or mid-attempt (no timer) there is nothing to hurry.
  bridge.setRetry(() => {
    if (stopped || timer === null) return;
    clearTimeout(timer);
    timer = null;
    backoff.reset();
    void attempt();
  });
  const host = await startWebHost({ api: bridge.api, port: args.port, log });
  void attempt();
  return {
    host,
    bridge,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await host.close();
      await close?.();
    },
  };
}

/**
 * `xdg-open URL`, detached. The URL is in its and the browser's command line,
 * readable by every local user: it must carry only a short-lived one-time
 * code. The helper's token is not passed on in the environment.
 */
export function openInBrowser(url: string, log: (line: string) => void): void {
  const env = { ...process.env };
  delete env['PORTCULLIS_TOKEN'];
  spawn('xdg-open', [url], { stdio: 'ignore', detached: true, env })
    .on('error', (e) => log(`portcullis ui: xdg-open: ${e.message}`))
    .unref();
}

/** The command; resolves with the exit code once stopped by a signal. */
export async function runUi(argv: readonly string[]): Promise<number> {
  let args: UiArgs;
  try {
    args = parseUiArgs(argv);
  } catch (error) {
    if (!(error instanceof UiUsageError)) throw error;
    process.stderr.write(`portcullis ui: ${error.message}\n\n${UI_USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(UI_USAGE);
    return 0;
  }
  const ui = await startUi(args);
  // A one-time code, for this terminal only; the browser's command line gets
  // another one, which also expires.
  process.stdout.write(`Portcullis UI (a one-time link): ${ui.host.issueUrl(null)}\n`);
  if (args.open) {
    openInBrowser(ui.host.issueUrl(OPEN_CODE_TTL_MS), (line) => process.stderr.write(`${line}\n`));
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await ui.stop();
  return 0;
}
