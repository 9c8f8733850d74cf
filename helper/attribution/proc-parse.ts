/**
 * Pure parsers for the /proc files attribution reads, and for /etc/passwd.
 * They take text and never throw: malformed input gives undefined (or is
 * skipped line by line), because a process can put nearly anything in its
 * comm, cmdline and cgroup path names, and a process can exit mid-read.
 */
import type { AppRef, ContainerRef } from './types.js';

/** The fields of /proc/PID/stat attribution needs. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** Field 22: start time in clock ticks after boot. */
  startTime: number;
}

const DECIMAL = /^\d+$/;

function nonNegativeInt(text: string | undefined): number | undefined {
  if (text === undefined || !DECIMAL.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * /proc/PID/stat: "pid (comm) state ppid ...". comm may hold spaces and
 * parentheses, so it runs to the last ')'.
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open <= 0 || close < open) return undefined;
  const pid = nonNegativeInt(text.slice(0, open));
  // After ") ": field 3 (state) onwards, single spaces.
  const rest = text
    .slice(close + 2)
    .trimEnd()
    .split(' ');
  const state = rest[0];
  const ppid = nonNegativeInt(rest[1]);
  const startTime = nonNegativeInt(rest[22 - 3]);
  if (pid === undefined || ppid === undefined || startTime === undefined || !state)
    return undefined;
  return { pid, comm: text.slice(open + 2, close), state, ppid, startTime };
}

export interface ProcStatus {
  uid: number;
  euid: number;
  gid: number;
  egid: number;
}

/** The Uid: and Gid: lines of /proc/PID/status (real, effective, saved, fs). */
export function parseStatus(text: string): ProcStatus | undefined {
  let uids: (number | undefined)[] | undefined;
  let gids: (number | undefined)[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('Uid:')) uids = line.slice(4).trim().split(/\s+/).map(nonNegativeInt);
    else if (line.startsWith('Gid:')) gids = line.slice(4).trim().split(/\s+/).map(nonNegativeInt);
    if (uids && gids) break;
  }
  const [uid, euid] = uids ?? [];
  const [gid, egid] = gids ?? [];
  if (uid === undefined || euid === undefined || gid === undefined || egid === undefined)
    return undefined;
  return { uid, euid, gid, egid };
}

/** /proc/PID/cmdline: NUL-separated argv. A process that rewrote it as one
 * string (setproctitle) gives one element. */
export function parseCmdline(text: string): string[] {
  if (text === '') return [];
  const parts = text.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** The inode in a /proc/PID/fd link target "socket:[12345]", else undefined. */
export function socketInode(target: string): number | undefined {
  if (!target.startsWith('socket:[') || !target.endsWith(']')) return undefined;
  return nonNegativeInt(target.slice(8, -1));
}

/** /etc/passwd: uid -> name; the first entry of a uid wins, as getpwuid does. */
export function parsePasswd(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-'))
      continue;
    const fields = line.split(':');
    if (fields.length < 7) continue;
    const name = fields[0]!;
    const uid = nonNegativeInt(fields[2]);
    if (name === '' || uid === undefined || out.has(uid)) continue;
    out.set(uid, name);
  }
  return out;
}

/** What a cgroup path says about a process. */
export interface CgroupInfo {
  /** The path used (cgroup v2, else the v1 name=systemd hierarchy). */
  path: string;
  systemdUnit: string | null;
  systemdUserUnit: string | null;
  container: ContainerRef | null;
  /** From the path alone: snap (authoritative) or flatpak (a hint; the
   * .flatpak-info file is the authority). */
  app: AppRef | null;
}

/** The cgroup path of a /proc/PID/cgroup file: the v2 entry ("0::/path")
 * unless it is the root and the v1 name=systemd hierarchy says more. */
export function cgroupPath(text: string): string | undefined {
  let v2: string | undefined;
  let systemd: string | undefined;
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const id = line.slice(0, a);
    const controllers = line.slice(a + 1, b);
    const path = line.slice(b + 1);
    if (!path.startsWith('/')) continue;
    if (id === '0' && controllers === '') v2 = path;
    else if (controllers === 'name=systemd') systemd = path;
  }
  if (v2 !== undefined && v2 !== '/') return v2;
  return systemd ?? v2;
}

const UNIT = /\.(service|scope)$/;
const USER_MANAGER = /^user@\d+\.service$/;
const HEX64 = /^[0-9a-f]{64}$/;

