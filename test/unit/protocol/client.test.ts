// The client against a scripted fake helper (a bare Unix socket server), for
// what the real server never does: invalid results and events, silence,
// protocol breaches.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IpcClient } from '../../../helper/protocol/client.js';
import { IpcError } from '../../../helper/protocol/errors.js';
import { FrameDecoder, encodeFrame, parseFramePayload } from '../../../helper/protocol/framing.js';
import { PROTOCOL_VERSION } from '../../../helper/protocol/messages.js';
import { makeStats } from '../../support/fake-helper-service.js';

type Frame = Record<string, unknown>;

let dir: string | undefined;
let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.length = 0;
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A fake helper: `onFrame` answers each client frame through `send`. */
async function fakeHelper(
  onFrame: (frame: Frame, send: (x: unknown) => void, socket: Socket) => void,
): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'pcl-client-'));
  const path = join(dir, 'fake.sock');
  server = createServer((socket) => {
    sockets.push(socket);
    const d = new FrameDecoder();
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      for (const item of d.push(chunk)) {
        if (item.kind === 'frame') {
          onFrame(
            parseFramePayload(item.payload) as Frame,
            (x) => socket.write(encodeFrame(x)),
            socket,
          );
        }
      }
    });
  });
  await new Promise<void>((r) => server!.listen(path, r));
  return path;
}

const HELLO = { type: 'hello', protocol: PROTOCOL_VERSION, build: 'fake', pid: 1 };

async function failure(p: Promise<unknown>): Promise<IpcError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(IpcError);
  return e as IpcError;
}

describe('IpcClient', () => {
  it('sends its Hello with the token and protocol, and then typed requests', async () => {
    const seen: Frame[] = [];
    const path = await fakeHelper((f, send) => {
      seen.push(f);
      if (f['type'] === 'hello') send(HELLO);
      else send({ type: 'response', id: f['id'], ok: true, result: makeStats(5) });
    });
    const c = await IpcClient.connect({ path, token: 'tok', build: 'b1' });
    const stats = await c.call('stats.get');
    expect(stats.time).toBe(5);
    expect(seen[0]).toEqual({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      build: 'b1',
      token: 'tok',
    });
    expect(seen[1]).toEqual({ type: 'request', id: 1, method: 'stats.get', params: {} });
    await c.close();
  });

  it('rejects a result that breaks the method schema, and survives', async () => {
    let n = 0;
    const path = await fakeHelper((f, send) => {
      if (f['type'] === 'hello') return send(HELLO);
      n++;
      send({
        type: 'response',
        id: f['id'],
        ok: true,
        result: n === 1 ? { allowed: 'many' } : makeStats(1),
      });
    });
    const c = await IpcClient.connect({ path, token: 't' });
    expect((await failure(c.call('stats.get'))).code).toBe('bad-response');
    expect((await c.call('stats.get')).allowed).toBe(1);
    await c.close();
  });

  it('drops an invalid event with an error report and delivers valid ones', async () => {
    const path = await fakeHelper((f, send) => {
      if (f['type'] === 'hello') return send(HELLO);
      send({ type: 'event', topic: 'stats', data: { nope: true } });
      send({ type: 'event', topic: 'future-topic', data: 1 });
      send({ type: 'event', topic: 'stats', data: makeStats(9) });
      send({ type: 'response', id: f['id'], ok: true, result: { topics: ['stats'] } });
    });
    const c = await IpcClient.connect({ path, token: 't' });
    const stats: number[] = [];
    const errors: IpcError[] = [];
    c.on('stats', (s) => void stats.push(s.time));
    c.onError((e) => void errors.push(e));
    await c.call('subscribe', { topics: ['stats'] });
    expect(stats).toEqual([9]);
    expect(errors.map((e) => e.code)).toEqual(['bad-response']);
    await c.close();
  });

  it('times out a call, and a late answer is ignored', async () => {
    const pending: (() => void)[] = [];
    const path = await fakeHelper((f, send) => {
      if (f['type'] === 'hello') return send(HELLO);
      pending.push(() => send({ type: 'response', id: f['id'], ok: true, result: makeStats(1) }));
    });
    const c = await IpcClient.connect({ path, token: 't' });
    const e = await failure(c.call('stats.get', undefined, { timeoutMs: 50 }));
    expect(e.code).toBe('timeout');
    pending[0]!();
    pending.length = 0;
    const second = c.call('stats.get');
    await new Promise((r) => setTimeout(r, 20));
    pending[0]!();
    expect((await second).time).toBe(1);
    await c.close();
  });

  it('rejects pending calls with the fatal error that closed the connection', async () => {
    const path = await fakeHelper((f, send, socket) => {
      if (f['type'] === 'hello') return send(HELLO);
      send({ type: 'error', error: { code: 'shutting-down', message: 'bye' }, fatal: true });
      socket.end();
    });
    const c = await IpcClient.connect({ path, token: 't' });
    const closed = new Promise<IpcError | null>((r) => c.onClose(r));
    expect((await failure(c.call('rules.list'))).code).toBe('shutting-down');
    expect((await closed)?.code).toBe('shutting-down');
    expect(c.closed).toBe(true);
    expect((await failure(c.call('stats.get'))).code).toBe('shutting-down');
  });

  it('refuses a helper that breaks the protocol or never says Hello', async () => {
    const garbage = await fakeHelper((_f, _send, socket) =>
      socket.write(Buffer.from([0, 0, 0, 2, 0x7b, 0x7b])),
    );
    expect((await failure(IpcClient.connect({ path: garbage, token: 't' }))).code).toBe(
      'bad-response',
    );
    await new Promise<void>((r) => server!.close(() => r()));
    rmSync(dir!, { recursive: true, force: true });
    const silent = await fakeHelper(() => undefined);
    const e = await failure(IpcClient.connect({ path: silent, token: 't', connectTimeoutMs: 100 }));
    expect(e.code).toBe('timeout');
  });

  it('reports a missing socket as closed with the errno', async () => {
    const e = await failure(
      IpcClient.connect({ path: join(tmpdir(), 'pcl-nope.sock'), token: 't' }),
    );
    expect(e.code).toBe('closed');
    expect(e.message).toMatch(/ENOENT/);
  });
});
