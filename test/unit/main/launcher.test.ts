import { describe, expect, it, vi } from 'vitest';
import { Backoff } from '../../../src-main/common/backoff.js';
import { describeLink, linkStatus } from '../../../src-main/common/helper-link.js';
import type { HelperLinkState } from '../../../src-main/common/helper-link.js';
import {
  HelperLauncher,
  type ElevatedHelper,
  type HelperConnection,
  type LauncherDeps,
  type Timers,
} from '../../../src-main/node/launcher.js';

/** Manual clock: timers fire only when the test says so. */
class FakeTimers implements Timers {
  pending: { fn: () => void; ms: number; id: number }[] = [];
  private id = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    const t = { fn, ms, id: ++this.id };
    this.pending.push(t);
    return t.id;
  }
  clearTimeout(h: unknown): void {
    this.pending = this.pending.filter((t) => t.id !== h);
  }
  async fire(): Promise<number> {
    const t = this.pending.shift();
    if (!t) throw new Error('no timer pending');
    t.fn();
    await flush();
    return t.ms;
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

class FakeConn implements HelperConnection {
  closed = false;
  private listener: ((e: Error | null) => void) | null = null;
  constructor(readonly token: string) {}
  async close(): Promise<void> {
    this.closed = true;
  }
  onClose(l: (e: Error | null) => void): void {
    this.listener = l;
  }
  drop(e: Error | null): void {
    this.listener?.(e);
  }
}

function setup(over: Partial<LauncherDeps> = {}) {
  const timers = new FakeTimers();
  const conns: FakeConn[] = [];
  let exit: (reason: string) => void = () => undefined;
  const released = vi.fn();
  const deps: LauncherDeps = {
    socketPath: '/run/portcullis/helper.sock',
    serviceTokenPath: '/run/portcullis/token',
    socketExists: vi.fn(() => true),
    readToken: vi.fn(() => 'service-token'),
    connect: vi.fn(async (_p: string, token: string) => {
      const c = new FakeConn(token);
      conns.push(c);
      return c;
    }),
    elevate: vi.fn(async (): Promise<ElevatedHelper> => ({
      method: 'pkexec',
      actionId: 'org.portcullis.helper',
      exited: new Promise<string>((r) => (exit = r)),
      release: released,
    })),
    generateToken: () => 'launch-token',
    backoff: new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 }),
    timers,
    ...over,
  };
  const launcher = new HelperLauncher(deps);
  const states: HelperLinkState[] = [];
  launcher.onState((s) => states.push(s));
  return { launcher, deps, timers, conns, states, exit: (r: string) => exit(r), released };
}

describe('HelperLauncher: the systemd service', () => {
  it('connects to the service socket with the service token, never elevating', async () => {
    const t = setup();
    t.launcher.start();
    await flush();
    expect(t.states.map((s) => s.kind)).toEqual(['connecting', 'connected']);
    expect(t.launcher.state).toEqual({ kind: 'connected', via: 'service' });
    expect(t.conns[0]?.token).toBe('service-token');
    expect(t.deps.elevate).not.toHaveBeenCalled();
  });

  it('reconnects with growing backoff after the connection drops, and resets once connected', async () => {
    let fail = 0;
    const t = setup();
    const realConnect = t.deps.connect;
    t.deps.connect = vi.fn(async (p: string, tok: string) => {
      if (fail-- > 0) throw new Error('ECONNREFUSED');
      return realConnect(p, tok);
    });
    t.launcher.start();
    await flush();
    fail = 2;
    t.conns[0]?.drop(new Error('reset'));
    expect(t.launcher.state).toMatchObject({ kind: 'waiting', via: 'service', reason: 'reset' });
    expect(await t.timers.fire()).toBe(50);
    expect(t.launcher.state).toMatchObject({ kind: 'waiting', reason: 'ECONNREFUSED' });
    expect(await t.timers.fire()).toBe(100);
    expect(await t.timers.fire()).toBe(200);
    expect(t.launcher.state).toEqual({ kind: 'connected', via: 'service' });
    t.conns[1]?.drop(null);
    expect(t.launcher.state).toMatchObject({
      kind: 'waiting',
      retryInMs: 50,
      reason: 'the helper closed the connection',
    });
    expect(describeLink(t.launcher.state)).toBe(
      'Helper: the helper closed the connection; retrying in 1 s',
    );
  });

  it('fails (no retry loop, no password) when the token cannot be read', async () => {
    const t = setup({
      readToken: () => {
        throw new Error('EACCES: permission denied');
      },
    });
    t.launcher.start();
    await flush();
    expect(t.launcher.state).toMatchObject({ kind: 'failed' });
    expect(linkStatus(t.launcher.state)).toMatchObject({ connection: 'disconnected' });
    expect(t.timers.pending).toHaveLength(0);
    expect(t.deps.elevate).not.toHaveBeenCalled();
  });
});

