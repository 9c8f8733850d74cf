/**
 * The web host (`portcullis ui --web`): serves dist/renderer to a normal
 * browser and carries the PortcullisApi channel map over a loopback
 * WebSocket (src-main/common/web-protocol.ts). Electron-free; it is how the
 * UI is developed and tested where the Electron binary is unavailable.
 *
 * Security (DESIGN.md section 7, the same stance as Electron's app://):
 * - bound to 127.0.0.1 only; the Host header must name that address and port
 *   (no DNS rebinding);
 * - another local user's connections are refused before a byte is read: the
 *   owner of the client socket comes from the kernel's socket table
 *   (web-peer.ts), and only this process's uid and root are served;
 * - nothing that stays usable leaves this process through argv, the
 *   environment or a file: a URL carries a one-time code (`#code=`, in the
 *   fragment, which a browser never sends to a server) that dies on its first
 *   exchange or when it expires. The exchange (a same-origin POST) gives the
 *   page a session: an HttpOnly, SameSite=Strict cookie (it survives reloads;
 *   script cannot read it) and a secret the page keeps in sessionStorage
 *   (per origin, port included: a cookie is sent to every port of
 *   127.0.0.1, so a cookie alone is not enough). Secrets are stored hashed
 *   and compared in constant time, never logged;
 * - every HTTP response carries the strict CSP; files are resolved strictly
 *   inside the renderer directory, dot-files refused, GET/HEAD only (and the
 *   session exchange); one request per connection;
 * - the WebSocket upgrade is refused unless its Origin is the host's own and
 *   it carries a live session cookie; its first message must be the session
 *   secret;
 * - unfinished handshakes (a connection without a complete request; apart
 *   from those, a WebSocket with a session but without its hello) have a
 *   deadline and a per-uid bound (a new one closes that uid's oldest),
 *   counted apart from the authenticated pages, so they never keep a page
 *   out;
 * - every message is validated (envelope and per-channel argument), bounded
 *   in size; each connection has a bounded number of calls in flight and a
 *   bounded send buffer: a page that does not read is cut off (it reconnects
 *   and gets a fresh snapshot), like the helper's slow-consumer cut-off.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import * as v from 'valibot';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  subscribeMethod,
  type InvokeChannel,
  type PortcullisApi,
  type PushChannel,
  type PushChannels,
  type Unsubscribe,
} from '../common/api.js';
import {
  WEB_SESSION_PATH,
  WS_CLOSE_BAD_MESSAGE,
  WS_CLOSE_BAD_SESSION,
  WS_CLOSE_HELLO_TIMEOUT,
  WS_CLOSE_TOO_MANY,
  WS_FLOWS_PER_CHUNK,
  WS_MAX_INBOUND_BYTES,
  WS_PATH,
  type WsServerMessage,
} from '../common/web-protocol.js';
import { toApiError } from './bridge.js';
import { checkInvokeArg } from './invoke-args.js';
import { WsClientMessageSchema } from './web-client-message.js';
import { PeerUidReader } from './web-peer.js';
import {
  contentType,
  defaultRendererDir,
  rendererSecurityHeaders,
  resolveRendererPath,
} from './renderer-files.js';

export interface WebHostOptions {
  api: PortcullisApi;
  /** The built renderer (dist/renderer by default). */
  rendererDir?: string;
  /** 0 (default): any free port. */
  port?: number;
  /**
   * A connection that has not finished its handshake by then (sent a whole
   * request, or, for a WebSocket, its hello) is closed. Default 5000 ms.
   */
  handshakeTimeoutMs?: number;
  /**
   * Unfinished handshakes per uid in each stage (no whole request yet; a
   * WebSocket with a session but no hello yet); one more closes that uid's
   * oldest in the stage. Default 16.
   */
  maxHandshakesPerUid?: number;
  /** A connection's unsent messages beyond this: cut off. Default 32 MiB. */
  maxBufferedBytes?: number;
  /** The pump stops handing data to a socket holding this much. Default 1 MiB. */
  highWaterBytes?: number;
  /** Invokes one connection may have in flight; more get `busy`. Default 32. */
  maxInFlight?: number;
  /** Authenticated pages at once (handshakes are counted apart). Default 8. */
  maxConnections?: number;
  /** Owners of client sockets that are served. Default: this process's uid and root. */
  allowedUids?: readonly number[];
  /** Where the kernel's socket tables are. Default /proc/net. */
  procNet?: string;
  /** Diagnostics (never given a code or a secret). */
  log?: (message: string) => void;
}

