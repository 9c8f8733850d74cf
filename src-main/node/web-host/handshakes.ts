/**
 * The web host's unfinished handshakes: a connection that has not sent a
 * whole request yet, or a WebSocket (with a live session cookie) that has not
 * said hello yet. Each has a deadline and is counted per uid in its stage,
 * apart from the authenticated pages, so that however many a uid opens they
 * never keep a page out: past the bound the uid's oldest goes. The bound is
 * the helper's (helper/server/handshakes.ts), which says why it is applied
 * two event-loop hops after a connection arrives.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { HandshakeBounds } from '../../../helper/server/handshakes.js';
import { WS_CLOSE_HELLO_TIMEOUT, WS_CLOSE_TOO_MANY } from '../../common/web-protocol.js';

/** One accepted TCP connection. */
export interface Conn {
  readonly socket: Socket;
  /** The owner of the client socket, once known. */
  uid: number | null;
  ws: WebSocket | null;
  /** Set while the handshake is unfinished. */
  timer: NodeJS.Timeout | null;
  /** Gives up its place in a stage's bound, while it is counted there. */
  release: (() => void) | null;
}

export class WebHandshakes {
  private readonly awaitingRequest: HandshakeBounds;
  private readonly awaitingHello: HandshakeBounds;

  constructor(
    private readonly timeoutMs: number,
    maxPerUid: number,
  ) {
    const limits = { perUid: maxPerUid, total: Infinity };
    this.awaitingRequest = new HandshakeBounds(limits, () => undefined);
    this.awaitingHello = new HandshakeBounds(limits, () => undefined);
  }

  /** Counted handshakes, both stages. */
  get size(): number {
    return this.awaitingRequest.size + this.awaitingHello.size;
  }

  /** A new connection; its deadline starts now. */
  track(socket: Socket): Conn {
    const conn: Conn = { socket, uid: null, ws: null, timer: null, release: null };
    this.startDeadline(conn);
    return conn;
  }

  /** Its owner is known and served: counted until it has sent a whole request. */
  awaitRequest(conn: Conn): void {
    this.count(conn, this.awaitingRequest);
  }

  /**
   * An upgrade with a live session: counted apart from the connections that
   * have not sent a request (which anyone of this uid can open), with a fresh
   * deadline for the hello.
   */
  awaitHello(conn: Conn): void {
    this.count(conn, this.awaitingHello);
    this.startDeadline(conn);
  }

  /** Answered, so no longer counted; the deadline still ends a connection whose client does not close. */
  uncount(conn: Conn): void {
    conn.release?.();
    conn.release = null;
  }

  finish(conn: Conn): void {
    if (conn.timer !== null) clearTimeout(conn.timer);
    conn.timer = null;
    this.uncount(conn);
  }

  /** Ends an unfinished handshake: a WebSocket gets a close code, a bare connection is dropped. */
  abandon(conn: Conn, code: number, why: string): void {
    this.finish(conn);
    if (conn.ws) conn.ws.close(code, why);
    else conn.socket.destroy();
  }

  private startDeadline(conn: Conn): void {
    if (conn.timer !== null) clearTimeout(conn.timer);
    conn.timer = setTimeout(
      () => this.abandon(conn, WS_CLOSE_HELLO_TIMEOUT, 'handshake timeout'),
      this.timeoutMs,
    );
  }

  private count(conn: Conn, stage: HandshakeBounds): void {
    this.uncount(conn);
    if (conn.uid === null) return;
    conn.release = stage.admit(conn.uid, () =>
      this.abandon(conn, WS_CLOSE_TOO_MANY, 'too many handshakes'),
    );
  }
}
