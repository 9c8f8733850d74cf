/**
 * Electron main, the glue: single instance, the app:// protocol, one
 * hardened window, trusted IPC, tray, notifications and the helper launcher.
 * Everything with logic lives in common/ and node/; this file wires it and is
 * tested with a stub of `electron` (test/unit/main/app-main.test.ts).
 */
import {
  BrowserWindow,
  Menu,
  Notification,
  Tray,
  app,
  ipcMain,
  nativeImage,
  protocol,
  session,
} from 'electron';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import {
  PUSH_CHANNELS,
  type HelperStatus,
  type PushChannel,
  type PushChannels,
} from '../common/api.js';
import { Backoff } from '../common/backoff.js';
import { describeLink, linkStatus, type HelperLinkState } from '../common/helper-link.js';
import { PromptNotices, type Notice, type PromptSummary } from '../common/prompt-notices.js';
import { makeElevator, type SudoExec } from '../node/elevate.js';
import { HelperLauncher, type HelperConnection } from '../node/launcher.js';
import {
  resolveAppPaths,
  runtimeFacts,
  type AppPaths,
  type RuntimeFacts,
} from '../node/resources.js';
import { registerAppScheme, serveRenderer } from './app-protocol.js';
import { APP_ENTRY, hardenSession, hardenWebContents, secureWebPreferences } from './security.js';
import { PendingTray } from './tray.js';
import { TrustedIpc, noArgument, oneOf, type RejectedMessage } from './trusted-ipc.js';

const DEFAULT_SOCKET = '/run/portcullis/helper.sock';
const DEFAULT_SERVICE_TOKEN = '/run/portcullis/token';

/** The push channels main serves: all of the channel map's. */
export { PUSH_CHANNELS };

export interface AppOptions {
  appRoot: string;
  connect(path: string, token: string): Promise<HelperConnection>;
  /** Registers the api.ts invoke channels on `ipc` and forwards the
   * helper's events with `push` (flows, prompts, verdicts, stats). */
  registerApi?(ctx: AppContext): void;
  /** The helperStatus for a link state (default: the link, state null). */
  statusOf?(s: HelperLinkState): HelperStatus;
  /** A window subscribed to a push channel (to replay a snapshot). */
  onSubscribe?(channel: PushChannel): void;
  socketPath?: string;
  serviceTokenPath?: string;
  notifyIntervalMs?: number;
  log?(line: string): void;
}

export interface AppContext {
  ipc: TrustedIpc;
  launcher: HelperLauncher;
  /** Sends to the window if it subscribed to that channel. */
  push<K extends PushChannel>(channel: K, payload: PushChannels[K]): void;
  /** The pending prompts changed: tray count and rate-limited notifications. */
  promptsChanged(pending: readonly PromptSummary[], answered: readonly PromptSummary['id'][]): void;
  paths: AppPaths;
}

export interface AppHandle {
  ready: Promise<AppContext>;
}

/** Returns null when another instance already runs (it gets focused instead). */
export function runApp(o: AppOptions): AppHandle | null {
  const log = o.log ?? ((line: string) => process.stderr.write(`portcullis: ${line}\n`));
  // Before 'ready', and before the lock: a second instance exits quickly anyway.
  registerAppScheme(protocol);
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return null;
  }
  const facts = runtimeFacts({ appRoot: o.appRoot, isPackaged: app.isPackaged });
  const paths = resolveAppPaths(facts);
  const launcher = makeLauncher(o, facts, paths);
  let tray: PendingTray | null = null;
  const subscribed = new Set<PushChannel>();
  const ipc = new TrustedIpc(ipcMain, (r: RejectedMessage) =>
    log(`refused IPC on ${r.channel}: ${r.reason}`),
  );
  const window = new MainWindow(ipc, paths, () => subscribed.clear());
  const notifier = new PromptNotifier(o.notifyIntervalMs, paths.icon, () => window.show());

  const push = <K extends PushChannel>(channel: K, payload: PushChannels[K]): void => {
    const win = window.current;
    if (win && subscribed.has(channel)) ipc.send(win.webContents, channel, payload);
  };
  const helperStatus = (s: HelperLinkState): HelperStatus =>
    o.statusOf?.(s) ?? { ...linkStatus(s), state: null };

  // Every webContents, including any a bug might create, is hardened.
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents));
  app.on('second-instance', () => window.show());
  // Closing the window keeps the app (and the helper link) in the tray.
  app.on('window-all-closed', () => undefined);
  app.on('before-quit', () => {
    void launcher.stop();
    tray?.destroy();
  });

  const ready = app.whenReady().then((): AppContext => {
    hardenSession(session.defaultSession);
    serveRenderer(protocol, paths.rendererDir);

    ipc.on('subscribe', oneOf(PUSH_CHANNELS), (name) => {
      subscribed.add(name);
      if (name === 'helperStatus') push('helperStatus', helperStatus(launcher.state));
      o.onSubscribe?.(name);
    });
    ipc.on('unsubscribe', oneOf(PUSH_CHANNELS), (name) => subscribed.delete(name));
    ipc.handle('getHelperStatus', noArgument, () => helperStatus(launcher.state));
    ipc.handle('retryHelper', noArgument, () => launcher.retry());

    tray = new PendingTray({
      Tray,
      Menu,
      app,
      icon: nativeImage.createFromPath(paths.icon),
      show: () => window.show(),
    });
    launcher.onState((s) => {
      tray?.setHelperLine(describeLink(s));
      push('helperStatus', helperStatus(s));
      log(describeLink(s));
    });
    const ctx: AppContext = {
      ipc,
      launcher,
      push,
      paths,
      promptsChanged(pending, answered) {
        tray?.setPending(pending.length);
        // Only when the window is not in front: the Prompts view shows them.
        notifier.changed(pending, answered, window.current?.isFocused() ?? false);
      },
    };
    o.registerApi?.(ctx);
    window.open();
    launcher.start();
    return ctx;
  });
  return { ready };
}