describe('HelperLauncher: elevation', () => {
  it('elevates when there is no socket, polls quietly while the dialog is up, then connects with its own token', async () => {
    let exists = false;
    const t = setup({ socketExists: () => exists });
    t.launcher.start();
    await flush();
    expect(t.launcher.state).toEqual({
      kind: 'elevating',
      method: 'pkexec',
      actionId: 'org.portcullis.helper',
    });
    expect(t.deps.elevate).toHaveBeenCalledWith('launch-token');
    await t.timers.fire();
    await t.timers.fire();
    expect(t.launcher.state.kind).toBe('elevating');
    exists = true;
    await t.timers.fire();
    expect(t.launcher.state).toEqual({ kind: 'connected', via: 'elevated' });
    expect(t.conns[0]?.token).toBe('launch-token');
    expect(linkStatus(t.launcher.state)).toEqual({ connection: 'connected', error: null });
  });

  it('a dismissed dialog ends in failed; retry() elevates again', async () => {
    const t = setup({ socketExists: () => false });
    t.launcher.start();
    await flush();
    t.exit('authentication was dismissed');
    await flush();
    expect(t.launcher.state).toEqual({ kind: 'failed', reason: 'authentication was dismissed' });
    expect(t.timers.pending).toHaveLength(0);
    t.launcher.retry();
    await flush();
    expect(t.deps.elevate).toHaveBeenCalledTimes(2);
    expect(t.launcher.state.kind).toBe('elevating');
  });

  it('reconnects to a live elevated helper, and fails when it exits', async () => {
    const t = setup();
    t.deps.socketExists = vi.fn(() => false);
    t.launcher.start();
    await flush();
    t.deps.socketExists = () => true;
    await t.timers.fire();
    expect(t.launcher.state).toEqual({ kind: 'connected', via: 'elevated' });
    t.conns[0]?.drop(new Error('EPIPE'));
    expect(t.launcher.state).toMatchObject({ kind: 'waiting', via: 'elevated' });
    await t.timers.fire();
    expect(t.launcher.state).toEqual({ kind: 'connected', via: 'elevated' });
    expect(t.deps.elevate).toHaveBeenCalledTimes(1);
    t.exit('the helper exited with status 1');
    await flush();
    expect(t.launcher.state).toEqual({ kind: 'failed', reason: 'the helper exited with status 1' });
    expect(t.conns[1]?.closed).toBe(true);
    expect(t.launcher.connection).toBeNull();
  });

  it('reports an elevation that cannot start', async () => {
    const t = setup({
      socketExists: () => false,
      elevate: async () => {
        throw new Error('neither pkexec nor sudo-prompt is available');
      },
    });
    t.launcher.start();
    await flush();
    expect(t.launcher.state).toEqual({
      kind: 'failed',
      reason: 'neither pkexec nor sudo-prompt is available',
    });
  });

  it('stop() closes the connection, releases the helper and ignores late callbacks', async () => {
    const t = setup({ socketExists: () => false });
    t.launcher.start();
    await flush();
    await t.launcher.stop();
    expect(t.released).toHaveBeenCalled();
    expect(t.launcher.state).toEqual({ kind: 'idle' });
    t.exit('late');
    await flush();
    expect(t.launcher.state).toEqual({ kind: 'idle' });
  });
});

describe('describeLink', () => {
  it('has a line for every state', () => {
    const all: HelperLinkState[] = [
      { kind: 'idle' },
      { kind: 'connecting', via: 'service', attempt: 1 },
      { kind: 'connecting', via: 'elevated', attempt: 1 },
      { kind: 'elevating', method: 'pkexec', actionId: 'x' },
      { kind: 'connected', via: 'service' },
      { kind: 'connected', via: 'elevated' },
      { kind: 'waiting', via: 'service', retryInMs: 1500, reason: 'r', attempt: 2 },
      { kind: 'failed', reason: 'nope' },
    ];
    expect(all.map(describeLink)).toEqual([
      'Helper: not started',
      'Helper: connecting to the system service…',
      'Helper: connecting…',
      'Helper: waiting for authorization…',
      'Helper: connected (system service)',
      'Helper: connected',
      'Helper: r; retrying in 2 s',
      'Helper: nope',
    ]);
  });
});
