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
import { rendererMissing } from './renderer-built.js';
import { defaultRendererDir } from './renderer-files.js';
import { connectHelper } from './helper-client.js';
import { LINK_CODE_TTL_MS, requestLink, serveLinks, UiLinkError } from './ui-links.js';
import { startWebHost, type WebHost } from './web-host.js';

export interface UiArgs {
  web: boolean;
  /** `portcullis ui link`: ask the running web host for a new link. */
  link?: boolean;
  port: number;
  socket: string;
  tokenFile: string;
  /** The built renderer (default dist/renderer). */
  rendererDir?: string;
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
       portcullis ui link [--port N] [--open]

Serves the Portcullis UI to a browser on 127.0.0.1 (the desktop app's Electron
window is started by the packaged app, not by this command).

  --web              required: serve the UI over HTTP + WebSocket on loopback
  --port N           port to listen on (default: any free port)
  --socket PATH      the helper's socket (default ${DEFAULT_SOCKET_PATH})
  --token-file PATH  the helper's token (default ${DEFAULT_TOKEN_PATH}, or $PORTCULLIS_TOKEN)
  --open             also open the UI in the browser with xdg-open
  --renderer-dir DIR the built UI (default dist/renderer: npm run build:renderer)

It prints a one-time link: the first page that opens it gets a session (reloads
keep working), and the link is dead from then on. --open hands xdg-open a
second link of its own, which expires after ${OPEN_CODE_TTL_MS / 1000} s.

\`portcullis ui link\` prints a new one-time link from the UI already running for
you (for a new tab, a bookmark, a browser restart), which expires after
${LINK_CODE_TTL_MS / 60_000} minutes unused; with --open it opens it instead.
`;

export function parseUiArgs(argv: readonly string[]): UiArgs {
  const a: UiArgs = {
    web: false,
    link: false,
    port: 0,
    socket: DEFAULT_SOCKET_PATH,
    tokenFile: DEFAULT_TOKEN_PATH,
    open: false,
    help: false,
  };
  let start = 0;
  if (argv[0] === 'link') {
    a.link = true;
    start = 1;
  }
  for (let i = start; i < argv.length; i++) {
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
      case '--renderer-dir':
        a.rendererDir = value();
        break;
      default:
        throw new UiUsageError(`unknown option '${arg}'`);
    }
  }
  if (a.link && a.web) throw new UiUsageError('link asks the running UI: leave out --web');
  if (!a.web && !a.help && !a.link) {
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
  const host = await startWebHost({
    api: bridge.api,
    port: args.port,
    log,
    ...(args.rendererDir !== undefined ? { rendererDir: args.rendererDir } : {}),
  });
  let links: Awaited<ReturnType<typeof serveLinks>> | null = null;
  try {
    links = await serveLinks(host.port, (ttl) => host.issueUrl(ttl));
  } catch (error) {
    // The UI works without it; only `portcullis ui link` will not find it.
    log(`portcullis ui: no link socket (${(error as Error).message})`);
  }
  void attempt();
  return {
    host,
    bridge,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await links?.close();
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

/** `portcullis ui link`: a new link from the running UI, printed or opened. */
async function printLink(args: UiArgs): Promise<number> {
  try {
    const url = await requestLink(args.port === 0 ? null : args.port);
    if (args.open) openInBrowser(url, (line) => process.stderr.write(`${line}\n`));
    else process.stdout.write(`Portcullis UI (a one-time link): ${url}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof UiLinkError)) throw error;
    process.stderr.write(`portcullis ui link: ${error.message}\n`);
    return 1;
  }
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
  if (args.link) return printLink(args);
  // Without it every URL would answer 404.
  const missing = rendererMissing(args.rendererDir ?? defaultRendererDir());
  if (missing !== null) {
    process.stderr.write(`portcullis ui: ${missing}\n`);
    return 1;
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