const SCOPE_CONTAINERS: [RegExp, ContainerRef['runtime']][] = [
  [/^docker-([0-9a-f]{64})\.scope$/, 'docker'],
  [/^libpod-([0-9a-f]{64})\.scope$/, 'podman'],
  [/^cri-containerd-([0-9a-f]{64})\.scope$/, 'containerd'],
  [/^crio-([0-9a-f]{64})\.scope$/, 'cri-o'],
];

/** A container id in the path: systemd-driver scopes (docker-ID.scope,
 * libpod-ID.scope, cri-containerd-ID.scope, crio-ID.scope) or cgroupfs-driver
 * directories (/docker/ID, /libpod_parent/libpod-ID, /kubepods.../ID). The
 * runtimes' conmon scopes (libpod-conmon-ID, crio-conmon-ID) are monitors
 * outside the container and are not matched. */
export function containerOf(components: readonly string[]): ContainerRef | null {
  for (let i = components.length - 1; i >= 0; i--) {
    const c = components[i]!;
    for (const [re, runtime] of SCOPE_CONTAINERS) {
      const m = re.exec(c);
      if (m) return { runtime, id: m[1]! };
    }
    if (c.startsWith('libpod-') && HEX64.test(c.slice(7)) && components[i - 1] === 'libpod_parent')
      return { runtime: 'podman', id: c.slice(7) };
    if (HEX64.test(c)) {
      const parent = components[i - 1] ?? '';
      if (parent === 'docker') return { runtime: 'docker', id: c };
      if (components.slice(0, i).some((p) => p.startsWith('kubepods')))
        return { runtime: 'kubernetes', id: c };
    }
  }
  return null;
}

/** snap.NAME.* units (snapd names every app and service so), and flatpak's
 * app-flatpak-APPID-NNN.scope. */
export function appFromCgroup(components: readonly string[]): AppRef | null {
  for (let i = components.length - 1; i >= 0; i--) {
    const c = components[i]!;
    const snap = /^snap\.([a-z0-9][a-z0-9-]*)\./.exec(c);
    if (snap) return { kind: 'snap', id: snap[1]! };
    const flatpak = /^app-flatpak-(.+)-\d+\.scope$/.exec(c);
    if (flatpak) return { kind: 'flatpak', id: flatpak[1]! };
  }
  return null;
}

/** systemd's view of the path: the unit (deepest *.service/*.scope, or the
 * user manager for anything under it) and the unit inside the user manager. */
export function unitsOf(components: readonly string[]): {
  systemdUnit: string | null;
  systemdUserUnit: string | null;
} {
  const manager = components.findIndex((c) => USER_MANAGER.test(c));
  const deepest = (from: number): string | null => {
    for (let i = components.length - 1; i >= from; i--)
      if (UNIT.test(components[i]!)) return components[i]!;
    return null;
  };
  if (manager >= 0) {
    return { systemdUnit: components[manager]!, systemdUserUnit: deepest(manager + 1) };
  }
  return { systemdUnit: deepest(0), systemdUserUnit: null };
}

/** Everything a /proc/PID/cgroup file tells; undefined if it has no path. */
export function parseCgroup(text: string): CgroupInfo | undefined {
  const path = cgroupPath(text);
  return path === undefined ? undefined : cgroupInfo(path);
}

/** What a cgroup path ("/user.slice/.../app-x.scope") says: units, container, app. */
export function cgroupInfo(path: string): CgroupInfo {
  const components = path.split('/').filter((c) => c !== '');
  return {
    path,
    ...unitsOf(components),
    container: containerOf(components),
    app: appFromCgroup(components),
  };
}

/** The `name=` key of the [Application] group of a flatpak's /.flatpak-info
 * (a GKeyFile: groups in brackets, key=value lines, # comments). */
export function parseFlatpakInfo(text: string): string | undefined {
  let group = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[') && line.endsWith(']')) {
      group = line.slice(1, -1);
      continue;
    }
    if (group !== 'Application') continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    if (line.slice(0, eq).trim() === 'name') {
      const value = line.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

/** Octal escapes of /proc/PID/mountinfo paths (\040 for a space). */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

/** The mount point of the cgroup v2 hierarchy in a /proc/PID/mountinfo
 * ("ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE ..."). */
export function cgroup2Mount(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields[dash + 1] !== 'cgroup2') continue;
    return unescapeMountPath(fields[4]!);
  }
  return undefined;
}

/** Process ids in a cgroup.procs file (one per line). */
export function parsePidList(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const pid = nonNegativeInt(line.trim());
    if (pid !== undefined && pid > 0) out.push(pid);
  }
  return out;
}
