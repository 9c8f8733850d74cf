/**
 * Socket inode -> owning process, from the /proc/PID/fd links. The kernel
 * keeps no such index, so it is built by scanning: on a miss, one scan (shared
 * by every lookup waiting meanwhile) reads the fds of every process, likely
 * owners first, and answers each waiting lookup as soon as its inode shows
 * up. Scans are rate-limited; the index is bounded, and each complete scan
 * drops the sockets it no longer saw.
 */
import type { CgroupIndex } from './cgroups.js';
import { setNewest } from '../common/bounded-map.js';
import type { ProcReader } from './procfs.js';

export interface SocketOwner {
  pid: number;
  /** The owner's start time: a pid reused by another process does not match. */
  startTime: number;
}

export interface SocketOwnerIndexOptions {
  /** Most inodes remembered (default 65536); the oldest are dropped first. */
  maxEntries?: number;
  /** A scan starts at most this often (ms, default 50): lookups that miss
   * meanwhile wait for the next one. */
  minScanIntervalMs?: number;
  /** Processes read between yields to the event loop (default 16). */
  yieldEvery?: number;
  /** Remembered recent owners, scanned first (default 32). */
  recentOwners?: number;
  /** The most recent owners whose fds a miss reads at once, before any
   * rate-limited scan, together with up to 4x as many processes started since
   * the last scan (default 4; 0 turns the probe off). */
  probeRecent?: number;
  /** Resolves a socket's cgroup id to the processes in it, scanned next. */
  cgroups?: CgroupIndex;
  /** How old a check that an owner is alive may be (ms, default 250; 0: check every time). */
  livenessTtlMs?: number;
  now?: () => number;
}

export interface OwnerLookupHint {
  /** The socket's uid (from sock_diag): processes of that uid are scanned early. */
  uid?: number;
  /** The socket's cgroup id (INET_DIAG_CGROUP_ID): its processes are scanned first. */
  cgroupId?: bigint;
}

export interface SocketOwnerIndexStats {
  scans: number;
  hits: number;
  misses: number;
  /** Misses answered by reading the most recent owners' fds, without a scan. */
  probeHits: number;
  /** Processes read by scans in total. */
  processesScanned: number;
  /** Processes whose fds a probe read. */
  processesProbed: number;
  /** Misses answered by one readlink: the fd the owner's previous socket had. */
  fdHits: number;
  entries: number;
}

interface Waiter {
  inode: number;
  uid: number | undefined;
  cgroupId: bigint | undefined;
  /** Scans that started before the waiter came may have passed its owner already. */
  after: number;
  resolve: (owner: SocketOwner | null) => void;
  reject: (error: Error) => void;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SocketOwnerIndex {
  private readonly entries = new Map<number, SocketOwner & { generation: number }>();
  private readonly waiters: Waiter[] = [];
  private readonly recent: number[] = [];
  private scanning = false;
  private scanTimer: NodeJS.Timeout | undefined;
  private lastScanStart = -Infinity;
  private generation = 0;
  private closed = false;
  private readonly maxEntries: number;
  private readonly minInterval: number;
  private readonly yieldEvery: number;
  private readonly recentMax: number;
  private readonly probeMax: number;
  private readonly livenessTtl: number;
  /** The fd a recent owner's last socket was found at: its next one often takes it again. */
  private readonly lastFd = new Map<number, number>();
  /** The processes the last full scan listed: any other pid is newer. */
  private scannedPids = new Set<number>();
  private readonly now: () => number;
  private readonly cgroups: CgroupIndex | undefined;
  readonly stats: SocketOwnerIndexStats = {
    scans: 0,
    hits: 0,
    misses: 0,
    probeHits: 0,
    processesScanned: 0,
    processesProbed: 0,
    fdHits: 0,
    entries: 0,
  };

  constructor(
    private readonly proc: ProcReader,
    options: SocketOwnerIndexOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? 65536;
    this.minInterval = options.minScanIntervalMs ?? 50;
    this.yieldEvery = Math.max(1, options.yieldEvery ?? 16);
    this.recentMax = options.recentOwners ?? 32;
    this.probeMax = Math.max(0, options.probeRecent ?? 4);
    this.livenessTtl = Math.max(0, options.livenessTtlMs ?? 250);
    this.now = options.now ?? (() => performance.now());
    this.cgroups = options.cgroups;
  }

  /** The owner remembered for an inode, checked to be alive (no scan). */
  peek(inode: number): SocketOwner | null {
    const e = this.entries.get(inode);
    if (!e) return null;
    if (this.proc.recentStartTime(e.pid, this.livenessTtl) !== e.startTime) {
      this.forgetPid(e.pid);
      return null;
    }
    return { pid: e.pid, startTime: e.startTime };
  }

  /** The process holding the socket, scanning /proc on a miss; null when no
   * process holds it (closed, or held only by a process we cannot see). */
  async ownerOf(inode: number, hint: OwnerLookupHint = {}): Promise<SocketOwner | null> {
    if (this.closed) throw new Error('SocketOwnerIndex is closed');
    const known = this.peek(inode);
    if (known) {
      this.stats.hits++;
      this.touch(known.pid);
      return known;
    }
    this.stats.misses++;
    // A new socket is most often opened by a process that opened the last
    // ones (a browser, a client making one connection after another): read
    // those few processes' fds at once instead of waiting for the next
    // rate-limited full scan, which would add up to minScanIntervalMs to
    // every sequential connection.
    const probed = this.probeRecent(inode);
    if (probed) {
      this.stats.probeHits++;
      return probed;
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({
        inode,
        uid: hint.uid,
        cgroupId: hint.cgroupId,
        after: this.stats.scans,
        resolve,
        reject,
      });
      this.schedule();
    });
  }

