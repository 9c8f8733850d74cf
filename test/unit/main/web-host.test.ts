// The web host (src-main/node/web-host.ts) and the page transport
// (src-renderer/src/transport/ws-api.ts) over a real loopback socket, with the
// in-memory API as the scripted back end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiError, type FlowEvent, type PortcullisApi } from '../../../src-main/common/api.js';
import { MemoryPortcullis } from '../../../src-main/common/memory-api.js';
import { syntheticFlows } from '../../../src-main/common/synthetic.js';
import {
  WS_CLOSE_BAD_MESSAGE,
  WS_CLOSE_BAD_TOKEN,
  WS_CLOSE_HELLO_TIMEOUT,
  WS_FLOWS_PER_CHUNK,
} from '../../../src-main/common/web-protocol.js';
import {
  WEB_CONTENT_SECURITY_POLICY,
  startWebHost,
  type WebHost,
} from '../../../src-main/node/web-host.js';
import { connectWsApi, type PageSocket } from '../../../src-renderer/src/transport/ws-client.js';
import { until } from '../../support/ipc-harness.js';

let dir: string;
let host: WebHost | undefined;
let memory: MemoryPortcullis;
const sockets: WebSocket[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pcl-web-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'app.js'), 'export {};');
  writeFileSync(join(dir, '.secret'), 'no');
  memory = new MemoryPortcullis();
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await host?.close();
  host = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function start(options: { helloTimeoutMs?: number } = {}): Promise<WebHost> {
  host = await startWebHost({ api: memory, rendererDir: dir, ...options });
  return host;
}

function get(
  h: WebHost,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: h.port, path, method, headers, setHost: !('Host' in headers) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A raw page socket; resolves with its close code, or 'open'. */
function open(h: WebHost, origin: string | undefined): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/ws`, origin ? { origin } : {});
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

describe('web host HTTP', () => {
  it('serves the renderer on 127.0.0.1 with the strict CSP, inside its directory only', async () => {
    const h = await start();
    expect(h.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(h.url).toBe(`${h.origin}/#token=${h.token}`);
    expect(h.token.length).toBeGreaterThanOrEqual(43);
    const index = await get(h, '/');
    expect(index.status).toBe(200);
    expect(index.headers['content-security-policy']).toBe(WEB_CONTENT_SECURITY_POLICY);
    expect(index.headers['content-type']).toMatch(/text\/html/);
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect((await get(h, '/app.js')).headers['content-type']).toMatch(/javascript/);
    expect((await get(h, '/.secret')).status).toBe(404);
    expect((await get(h, '/%2e%2e/%2e%2e/etc/passwd')).status).toBe(404);
    expect((await get(h, '/nope.js')).status).toBe(404);
    expect((await get(h, '/', {}, 'POST')).status).toBe(405);
    // DNS rebinding: a foreign Host is refused.
    expect((await get(h, '/', { Host: 'evil.example' })).status).toBe(421);
  });
});

describe('web host WebSocket security', () => {
  it('refuses a foreign Origin and a missing one', async () => {
    const h = await start();
    await expect(open(h, 'http://evil.example')).rejects.toThrow(/HTTP 403/);
    await expect(open(h, `http://localhost:${h.port}`)).rejects.toThrow(/HTTP 403/);
    await expect(open(h, undefined)).rejects.toThrow(/HTTP 403/);
    expect(h.connections()).toBe(0);
  });

  it('closes on a wrong token, a request before hello, garbage and a silent page', async () => {
    const h = await start({ helloTimeoutMs: 200 });
    const wrong = await open(h, h.origin);
    const wrongClosed = closeCode(wrong);
    wrong.send(JSON.stringify({ type: 'hello', token: 'guess' }));
    expect(await wrongClosed).toBe(WS_CLOSE_BAD_TOKEN);

    const early = await open(h, h.origin);
    const earlyClosed = closeCode(early);
    early.send(JSON.stringify({ type: 'invoke', id: 1, channel: 'listRules' }));
    expect(await earlyClosed).toBe(WS_CLOSE_BAD_TOKEN);

    const junk = await open(h, h.origin);
    const junkClosed = closeCode(junk);
    junk.send('{not json');
    expect(await junkClosed).toBe(WS_CLOSE_BAD_MESSAGE);

    const silent = await open(h, h.origin);
    expect(await closeCode(silent)).toBe(WS_CLOSE_HELLO_TIMEOUT);
    expect(memory.answers).toEqual([]);
  });

  it('validates every message and argument after the hello', async () => {
    const h = await start();
    const ws = await open(h, h.origin);
    const got = messages(ws);
    ws.send(JSON.stringify({ type: 'hello', token: h.token }));
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
    const ws = await open(h, h.origin);
    const closed = closeCode(ws);
    ws.send('x'.repeat(5 * 1024 * 1024));
    expect(await closed).toBe(1009);
  });
});

/** A browser sends its page's Origin; the Node client needs to be told. */
function socket(url: string): PageSocket {
  const ws = new WebSocket(url, { origin: host!.origin });
  sockets.push(ws);
  return ws as unknown as PageSocket;
}

describe('web host backpressure', () => {
  it('paces a big snapshot to a reading page', async () => {
    const flows = syntheticFlows(20_000);
    for (const f of flows) memory.flows.set(f.id, f);
    // Far less than the snapshot's size: the snapshot is made as the page reads.
    host = await startWebHost({ api: memory, rendererDir: dir, maxBufferedBytes: 256 * 1024 });
    const h = host;
    const ws = await open(h, h.origin);
    const got = messages(ws);
    ws.send(JSON.stringify({ type: 'hello', token: h.token }));
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
    host = await startWebHost({ api: memory, rendererDir: dir, maxBufferedBytes: 256 * 1024 });
    const h = host;
    const slow = await open(h, h.origin);
    const got = messages(slow);
    slow.send(JSON.stringify({ type: 'hello', token: h.token }));
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
    const ok = await open(h, h.origin);
    const okGot = messages(ok);
    ok.send(JSON.stringify({ type: 'hello', token: h.token }));
    await until(() => okGot.length === 1);
    expect(okGot[0]).toEqual({ type: 'ready' });
  });
});

describe('ws-api transport', () => {
  let api: PortcullisApi;
  beforeEach(async () => {
    const h = await start();
    api = await connectWsApi({ url: `ws://127.0.0.1:${h.port}/ws`, token: h.token, socket });
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

  it('rejects a wrong token', async () => {
    await expect(
      connectWsApi({ url: `ws://127.0.0.1:${host!.port}/ws`, token: 'wrong', socket }),
    ).rejects.toMatchObject({ code: 'helper-unavailable' });
  });
});
