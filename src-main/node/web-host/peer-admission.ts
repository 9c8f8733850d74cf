/**
 * Who may talk to the web host: the owner of each new TCP connection's client
 * socket, from the kernel's socket tables (web-peer.ts), is checked before a
 * byte is read from it. Only the allowed uids (this process's and root, by
 * default) get through; the others are closed and counted per uid.
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

  constructor(private readonly options: PeerAdmissionOptions) {
    this.peers = new PeerUidReader(options.procNet);
  }

  /** The connection's owner if it is served, else null (the connection is closed). */
  async check(conn: Conn): Promise<number | null> {
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
