/**
 * Reading processes from /proc (the root is injectable, so that unit tests
 * run on a fixture tree). Reads are synchronous: procfs answers from memory
 * in microseconds, and a thread-pool round trip per file would cost more
 * than the read. Callers that read many processes yield between them.
 */
import {
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
} from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setNewest } from '../common/bounded-map.js';
import { loadNativeBinding } from '../native/load.js';
import { errnoName } from '../netlink/errno.js';
import {
  parseCgroup,
  parseCmdline,
  parseFlatpakInfo,
  parsePasswd,
  parseStat,
  parseStatus,
  socketInode,
} from './proc-parse.js';
import type { ProcessInfo } from './types.js';

/** /proc content that does not parse: the kernel's format changed, or the
 * root points somewhere else. Never thrown for a process that went away. */
export class ProcFormatError extends Error {
  override readonly name = 'ProcFormatError';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String((error as { code: unknown }).code)
    : undefined;
}

/** The process (or the fd) is gone, or was never there. */
function isGone(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ESRCH' || code === 'ENOTDIR';
}

/** Not allowed to look (another user's process without privileges). */
function isDenied(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'EACCES' || code === 'EPERM';
}

/** A /proc read failed for another reason than a process or fd that went away. */
export class ProcReadError extends Error {
  override readonly name = 'ProcReadError';
  readonly code: string;
  constructor(
    readonly path: string,
    readonly errno: number,
  ) {
    const code = errnoName(errno);
    super(`readlink ${path}: ${code}`);
    this.code = code;
  }
}

/**
 * readlink of a /proc/PID/fd/N link: the inode of a "socket:[inode]" target,
 * 0 for any other target, -errno when it cannot be read. The native addon's
 * does it without throwing; this one is the fallback where the addon is not
 * built (fs errors cost microseconds to throw).
 */
export type SocketLinkReader = (path: string) => number;

export function fsSocketLink(path: string): number {
  let target: string;
  try {
    target = readlinkSync(path);
  } catch (error) {
    const errno = (error as { errno?: unknown }).errno;
    // Node's errno is negative (libuv's convention).
    if (typeof errno === 'number' && errno !== 0) return -Math.abs(errno);
    throw error;
  }
  return socketInode(target) ?? 0;
}

function defaultSocketLink(): SocketLinkReader {
  try {
    const native = loadNativeBinding();
    return (path) => native.socketLinkInode(path);
  } catch {
    // No addon (a unit test without a build, another platform): fs is correct, only slower.
    return fsSocketLink;
  }
}

const { ENOENT, ESRCH, ENOTDIR, EACCES, EPERM } = constants.errno;

// One buffer for the small files (stat, status, cgroup): open/read/close
// into it costs a third less than readFileSync, which also fstat()s and
// allocates; procfs reports size 0, so the size is of no use anyway.
const small = Buffer.allocUnsafeSlow(16384);

/** A whole file as text: the shared buffer when it fits, else readFileSync. */
function readText(path: string): string {
  const fd = openSync(path, 'r');
  let length = 0;
  try {
    for (;;) {
      const n = readSync(fd, small, length, small.length - length, null);
      if (n === 0) return small.toString('utf8', 0, length);
      length += n;
      if (length === small.length) break;
    }
  } finally {
    closeSync(fd);
  }
  return readFileSync(path, 'utf8'); // larger than the buffer (a long cmdline)
}