function makeLauncher(o: AppOptions, facts: RuntimeFacts, paths: AppPaths): HelperLauncher {
  const socketPath = o.socketPath ?? DEFAULT_SOCKET;
  return new HelperLauncher({
    socketPath,
    serviceTokenPath: o.serviceTokenPath ?? DEFAULT_SERVICE_TOKEN,
    socketExists: existsSync,
    readToken: (p) => readFileSync(p, 'utf8').trim(),
    connect: o.connect,
    elevate: makeElevator({
      facts,
      paths,
      socketPath,
      sudoExec: async () => {
        const mod = (await import('sudo-prompt')) as { exec: SudoExec } & {
          default?: { exec: SudoExec };
        };
        return mod.default?.exec ?? mod.exec;
      },
    }),
    generateToken: () => randomBytes(32).toString('base64url'),
    backoff: new Backoff(),
  });
}

/** The one window: hardened, its contents trusted, shown again rather than doubled. */
class MainWindow {
  private win: BrowserWindow | null = null;

  constructor(
    private readonly ipc: TrustedIpc,
    private readonly paths: AppPaths,
    private readonly onClosed: () => void,
  ) {}

  get current(): BrowserWindow | null {
    return this.win;
  }

  open(): void {
    this.win = this.create();
  }

  show(): void {
    if (!app.isReady()) return;
    if (!this.win) {
      this.win = this.create();
      return;
    }
    if (this.win.isMinimized()) this.win.restore();
    this.win.show();
    this.win.focus();
  }

  private create(): BrowserWindow {
    const w = new BrowserWindow({
      width: 1280,
      height: 800,
      minWidth: 720,
      minHeight: 480,
      show: false,
      title: 'Portcullis',
      icon: this.paths.icon,
      webPreferences: secureWebPreferences(this.paths.preload),
    });
    this.ipc.trust(w.webContents);
    w.once('ready-to-show', () => w.show());
    w.on('closed', () => {
      if (this.win === w) this.win = null;
      this.onClosed();
    });
    void w.loadURL(APP_ENTRY);
    return w;
  }
}

/** Desktop notifications of pending prompts, rate-limited by PromptNotices. */
class PromptNotifier {
  private readonly notices: PromptNotices;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    intervalMs: number | undefined,
    private readonly icon: string,
    private readonly onClick: () => void,
  ) {
    this.notices = new PromptNotices(intervalMs);
  }

  changed(
    pending: readonly PromptSummary[],
    answered: readonly PromptSummary['id'][],
    windowFocused: boolean,
  ): void {
    for (const id of answered) this.notices.resolved(id);
    if (windowFocused) return;
    this.display(this.notices.offer(pending, Date.now()));
  }

  private display(n: Notice | null): void {
    if (n && Notification.isSupported()) {
      // silent: a sound per connection would be the flood we avoid; the
      // notification never takes focus by itself.
      const note = new Notification({
        title: n.title,
        body: n.body,
        silent: true,
        icon: this.icon,
      });
      note.on('click', () => this.onClick());
      note.show();
    }
    this.schedule();
  }

  private schedule(): void {
    const wait = this.notices.nextFlushIn(Date.now());
    if (wait === null || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.display(this.notices.flush(Date.now()));
    }, wait);
  }
}