  /**
   * Reads every process's sockets now, unless a scan has run already: a helper that
   * does this at start answers its first connections from the index (and probes
   * after), instead of holding the first one for a whole scan.
   */
  async prime(): Promise<void> {
    if (this.closed || this.stats.scans > 0 || this.scanning) return;
    await this.scan();
  }

  /** Drops every socket of a process (it exited). */
  forgetPid(pid: number): void {
    for (const [inode, e] of this.entries) if (e.pid === pid) this.entries.delete(inode);
    const i = this.recent.indexOf(pid);
    if (i >= 0) this.recent.splice(i, 1);
    this.lastFd.delete(pid);
    this.stats.entries = this.entries.size;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Rejects waiting lookups; a running scan stops at its next yield. */
  close(): void {
    this.closed = true;
    if (this.scanTimer) clearTimeout(this.scanTimer);
    const error = new Error('SocketOwnerIndex closed');
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  private probeRecent(inode: number): SocketOwner | null {
    // Before the first full scan every process is unknown: that scan is not
    // rate-limited, so there is nothing to gain.
    if (this.probeMax === 0 || this.scannedPids.size === 0) return null;
    // The last owner first (one process opening connection after connection), then
    // the others least recent first: of several processes taking turns, the one that
    // waited longest is the likeliest to be next (in the peer benchmark's 4 clients,
    // 3.7 processes read per miss in most-recent order).
    const head = this.recent[0];
    const others = this.recent.slice(1, this.probeMax).reverse();
    const candidates = head === undefined ? others : [head, ...others];
    // A closed socket's fd is the lowest free one, which the next socket takes: one
    // readlink per candidate before reading any candidate's whole fd table.
    for (const pid of candidates) {
      const fd = this.lastFd.get(pid);
      if (fd === undefined) continue;
      const at = this.proc.socketAt(pid, fd);
      if (at === null) continue;
      const startTime = this.proc.recentStartTime(pid, this.livenessTtl);
      if (startTime === null) continue;
      // Another socket there is that process's next one: remembered, its own lookup
      // then needs no read at all (processes taking turns).
      this.remember(at, { pid, startTime });
      if (at !== inode) continue;
      this.stats.fdHits++;
      this.touch(pid);
      return { pid, startTime };
    }
    for (const pid of candidates) {
      const owner = this.probe(pid, inode);
      if (owner) return owner;
    }
    // Then processes that started since the last full scan (a fresh
    // process's first connection), newest first. Listing /proc costs as much
    // as reading a few processes, so only after the recent owners missed.
    const fresh = this.proc
      .pids()
      .filter((pid) => !this.scannedPids.has(pid))
      .sort((a, b) => b - a)
      .slice(0, this.probeMax * 4);
    for (const pid of fresh) {
      const owner = this.probe(pid, inode);
      if (owner) return owner;
    }
    return null;
  }

  /** Reads one process's fds until `inode` shows up; remembers the sockets it read. */
  private probe(pid: number, inode: number): SocketOwner | null {
    const seen: number[] = [];
    this.stats.processesProbed++;
    const holds = this.proc.holdsSocket(pid, inode, (i, fd) => {
      seen.push(i);
      if (i === inode) setNewest(this.lastFd, pid, fd, this.recentMax * 4);
    });
    if (seen.length === 0) return null;
    const startTime = this.proc.recentStartTime(pid, this.livenessTtl);
    if (startTime === null) return null;
    for (const i of seen) this.remember(i, { pid, startTime });
    if (!holds) return null;
    this.touch(pid);
    return { pid, startTime };
  }

  private touch(pid: number): void {
    const i = this.recent.indexOf(pid);
    if (i === 0) return;
    if (i > 0) this.recent.splice(i, 1);
    this.recent.unshift(pid);
    if (this.recent.length > this.recentMax) this.recent.length = this.recentMax;
  }

  private schedule(): void {
    if (this.scanning || this.scanTimer || this.closed) return;
    const wait = Math.max(0, this.lastScanStart + this.minInterval - this.now());
    this.scanTimer = setTimeout(() => {
      this.scanTimer = undefined;
      this.scan().catch((error: Error) => {
        for (const w of this.waiters.splice(0)) w.reject(error);
      });
    }, wait);
  }

  private remember(inode: number, owner: SocketOwner): void {
    // A socket shared after fork() is held by several processes: the first
    // one this scan met (the one waiting lookups were answered with) stays.
    const known = this.entries.get(inode);
    if (known && known.generation === this.generation && known.pid !== owner.pid) return;
    setNewest(this.entries, inode, { ...owner, generation: this.generation }, this.maxEntries);
  }

  /** Scan order: recent owners, the processes in a waiting socket's cgroup,
   * those of its uid, then the rest. */
  private order(pids: number[]): number[] {
    const uids = new Set<number>();
    const cgroupIds = new Set<bigint>();
    for (const w of this.waiters) {
      if (w.uid !== undefined) uids.add(w.uid);
      if (w.cgroupId !== undefined) cgroupIds.add(w.cgroupId);
    }
    const all = new Set(pids);
    const first = this.recent.filter((p) => all.has(p));
    if (this.cgroups) {
      // Newest first here too: a big cgroup (the root one) then costs no
      // more than the plain order.
      const inCgroup: number[] = [];
      for (const id of cgroupIds)
        for (const p of this.cgroups.pidsOf(id) ?? []) if (all.has(p)) inCgroup.push(p);
      first.push(...inCgroup.sort((a, b) => b - a));
    }
    const seen = new Set(first);
    first.length = 0;
    first.push(...seen); // a recent owner can be in the cgroup too
    const sameUid: number[] = [];
    const rest: number[] = [];
    for (const pid of pids) {
      if (seen.has(pid)) continue;
      if (uids.size > 0 && uids.has(this.proc.ownerUid(pid) ?? -1)) sameUid.push(pid);
      else rest.push(pid);
    }
    // Newer processes (higher pids, unless pids wrapped) open most new sockets.
    sameUid.sort((a, b) => b - a);
    rest.sort((a, b) => b - a);
    return [...first, ...sameUid, ...rest];
  }

  private async scan(): Promise<void> {
    this.scanning = true;
    this.lastScanStart = this.now();
    const scanNumber = ++this.stats.scans;
    const generation = ++this.generation;
    try {
      const pids = this.order(this.proc.pids());
      this.scannedPids = new Set(pids);
      let sinceYield = 0;
      for (const pid of pids) {
        if (this.closed) return;
        const inodes = this.proc.socketInodes(pid);
        this.stats.processesScanned++;
        if (inodes && inodes.length > 0) {
          const startTime = this.proc.startTime(pid);
          if (startTime !== null) {
            for (const inode of inodes) this.remember(inode, { pid, startTime });
            this.answer(inodes, { pid, startTime });
          }
        }
        if (++sinceYield >= this.yieldEvery) {
          sinceYield = 0;
          await nextTurn();
        }
      }
      // A complete scan saw every live socket: older entries are closed sockets.
      for (const [inode, e] of this.entries)
        if (e.generation < generation) this.entries.delete(inode);
      // Waiters that were there before this scan started have no owner.
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i]!;
        if (w.after < scanNumber) {
          this.waiters.splice(i, 1);
          w.resolve(null);
        }
      }
    } finally {
      this.scanning = false;
      this.stats.entries = this.entries.size;
      if (this.waiters.length > 0) this.schedule();
    }
  }

  private answer(inodes: number[], owner: SocketOwner): void {
    if (this.waiters.length === 0) return;
    let hit = false;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (inodes.includes(w.inode)) {
        this.waiters.splice(i, 1);
        w.resolve(owner);
        hit = true;
      }
    }
    if (hit) this.touch(owner.pid);
  }
}