export interface WebHost {
  /** http://127.0.0.1:PORT (no secret in it). */
  readonly origin: string;
  readonly port: number;
  /**
   * origin + `/#code=...` with a fresh one-time code: it dies on its first
   * exchange, or `ttlMs` after this call (null: only on its exchange).
   */
  issueUrl(ttlMs: number | null): string;
  /** Authenticated WebSocket connections. */
  connections(): number;
  /** Connections that have not finished their handshake. */
  handshakes(): number;
  /** Connections refused for their owner, per uid (-1: the owner could not be found). */
  refusedByUid(): ReadonlyMap<number, number>;
  close(): Promise<void>;
}

/** A secret as stored: its SHA-256 (a lookup by hash leaks nothing about the secret). */
function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

function securityHeaders(type: string): Record<string, string> {
  return {
    ...rendererSecurityHeaders(type),
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-store',
    // One request per connection: an idle keep-alive socket would be a
    // handshake that never ends.
    Connection: 'close',
  };
}

/** Every value of the cookie `name` (a page may hold several, with other paths). */
function cookieValues(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}

/** The largest session exchange request body. */
const MAX_EXCHANGE_BYTES = 1024;

/** One accepted TCP connection. */
interface Conn {
  readonly socket: Socket;
  /** The owner of the client socket, once known. */
  uid: number | null;
  /** Set while the handshake is unfinished. */
  timer: NodeJS.Timeout | null;
  /** The stage whose bound counts it, while its handshake is unfinished. */
  pool: Pool | null;
  ws: WebSocket | null;
}

/** Unfinished handshakes of one stage, per uid, oldest first. */
type Pool = Map<number, Set<Conn>>;

interface Session {
  /** SHA-256 of the secret the page sends in its hello. */
  secret: Buffer;
}

