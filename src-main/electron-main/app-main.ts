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
import { resolveAppPaths, runtimeFacts, type AppPaths } from '../node/resources.js';
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
  const socketPath = o.socketPath ?? DEFAULT_SOCKET;

  let win: BrowserWindow | null = null;
  let tray: PendingTray | null = null;
  const subscribed = new Set<PushChannel>();
  const ipc = new TrustedIpc(ipcMain, (r: RejectedMessage) =>
    log(`refused IPC on ${r.channel}: ${r.reason}`),
  );

  const launcher = new HelperLauncher({
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

  const createWindow = (): BrowserWindow => {
    const w = new BrowserWindow({
      width: 1280,
      height: 800,
      minWidth: 720,
      minHeight: 480,
      show: false,
      title: 'Portcullis',
      icon: paths.icon,
      webPreferences: secureWebPreferences(paths.preload),
    });
    ipc.trust(w.webContents);
    w.once('ready-to-show', () => w.show());
    w.on('closed', () => {
      if (win === w) win = null;
      subscribed.clear();
    });
    void w.loadURL(APP_ENTRY);
    return w;
  };

  const show = (): void => {
    if (!app.isReady()) return;
    if (!win) {
      win = createWindow();
      return;
    }
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
  };

  const push = <K extends PushChannel>(channel: K, payload: PushChannels[K]): void => {
    if (win && subscribed.has(channel)) ipc.send(win.webContents, channel, payload);
  };

  const helperStatus = (s: HelperLinkState): HelperStatus =>
    o.statusOf?.(s) ?? { ...linkStatus(s), state: null };

  // Every webContents, including any a bug might create, is hardened.
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents));
  app.on('second-instance', () => show());
  // Closing the window keeps the app (and the helper link) in the tray.
  app.on('window-all-closed', () => undefined);
  app.on('before-quit', () => {
    void launcher.stop();
    tray?.destroy();
  });

  const notices = new PromptNotices(o.notifyIntervalMs);
  let noticeTimer: NodeJS.Timeout | null = null;
  const display = (n: Notice | null): void => {
    if (n && Notification.isSupported()) {
      // silent: a sound per connection would be the flood we avoid; the
      // notification never takes focus by itself.
      const note = new Notification({
        title: n.title,
        body: n.body,
        silent: true,
        icon: paths.icon,
      });
      note.on('click', () => show());
      note.show();
    }
    scheduleNotice();
  };
  const scheduleNotice = (): void => {
    const wait = notices.nextFlushIn(Date.now());
    if (wait === null || noticeTimer) return;
    noticeTimer = setTimeout(() => {
      noticeTimer = null;
      display(notices.flush(Date.now()));
    }, wait);
  };

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
      show,
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
        for (const id of answered) notices.resolved(id);
        // Only when the window is not in front: the Prompts view shows them.
        if (win?.isFocused()) return;
        display(notices.offer(pending, Date.now()));
      },
    };
    o.registerApi?.(ctx);
    win = createWindow();
    launcher.start();
    return ctx;
  });
  return { ready };
}
