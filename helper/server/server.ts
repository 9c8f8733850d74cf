/**
 * The helper's IPC server: a Unix socket in a root-owned directory, the peer
 * uid checked with SO_PEERCRED before a byte is read, then a Hello with the
 * per-launch token (helper/server/connection.ts), then requests and events.
 *
 * publish() is called from the verdict loop: it encodes an event once,
 * queues it for each subscriber and returns; sockets are written on a later
 * turn of the event loop, so a stuck client costs the caller nothing.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { unlinkSync } from 'node:fs';
import { encodeFrame } from '../protocol/framing.js';
import {
  SUBSCRIBABLE_TOPICS,
  type PublishMap,
  type SubscribableTopic,
} from '../protocol/messages.js';
import { loadNativeBinding } from '../native/load.js';
import type { PeerCredentials } from '../native/types.js';
import { socketFd, type PeerCredentialsFn } from './auth.js';
import { Connection, type ConnectionHost } from './connection.js';
import {
  resolveOptions,
  type IpcServerOptions,
  type ResolvedOptions,
  type ServerLogEntry,
} from './options.js';
import { prepareSocketDirectory, removeStaleSocket, secureSocketFile } from './paths.js';
import type { HelperService } from './service.js';
import { HandshakeBounds } from './handshakes.js';
import { LogThrottle } from './throttle.js';

export interface ClientInfo {
  id: number;
  pid: number;
  uid: number;
  authenticated: boolean;
  subscriptions: SubscribableTopic[];
  /** Frames waiting for this client plus what its socket still holds. */
  queuedBytes: number;
}

function defaultLog(entry: ServerLogEntry): void {
  if (entry.level === 'warn' || entry.level === 'error') {
    process.stderr.write(`portcullis helper: ${entry.event}: ${entry.message}\n`);
  }
}

export class IpcServer implements ConnectionHost {
  readonly options: ResolvedOptions;
  readonly service: HelperService;
  readonly token: string;
  readonly path: string;
  private readonly allowedUids: ReadonlySet<number>;
  private readonly allowedGid: number | undefined;
  private readonly peerCredentials: PeerCredentialsFn;
  private readonly logger: (entry: ServerLogEntry) => void;
  private readonly onClientsChanged: ((count: number) => void) | undefined;
  private readonly onSubscriptionsChanged: (() => void) | undefined;
  private readonly connections = new Set<Connection>();
  private authenticatedCount = 0;
  private nextId = 1;
  private closing = false;
  private counters = {
    refused: 0,
    cutOff: 0,
    eventsDropped: 0,
    handshakesDropped: 0,
    badTokens: 0,
  };
  private readonly handshakes: HandshakeBounds;
  /** Releases each connection's place among the handshakes when it authenticates. */
  private readonly handshakeReleases = new Map<Connection, () => void>();
  /** Refusals, drops and bad tokens are logged once per uid and minute. */
  private readonly throttle = new LogThrottle(60_000);

  private constructor(
    private readonly server: Server,
    options: IpcServerOptions,
  ) {
    this.options = resolveOptions(options);
    this.service = options.service;
    this.token = options.token;
    this.path = options.path;
    this.allowedUids = new Set(options.allowedUids);
    this.allowedGid = options.allowedGid;
    this.peerCredentials =
      options.peerCredentials ?? ((fd) => loadNativeBinding().peerCredentials(fd));
    this.logger = options.log ?? defaultLog;
    this.onClientsChanged = options.onClientsChanged;
    this.onSubscriptionsChanged = options.onSubscriptionsChanged;
    this.handshakes = new HandshakeBounds(
      { perUid: this.options.maxHandshakesPerUid, total: this.options.maxHandshakes },
      (uid) => this.handshakeDropped(uid),
    );
    server.on('connection', (socket) => this.accept(socket));
    server.on('error', (error) =>
      this.log({ level: 'error', event: 'server-error', message: error.message, error }),
    );
  }