export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const root = options.rendererDir ?? defaultRendererDir();
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000;
  const maxHandshakesPerUid = options.maxHandshakesPerUid ?? 16;
  const maxBuffered = options.maxBufferedBytes ?? 32 * 1024 * 1024;
  const highWater = options.highWaterBytes ?? 1024 * 1024;
  const maxInFlight = options.maxInFlight ?? 32;
  const maxConnections = options.maxConnections ?? 8;
  const allowedUids = new Set(options.allowedUids ?? [process.getuid?.() ?? 0, 0]);
  const log = options.log ?? (() => undefined);
  const api = options.api;
  const peers = new PeerUidReader(options.procNet);
  let port = 0;
  let closing = false;
  const host = (): string => `127.0.0.1:${port}`;
  const origin = (): string => `http://${host()}`;
  // Cookies are per host, not per port: the port in the name keeps two web
  // hosts from overwriting each other's cookie.
  const cookieName = (): string => `portcullis-session-${port}`;

  /** One-time codes by hex digest -> expiry (epoch ms, Infinity for none). */
  const codes = new Map<string, number>();
  /** Sessions by the hex digest of their cookie. */
  const sessions = new Map<string, Session>();
  const conns = new Map<Socket, Conn>();
  // Unfinished handshakes per uid, in two stages: connections that have not
  // sent a whole request, and WebSockets (with a live session cookie) that
  // have not said hello. Upgrades without a session never reach the second.
  const awaitingRequest: Pool = new Map();
  const awaitingHello: Pool = new Map();
  const authenticated = new Set<WebSocket>();
  const refused = new Map<number, number>();

  const http = createServer((req, res) => void serve(req, res));
  // A response nobody reads does not hold its socket forever.
  http.timeout = 30_000;
  const tcp = createTcpServer({ pauseOnConnect: true }, (socket) => void admit(socket));
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_INBOUND_BYTES });

  // --- connections: owner check, handshake deadline and bound ---------------

  const leavePool = (conn: Conn): void => {
    if (conn.pool === null || conn.uid === null) return;
    const set = conn.pool.get(conn.uid);
    set?.delete(conn);
    if (set?.size === 0) conn.pool.delete(conn.uid);
    conn.pool = null;
  };

  const finishHandshake = (conn: Conn): void => {
    if (conn.timer !== null) clearTimeout(conn.timer);
    conn.timer = null;
    leavePool(conn);
  };

  const startDeadline = (conn: Conn): void => {
    if (conn.timer !== null) clearTimeout(conn.timer);
    conn.timer = setTimeout(
      () => abandon(conn, WS_CLOSE_HELLO_TIMEOUT, 'handshake timeout'),
      handshakeTimeoutMs,
    );
  };

  /** Counts an unfinished handshake of a known uid in a stage. */
  const enterPool = (conn: Conn, pool: Pool): void => {
    leavePool(conn);
    if (conn.uid === null) return;
    let set = pool.get(conn.uid);
    if (!set) pool.set(conn.uid, (set = new Set()));
    set.add(conn);
    conn.pool = pool;
    // Make room for the newest (a page sends its request, or its hello, at once)
    // rather than refuse it. Not at once, though: owner lookups resolve in batches,
    // and a page's connection that entered with a batch of churning ones would be the
    // oldest before its request, already in its socket, was read. Two hops (the check
    // phase, then the next one, after a poll phase has read these sockets) give it
    // that read; meanwhile a burst is held to a hard bound of four times the limit.
    if (set.size > 4 * maxHandshakesPerUid) evictOldest(set);
    const uid = conn.uid;
    setImmediate(() =>
      setImmediate(() => {
        const now = pool.get(uid);
        while (now && now.size > maxHandshakesPerUid) evictOldest(now);
      }),
    );
  };

  const evictOldest = (set: Set<Conn>): void => {
    const oldest = set.values().next().value as Conn;
    abandon(oldest, WS_CLOSE_TOO_MANY, 'too many handshakes');
  };

  /** Ends an unfinished handshake: a WebSocket gets a close code, a bare connection is dropped. */
  const abandon = (conn: Conn, code: number, why: string): void => {
    finishHandshake(conn);
    if (conn.ws) conn.ws.close(code, why);
    else conn.socket.destroy();
  };

  const refuseOwner = (conn: Conn, uid: number, why: string): void => {
    finishHandshake(conn);
    conn.socket.destroy();
    const count = (refused.get(uid) ?? 0) + 1;
    refused.set(uid, count);
    // The first one of each owner is worth a line; a flood is only counted.
    if (count === 1)
      log(`web host: warning: refused a connection: ${why} (more are counted quietly)`);
  };

  async function admit(socket: Socket): Promise<void> {
    if (closing) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    const conn: Conn = { socket, uid: null, timer: null, pool: null, ws: null };
    conns.set(socket, conn);
    socket.once('close', () => {
      finishHandshake(conn);
      conns.delete(socket);
    });
    startDeadline(conn);

    let uid: number | null;
    try {
      uid = await peers.lookup(
        { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
        { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
      );
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      return refuseOwner(conn, -1, `its owner cannot be checked: ${why}`);
    }
    if (socket.destroyed) return;
    if (uid === null) return refuseOwner(conn, -1, 'no owner found for the client socket');
    if (!allowedUids.has(uid)) {
      return refuseOwner(conn, uid, `the client socket belongs to uid ${uid}`);
    }
    conn.uid = uid;
    enterPool(conn, awaitingRequest);
    http.emit('connection', socket);
    socket.resume();
  }

  // --- sessions -------------------------------------------------------------

  const issueCode = (ttlMs: number | null): string => {
    const now = Date.now();
    for (const [key, expiry] of codes) if (expiry <= now) codes.delete(key);
    const code = newSecret();
    codes.set(digest(code).toString('hex'), ttlMs === null ? Infinity : now + ttlMs);
    return code;
  };

  /** True once per live code; the code is dead afterwards whatever the outcome. */
  const redeem = (code: string): boolean => {
    const key = digest(code).toString('hex');
    const expiry = codes.get(key);
    codes.delete(key);
    return expiry !== undefined && expiry > Date.now();
  };

  const sessionOf = (req: IncomingMessage): Session | null => {
    for (const value of cookieValues(req.headers.cookie, cookieName())) {
      const session = sessions.get(digest(value).toString('hex'));
      if (session) return session;
    }
    return null;
  };

  function exchange(req: IncomingMessage, res: ServerResponse, conn: Conn): void {
    const json = (status: number, body: object, headers: Record<string, string> = {}): void => {
      finishHandshake(conn);
      res.writeHead(status, { ...securityHeaders('application/json'), ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.headers.origin !== origin()) return json(403, { error: 'wrong origin' });
    if (!/^application\/json\b/u.test(req.headers['content-type'] ?? '')) {
      return json(415, { error: 'expected application/json' });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_EXCHANGE_BYTES) {
        // Read no more; the response closes the connection.
        req.pause();
        json(413, { error: 'too large' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_EXCHANGE_BYTES) return;
      let code: unknown;
      try {
        code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: unknown }).code;
      } catch {
        return json(400, { error: 'not JSON' });
      }
      if (typeof code !== 'string' || code.length > 512) return json(400, { error: 'no code' });
      if (!redeem(code)) {
        log('web host: a page presented a used, expired or unknown code');
        return json(403, { error: 'this link was used already or has expired' });
      }
      const cookie = newSecret();
      const secret = newSecret();
      sessions.set(digest(cookie).toString('hex'), { secret: digest(secret) });
      log('web host: a one-time code was exchanged for a session');
      json(
        200,
        { session: secret },
        {
          // No Max-Age: gone when the browser closes. Path=/ so that the
          // WebSocket upgrade carries it.
          'Set-Cookie': `${cookieName()}=${cookie}; Path=/; HttpOnly; SameSite=Strict`,
        },
      );
    });
  }

  // --- HTTP -------------------------------------------------------------------

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const conn = conns.get(req.socket as Socket);
    if (!conn) {
      req.socket.destroy();
      return;
    }
    const send = (status: number, body: string): void => {
      finishHandshake(conn);
      res.writeHead(status, securityHeaders('text/plain; charset=utf-8'));
      res.end(body);
    };
    if (req.headers.host !== host()) return send(421, 'wrong host');
    const pathname = new URL(req.url ?? '/', origin()).pathname;
    if (pathname === WEB_SESSION_PATH) {
      if (req.method === 'POST') return exchange(req, res, conn);
      if (req.method !== 'GET') return send(405, 'method not allowed');
      finishHandshake(conn);
      res.writeHead(sessionOf(req) ? 204 : 401, securityHeaders('text/plain; charset=utf-8'));
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    finishHandshake(conn);
    const file = resolveRendererPath(pathname, root);
    if (file === null) return send(404, 'not found');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return send(404, 'not found');
    }
    res.writeHead(200, {
      ...securityHeaders(contentType(file)),
      'Content-Length': String(body.length),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const conn = conns.get(socket as Socket);
    if (!conn) {
      socket.destroy();
      return;
    }
    const refuse = (status: number, why: string): void => {
      log(`web host: WebSocket refused: ${why}`);
      // Answered: no longer a handshake. The deadline still ends a
      // connection whose client does not close its end.
      leavePool(conn);
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const pathname = new URL(req.url ?? '/', origin()).pathname;
    if (pathname !== WS_PATH) return refuse(404, 'Not Found');
    if (req.headers.host !== host()) return refuse(421, 'Misdirected Request');
    if (req.headers.origin !== origin()) return refuse(403, 'Forbidden');
    const session = sessionOf(req);
    if (!session) return refuse(401, 'Unauthorized');
    if (authenticated.size >= maxConnections) return refuse(503, 'Service Unavailable');
    // A fresh deadline for the hello, counted apart from the connections
    // that have not sent a request (which anyone of this uid can open).
    enterPool(conn, awaitingHello);
    startDeadline(conn);
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, conn, session));
  });

  function accept(ws: WebSocket, conn: Conn, session: Session): void {
    conn.ws = ws;
    let ready = false;
    let inFlight = 0;
    const subs = new Map<PushChannel, Unsubscribe>();

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

    const invoke = async (id: number, channel: InvokeChannel, arg: unknown) => {
      const checked = checkInvokeArg(channel, arg);
      if (!checked.ok) {
        send({
          type: 'result',
          id,
          ok: false,
          error: { name: 'ApiError', message: checked.message, code: 'invalid' },
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
        const result = await fn.call(api, checked.arg);
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
      const parsed = v.safeParse(WsClientMessageSchema, raw);
      if (!parsed.success) {
        ws.close(WS_CLOSE_BAD_MESSAGE, 'invalid message');
        return;
      }
      const m = parsed.output;
      if (!ready) {
        if (m.type !== 'hello' || !timingSafeEqual(digest(m.session), session.secret)) {
          log('web host: a page presented a wrong session secret');
          finishHandshake(conn);
          ws.close(WS_CLOSE_BAD_SESSION, 'bad session');
          return;
        }
        finishHandshake(conn);
        if (authenticated.size >= maxConnections) {
          ws.close(WS_CLOSE_TOO_MANY, 'too many pages');
          return;
        }
        ready = true;
        authenticated.add(ws);
        log(`web host: a page connected (${authenticated.size} open)`);
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
          subscribe(m.channel);
          return;
        case 'unsubscribe': {
          subs.get(m.channel)?.();
          subs.delete(m.channel);
          return;
        }
      }
    });
    ws.on('close', () => {
      authenticated.delete(ws);
      if (pumpTimer) clearTimeout(pumpTimer);
      queue.length = 0;
      for (const off of subs.values()) off();
      subs.clear();
    });
    ws.on('error', () => undefined);
  }

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(options.port ?? 0, '127.0.0.1', () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  port = (tcp.address() as AddressInfo).port;
  log(`web host: serving ${root} on ${origin()}/`);

  return {
    origin: origin(),
    port,
    issueUrl: (ttlMs) => `${origin()}/#code=${issueCode(ttlMs)}`,
    connections: () => authenticated.size,
    handshakes: () =>
      [...awaitingRequest.values(), ...awaitingHello.values()].reduce((n, s) => n + s.size, 0),
    refusedByUid: () => new Map(refused),
    close: async () => {
      closing = true;
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      for (const c of wss.clients) c.terminate();
      for (const socket of conns.keys()) socket.destroy();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await closed;
    },
  };
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
