/**
 * cgroup v2 id -> the processes in that cgroup. sock_diag reports the cgroup
 * of a socket's creator (INET_DIAG_CGROUP_ID, the inode number of the cgroup
 * directory); on a systemd desktop every app has its own scope, so the
 * processes of that cgroup are the few likely owners, read before any other
 * in a /proc scan.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Mount, parsePidList } from './proc-parse.js';

export interface CgroupIndexOptions {
  /** Where cgroup v2 is mounted; default: found in /proc/self/mountinfo. */
  root?: string;
  /** A re-walk of the tree on an unknown id happens at most this often (ms, default 1000). */
  minRefreshMs?: number;
  /** Directories walked at most (default 20000): a bound on a runaway tree. */
  maxCgroups?: number;
  now?: () => number;
}

function isGone(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV';
}

/** The cgroup v2 mount point from this process's mountinfo, if any. */
export function findCgroup2Root(mountinfo = '/proc/self/mountinfo'): string | undefined {
  try {
    return cgroup2Mount(readFileSync(mountinfo, 'utf8'));
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

export class CgroupIndex {
  readonly root: string | undefined;
  private paths = new Map<bigint, string>();
  private lastWalk = -Infinity;
  private readonly minRefresh: number;
  private readonly maxCgroups: number;
  private readonly now: () => number;

  constructor(options: CgroupIndexOptions = {}) {
    this.root = options.root ?? findCgroup2Root();
    this.minRefresh = options.minRefreshMs ?? 1000;
    this.maxCgroups = options.maxCgroups ?? 20000;
    this.now = options.now ?? (() => performance.now());
  }

  /** The cgroup's directory (relative to the root, '/' for the root), or
   * undefined when unknown even after a (rate-limited) re-walk. */
  pathOf(id: bigint): string | undefined {
    if (this.root === undefined) return undefined;
    let path = this.paths.get(id);
    if (path === undefined && this.now() - this.lastWalk >= this.minRefresh) {
      this.walk();
      path = this.paths.get(id);
    }
    return path;
  }

  /** The processes in the cgroup with this id (not its children), or null. */
  pidsOf(id: bigint): number[] | null {
    const path = this.pathOf(id);
    if (path === undefined || this.root === undefined) return null;
    try {
      return parsePidList(readFileSync(join(this.root, path, 'cgroup.procs'), 'utf8'));
    } catch (error) {
      if (!isGone(error)) throw error;
      this.paths.delete(id); // removed since the walk
      return null;
    }
  }

  private walk(): void {
    this.lastWalk = this.now();
    const root = this.root!;
    const paths = new Map<bigint, string>();
    const pending = ['/'];
    while (pending.length > 0 && paths.size < this.maxCgroups) {
      const rel = pending.pop()!;
      const dir = join(root, rel);
      let entries;
      try {
        paths.set(statSync(dir, { bigint: true }).ino, rel);
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (error) {
        if (isGone(error)) continue; // removed while walking
        throw error;
      }
      for (const e of entries) if (e.isDirectory()) pending.push(join(rel, e.name));
    }
    this.paths = paths;
  }
}