  /**
   * Prepares the directory (root:socketGroup 0750), removes a stale socket of
   * a crashed helper, listens, and sets the socket to root:socketGroup 0660.
   */
  static async listen(options: IpcServerOptions): Promise<IpcServer> {
    if (options.token.length === 0) throw new Error('IpcServer: the token must not be empty');
    if (options.allowedUids.length === 0) throw new Error('IpcServer: no uid is allowed');
    const group = options.socketGroup ?? 0;
    prepareSocketDirectory(dirname(options.path), group);
    await removeStaleSocket(options.path);
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: true });
    const ipc = new IpcServer(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    try {
      secureSocketFile(options.path, group);
    } catch (error) {
      await ipc.close();
      throw error;
    }
    return ipc;
  }

  /** Authenticated clients now. */
  get clientCount(): number {
    return this.authenticatedCount;
  }

  /** Clients subscribed to a topic (e.g. no `prompts` subscriber: no-GUI policy). */
  subscriberCount(topic: SubscribableTopic): number {
    let n = 0;
    for (const c of this.connections) if (c.ready && c.subscriptions.has(topic)) n++;
    return n;
  }

  /** Connections refused, clients cut off, events left out, handshakes now
   * (counted or not yet) and dropped, wrong tokens (for Stats and tests). */
  get metrics(): {
    refused: number;
    cutOff: number;
    eventsDropped: number;
    connections: number;
    handshakes: number;
    handshakesDropped: number;
    badTokens: number;
  } {
    return {
      ...this.counters,
      connections: this.connections.size,
      handshakes: this.handshakes.size,
    };
  }

  /** Each connection now: for diagnostics (and the slow-client tests). */
  clients(): ClientInfo[] {
    return [...this.connections].map((c) => ({
      id: c.id,
      pid: c.peer.pid,
      uid: c.peer.uid,
      authenticated: c.ready,
      subscriptions: SUBSCRIBABLE_TOPICS.filter((t) => c.subscriptions.has(t)),
      queuedBytes: c.outbox.queuedBytes,
    }));
  }

  /**
   * Sends an event to every subscriber of the topic. Never throws and never
   * waits: flows are merged per client, stats/state replace the previous
   * unsent one, prompts/verdicts are queued (a client whose queue overflows
   * is cut off from events, not waited for).
   */
  publish<T extends keyof PublishMap>(topic: T, data: PublishMap[T]): void {
    if (this.closing) return;
    try {
      if (topic === 'flows') {
        const delta = data as PublishMap['flows'];
        for (const c of this.connections) {
          if (c.ready && c.subscriptions.has('flows')) c.outbox.mergeFlows(delta);
        }
        return;
      }
      let frame: Buffer | undefined;
      for (const c of this.connections) {
        if (!c.ready || !c.subscriptions.has(topic)) continue;
        frame ??= encodeFrame({ type: 'event', topic, data }, this.options.maxFrameBytes);
        if (topic === 'stats' || topic === 'state') c.outbox.setLatest(topic, frame);
        else c.sendEvent(frame);
      }
    } catch (error) {
      // An event too large for a frame: it is reported and left out.
      this.counters.eventsDropped++;
      this.log({
        level: 'error',
        event: 'publish-error',
        message: `${topic} event not sent: ${(error as Error).message}`,
        error: error as Error,
      });
    }
  }

  /** Stops listening, tells every client why, closes them and removes the socket file. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const c of [...this.connections]) c.fail('shutting-down', 'the helper is stopping');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  log(entry: ServerLogEntry): void {
    if (entry.event === 'client-cut-off') this.counters.cutOff++;
    try {
      this.logger(entry);
    } catch {
      // A failing logger must not take the server down with it; there is
      // nowhere left to report this.
    }
  }

  mayAuthenticate(connection: Connection): string | null {
    if (this.authenticatedCount < this.options.maxClients) return null;
    this.counters.refused++;
    const message = `too many clients (${this.options.maxClients} authenticated)`;
    this.log({
      level: 'warn',
      event: 'client-refused',
      message: `client ${connection.id} (pid ${connection.peer.pid}, uid ${connection.peer.uid}): ${message}`,
      clientId: connection.id,
    });
    return message;
  }

  badToken(connection: Connection): void {
    this.counters.badTokens++;
    const { uid, pid } = connection.peer;
    this.throttledWarn(
      'bad-token',
      uid,
      `client ${connection.id} (pid ${pid}, uid ${uid}): the token does not match`,
    );
  }

  authenticated(connection: Connection): void {
    this.handshakeReleases.get(connection)?.();
    this.handshakeReleases.delete(connection);
    this.authenticatedCount++;
    this.log({
      level: 'info',
      event: 'client-authenticated',
      message: `client ${connection.id} (pid ${connection.peer.pid}, uid ${connection.peer.uid})`,
      clientId: connection.id,
    });
    this.clientsChanged();
  }

  /** The daemon's callback; its failure is logged, never thrown into a connection. */
  private clientsChanged(): void {
    try {
      this.onClientsChanged?.(this.authenticatedCount);
    } catch (error) {
      this.log({
        level: 'error',
        event: 'callback-error',
        message: `onClientsChanged failed: ${(error as Error).message}`,
        error: error as Error,
      });
    }
  }

  closed(connection: Connection): void {
    // Its place among the handshakes is released when its socket is gone.
    this.handshakeReleases.delete(connection);
    if (!this.connections.delete(connection)) return;
    if (connection.wasAuthenticated) {
      this.authenticatedCount--;
      this.clientsChanged();
      this.subscriptionsChanged(connection);
      this.serviceClientClosed(connection);
    }
  }

  /** The service's hook; like clientsChanged, never thrown into a connection. */
  private serviceClientClosed(connection: Connection): void {
    try {
      this.service.clientClosed?.(connection.context);
    } catch (error) {
      this.log({
        level: 'error',
        event: 'callback-error',
        message: `clientClosed failed: ${(error as Error).message}`,
        error: error as Error,
      });
    }
  }

  /** The daemon's callback; like clientsChanged, never thrown into a connection. */
  subscriptionsChanged(_connection: Connection): void {
    try {
      this.onSubscriptionsChanged?.();
    } catch (error) {
      this.log({
        level: 'error',
        event: 'callback-error',
        message: `onSubscriptionsChanged failed: ${(error as Error).message}`,
        error: error as Error,
      });
    }
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    let peer: PeerCredentials | undefined;
    let credentialError: Error | undefined;
    try {
      peer = this.peerCredentials(socketFd(socket));
    } catch (error) {
      credentialError = error as Error;
    }
    // Every connection, a refused one too, holds a place among its uid's
    // handshakes until it authenticates or its socket is gone.
    const uid = peer?.uid ?? -1;
    const made: { connection?: Connection } = {};
    let dropped = false;
    const release = this.handshakes.admit(uid, () => {
      dropped = true;
      made.connection?.abort(
        'handshake-timeout',
        `dropped: uid ${uid} has more connections without a Hello than the helper keeps`,
      );
      socket.destroy();
    });
    socket.once('close', release);
    if (dropped) return;
    if (!peer) {
      this.refuse(socket, uid, `cannot read the peer's credentials: ${credentialError!.message}`);
      return;
    }
    if (!this.admits(peer)) {
      this.refuse(socket, uid, `uid ${peer.uid} (pid ${peer.pid}) may not use this helper`);
      return;
    }
    const connection = new Connection(this.nextId++, socket, peer, this);
    made.connection = connection;
    this.connections.add(connection);
    this.handshakeReleases.set(connection, release);
    this.log({
      level: 'debug',
      event: 'client-connected',
      message: `client ${connection.id}: pid ${peer.pid} uid ${peer.uid}`,
      clientId: connection.id,
    });
    socket.resume();
  }

  private admits(peer: PeerCredentials): boolean {
    if (this.allowedUids.has(peer.uid)) return true;
    const gid = this.allowedGid;
    return gid !== undefined && (peer.gid === gid || peer.groups.includes(gid));
  }

  private refuse(socket: Socket, uid: number, message: string): void {
    this.counters.refused++;
    this.throttledWarn('client-refused', uid, message);
    const frame = encodeFrame({
      type: 'error',
      error: { code: 'forbidden', message },
      fatal: true,
    });
    socket.on('error', () => undefined); // the peer may already be gone
    socket.resume(); // read nothing from it, but see its close at once
    socket.end(frame);
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private handshakeDropped(uid: number): void {
    this.counters.handshakesDropped++;
    const { maxHandshakesPerUid: perUid, maxHandshakes: total } = this.options;
    this.throttledWarn(
      'handshake-dropped',
      uid,
      `uid ${uid} had more than ${perUid} connections without a Hello (or all uids more than ${total}): its oldest was dropped`,
    );
  }

  /** A warning at most once per event, uid and minute, with the count left out since. */
  private throttledWarn(event: string, uid: number, message: string): void {
    const suppressed = this.throttle.take(`${event}:${uid}`);
    if (suppressed === null) return;
    const more = suppressed > 0 ? ` (and ${suppressed} more from uid ${uid} since)` : '';
    this.log({ level: 'warn', event, message: `${message}${more}` });
  }
}
