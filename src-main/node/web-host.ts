/**
 * The web host (`portcullis ui --web`): serves dist/renderer to a normal
 * browser and carries the PortcullisApi channel map over a loopback
 * WebSocket (src-main/common/web-protocol.ts). Electron-free; it is how the
 * UI is developed and tested where the Electron binary is unavailable.
 *
 * Security (DESIGN.md section 7, the same stance as Electron's app://):
 * - bound to 127.0.0.1 only; the Host header must name that address and port
 *   (no DNS rebinding);
 * - every HTTP response carries the strict CSP; files are resolved strictly
 *   inside the renderer directory, dot-files refused, GET/HEAD only;
 * - the WebSocket upgrade is refused unless its Origin is the host's own;
 * - a random per-launch token, given to the page in the URL fragment (never
 *   sent over HTTP, never logged), must be the first message, compared in
 *   constant time; a wrong one closes the socket;
 * - every message is validated (envelope and per-channel argument), bounded
 *   in size; each connection has a bounded number of calls in flight and a
 *   bounded send buffer: a page that does not read is cut off (it reconnects
 *   and gets a fresh snapshot), like the helper's slow-consumer cut-off.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  subscribeMethod,
  type PortcullisApi,
  type PushChannel,
  type PushChannels,
  type Unsubscribe,
} from '../common/api.js';
import {
  WS_CLOSE_BAD_MESSAGE,
  WS_CLOSE_BAD_TOKEN,
  WS_CLOSE_HELLO_TIMEOUT,
  WS_FLOWS_PER_CHUNK,
  WS_MAX_INBOUND_BYTES,
  WS_PATH,
  type WsServerMessage,
} from '../common/web-protocol.js';
import { toApiError } from './bridge.js';
import { ClientMessage, invokeArgs } from './web-schemas.js';

/** The CSP of every response (as Electron's app://, with the page's own WebSocket). */
export const WEB_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
  "frame-ancestors 'none'",
].join('; ');

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
};

export interface WebHostOptions {
  api: PortcullisApi;
  /** The built renderer (dist/renderer by default). */
  rendererDir?: string;
  /** 0 (default): any free port. */
  port?: number;
  /** The per-launch token; a fresh random one by default. */
  token?: string;
  /** No hello by then: closed. Default 5000 ms. */
  helloTimeoutMs?: number;
  /** A connection's unsent messages beyond this: cut off. Default 32 MiB. */
  maxBufferedBytes?: number;
  /** The pump stops handing data to a socket holding this much. Default 1 MiB. */
  highWaterBytes?: number;
  /** Invokes one connection may have in flight; more get `busy`. Default 32. */
  maxInFlight?: number;
  /** Connections at once. Default 8. */
  maxConnections?: number;
  /** Diagnostics (never given the token). */
  log?: (message: string) => void;
}

export interface WebHost {
  /** http://127.0.0.1:PORT/ (without the token). */
  readonly origin: string;
  /** The URL to open: origin + `#token=...`. */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** Open WebSocket connections (authenticated or not). */
  connections(): number;
  close(): Promise<void>;
}

/** dist/renderer, from the source tree or the compiled one. */
export function defaultRendererDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'renderer');
    const parent = dirname(dir);
    if (parent === dir) return join(process.cwd(), 'dist', 'renderer');
    dir = parent;
  }
}

/** The file for a request path, or null (escape, dot-file, NUL). */
export function resolveRendererFile(pathname: string, root: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  if (path === '/' || path === '') path = '/index.html';
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.some((s) => s.startsWith('.'))) return null;
  const file = normalize(join(root, ...segments));
  const base = normalize(root.endsWith(sep) ? root : root + sep);
  return file.startsWith(base) ? file : null;
}

function tokenMatches(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, b);
}

function securityHeaders(type: string): Record<string, string> {
  return {
    'Content-Type': type,
    'Content-Security-Policy': WEB_CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  };
}

