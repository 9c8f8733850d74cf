/**
 * The WebSocket upgrade is refused unless it is for WS_PATH, names the host's
 * own Host and Origin and carries a live session cookie, and another page fits;
 * an accepted one waits for its hello under a fresh deadline.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { WS_PATH } from '../../common/web-protocol.js';
import type { Conn, WebHandshakes } from './handshakes.js';
import type { Session, WebSessions } from './sessions.js';

export interface UpgradeContext {
  host: string;
  origin: string;
  sessions: WebSessions;
  handshakes: WebHandshakes;
  wss: WebSocketServer;
  connOf(socket: Socket): Conn | undefined;
  /** True when no other page may connect now. */
  full(): boolean;
  /** Serves the page on its upgraded socket. */
  accept(ws: WebSocket, conn: Conn, session: Session): void;
  log: (message: string) => void;
}

export function gateUpgrade(
  ctx: UpgradeContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  const conn = ctx.connOf(socket as Socket);
  if (!conn) {
    socket.destroy();
    return;
  }
  const refuse = (status: number, why: string): void => {
    ctx.log(`web host: WebSocket refused: ${why}`);
    ctx.handshakes.uncount(conn);
    socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };
  const pathname = new URL(req.url ?? '/', ctx.origin).pathname;
  if (pathname !== WS_PATH) return refuse(404, 'Not Found');
  if (req.headers.host !== ctx.host) return refuse(421, 'Misdirected Request');
  if (req.headers.origin !== ctx.origin) return refuse(403, 'Forbidden');
  const session = ctx.sessions.of(req.headers.cookie);
  if (!session) return refuse(401, 'Unauthorized');
  if (ctx.full()) return refuse(503, 'Service Unavailable');
  ctx.handshakes.awaitHello(conn);
  ctx.wss.handleUpgrade(req, socket, head, (ws) => ctx.accept(ws, conn, session));
}
