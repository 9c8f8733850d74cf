/**
 * The facade the verdict loop calls for every new connection: tuple ->
 * socket (sock_diag) -> owner pid (socket inode index) -> process (/proc),
 * with a small per-tuple cache for the packets of one flow that queue
 * before the first verdict.
 */
import { CgroupIndex } from './cgroups.js';
import { setNewest } from '../common/bounded-map.js';
import { tupleKey } from '../common/tuple-key.js';
import { ProcReader, PasswdCache } from './procfs.js';
import { SockDiag, type SockDiagOptions } from './sock-diag.js';
import { SocketOwnerIndex, type SocketOwnerIndexOptions } from './owners.js';
import type { Attribution, ProcessInfo, SocketTuple } from './types.js';

export interface AttributorOptions {
  /** The network namespace whose sockets are looked up. */
  netns?: string;
  /** An open client to use (not closed by close()); else one is opened. */
  sockDiag?: SockDiag;
  sockDiagOptions?: Omit<SockDiagOptions, 'netns'>;
  /** procfs root (default /proc) and passwd file (default /etc/passwd). */
  procRoot?: string;
  passwdPath?: string;
  owners?: Omit<SocketOwnerIndexOptions, 'cgroups'>;
  /** The cgroup v2 mount (default: from /proc/self/mountinfo); null: do not
   * use sockets' cgroup ids to find their owners sooner. */
  cgroupRoot?: string | null;
  /** How long an answer for a tuple is reused (ms, default 2000); the owner
   * is checked to be alive on every reuse. 0 disables the cache. */
  tupleTtlMs?: number;
  /** Passed to SockDiag.find(): dump by local port when the exact lookup
   * misses (default: UDP and UDP-Lite only). */
  dumpFallback?: boolean;
  /** Tuples remembered (default 4096). */
  tupleCacheSize?: number;
  /** Processes remembered (default 4096). */
  processCacheSize?: number;
  /** How old a check that a process is alive may be when a cached answer is
   * reused (ms, default 250; 0: read /proc/PID/stat every time). */
  livenessTtlMs?: number;
  now?: () => number;
}

export interface AttributeRequest extends SocketTuple {
  /** The packet came in: its dst is the local end (the tuple is swapped). */
  inbound?: boolean;
}

export interface AttributorStats {
  lookups: number;
  tupleHits: number;
  noSocket: number;
  noOwner: number;
}

interface TupleEntry {
  at: number;
  value: Attribution;
}

export class Attributor {
  readonly diag: SockDiag;
  readonly proc: ProcReader;
  readonly owners: SocketOwnerIndex;
  readonly stats: AttributorStats = { lookups: 0, tupleHits: 0, noSocket: 0, noOwner: 0 };
  private readonly ownsDiag: boolean;
  private readonly tuples = new Map<string, TupleEntry>();
  private readonly inFlight = new Map<string, Promise<Attribution | null>>();
  private readonly processes = new Map<number, ProcessInfo>();
  private readonly ttl: number;
  private readonly tupleMax: number;
  private readonly processMax: number;
  private readonly now: () => number;
  private readonly dumpFallback: boolean | undefined;
  private readonly livenessTtl: number;

  constructor(options: AttributorOptions = {}) {
    this.ownsDiag = options.sockDiag === undefined;
    this.diag =
      options.sockDiag ??
      SockDiag.open({
        ...options.sockDiagOptions,
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
      });
    this.proc = new ProcReader({
      ...(options.procRoot !== undefined ? { root: options.procRoot } : {}),
      passwd: new PasswdCache(options.passwdPath),
    });
    const cgroups =
      options.cgroupRoot === null
        ? undefined
        : new CgroupIndex(options.cgroupRoot !== undefined ? { root: options.cgroupRoot } : {});
    this.livenessTtl = Math.max(0, options.livenessTtlMs ?? 250);
    this.owners = new SocketOwnerIndex(this.proc, {
      livenessTtlMs: this.livenessTtl,
      ...options.owners,
      ...(cgroups?.root !== undefined ? { cgroups } : {}),
    });
    this.ttl = options.tupleTtlMs ?? 2000;
    this.tupleMax = options.tupleCacheSize ?? 4096;
    this.processMax = options.processCacheSize ?? 4096;
    this.now = options.now ?? (() => performance.now());
    this.dumpFallback = options.dumpFallback;
  }

  static open(options: AttributorOptions = {}): Attributor {
    return new Attributor(options);
  }

  /**
   * The socket that owns the tuple and its process. null when no socket
   * matches (it closed, or the packet is not from a local socket, such as
   * forwarded traffic); `process: null` when the socket exists but no
   * visible process holds it (TIME_WAIT, kernel sockets, fd passed away and
   * closed, another pid namespace).
   */
  async attribute(request: AttributeRequest): Promise<Attribution | null> {
    this.stats.lookups++;
    const { inbound, ...rest } = request;
    const tuple: SocketTuple = inbound
      ? { ...rest, src: rest.dst, sport: rest.dport, dst: rest.src, dport: rest.sport }
      : rest;
    const key = tupleKey(tuple);
    const cached = this.cachedTuple(key);
    if (cached) {
      this.stats.tupleHits++;
      return cached;
    }
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.resolve(tuple, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /** A process by pid (cached; re-read when its start time changed). */
  process(pid: number): ProcessInfo | null {
    const startTime = this.proc.recentStartTime(pid, this.livenessTtl);
    const known = this.processes.get(pid);
    if (startTime === null) {
      if (known) this.forget(pid);
      return null;
    }
    if (known && known.startTime === startTime) return known;
    const info = this.proc.process(pid);
    if (!info) {
      this.forget(pid);
      return null;
    }
    setNewest(this.processes, pid, info, this.processMax);
    return info;
  }

  close(): void {
    this.owners.close();
    if (this.ownsDiag) this.diag.close();
  }

  private forget(pid: number): void {
    this.processes.delete(pid);
    this.owners.forgetPid(pid);
  }

  private cachedTuple(key: string): Attribution | null {
    const e = this.tuples.get(key);
    if (!e) return null;
    const p = e.value.process;
    // Expired, or the owner exited (or its pid now names another process).
    if (
      this.now() - e.at > this.ttl ||
      (p && this.proc.recentStartTime(p.pid, this.livenessTtl) !== p.startTime)
    ) {
      this.tuples.delete(key);
      if (p) this.forget(p.pid);
      return null;
    }
    return e.value;
  }

  /** `key`: tupleKey(tuple), which attribute() has made already. */
  private async resolve(tuple: SocketTuple, key: string): Promise<Attribution | null> {
    const socket = await this.diag.find(
      tuple,
      this.dumpFallback !== undefined ? { dumpFallback: this.dumpFallback } : {},
    );
    if (!socket) {
      this.stats.noSocket++;
      return null;
    }
    let process: ProcessInfo | null = null;
    if (socket.inode !== 0) {
      const owner = await this.owners.ownerOf(socket.inode, {
        uid: socket.uid,
        ...(socket.cgroupId !== undefined ? { cgroupId: socket.cgroupId } : {}),
      });
      if (owner) {
        process = this.process(owner.pid);
        if (process && process.startTime !== owner.startTime) process = null;
      }
    }
    if (!process) this.stats.noOwner++;
    const value: Attribution = { socket, process };
    if (this.ttl > 0) {
      setNewest(this.tuples, key, { at: this.now(), value }, this.tupleMax);
    }
    return value;
  }
}