export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const root = options.rendererDir ?? defaultRendererDir();
  const token = options.token ?? randomBytes(32).toString('base64url');
  const helloTimeoutMs = options.helloTimeoutMs ?? 5000;
  const maxBuffered = options.maxBufferedBytes ?? 32 * 1024 * 1024;
  const highWater = options.highWaterBytes ?? 1024 * 1024;
  const maxInFlight = options.maxInFlight ?? 32;
  const maxConnections = options.maxConnections ?? 8;
  const log = options.log ?? (() => undefined);
  const api = options.api;
  let port = 0;
  const host = (): string => `127.0.0.1:${port}`;
  const origin = (): string => `http://${host()}`;

  const http = createServer((req, res) => void serve(req, res));
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_INBOUND_BYTES });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: string): void => {
      res.writeHead(status, securityHeaders('text/plain; charset=utf-8'));
      res.end(body);
    };
    if (req.headers.host !== host()) return send(421, 'wrong host');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    const pathname = new URL(req.url ?? '/', origin()).pathname;
    const file = resolveRendererFile(pathname, root);
    if (file === null) return send(404, 'not found');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return send(404, 'not found');
    }
    res.writeHead(200, {
      ...securityHeaders(MIME[extname(file).toLowerCase()] ?? 'application/octet-stream'),
      'Content-Length': String(body.length),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, why: string): void => {
      log(`web host: WebSocket refused: ${why}`);
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const pathname = new URL(req.url ?? '/', origin()).pathname;
    if (pathname !== WS_PATH) return refuse(404, 'Not Found');
    if (req.headers.host !== host()) return refuse(421, 'Misdirected Request');
    if (req.headers.origin !== origin()) return refuse(403, 'Forbidden');
    if (wss.clients.size >= maxConnections) return refuse(503, 'Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws));
  });

  function accept(ws: WebSocket): void {
    let ready = false;
    let inFlight = 0;
    const subs = new Map<PushChannel, Unsubscribe>();
    const helloTimer = setTimeout(
      () => ws.close(WS_CLOSE_HELLO_TIMEOUT, 'no hello'),
      helloTimeoutMs,
    );

    // The outbound queue: messages (counted against maxBuffered) and lazy
    // flows snapshots (serialised a chunk at a time as the socket drains), in
    // order, so a delta never overtakes the snapshot it follows.
    type Item = { text: string } | { next: () => string | null };
    const queue: Item[] = [];
    let queuedBytes = 0;
    let pumpTimer: NodeJS.Timeout | null = null;

    const cutOff = (): void => {
      // A close frame would wait behind the data it does not read: cut it.
      // The page reconnects and gets a fresh snapshot.
      log('web host: a page is not reading its messages; cutting it off');
      queue.length = 0;
      queuedBytes = 0;
      ws.terminate();
    };

    const pump = (): void => {
      while (queue.length > 0 && ws.readyState === ws.OPEN && ws.bufferedAmount < highWater) {
        const head = queue[0]!;
        if ('text' in head) {
          queue.shift();
          queuedBytes -= head.text.length;
          ws.send(head.text);
        } else {
          const text = head.next();
          if (text === null) queue.shift();
          else ws.send(text);
        }
      }
      if (queue.length > 0 && ws.readyState === ws.OPEN && pumpTimer === null) {
        pumpTimer = setTimeout(() => {
          pumpTimer = null;
          pump();
        }, 5);
      }
    };

    const enqueue = (item: Item): void => {
      if (ws.readyState !== ws.OPEN) return;
      if ('text' in item) {
        queuedBytes += item.text.length;
        if (queuedBytes > maxBuffered) return cutOff();
      }
      queue.push(item);
      pump();
    };

    const send = (m: WsServerMessage): void => enqueue({ text: JSON.stringify(m) });

    const push = <K extends PushChannel>(channel: K, payload: PushChannels[K]): void => {
      if (channel === 'flows') {
        const e = payload as PushChannels['flows'];
        if (e.kind === 'snapshot') {
          // A whole table in one message could be tens of MiB: chunks, made
          // as the page reads them.
          const flows = e.flows;
          let i = 0;
          let done = false;
          enqueue({
            next: () => {
              if (done) return null;
              const chunk = flows.slice(i, i + WS_FLOWS_PER_CHUNK);
              i += WS_FLOWS_PER_CHUNK;
              done = i >= flows.length;
              return JSON.stringify({ type: 'flows-chunk', flows: chunk, last: done });
            },
          });
          return;
        }
      }
      send({ type: 'push', channel, payload });
    };

    const subscribe = (channel: PushChannel): void => {
      if (subs.has(channel)) return;
      const on = api[subscribeMethod(channel)] as (
        l: (p: PushChannels[typeof channel]) => void,
      ) => Unsubscribe;
      subs.set(
        channel,
        on.call(api, (p) => push(channel, p)),
      );
    };

    const invoke = async (id: number, channel: keyof typeof invokeArgs, arg: unknown) => {
      const parsed = v.safeParse(invokeArgs[channel], arg);
      if (!parsed.success) {
        const message = `${channel}: ${parsed.issues[0]?.message ?? 'invalid argument'}`;
        send({
          type: 'result',
          id,
          ok: false,
          error: { name: 'ApiError', message, code: 'invalid' },
        });
        return;
      }
      if (inFlight >= maxInFlight) {
        const message = `more than ${maxInFlight} calls in flight`;
        send({ type: 'result', id, ok: false, error: { name: 'ApiError', message, code: 'busy' } });
        return;
      }
      inFlight++;
      try {
        const fn = api[channel] as (a: unknown) => Promise<unknown>;
        const result = await fn.call(api, parsed.output);
        send({ type: 'result', id, ok: true, result: result ?? null });
      } catch (error) {
        const e = toApiError(error);
        send({
          type: 'result',
          id,
          ok: false,
          error: { name: e.name, message: e.message, code: e.code },
        });
      } finally {
        inFlight--;
      }
    };

    ws.on('message', (data: RawData, isBinary: boolean) => {
      let raw: unknown;
      try {
        if (isBinary) throw new Error('binary');
        raw = JSON.parse(rawText(data));
      } catch {
        ws.close(WS_CLOSE_BAD_MESSAGE, 'not JSON text');
        return;
      }
      const parsed = v.safeParse(ClientMessage, raw);
      if (!parsed.success) {
        ws.close(WS_CLOSE_BAD_MESSAGE, 'invalid message');
        return;
      }
      const m = parsed.output;
      if (!ready) {
        if (m.type !== 'hello' || !tokenMatches(token, m.token)) {
          log('web host: a page presented a wrong token');
          ws.close(WS_CLOSE_BAD_TOKEN, 'bad token');
          return;
        }
        ready = true;
        clearTimeout(helloTimer);
        send({ type: 'ready' });
        return;
      }
      switch (m.type) {
        case 'hello':
          return;
        case 'invoke':
          void invoke(m.id, m.channel, m.arg);
          return;
        case 'subscribe':
          subscribe(m.channel as PushChannel);
          return;
        case 'unsubscribe': {
          const channel = m.channel as PushChannel;
          subs.get(channel)?.();
          subs.delete(channel);
          return;
        }
      }
    });
    ws.on('close', () => {
      clearTimeout(helloTimer);
      if (pumpTimer) clearTimeout(pumpTimer);
      queue.length = 0;
      for (const off of subs.values()) off();
      subs.clear();
    });
    ws.on('error', () => undefined);
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  port = (http.address() as AddressInfo).port;
  log(`web host: serving ${root} on ${origin()}/`);

  return {
    origin: origin(),
    url: `${origin()}/#token=${token}`,
    port,
    token,
    connections: () => wss.clients.size,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
