// The web host (src-main/node/web-host.ts) and the page transport
// (src-renderer/src/transport/ws-api.ts) over a real loopback socket, with the
// in-memory API as the scripted back end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiError, type FlowEvent, type PortcullisApi } from '../../../src-main/common/api.js';
import { MemoryPortcullis } from '../../support/memory-api.js';
import { syntheticFlows } from '../../support/synthetic.js';
import {
  WS_CLOSE_BAD_MESSAGE,
  WS_CLOSE_BAD_SESSION,
  WS_CLOSE_HELLO_TIMEOUT,
  WS_CLOSE_TOO_MANY,
  WS_FLOWS_PER_CHUNK,
} from '../../../src-main/common/web-protocol.js';
import { RENDERER_CSP } from '../../../src-main/node/renderer-files.js';
import {
  startWebHost,
  type WebHost,
  type WebHostOptions,
} from '../../../src-main/node/web-host.js';
import {
  connectWsApi,
  exchangeCode,
  type PageSocket,
} from '../../../src-renderer/src/transport/ws-client.js';
import { until } from '../../support/ipc-harness.js';

let dir: string;
let host: WebHost | undefined;
let memory: MemoryPortcullis;
const sockets: WebSocket[] = [];
const raws: Socket[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pcl-web-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'app.js'), 'export {};');
  writeFileSync(join(dir, '.secret'), 'no');
  memory = new MemoryPortcullis();
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const s of raws.splice(0)) s.destroy();
  await host?.close();
  host = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function start(options: Partial<WebHostOptions> = {}): Promise<WebHost> {
  host = await startWebHost({ api: memory, rendererDir: dir, ...options });
  return host;
}

function get(
  h: WebHost,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: h.port, path, method, headers, setHost: !('Host' in headers) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** POSTs a code to /session as the page would. */
function postCode(h: WebHost, code: string, headers: Record<string, string> = {}) {
  return get(
    h,
    '/session',
    { Origin: h.origin, 'Content-Type': 'application/json', ...headers },
    'POST',
    JSON.stringify({ code }),
  );
}

/** The code of a URL from issueUrl. */
function codeOf(url: string): string {
  return new URL(url).hash.replace(/^#code=/u, '');
}

interface Login {
  /** `name=value`, for a Cookie header. */
  cookie: string;
  /** The secret the hello carries. */
  session: string;
}

/** What a page gets from its one-time link. */
async function login(h: WebHost): Promise<Login> {
  const res = await postCode(h, codeOf(h.issueUrl(null)));
  expect(res.status).toBe(200);
  const setCookie = (res.headers['set-cookie'] as string[])[0]!;
  return {
    cookie: setCookie.split(';')[0]!,
    session: (JSON.parse(res.body) as { session: string }).session,
  };
}

/** A raw page socket (with the session cookie if given). */
function open(h: WebHost, origin: string | undefined, auth?: Login): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/ws`, {
    ...(origin ? { origin } : {}),
    ...(auth ? { headers: { Cookie: auth.cookie } } : {}),
  });
  sockets.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

function messages(ws: WebSocket): Record<string, unknown>[] {
  const list: Record<string, unknown>[] = [];
  ws.on('message', (d) => list.push(JSON.parse(String(d)) as Record<string, unknown>));
  return list;
}

/** A raw TCP connection that sends nothing; resolves once connected. */
function idle(h: WebHost): Promise<Socket> {
  const s = connect(h.port, '127.0.0.1');
  raws.push(s);
  s.on('error', () => undefined);
  return new Promise((resolve) => s.once('connect', () => resolve(s)));
}

function ended(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

describe('web host HTTP', () => {
  it('serves the renderer on 127.0.0.1 with the strict CSP, inside its directory only', async () => {
    const h = await start();
    expect(h.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const url = h.issueUrl(null);
    expect(url.startsWith(`${h.origin}/#code=`)).toBe(true);
    expect(codeOf(url).length).toBeGreaterThanOrEqual(43);
    const index = await get(h, '/');
    expect(index.status).toBe(200);
    expect(index.headers['content-security-policy']).toBe(RENDERER_CSP);
    expect(index.headers['content-type']).toMatch(/text\/html/);
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect(index.headers['connection']).toBe('close');
    expect((await get(h, '/app.js')).headers['content-type']).toMatch(/javascript/);
    expect((await get(h, '/.secret')).status).toBe(404);
    expect((await get(h, '/%2e%2e/%2e%2e/etc/passwd')).status).toBe(404);
    expect((await get(h, '/nope.js')).status).toBe(404);
    expect((await get(h, '/', {}, 'POST')).status).toBe(405);
    // DNS rebinding: a foreign Host is refused.
    expect((await get(h, '/', { Host: 'evil.example' })).status).toBe(421);
  });
});

