// Electron main with the bridge (src-main/electron-main/api-wiring.ts), with a
// stub of electron and a real IpcServer running the scripted helper service:
// the window's invoke channels reach the helper, pushes reach the window.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  StubBrowserWindow,
  ipcEvent,
  makeElectronStub,
  type ElectronStub,
} from '../../support/electron-stub.js';
import { makeFlow } from '../../support/fake-helper-service.js';
import { startHarness, TOKEN, until, type Harness } from '../../support/ipc-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe('Electron main with the bridge', () => {
  it('serves the api channels from the helper and pushes its events to the window', async () => {
    h = await startHarness({ flowIntervalMs: 10 });
    h.service.flows.set(5, makeFlow(5));
    const tokenPath = join(h.dir, 'token');
    writeFileSync(tokenPath, `${TOKEN}\n`);
    vi.resetModules();
    const stub: ElectronStub = makeElectronStub();
    vi.doMock('electron', () => stub);
    const { runApp } = await import('../../../src-main/electron-main/app-main.js');
    const { bridgeOptions } = await import('../../../src-main/electron-main/api-wiring.js');
    const { HelperBridge } = await import('../../../src-main/node/bridge.js');
    const bridge = new HelperBridge();
    const handle = runApp({
      appRoot: '/src/portcullis',
      socketPath: h.path,
      serviceTokenPath: tokenPath,
      log: () => undefined,
      ...bridgeOptions(bridge),
    });
    stub.app.fireReady();
    const ctx = await handle!.ready;
    await flush();
    const win = StubBrowserWindow.instances.at(-1) as StubBrowserWindow;
    const event = ipcEvent(win.webContents);
    await until(() => ctx.launcher.state.kind === 'connected' && bridge.status.state !== null);

    const status = (await stub.ipcMain.invoke('portcullis:getHelperStatus', event)) as {
      ok: boolean;
      result: { connection: string; state: { version: string } | null };
    };
    expect(status.result.connection).toBe('connected');
    expect(status.result.state?.version).toBe('0.1.0');

    const added = (await stub.ipcMain.invoke('portcullis:addRule', event, {
      action: 'deny',
      match: { host: 'x.example' },
      duration: { kind: 'forever' },
    })) as { ok: boolean; result: { id: string } };
    expect(added.ok).toBe(true);
    const listed = (await stub.ipcMain.invoke('portcullis:listRules', event)) as {
      result: { id: string }[];
    };
    expect(listed.result.map((r) => r.id)).toEqual([added.result.id]);
    const bad = (await stub.ipcMain.invoke('portcullis:killFlow', event, 'x')) as {
      ok: boolean;
      error: { code: string };
    };
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid' } });
    const missing = (await stub.ipcMain.invoke('portcullis:killFlow', event, 99)) as {
      ok: boolean;
      error: { code: string };
    };
    expect(missing).toMatchObject({ ok: false, error: { code: 'not-found' } });

    // Subscribing replays the flow table; later deltas follow.
    await until(() => bridge.api !== null && h!.server.subscriberCount('flows') === 1);
    stub.ipcMain.emit('portcullis:subscribe', event, 'flows');
    await until(() => win.webContents.sent.some((m) => m.channel === 'portcullis:flows'));
    const first = win.webContents.sent.find((m) => m.channel === 'portcullis:flows')!;
    expect(first.payload).toMatchObject({ kind: 'snapshot', flows: [{ id: 5 }] });
    h.server.publish('flows', { added: [makeFlow(6)], updated: [], removed: [] });
    await until(
      () => win.webContents.sent.filter((m) => m.channel === 'portcullis:flows').length === 2,
    );
    await ctx.launcher.stop();
  });
});
