import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  StubBrowserWindow,
  StubFrame,
  StubNotification,
  StubTray,
  StubWebContents,
  ipcEvent,
  makeElectronStub,
  type ElectronStub,
} from '../../support/electron-stub.js';
import type { HelperConnection } from '../../../src-main/node/launcher.js';
import { makeStats } from '../../support/fake-helper-service.js';

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-app-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// A service "socket" and its token: the launcher takes the no-password path.
const socketPath = join(tmp, 'helper.sock');
const tokenPath = join(tmp, 'token');
writeFileSync(socketPath, '');
writeFileSync(tokenPath, 'service-token\n');

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

async function boot(options: { lock?: boolean } = {}) {
  vi.resetModules();
  const stub: ElectronStub = makeElectronStub(options);
  vi.doMock('electron', () => stub);
  const { runApp } = await import('../../../src-main/electron-main/app-main.js');
  const connect = vi.fn(async (): Promise<HelperConnection> => ({
    close: async () => undefined,
    onClose: () => undefined,
  }));
  const log = vi.fn();
  const handle = runApp({
    appRoot: '/src/portcullis',
    connect,
    socketPath,
    serviceTokenPath: tokenPath,
    notifyIntervalMs: 40,
    log,
  });
  return { stub, handle, connect, log };
}

async function ready(options: { lock?: boolean } = {}) {
  const b = await boot(options);
  b.stub.app.fireReady();
  const ctx = await b.handle?.ready;
  await flush();
  const win = StubBrowserWindow.instances.at(-1) as StubBrowserWindow;
  return { ...b, ctx: ctx!, win };
}

beforeEach(() => {
  StubBrowserWindow.instances = [];
  StubTray.instances = [];
  StubNotification.shown = [];
});

describe('single instance', () => {
  it('a second instance quits at once and creates nothing', async () => {
    const { stub, handle } = await boot({ lock: false });
    expect(handle).toBeNull();
    expect(stub.app.quit).toHaveBeenCalled();
    stub.app.fireReady();
    await flush();
    expect(StubBrowserWindow.instances).toHaveLength(0);
  });

  it('the first instance brings its window back when a second one starts', async () => {
    const { stub, win } = await ready();
    win.minimized = true;
    stub.app.emit('second-instance');
    expect(win.calls).toEqual(['restore', 'show', 'focus']);
    expect(StubBrowserWindow.instances).toHaveLength(1);
  });
});

describe('window and session security', () => {
  it('registers app:// as a standard secure scheme before ready, and serves it after', async () => {
    const { stub } = await boot();
    expect(stub.protocol.registerSchemesAsPrivileged).toHaveBeenCalledWith([
      expect.objectContaining({
        scheme: 'app',
        privileges: expect.objectContaining({ standard: true, secure: true }),
      }),
    ]);
    expect(stub.protocol.handle).not.toHaveBeenCalled();
    stub.app.fireReady();
    await flush();
    expect(stub.protocol.handle).toHaveBeenCalledWith('app', expect.any(Function));
  });

  it('creates the window sandboxed, isolated, without Node, loading app:// (no file://)', async () => {
    const { win } = await ready();
    expect(win.options['webPreferences']).toMatchObject({
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      preload: '/src/portcullis/dist/preload/preload.js',
    });
    expect(win.loaded).toBe('app://portcullis/index.html');
    expect(win.options['show']).toBe(false);
    win.emit('ready-to-show');
    expect(win.visible).toBe(true);
  });

  it('denies navigation, redirects, webviews and window.open on every webContents', async () => {
    const { stub } = await ready();
    const contents = new StubWebContents();
    stub.app.emit('web-contents-created', {}, contents);
    for (const name of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
      const event = { preventDefault: vi.fn() };
      contents.emit(name, event, 'https://example.org/');
      expect(event.preventDefault, name).toHaveBeenCalled();
    }
    expect(contents.windowOpenHandler?.({ url: 'https://example.org/' })).toEqual({
      action: 'deny',
    });
  });

  it('denies every permission request and check', async () => {
    const { stub } = await ready();
    const s = stub.session.defaultSession;
    const callback = vi.fn();
    s.permissionRequest?.({}, 'notifications', callback);
    expect(callback).toHaveBeenCalledWith(false);
    expect(s.permissionCheck?.({}, 'media')).toBe(false);
    expect(s.devicePermission?.({})).toBe(false);
  });

  it('keeps running in the tray when the window is closed', async () => {
    const { stub, win } = await ready();
    win.emit('closed');
    stub.app.emit('window-all-closed');
    expect(stub.app.quit).not.toHaveBeenCalled();
    stub.app.emit('second-instance');
    expect(StubBrowserWindow.instances).toHaveLength(2);
  });
});