/** Reads a file, or undefined when the process is gone; other errors propagate. */
function readOrGone(path: string): string | undefined {
  try {
    return readText(path);
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

/** uid -> name from a passwd file, reloaded when the file changes. */
export class PasswdCache {
  private names = new Map<number, string>();
  private stamp = '';

  constructor(readonly path = '/etc/passwd') {}

  /** The user's name, or null. One stat() per call to notice changes. */
  name(uid: number): string | null {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (error) {
      if (!isGone(error)) throw error;
      stamp = 'missing';
    }
    if (stamp !== this.stamp) {
      const text = stamp === 'missing' ? '' : (readOrGone(this.path) ?? '');
      this.names = parsePasswd(text);
      this.stamp = stamp;
    }
    return this.names.get(uid) ?? null;
  }
}

export interface ProcReaderOptions {
  /** Where procfs is mounted (default /proc). */
  root?: string;
  passwd?: PasswdCache;
  /** How fd links are read (default: the native addon's, else fs). */
  socketLink?: SocketLinkReader;
}

/** Start times remembered by recentStartTime() (the oldest are dropped first). */
const START_TIME_CACHE = 4096;

/** Processes, as /proc shows them. */
export class ProcReader {
  readonly root: string;
  private readonly base: string;
  readonly passwd: PasswdCache;
  private readonly socketLink: SocketLinkReader;
  private readonly startTimes = new Map<number, { value: number | null; at: number }>();

  constructor(options: ProcReaderOptions = {}) {
    this.root = options.root ?? '/proc';
    // Paths on the per-connection path are built by concatenation (path.join
    // normalises every call): a root without trailing slashes keeps them right.
    this.base = this.root.replace(/\/+$/, '') || '/';
    this.passwd = options.passwd ?? new PasswdCache();
    this.socketLink = options.socketLink ?? defaultSocketLink();
  }

  /**
   * startTime(), reusing a reading at most `maxAgeMs` old. The verdict loop
   * checks the owner of every new connection this way; one open/read/close
   * of /proc/PID/stat per check was a tenth of the helper's CPU at 2,500
   * connections/s. A pid is reused only after the whole pid space has
   * wrapped, which takes far longer than the few hundred ms this is used with.
   */
  recentStartTime(pid: number, maxAgeMs: number): number | null {
    const now = performance.now();
    const known = this.startTimes.get(pid);
    if (known && now - known.at <= maxAgeMs) return known.value;
    return this.startTime(pid);
  }

  /** Every process id (numeric entries of the root). */
  pids(): number[] {
    const out: number[] = [];
    for (const name of readdirSync(this.root)) {
      const c = name.charCodeAt(0);
      if (c >= 48 && c <= 57 && /^\d+$/.test(name)) out.push(Number(name));
    }
    return out;
  }

  /** The start time (stat field 22), or null when the process is gone: with
   * the pid it identifies a process across pid reuse. */
  startTime(pid: number): number | null {
    const path = `${this.base}/${pid}/stat`;
    const text = readOrGone(path);
    let value: number | null = null;
    if (text !== undefined) {
      const stat = parseStat(text);
      if (!stat) throw new ProcFormatError(path, 'unparseable stat line');
      value = stat.startTime;
    }
    // Every reading refreshes what recentStartTime() reuses.
    setNewest(this.startTimes, pid, { value, at: performance.now() }, START_TIME_CACHE);
    return value;
  }

  /** The owner uid of /proc/PID (the process's effective uid), null if gone. */
  ownerUid(pid: number): number | null {
    try {
      return statSync(join(this.root, String(pid))).uid;
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
  }

  /** The socket inodes among the process's open files; null when the process
   * is gone or its fds cannot be read (another user's, without privileges). */
  socketInodes(pid: number): number[] | null {
    const fds = this.fdNumbers(pid);
    if (!fds) return null;
    const out: number[] = [];
    for (const fd of fds) {
      const inode = this.socketAt(pid, fd);
      if (inode !== null) out.push(inode);
    }
    return out;
  }

  /**
   * Whether the process holds socket `inode`, reading its fds highest first
   * and stopping at the match (a new socket takes the lowest free fd, often
   * the one the previous socket just closed, and seldom one below stdio).
   * `onSocket` sees every socket inode read, so the caller can remember them.
   * null when the process is gone or its fds cannot be read.
   */
  holdsSocket(
    pid: number,
    inode: number,
    onSocket?: (inode: number, fd: number) => void,
  ): boolean | null {
    const fds = this.fdNumbers(pid);
    if (!fds) return null;
    for (const fd of fds.sort((a, b) => b - a)) {
      const found = this.socketAt(pid, fd);
      if (found === null) continue;
      onSocket?.(found, fd);
      if (found === inode) return true;
    }
    return false;
  }

  /** The socket inode behind one fd of a process, or null (no such fd, not a socket, gone). */
  socketAt(pid: number, fd: number): number | null {
    const path = `${this.base}/${pid}/fd/${fd}`;
    const result = this.socketLink(path);
    if (result > 0) return result;
    if (result === 0) return null;
    const errno = -result;
    // Closed meanwhile, the process gone, or another user's without privileges.
    if (errno === ENOENT || errno === ESRCH || errno === ENOTDIR) return null;
    if (errno === EACCES || errno === EPERM) return null;
    throw new ProcReadError(path, errno);
  }

  /** The process's open fd numbers, or null when it is gone or they cannot be listed. */
  private fdNumbers(pid: number): number[] | null {
    try {
      return readdirSync(`${this.base}/${pid}/fd`).map(Number);
    } catch (error) {
      if (isGone(error) || isDenied(error)) return null;
      throw error;
    }
  }

  /** Everything about a process, or null when it is gone (or exits while it
   * is read: a half-read process is never returned). */
  process(pid: number): ProcessInfo | null {
    const dir = join(this.root, String(pid));
    const statText = readOrGone(join(dir, 'stat'));
    if (statText === undefined) return null;
    const stat = parseStat(statText);
    if (!stat) throw new ProcFormatError(join(dir, 'stat'), 'unparseable stat line');
    const statusText = readOrGone(join(dir, 'status'));
    if (statusText === undefined) return null;
    const status = parseStatus(statusText);
    if (!status) throw new ProcFormatError(join(dir, 'status'), 'no Uid:/Gid: lines');
    const cmdline = readOrGone(join(dir, 'cmdline'));
    const cgroupText = readOrGone(join(dir, 'cgroup'));
    if (cmdline === undefined || cgroupText === undefined) return null;
    let exe: string | null = null;
    try {
      exe = readlinkSync(join(dir, 'exe'));
    } catch (error) {
      // Kernel threads have none; zombies and other users' processes deny it.
      if (!isGone(error) && !isDenied(error)) throw error;
    }
    const cgroup = parseCgroup(cgroupText);
    let app = cgroup?.app ?? null;
    // The flatpak's own metadata, seen through the process's root.
    let flatpak: string | undefined;
    try {
      flatpak = parseFlatpakInfo(readFileSync(join(dir, 'root', '.flatpak-info'), 'utf8'));
    } catch (error) {
      if (!isGone(error) && !isDenied(error)) throw error;
    }
    if (flatpak !== undefined) app = { kind: 'flatpak', id: flatpak };
    // Same start time after all reads: the pid was not reused meanwhile.
    if (this.startTime(pid) !== stat.startTime) return null;
    return {
      pid,
      ppid: stat.ppid,
      comm: stat.comm,
      exe,
      exeDeleted: exe !== null && exe.endsWith(' (deleted)'),
      cmdline: parseCmdline(cmdline),
      uid: status.uid,
      gid: status.gid,
      euid: status.euid,
      egid: status.egid,
      user: this.passwd.name(status.uid),
      startTime: stat.startTime,
      systemdUnit: cgroup?.systemdUnit ?? null,
      systemdUserUnit: cgroup?.systemdUserUnit ?? null,
      container: cgroup?.container ?? null,
      app,
    };
  }
}
