import { beforeEach, describe, expect, it, vi } from 'vitest';
import { makeElectronStub, type ElectronStub } from '../../support/electron-stub.js';

let stub: ElectronStub;
let api: Record<string, (...args: unknown[]) => unknown>;

beforeEach(async () => {
  vi.resetModules();
  stub = makeElectronStub();
  vi.doMock('electron', () => stub);
  await import('../../../src-main/preload/preload.js');
  const call = stub.contextBridge.exposeInMainWorld.mock.calls[0] as unknown[];
  expect(call[0]).toBe('portcullis');
  api = call[1] as typeof api;
});

describe('preload', () => {
  it('exposes exactly one function per operation and per stream, nothing generic', async () => {
    const { INVOKE_NAMES, PUSH_NAMES } = await import('../../../src-main/preload/preload.js');
    expect(Object.keys(api).sort()).toEqual(
      [
        ...INVOKE_NAMES,
        ...PUSH_NAMES.map((n) => `on${n.charAt(0).toUpperCase()}${n.slice(1)}`),
      ].sort(),
    );
    expect(api).not.toHaveProperty('invoke');
    expect(api).not.toHaveProperty('send');
    for (const f of Object.values(api)) expect(typeof f).toBe('function');
  });

  it('invokes the exact channel with one argument at most and unwraps the result', async () => {
    stub.ipcRenderer.invoke.mockResolvedValue({ ok: true, result: { id: 9 } });
    await expect(api['killFlow']?.(42, 'extra', 'args')).resolves.toEqual({ id: 9 });
    expect(stub.ipcRenderer.invoke).toHaveBeenLastCalledWith('portcullis:killFlow', 42);
    await api['listRules']?.();
    expect(stub.ipcRenderer.invoke).toHaveBeenLastCalledWith('portcullis:listRules');
  });

  it('rebuilds errors from the envelope (name, message, code)', async () => {
    stub.ipcRenderer.invoke.mockResolvedValue({
      ok: false,
      error: { name: 'ApiError', message: 'no such rule', code: 'not-found' },
    });
    const error = (await (api['removeRule']?.(3) as Promise<unknown>).catch(
      (e: unknown) => e,
    )) as Error & { code: string };
    expect(error).toBeInstanceOf(Error);
    expect([error.name, error.message, error.code]).toEqual([
      'ApiError',
      'no such rule',
      'not-found',
    ]);
  });

  it('subscribes per stream, hides the IPC event, unsubscribes after the last listener', () => {
    const a = vi.fn();
    const b = vi.fn();
    const offA = api['onPrompts']?.(a) as () => void;
    const offB = api['onPrompts']?.(b) as () => void;
    expect(stub.ipcRenderer.send).toHaveBeenCalledWith('portcullis:subscribe', 'prompts');
    stub.ipcRenderer.emit('portcullis:prompts', { sender: 'secret' }, { kind: 'snapshot' });
    expect(a).toHaveBeenCalledWith({ kind: 'snapshot' });
    expect(a.mock.calls[0]).toHaveLength(1);
    offA();
    offA();
    expect(stub.ipcRenderer.send).not.toHaveBeenCalledWith('portcullis:unsubscribe', 'prompts');
    offB();
    expect(stub.ipcRenderer.send).toHaveBeenLastCalledWith('portcullis:unsubscribe', 'prompts');
    expect(() => api['onStats']?.('not a function')).toThrow(TypeError);
  });
});

describe('compiled preload (dist/preload/preload.js)', () => {
  it('is one CommonJS file that requires only electron and runs in the sandbox wrapper', async () => {
    const { spawnSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join, resolve } = await import('node:path');
    const root = resolve(import.meta.dirname, '..', '..', '..');
    const out = mkdtempSync(join(tmpdir(), 'portcullis-preload-'));
    try {
      const tsc = spawnSync(
        process.execPath,
        [
          join(root, 'node_modules/typescript/bin/tsc'),
          '-p',
          'tsconfig.preload.json',
          '--outDir',
          out,
        ],
        { cwd: root, encoding: 'utf8' },
      );
      expect(tsc.stdout + tsc.stderr).toBe('');
      const src = readFileSync(join(out, 'preload.js'), 'utf8');
      expect([...src.matchAll(/require\((["'])(.*?)\1\)/g)].map((m) => m[2])).toEqual(['electron']);
      // Electron runs a sandboxed preload as
      // (function (require, process, exports, module, ...) { src }).
      const required: string[] = [];
      const fresh = makeElectronStub();
      const wrapper = new Function('require', 'process', 'exports', 'module', src) as (
        ...args: unknown[]
      ) => void;
      const exports = {};
      wrapper(
        (id: string) => {
          required.push(id);
          return fresh;
        },
        {},
        exports,
        { exports },
      );
      expect(required).toEqual(['electron']);
      expect(fresh.contextBridge.exposeInMainWorld).toHaveBeenCalledWith(
        'portcullis',
        expect.objectContaining({ killFlow: expect.any(Function), onFlows: expect.any(Function) }),
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 30_000);
});