describe('web host one-time codes and sessions', () => {
  it('a code gives one session, once; the cookie is HttpOnly and SameSite=Strict', async () => {
    const h = await start();
    const code = codeOf(h.issueUrl(null));
    // Refused before the code is looked at: it stays usable for its page.
    expect((await postCode(h, code, { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await postCode(h, code, { Origin: `http://localhost:${h.port}` })).status).toBe(403);
    expect((await postCode(h, code, { 'Content-Type': 'text/plain' })).status).toBe(415);
    const big = JSON.stringify({ code, pad: 'x'.repeat(4096) });
    const json = { Origin: h.origin, 'Content-Type': 'application/json' };
    expect((await get(h, '/session', json, 'POST', big)).status).toBe(413);
    const first = await postCode(h, code);
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toBe('no-store');
    const cookie = (first.headers['set-cookie'] as string[])[0]!;
    expect(cookie).toMatch(new RegExp(`^portcullis-session-${h.port}=[\\w-]{43}; `));
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/');
    const { session } = JSON.parse(first.body) as { session: string };
    expect(session).toMatch(/^[\w-]{43}$/);
    expect(cookie).not.toContain(session);
    expect(cookie).not.toContain(code);
    // Dead after its exchange.
    expect((await postCode(h, code)).status).toBe(403);
    expect((await postCode(h, 'guess')).status).toBe(403);
    // The page's check: 204 with its cookie, 401 without.
    expect((await get(h, '/session', { Cookie: cookie.split(';')[0]! })).status).toBe(204);
    expect((await get(h, '/session')).status).toBe(401);
    expect((await get(h, '/session', { Cookie: `portcullis-session-${h.port}=x` })).status).toBe(
      401,
    );
  });

  it('an expired code is dead, and a wrong one does not spend the others', async () => {
    const h = await start();
    const expired = codeOf(h.issueUrl(0));
    const live = codeOf(h.issueUrl(60_000));
    expect((await postCode(h, expired)).status).toBe(403);
    expect((await postCode(h, `${live}x`)).status).toBe(403);
    expect((await postCode(h, live)).status).toBe(200);
  });

  it("the page's exchangeCode: a session for a live code, a clear refusal for a used one", async () => {
    const h = await start();
    const code = codeOf(h.issueUrl(null));
    const fetchFn = (
      path: string,
      init: { method: 'POST'; headers: Record<string, string>; body: string },
    ) => fetch(`${h.origin}${path}`, { ...init, headers: { ...init.headers, Origin: h.origin } });
    expect(await exchangeCode(code, fetchFn)).toMatch(/^[\w-]{43}$/);
    await expect(exchangeCode(code, fetchFn)).rejects.toMatchObject({
      code: 'refused',
      message: expect.stringMatching(
        /refused this link: this link was used already or has expired/,
      ),
    });
  });
});

describe('web host WebSocket security', () => {
  it('refuses a foreign Origin, a missing one, and an upgrade without a live session cookie', async () => {
    const h = await start();
    const auth = await login(h);
    await expect(open(h, 'http://evil.example', auth)).rejects.toThrow(/HTTP 403/);
    await expect(open(h, `http://localhost:${h.port}`, auth)).rejects.toThrow(/HTTP 403/);
    await expect(open(h, undefined, auth)).rejects.toThrow(/HTTP 403/);
    await expect(open(h, h.origin)).rejects.toThrow(/HTTP 401/);
    const forged = { ...auth, cookie: `portcullis-session-${h.port}=${auth.session}` };
    await expect(open(h, h.origin, forged)).rejects.toThrow(/HTTP 401/);
    expect(h.connections()).toBe(0);
  });

  it('closes on a wrong session secret, a request before hello, garbage and a silent page', async () => {
    const h = await start({ handshakeTimeoutMs: 200 });
    const auth = await login(h);
    const other = await login(h);
    const wrong = await open(h, h.origin, auth);
    const wrongClosed = closeCode(wrong);
    // Another session's secret is no good with this cookie.
    wrong.send(JSON.stringify({ type: 'hello', session: other.session }));
    expect(await wrongClosed).toBe(WS_CLOSE_BAD_SESSION);

    const early = await open(h, h.origin, auth);
    const earlyClosed = closeCode(early);
    early.send(JSON.stringify({ type: 'invoke', id: 1, channel: 'listRules' }));
    expect(await earlyClosed).toBe(WS_CLOSE_BAD_SESSION);

    const junk = await open(h, h.origin, auth);
    const junkClosed = closeCode(junk);
    junk.send('{not json');
    expect(await junkClosed).toBe(WS_CLOSE_BAD_MESSAGE);

    const silent = await open(h, h.origin, auth);
    expect(await closeCode(silent)).toBe(WS_CLOSE_HELLO_TIMEOUT);
    expect(memory.answers).toEqual([]);
    expect(h.connections()).toBe(0);
  });

  it('validates every message and argument after the hello', async () => {
    const h = await start();
    const auth = await login(h);
    const ws = await open(h, h.origin, auth);
    const got = messages(ws);
    ws.send(JSON.stringify({ type: 'hello', session: auth.session }));
    await until(() => got.length === 1);
    expect(got[0]).toEqual({ type: 'ready' });
    ws.send(JSON.stringify({ type: 'invoke', id: 1, channel: 'killFlow', arg: 'x' }));
    ws.send(JSON.stringify({ type: 'invoke', id: 2, channel: 'listRules' }));
    ws.send(JSON.stringify({ type: 'invoke', id: 3, channel: 'removeRule', arg: 'r9' }));
    await until(() => got.length === 4);
    expect(got.find((m) => m['id'] === 1)).toMatchObject({ ok: false, error: { code: 'invalid' } });
    expect(got.find((m) => m['id'] === 2)).toEqual({ type: 'result', id: 2, ok: true, result: [] });
    expect(got.find((m) => m['id'] === 3)).toMatchObject({
      ok: false,
      error: { code: 'not-found' },
    });
    const closed = closeCode(ws);
    ws.send(JSON.stringify({ type: 'invoke', id: 4, channel: 'constructor' }));
    expect(await closed).toBe(WS_CLOSE_BAD_MESSAGE);
  });

  it('refuses a message larger than the inbound bound', async () => {
    const h = await start();
    const ws = await open(h, h.origin, await login(h));
    const closed = closeCode(ws);
    ws.send('x'.repeat(5 * 1024 * 1024));
    expect(await closed).toBe(1009);
  });
});

describe('web host handshakes and owners', () => {
  it('idle connections and handshakes never keep a page out; the deadline closes them', async () => {
    const h = await start({ handshakeTimeoutMs: 1500, maxHandshakesPerUid: 8, maxConnections: 2 });
    const auth = await login(h);
    // 24 connections that never send a byte, 24 upgrades without a session
    // cookie, 24 WebSockets with one that never say hello.
    const bare = await Promise.all(Array.from({ length: 24 }, () => idle(h)));
    for (let i = 0; i < 24; i++) await expect(open(h, h.origin)).rejects.toThrow(/HTTP 401/);
    // Each new handshake past 8 closes the uid's oldest: some of these never
    // finish their upgrade (1006).
    const silentCodes = Array.from({ length: 24 }, () => {
      const ws = new WebSocket(`ws://127.0.0.1:${h.port}/ws`, {
        origin: h.origin,
        headers: { Cookie: auth.cookie },
      });
      sockets.push(ws);
      ws.on('error', () => undefined);
      return closeCode(ws);
    });
    // Eight of each stage at most: no request yet, no hello yet.
    await until(() => h.handshakes() >= 8, 5000, 'eight handshakes');
    expect(h.handshakes()).toBeLessThanOrEqual(16);
    // The page, and a second one: both get in.
    const pages = [];
    for (let i = 0; i < 2; i++) {
      pages.push(
        await connectWsApi({
          url: `ws://127.0.0.1:${h.port}/ws`,
          session: auth.session,
          socket: (url) => socket(url, auth),
        }),
      );
    }
    expect(h.connections()).toBe(2);
    await expect(pages[1]!.listRules()).resolves.toEqual([]);
    // The idle ones are closed: evicted to make room, or at the deadline.
    await Promise.all(bare.map(ended));
    for (const code of await Promise.all(silentCodes)) {
      expect([WS_CLOSE_TOO_MANY, WS_CLOSE_HELLO_TIMEOUT, 1006]).toContain(code);
    }
    expect(h.handshakes()).toBe(0);
    expect(h.connections()).toBe(2);
    // A third page is one too many: refused, not queued.
    await expect(open(h, h.origin, auth)).rejects.toThrow(/HTTP 503/);
  }, 20_000);

  it('refuses a connection whose owner is not served, before reading from it', async () => {
    const uid = process.getuid!();
    const h = await start({ allowedUids: [uid + 1] });
    const s = await idle(h);
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    let reply = '';
    s.on('data', (d: Buffer) => (reply += d.toString()));
    await ended(s);
    expect(reply).toBe('');
    await expect(open(h, h.origin)).rejects.toThrow();
    expect(h.refusedByUid().get(uid)).toBe(2);
    expect(h.handshakes()).toBe(0);
  });

  it('refuses every connection when the socket table cannot be read', async () => {
    const logs: string[] = [];
    const h = await start({ procNet: join(dir, 'no-such-dir'), log: (l) => logs.push(l) });
    await ended(await idle(h));
    expect(h.refusedByUid().get(-1)).toBe(1);
    expect(logs.join('\n')).toMatch(/warning: refused a connection: its owner cannot be checked/);
  });
});

/** A browser sends its page's Origin and cookie; the Node client needs to be told. */
function socket(url: string, auth: Login, origin = host?.origin): PageSocket {
  const ws = new WebSocket(url, { origin, headers: { Cookie: auth.cookie } });
  sockets.push(ws);
  // A browser reports a refused upgrade as a close (code 1006), not an error.
  ws.on('error', () => undefined);
  return ws as unknown as PageSocket;
}

describe('web host backpressure', () => {
  it('paces a big snapshot to a reading page', async () => {
    const flows = syntheticFlows(20_000);
    for (const f of flows) memory.flows.set(f.id, f);
    // Far less than the snapshot's size: the snapshot is made as the page reads.
    const h = await start({ maxBufferedBytes: 256 * 1024 });
    const auth = await login(h);
    const ws = await open(h, h.origin, auth);
    const got = messages(ws);
    ws.send(JSON.stringify({ type: 'hello', session: auth.session }));
    await until(() => got.length === 1);
    ws.send(JSON.stringify({ type: 'subscribe', channel: 'flows' }));
    // A delta while the snapshot is on its way comes after it.
    await until(() => got.length > 1, 10_000, 'the first chunk');
    memory.upsertFlows([], [flows[0]!.id]);
    await until(() => got.some((m) => m['type'] === 'push'), 10_000, 'the delta');
    const chunks = got.filter((m) => m['type'] === 'flows-chunk');
    expect(chunks).toHaveLength(20);
    expect(chunks.at(-1)!['last']).toBe(true);
    expect(got.findIndex((m) => m['type'] === 'push')).toBe(got.length - 1);
    expect(h.connections()).toBe(1);
  });

  it('cuts off a page that does not read, and keeps serving the others', async () => {
    const flows = syntheticFlows(2000);
    for (const f of flows) memory.flows.set(f.id, f);
    const h = await start({ maxBufferedBytes: 256 * 1024 });
    const auth = await login(h);
    const slow = await open(h, h.origin, auth);
    const got = messages(slow);
    slow.send(JSON.stringify({ type: 'hello', session: auth.session }));
    await until(() => got.length === 1);
    slow.send(JSON.stringify({ type: 'subscribe', channel: 'flows' }));
    await until(() => got.length > 1);
    // Stop reading; the deltas pile up in the host's queue past the bound.
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();
    for (let round = 0; round < 200 && h.connections() > 0; round++) {
      memory.upsertFlows(flows.slice(0, 200));
      await new Promise((r) => setTimeout(r, 1));
    }
    await until(() => h.connections() === 0, 10_000, 'the cut-off');
    const ok = await open(h, h.origin, auth);
    const okGot = messages(ok);
    ok.send(JSON.stringify({ type: 'hello', session: auth.session }));
    await until(() => okGot.length === 1);
    expect(okGot[0]).toEqual({ type: 'ready' });
  });
});

describe('ws-api transport', () => {
  let api: PortcullisApi;
  let auth: Login;
  beforeEach(async () => {
    const h = await start();
    auth = await login(h);
    api = await connectWsApi({
      url: `ws://127.0.0.1:${h.port}/ws`,
      session: auth.session,
      socket: (url) => socket(url, auth),
    });
  });

  it('carries invokes, errors and pushes (a big snapshot in chunks)', async () => {
    for (const f of syntheticFlows(2500)) memory.flows.set(f.id, f);
    const rule = await api.addRule({
      action: 'allow',
      match: { host: 'a.example' },
      duration: { kind: 'forever' },
    });
    expect((await api.listRules()).map((r) => r.id)).toEqual([rule.id]);
    const e = await api.removeRule('nope').then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe('not-found');
    await expect(api.killFlow(-1)).rejects.toMatchObject({ code: 'invalid' });

    const events: FlowEvent[] = [];
    api.onFlows((ev) => events.push(ev));
    await until(() => events.length === 1);
    expect(events[0]).toMatchObject({ kind: 'snapshot' });
    expect((events[0] as { flows: unknown[] }).flows).toHaveLength(2500);
    expect(2500 / WS_FLOWS_PER_CHUNK).toBeGreaterThan(2);
    const first = [...memory.flows.keys()][0]!;
    await api.killFlow(first);
    await until(() => events.length === 2);
    expect(events[1]).toEqual({ kind: 'delta', upsert: [], remove: [first] });

    // A second listener gets its own snapshot.
    const second: FlowEvent[] = [];
    api.onFlows((ev) => second.push(ev));
    await until(() => second.length === 1);
    expect((second[0] as { flows: unknown[] }).flows).toHaveLength(2499);

    const status = await new Promise((resolve) => api.onHelperStatus(resolve));
    expect(status).toMatchObject({ connection: 'connected' });
  });

  it('rejects a wrong session secret', async () => {
    await expect(
      connectWsApi({
        url: `ws://127.0.0.1:${host!.port}/ws`,
        session: 'wrong',
        socket: (url) => socket(url, auth),
      }),
    ).rejects.toMatchObject({ code: 'helper-unavailable', message: /refused this page/ });
  });

  it('a refused upgrade is final when the session is gone, and retried while it lives', async () => {
    const stranger = { cookie: `portcullis-session-${host!.port}=gone`, session: 'gone' };
    const asked: boolean[] = [];
    await expect(
      connectWsApi({
        url: `ws://127.0.0.1:${host!.port}/ws`,
        session: stranger.session,
        socket: (url) => socket(url, stranger),
        sessionAlive: async () => {
          const res = await get(host!, '/session', { Cookie: stranger.cookie });
          asked.push(res.status !== 401);
          return res.status !== 401;
        },
      }),
    ).rejects.toMatchObject({ message: /refused this page/ });
    expect(asked).toEqual([false]);
  });
});