describe('IPC senders', () => {
  it('answers our top-level app:// frame with an envelope', async () => {
    const { stub, win, connect } = await ready();
    expect(connect).toHaveBeenCalledWith(socketPath, 'service-token');
    await expect(
      stub.ipcMain.invoke('portcullis:getHelperStatus', ipcEvent(win.webContents)),
    ).resolves.toEqual({ ok: true, result: { connection: 'connected', error: null, state: null } });
  });

  it('refuses unknown contents, subframes, foreign origins and destroyed senders before reading the payload', async () => {
    const { stub, win, log } = await ready();
    const stranger = new StubWebContents();
    const sub = new StubFrame('app://portcullis/index.html');
    sub.parent = win.webContents.mainFrame;
    const navigated = new StubFrame('https://evil.example/');
    const cases = [
      ipcEvent(stranger),
      ipcEvent(win.webContents, sub),
      ipcEvent(win.webContents, null),
      { sender: win.webContents, senderFrame: navigated },
    ];
    win.webContents.mainFrame = navigated;
    for (const event of cases) {
      await expect(stub.ipcMain.invoke('portcullis:getHelperStatus', event)).rejects.toThrow(
        'forbidden',
      );
    }
    expect(log.mock.calls.map((c) => c[0]).filter((l) => l.startsWith('refused'))).toHaveLength(4);
  });

  it('retryHelper (api.ts) is served by main: the launcher tries again', async () => {
    const { stub, win, ctx } = await ready();
    const retry = vi.spyOn(ctx.launcher, 'retry');
    await expect(
      stub.ipcMain.invoke('portcullis:retryHelper', ipcEvent(win.webContents)),
    ).resolves.toEqual({ ok: true });
    expect(retry).toHaveBeenCalledOnce();
  });

  it('validates payloads: a bad one gets an error envelope, not a call', async () => {
    const { stub, win } = await ready();
    await expect(
      stub.ipcMain.invoke('portcullis:getHelperStatus', ipcEvent(win.webContents), { x: 1 }),
    ).resolves.toMatchObject({ ok: false, error: { code: 'invalid' } });
    stub.ipcMain.emit('portcullis:subscribe', ipcEvent(win.webContents), 'secrets');
    expect(win.webContents.sent).toEqual([]);
  });

  it('pushes only subscribed channels, only to trusted live contents', async () => {
    const { stub, win, ctx } = await ready();
    ctx.push('stats', makeStats(1));
    expect(win.webContents.sent).toEqual([]);
    stub.ipcMain.emit('portcullis:subscribe', ipcEvent(win.webContents), 'helperStatus');
    expect(win.webContents.sent).toEqual([
      {
        channel: 'portcullis:helperStatus',
        payload: { connection: 'connected', error: null, state: null },
      },
    ]);
    stub.ipcMain.emit('portcullis:subscribe', ipcEvent(new StubWebContents()), 'stats');
    ctx.push('stats', makeStats(2));
    expect(win.webContents.sent).toHaveLength(1);
    win.webContents.destroy();
    ctx.push('helperStatus', { connection: 'connected', state: null, error: null });
    expect(win.webContents.sent).toHaveLength(1);
  });
});

describe('tray and notifications', () => {
  it('shows the pending count and the helper state in the tray', async () => {
    const { stub, ctx } = await ready();
    const tray = StubTray.instances[0] as StubTray;
    expect(tray.tooltip).toBe(
      'Portcullis: no connection waiting\nHelper: connected (system service)',
    );
    ctx.promptsChanged([{ id: 1, app: 'curl', destination: 'example.org:443' }], []);
    expect(tray.tooltip).toMatch(/^Portcullis: 1 connection waiting/);
    expect(tray.title).toBe('1');
    expect(stub.app.setBadgeCount).toHaveBeenLastCalledWith(1);
  });

  it('rate-limits notifications and sums up a burst; none while the window is focused', async () => {
    const { ctx, win } = await ready();
    const p = (id: number) => ({ id, app: `app${id}`, destination: `10.0.0.${id}:80` });
    ctx.promptsChanged([p(1)], []);
    ctx.promptsChanged([p(1), p(2)], []);
    ctx.promptsChanged([p(1), p(2), p(3)], []);
    expect(StubNotification.shown).toEqual([
      { title: 'app1 wants to connect', body: '10.0.0.1:80', silent: true },
    ]);
    await new Promise((r) => setTimeout(r, 80));
    expect(StubNotification.shown[1]).toEqual({
      title: 'Connections are waiting for your answer',
      body: 'app2 (10.0.0.2:80) and 1 more',
      silent: true,
    });
    win.focused = true;
    await new Promise((r) => setTimeout(r, 60));
    ctx.promptsChanged([p(4)], []);
    expect(StubNotification.shown).toHaveLength(2);
  });
});
