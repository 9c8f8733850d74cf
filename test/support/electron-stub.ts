/**
 * A stub of the `electron` module for main and preload tests (Podman Desktop
 * style: vi.mock('electron') returns these; the real module is never loaded).
 * Only what our glue touches exists; each piece records its calls.
 */
import { EventEmitter } from 'node:events';
import { vi } from 'vitest';

type Handler = (...args: unknown[]) => unknown;

export class StubFrame {
  parent: StubFrame | null = null;
  constructor(public url: string) {}
}

export class StubWebContents extends EventEmitter {
  static nextId = 1;
  readonly id = StubWebContents.nextId++;
  mainFrame: StubFrame;
  destroyed = false;
  windowOpenHandler: ((d: { url: string }) => { action: string }) | null = null;
  sent: { channel: string; payload: unknown }[] = [];
  constructor(url = 'app://portcullis/index.html') {
    super();
    this.mainFrame = new StubFrame(url);
  }
  setWindowOpenHandler(h: (d: { url: string }) => { action: string }): void {
    this.windowOpenHandler = h;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  send(channel: string, payload: unknown): void {
    this.sent.push({ channel, payload });
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('destroyed');
  }
}

/** An event as Electron's ipcMain passes it: sender and senderFrame. */
export function ipcEvent(
  sender: StubWebContents,
  frame: StubFrame | null = sender.mainFrame,
): { sender: StubWebContents; senderFrame: StubFrame | null } {
  return { sender, senderFrame: frame };
}

export class StubIpcMain extends EventEmitter {
  handlers = new Map<string, Handler>();
  handle(channel: string, fn: Handler): void {
    if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`);
    this.handlers.set(channel, fn);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  /** What ipcRenderer.invoke would do. */
  async invoke(channel: string, event: unknown, ...args: unknown[]): Promise<unknown> {
    const h = this.handlers.get(channel);
    if (!h) throw new Error(`No handler registered for '${channel}'`);
    return h(event, ...args);
  }
}

export class StubBrowserWindow extends EventEmitter {
  static instances: StubBrowserWindow[] = [];
  webContents = new StubWebContents();
  loaded: string | null = null;
  minimized = false;
  visible = false;
  focused = false;
  calls: string[] = [];
  constructor(public options: Record<string, unknown>) {
    super();
    StubBrowserWindow.instances.push(this);
  }
  loadURL(url: string): Promise<void> {
    this.loaded = url;
    return Promise.resolve();
  }
  isMinimized(): boolean {
    return this.minimized;
  }
  isFocused(): boolean {
    return this.focused;
  }
  restore(): void {
    this.calls.push('restore');
    this.minimized = false;
  }
  show(): void {
    this.calls.push('show');
    this.visible = true;
  }
  focus(): void {
    this.calls.push('focus');
  }
}

export class StubTray extends EventEmitter {
  static instances: StubTray[] = [];
  tooltip = '';
  title = '';
  menu: unknown = null;
  constructor(public image: unknown) {
    super();
    StubTray.instances.push(this);
  }
  setToolTip(t: string): void {
    this.tooltip = t;
  }
  setTitle(t: string): void {
    this.title = t;
  }
  setContextMenu(m: unknown): void {
    this.menu = m;
  }
  destroy(): void {}
}

export class StubNotification extends EventEmitter {
  static shown: { title: string; body: string; silent: boolean }[] = [];
  static isSupported(): boolean {
    return true;
  }
  constructor(private readonly o: { title: string; body: string; silent: boolean }) {
    super();
  }
  show(): void {
    StubNotification.shown.push({ title: this.o.title, body: this.o.body, silent: this.o.silent });
  }
}

export function makeSession() {
  return {
    permissionRequest: null as null | Handler,
    permissionCheck: null as null | Handler,
    devicePermission: null as null | Handler,
    setPermissionRequestHandler(h: Handler) {
      this.permissionRequest = h;
    },
    setPermissionCheckHandler(h: Handler) {
      this.permissionCheck = h;
    },
    setDevicePermissionHandler(h: Handler) {
      this.devicePermission = h;
    },
  };
}

/** A fresh stub module; the test's vi.mock factory returns it. */
export function makeElectronStub(options: { lock?: boolean } = {}) {
  let resolveReady: () => void = () => undefined;
  const readyPromise = new Promise<void>((r) => (resolveReady = r));
  const app = Object.assign(new EventEmitter(), {
    isPackaged: false,
    ready: false,
    requestSingleInstanceLock: vi.fn(() => options.lock ?? true),
    quit: vi.fn(),
    setBadgeCount: vi.fn(() => true),
    isReady(): boolean {
      return this.ready;
    },
    whenReady: () => readyPromise,
    /** Test helper: emits 'ready'. */
    fireReady(): void {
      app.ready = true;
      resolveReady();
    },
  });
  const protocol = {
    privileged: [] as unknown[],
    handlers: new Map<string, (r: Request) => Promise<Response>>(),
    registerSchemesAsPrivileged: vi.fn((s: unknown[]) => protocol.privileged.push(...s)),
    handle: vi.fn((scheme: string, h: (r: Request) => Promise<Response>) =>
      protocol.handlers.set(scheme, h),
    ),
  };
  return {
    app,
    protocol,
    session: { defaultSession: makeSession() },
    ipcMain: new StubIpcMain(),
    BrowserWindow: StubBrowserWindow,
    Tray: StubTray,
    Menu: { buildFromTemplate: (t: unknown) => ({ template: t }) },
    Notification: StubNotification,
    nativeImage: { createFromPath: (p: string) => ({ path: p }) },
    contextBridge: { exposeInMainWorld: vi.fn() },
    ipcRenderer: Object.assign(new EventEmitter(), { invoke: vi.fn(), send: vi.fn() }),
  };
}

export type ElectronStub = ReturnType<typeof makeElectronStub>;
