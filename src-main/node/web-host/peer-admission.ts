/**
 * Who may talk to the web host: the owner of each new TCP connection's client
 * socket, from the kernel's socket tables (web-peer.ts), is checked before a
 * byte is read from it. Only the allowed uids (this process's and root, by
 * default) get through; the others are closed and counted per uid. Every
 * accepted connection is tracked here until it closes.
 */
import type { Socket } from 'node:net';
import { PeerUidReader } from '../web-peer.js';
import type { Conn, WebHandshakes } from './handshakes.js';

export interface PeerAdmissionOptions {
  allowedUids: ReadonlySet<number>;
  /** Where the kernel's socket tables are. Default /proc/net. */
  procNet?: string;
  handshakes: WebHandshakes;
  log: (message: string) => void;
}

export class PeerAdmission {
  private readonly peers: PeerUidReader;
  /** Refused connections per uid (-1: the owner could not be found). */
  readonly refused = new Map<number, number>();
  private readonly conns = new Map<Socket, Conn>();
  private closing = false;

  constructor(private readonly options: PeerAdmissionOptions) {
    this.peers = new PeerUidReader(options.procNet);
  }

  /** The tracked connection of a socket. */
  connOf(socket: Socket): Conn | undefined {
    return this.conns.get(socket);
  }

  /**
   * Tracks a new (paused) connection and checks its owner; a served one is
   * counted as a handshake and handed to `serve`, the others are closed.
   */
  async admit(socket: Socket, serve: (socket: Socket) => void): Promise<void> {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const { handshakes } = this.options;
    socket.on('error', () => undefined);
    const conn = handshakes.track(socket);
    this.conns.set(socket, conn);
    socket.once('close', () => {
      handshakes.finish(conn);
      this.conns.delete(socket);
    });
    const uid = await this.check(conn);
    if (uid === null) return;
    conn.uid = uid;
    handshakes.awaitRequest(conn);
    serve(socket);
  }

  /** Refuses new connections and ends the tracked ones. */
  closeAll(): void {
    this.closing = true;
    for (const socket of this.conns.keys()) socket.destroy();
  }

  /** The connection's owner if it is served, else null (the connection is closed). */
  private async check(conn: Conn): Promise<number | null> {
    const { socket } = conn;
    let uid: number | null;
    try {
      uid = await this.peers.lookup(endpoint(socket, 'local'), endpoint(socket, 'remote'));
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      return this.refuse(conn, -1, `its owner cannot be checked: ${why}`);
    }
    if (socket.destroyed) return null;
    if (uid === null) return this.refuse(conn, -1, 'no owner found for the client socket');
    if (!this.options.allowedUids.has(uid)) {
      return this.refuse(conn, uid, `the client socket belongs to uid ${uid}`);
    }
    return uid;
  }

  private refuse(conn: Conn, uid: number, why: string): null {
    this.options.handshakes.finish(conn);
    conn.socket.destroy();
    const count = (this.refused.get(uid) ?? 0) + 1;
    this.refused.set(uid, count);
    // The first one of each owner is worth a line; a flood is only counted.
    if (count === 1) {
      this.options.log(
        `web host: warning: refused a connection: ${why} (more are counted quietly)`,
      );
    }
    return null;
  }
}

function endpoint(socket: Socket, end: 'local' | 'remote'): { address: string; port: number } {
  return end === 'local'
    ? { address: socket.localAddress ?? '', port: socket.localPort ?? 0 }
    : { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
}
