/** IpcServer options, their defaults, and the server's log records. */
import { CHUNK_TARGET_BYTES, MAX_FRAME_BYTES } from '../protocol/messages.js';
import type { PeerCredentialsFn } from './auth.js';
import type { HelperService } from './service.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What the server reports (the daemon routes it to stderr/the journal). */
export interface ServerLogEntry {
  level: LogLevel;
  /** A stable name: 'client-refused', 'client-cut-off', 'service-error'... */
  event: string;
  message: string;
  clientId?: number;
  error?: Error;
}

export interface IpcServerOptions {
  /** The socket path; its directory is created root:socketGroup 0750. */
  path: string;
  service: HelperService;
  /** The per-launch token clients must present in their Hello. */
  token: string;
  /** Peer uids allowed to connect (SO_PEERCRED): the owning user and root. */
  allowedUids: readonly number[];
  /**
   * The access group: a peer whose primary or supplementary groups held it when it
   * connected (SO_PEERCRED, SO_PEERGROUPS) is allowed too. The process's own groups,
   * not /etc/group: the same test the kernel made on the socket directory, so a member
   * added after the start is admitted once logged in again, without a restart.
   */
  allowedGid?: number;
  /** Group of the directory and the socket (the owning user's group). Default 0. */
  socketGroup?: number;
  /** This helper's build, sent in its Hello. */
  build?: string;
  /** No Hello by then: the connection is closed. A real client sends its
   * Hello with its connect, so this is short. Default 2000 ms. */
  handshakeTimeoutMs?: number;
  /** Default MAX_FRAME_BYTES (1 MiB); both directions. */
  maxFrameBytes?: number;
  /** Target size of snapshot and delta chunks. Default 256 KiB. */
  chunkTargetBytes?: number;
  /** Bound on one client's queued frames; passing it cuts the client off
   * from events (and closes it if responses alone pass it). Default 8 MiB. */
  maxQueuedBytes?: number;
  /** The pump stops handing frames to a socket holding this much. Default 64 KiB. */
  highWaterBytes?: number;
  /** Flow deltas are flushed at most once per interval. Default 250 ms (4/s). */
  flowIntervalMs?: number;
  /** A client cut off that has still not read its queue by then is closed. Default 5000 ms. */
  cutoffGraceMs?: number;
  /** Consecutive bad frames or requests before the connection is closed. Default 8. */
  maxStrikes?: number;
  /** Requests one connection may have in flight; more get `busy`. Default 32. */
  maxInFlight?: number;
  /** Authenticated clients at once; handshakes never count here. Default 16. */
  maxClients?: number;
  /** Handshakes (connections not authenticated yet) of one peer uid at once;
   * past it the uid's oldest is dropped (helper/server/handshakes.ts). Default 16. */
  maxHandshakesPerUid?: number;
  /** Handshakes of all uids at once; past it the oldest of the uid with the
   * most is dropped. Default 64. */
  maxHandshakes?: number;
  /** SO_PEERCRED reader; the native addon's by default (a test seam). */
  peerCredentials?: PeerCredentialsFn;
  log?: (entry: ServerLogEntry) => void;
  /** Called when the number of authenticated clients changes (the daemon's
   * no-GUI policy and HelperState.clients use it). */
  onClientsChanged?: (count: number) => void;
  /** Called when any client's subscriptions change, or a subscribed client
   * goes away (the daemon's GUI presence: subscriberCount('prompts')). */
  onSubscriptionsChanged?: () => void;
}

export interface ResolvedOptions {
  build: string;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  chunkTargetBytes: number;
  maxQueuedBytes: number;
  highWaterBytes: number;
  flowIntervalMs: number;
  cutoffGraceMs: number;
  maxStrikes: number;
  maxInFlight: number;
  maxClients: number;
  maxHandshakesPerUid: number;
  maxHandshakes: number;
}

export function resolveOptions(o: IpcServerOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    build: o.build ?? 'unknown',
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 2000,
    maxFrameBytes: o.maxFrameBytes ?? MAX_FRAME_BYTES,
    chunkTargetBytes: o.chunkTargetBytes ?? CHUNK_TARGET_BYTES,
    maxQueuedBytes: o.maxQueuedBytes ?? 8 * 1024 * 1024,
    highWaterBytes: o.highWaterBytes ?? 64 * 1024,
    flowIntervalMs: o.flowIntervalMs ?? 250,
    cutoffGraceMs: o.cutoffGraceMs ?? 5000,
    maxStrikes: o.maxStrikes ?? 8,
    maxInFlight: o.maxInFlight ?? 32,
    maxClients: o.maxClients ?? 16,
    maxHandshakesPerUid: o.maxHandshakesPerUid ?? 16,
    maxHandshakes: o.maxHandshakes ?? 64,
  };
  for (const key of ['maxClients', 'maxHandshakesPerUid', 'maxHandshakes'] as const) {
    if (!Number.isInteger(r[key]) || r[key] < 1) {
      throw new RangeError(`${key} must be a positive integer, not ${r[key]}`);
    }
  }
  if (r.chunkTargetBytes > r.maxFrameBytes / 2) {
    throw new RangeError('chunkTargetBytes must be at most half of maxFrameBytes');
  }
  if (r.highWaterBytes < 16 * 1024) {
    // Node's own socket high-water mark: below it 'drain' might never come.
    throw new RangeError('highWaterBytes must be at least 16 KiB');
  }
  return r;
}
