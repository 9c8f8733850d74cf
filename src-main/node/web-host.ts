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
import { createServer } from 'node:http';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { PortcullisApi } from '../common/api.js';
import { WS_MAX_INBOUND_BYTES } from '../common/web-protocol.js';
import { defaultRendererDir } from './renderer-files.js';
import { WebHandshakes, type Conn } from './web-host/handshakes.js';
import { serveHttp, type HttpContext } from './web-host/http-routes.js';
import { servePage, type PageContext } from './web-host/page-connection.js';
import { PeerAdmission } from './web-host/peer-admission.js';
import { WebSessions, type Session } from './web-host/sessions.js';
import { gateUpgrade } from './web-host/ws-upgrade.js';

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

export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const root = options.rendererDir ?? defaultRendererDir();
  const log = options.log ?? (() => undefined);
  const tcp = await listenOnLoopback(options.port ?? 0);
  // Everything below is wired before this turn ends: no connection is
  // accepted in between.
  const port = (tcp.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  const handshakes = new WebHandshakes(
    options.handshakeTimeoutMs ?? 5000,
    options.maxHandshakesPerUid ?? 16,
  );
  const admission = new PeerAdmission({
    allowedUids: new Set(options.allowedUids ?? [process.getuid?.() ?? 0, 0]),
    procNet: options.procNet,
    handshakes,
    log,
  });
  const ctx: HttpContext = {
    root,
    host: `127.0.0.1:${port}`,
    origin,
    sessions: new WebSessions(port),
    handshakes,
    connOf: (socket) => admission.connOf(socket),
    log,
  };
  const page = pageContext(options, handshakes, log);
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_INBOUND_BYTES });
  const http = createServer((req, res) => void serveHttp(ctx, req, res));
  // A response nobody reads does not hold its socket forever.
  http.timeout = 30_000;
  const upgrade = {
    ...ctx,
    wss,
    full: () => page.authenticated.size >= page.maxConnections,
    accept: (ws: WebSocket, conn: Conn, session: Session) => servePage(page, ws, conn, session),
  };
  http.on('upgrade', (req, socket, head: Buffer) => gateUpgrade(upgrade, req, socket, head));
  tcp.on('connection', (socket: Socket) => {
    void admission.admit(socket, (served) => {
      http.emit('connection', served);
      served.resume();
    });
  });
  log(`web host: serving ${root} on ${origin}/`);

  return {
    origin,
    port,
    issueUrl: (ttlMs) => `${origin}/#code=${ctx.sessions.issueCode(ttlMs)}`,
    connections: () => page.authenticated.size,
    handshakes: () => handshakes.size,
    refusedByUid: () => new Map(admission.refused),
    close: async () => {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      admission.closeAll();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await closed;
    },
  };
}

/** A TCP server on 127.0.0.1 whose connections stay paused until their owner is checked. */
async function listenOnLoopback(port: number): Promise<Server> {
  const tcp = createTcpServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, '127.0.0.1', () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  return tcp;
}

function pageContext(
  options: WebHostOptions,
  handshakes: WebHandshakes,
  log: (message: string) => void,
): PageContext {
  return {
    api: options.api,
    handshakes,
    authenticated: new Set(),
    maxConnections: options.maxConnections ?? 8,
    maxInFlight: options.maxInFlight ?? 32,
    outbound: {
      maxBufferedBytes: options.maxBufferedBytes ?? 32 * 1024 * 1024,
      highWaterBytes: options.highWaterBytes ?? 1024 * 1024,
    },
    log,
  };
}
