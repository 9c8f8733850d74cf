/**
 * The web host's HTTP: the Host check (no DNS rebinding), the session
 * exchange (a one-time code for a session cookie and secret, same-origin JSON
 * only) and the renderer's static files, GET/HEAD only, one request per
 * connection. Every answer ends the connection's handshake.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WEB_SESSION_PATH } from '../../common/web-protocol.js';
import { contentType, rendererSecurityHeaders, resolveRendererPath } from '../renderer-files.js';
import type { Conn, WebHandshakes } from './handshakes.js';
import type { WebSessions } from './sessions.js';

/** The largest session exchange request body. */
const MAX_EXCHANGE_BYTES = 1024;

export interface HttpContext {
  /** The renderer directory. */
  root: string;
  /** `127.0.0.1:PORT`, the only Host served. */
  host: string;
  /** `http://127.0.0.1:PORT`, the only Origin served. */
  origin: string;
  sessions: WebSessions;
  handshakes: WebHandshakes;
  /** The admitted connection a request came on. */
  connOf(socket: Socket): Conn | undefined;
  log: (message: string) => void;
}

function webSecurityHeaders(type: string): Record<string, string> {
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

export async function serveHttp(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const conn = ctx.connOf(req.socket as Socket);
  if (!conn) {
    req.socket.destroy();
    return;
  }
  const send = (status: number, body: string): void => {
    ctx.handshakes.finish(conn);
    res.writeHead(status, webSecurityHeaders('text/plain; charset=utf-8'));
    res.end(body);
  };
  if (req.headers.host !== ctx.host) return send(421, 'wrong host');
  const pathname = new URL(req.url ?? '/', ctx.origin).pathname;
  if (pathname === WEB_SESSION_PATH) {
    if (req.method === 'POST') return exchange(ctx, req, res, conn);
    if (req.method !== 'GET') return send(405, 'method not allowed');
    ctx.handshakes.finish(conn);
    res.writeHead(
      ctx.sessions.of(req.headers.cookie) ? 204 : 401,
      webSecurityHeaders('text/plain; charset=utf-8'),
    );
    res.end();
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
  ctx.handshakes.finish(conn);
  const file = resolveRendererPath(pathname, ctx.root);
  if (file === null) return send(404, 'not found');
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    return send(404, 'not found');
  }
  res.writeHead(200, {
    ...webSecurityHeaders(contentType(file)),
    'Content-Length': String(body.length),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** POST {code} -> 200 {session} and the cookie, or an error status with {error}. */
function exchange(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, conn: Conn): void {
  const json = (status: number, body: object, headers: Record<string, string> = {}): void => {
    ctx.handshakes.finish(conn);
    res.writeHead(status, { ...webSecurityHeaders('application/json'), ...headers });
    res.end(JSON.stringify(body));
  };
  if (req.headers.origin !== ctx.origin) return json(403, { error: 'wrong origin' });
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
    if (!ctx.sessions.redeem(code)) {
      ctx.log('web host: a page presented a used, expired or unknown code');
      return json(403, { error: 'this link was used already or has expired' });
    }
    const session = ctx.sessions.open();
    ctx.log('web host: a one-time code was exchanged for a session');
    json(200, { session: session.secret }, { 'Set-Cookie': session.setCookie });
  });
}
