/**
 * Conntrack byte/packet accounting and flow timestamps for the helper's network
 * namespace. `net.netfilter.nf_conntrack_acct` and `nf_conntrack_timestamp` are off by
 * default, and the kernel attaches the counters and the start time to an entry only when
 * the entry is created while they are on: without them every flow shows "–" for bytes,
 * packets and age. Both sysctls are per network namespace.
 *
 * `ConntrackAccounting.start` reads them, turns on those that are off (unless told not to),
 * remembers the previous values and `restore()` writes them back at a clean stop. The
 * previous values are also written to a marker file (`marker`, in the state directory)
 * until they are restored: a helper killed before restore() (kill -9, a crash, power
 * loss) leaves the marker, and the next start takes those values as its own to restore
 * (or, with accounting turned off, writes them back at once).
 *
 * In the helper's own namespace the files of /proc/sys are written directly. For
 * `--netns NAME` the process never changes namespace (DESIGN.md section 3), and /proc/sys
 * shows the namespace of the task that opens it, so a short-lived `ip netns exec NAME`
 * child reads (`cat`) and writes (`tee`) them, like the firewall commands.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { atomicWrite, nodeFs } from '../common/atomic-write.js';
import { Conntrack } from '../conntrack/index.js';
import { execFileRunner, inNetns, type CommandRunner } from '../firewall/exec.js';
import type { ConntrackAccounting as AccountingState } from '../protocol/model.js';
import type { Logger } from './log.js';

export const ACCT_SYSCTL = 'net/netfilter/nf_conntrack_acct';
export const TIMESTAMP_SYSCTL = 'net/netfilter/nf_conntrack_timestamp';

/** Reads and writes sysctls of one network namespace, by /proc/sys path ("net/netfilter/..."). */
export interface SysctlAccess {
  /** The value (trimmed); throws when it cannot be read (no nf_conntrack, no /proc). */
  read(key: string): Promise<string>;
  write(key: string, value: string): Promise<void>;
}

/**
 * /proc/sys of this process's own namespace. `root` is a test seam: unit tests pass a
 * temporary copy of the tree, so they never touch the host's sysctls.
 */
export function procSysAccess(root = '/proc/sys'): SysctlAccess {
  return {
    read: async (key) => (await readFile(join(root, key), 'utf8')).trim(),
    // One write(2) of the whole value, as sysctl(8) does.
    write: (key, value) => writeFile(join(root, key), `${value}\n`),
  };
}

/** The sysctls of the `ip netns` namespace `netns`, through `ip netns exec NAME cat|tee`. */
export function netnsSysctlAccess(
  netns: string,
  run: CommandRunner = execFileRunner,
): SysctlAccess {
  const file = (key: string): string => join('/proc/sys', key);
  return {
    read: async (key) => (await run(inNetns(netns, ['cat', file(key)]))).stdout.trim(),
    write: async (key, value) => {
      await run(inNetns(netns, ['tee', file(key)]), `${value}\n`);
    },
  };
}

/**
 * The marker file's name in the state directory, one per namespace (a helper for
 * `--netns blue` and one for the host namespace may share a state directory).
 */
export function accountingMarkerName(netns: string | undefined): string {
  return netns === undefined
    ? 'conntrack-sysctls.json'
    : `conntrack-sysctls.netns-${encodeURIComponent(netns)}.json`;
}

/** The access for the namespace the helper works in. */
export function sysctlAccessFor(netns: string | undefined): SysctlAccess {
  return netns === undefined ? procSysAccess() : netnsSysctlAccess(netns);
}

/**
 * One ctnetlink request in the namespace: the kernel loads nf_conntrack (and its
 * per-namespace sysctls) on demand, and the helper may be the first to use it.
 */
export async function loadConntrack(netns: string | undefined): Promise<void> {
  const ct = Conntrack.open(netns !== undefined ? { netns } : {});
  try {
    await ct.globalStats();
  } finally {
    ct.close();
  }
}

export interface ConntrackAccountingOptions {
  access: SysctlAccess;
  /** Run first (loadConntrack); a failure is logged and the sysctls are read anyway. */
  prepare?: () => Promise<void>;
  /** Turn them on (and restore them at stop); false: only read and report them. */
  enable: boolean;
  log: Logger;
  /**
   * A file (in an existing directory) holding the values this helper changed until it
   * restores them, so that the next start can restore what a killed helper left on.
   */
  marker?: string;
}

/** The values a marker file records ({ "net/netfilter/...": "0" }); null when absent. */
async function readMarker(path: string, log: Logger): Promise<Map<string, string> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    log.warn(COMPONENT, `cannot read ${path}: ${(error as Error).message}`);
    return null;
  }
  const out = new Map<string, string>();
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object') throw new Error('not an object');
    for (const [key, value] of Object.entries(parsed)) {
      if ((key === ACCT_SYSCTL || key === TIMESTAMP_SYSCTL) && typeof value === 'string') {
        if (/^\d+$/u.test(value)) out.set(key, value);
      }
    }
  } catch (error) {
    log.warn(COMPONENT, `ignoring ${path}: ${(error as Error).message}`);
    return null;
  }
  return out;
}

async function writeMarker(path: string, values: Map<string, string>): Promise<void> {
  await atomicWrite(
    nodeFs,
    dirname(path),
    basename(path),
    JSON.stringify(Object.fromEntries(values)),
  );
}

async function removeMarker(path: string, log: Logger): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.warn(COMPONENT, `cannot remove ${path}: ${(error as Error).message}`);
    }
  }
}

const COMPONENT = 'conntrack';

function flag(value: string | null): boolean | null {
  if (value === null) return null;
  // nf_conntrack_acct and _timestamp are booleans; any non-zero value is on.
  return /^\d+$/u.test(value) ? value !== '0' : null;
}

export class ConntrackAccounting {
  private restoring: Promise<void> | undefined;

  private constructor(
    private readonly options: ConntrackAccountingOptions,
    private readonly values: Map<string, string | null>,
    /** The sysctls this helper changed, with their previous value. */
    private readonly previous: Map<string, string>,
    /** Values a killed helper left that could not be restored at start (kept in the marker). */
    private readonly unresolved: Map<string, string>,
  ) {}

  /** Reads both sysctls and, when asked, turns on those that are off. Never throws. */
  static async start(options: ConntrackAccountingOptions): Promise<ConntrackAccounting> {
    const { access, log } = options;
    await options.prepare?.().catch((error: unknown) => {
      log.warn(COMPONENT, `cannot load nf_conntrack: ${(error as Error).message}`);
    });
    const values = new Map<string, string | null>();
    const previous = new Map<string, string>();
    const marker = options.marker;
    // What a previous helper changed and never restored (it was killed): ours to restore.
    const leftOver = marker !== undefined ? await readMarker(marker, log) : null;
    /** Left-over values not restored now (unreadable, or the write failed): kept in the marker. */
    const unresolved = new Map<string, string>();
    const toEnable: string[] = [];
    for (const key of [ACCT_SYSCTL, TIMESTAMP_SYSCTL]) {
      let value: string | null;
      try {
        value = await access.read(key);
      } catch (error) {
        log.warn(COMPONENT, `cannot read ${key}: ${(error as Error).message}`);
        value = null;
      }
      values.set(key, value);
      const before = leftOver?.get(key);
      if (before !== undefined && value === null) unresolved.set(key, before);
      if (before !== undefined && value !== null) {
        if (options.enable) {
          log.info(COMPONENT, `a previous run left ${key} changed: restored at stop`, { before });
          previous.set(key, before);
        } else {
          try {
            await access.write(key, before);
            values.set(key, before);
            log.info(COMPONENT, `restored ${key} that a previous run left changed`, {
              value: before,
            });
          } catch (error) {
            unresolved.set(key, before);
            log.error(COMPONENT, `cannot restore ${key}: ${(error as Error).message}`);
          }
          continue;
        }
      }
      if (!options.enable || value === null || flag(value) !== false) continue;
      toEnable.push(key);
      if (!previous.has(key)) previous.set(key, value);
    }
    // The marker first, then the writes: a helper killed in between leaves a marker
    // that names a value not changed yet, which restoring rewrites harmlessly.
    const record = async (): Promise<void> => {
      if (marker === undefined) return;
      try {
        const all = new Map([...unresolved, ...previous]);
        if (all.size > 0) await writeMarker(marker, all);
        else if (leftOver !== null || toEnable.length > 0) await removeMarker(marker, log);
      } catch (error) {
        // Restoring at a clean stop still works; only a crash would leave them on.
        log.warn(COMPONENT, `cannot write ${marker}: ${(error as Error).message}`);
      }
    };
    await record();
    let refused = false;
    for (const key of toEnable) {
      try {
        await access.write(key, '1');
        values.set(key, '1');
      } catch (error) {
        // Under systemd's ProtectKernelTunables /proc/sys is read-only (EROFS): the
        // helper works on, the flows just have no counters.
        log.warn(COMPONENT, `cannot turn on ${key}: ${(error as Error).message}`);
        if (leftOver?.get(key) === undefined) previous.delete(key);
        refused = true;
      }
    }
    if (refused) await record();
    const self = new ConntrackAccounting(options, values, previous, unresolved);
    log.info(COMPONENT, 'accounting', {
      accounting: self.state.accounting,
      timestamps: self.state.timestamps,
      enabledByHelper: self.state.enabledByHelper,
    });
    return self;
  }

  /** HelperState.conntrack. */
  get state(): AccountingState {
    return {
      accounting: flag(this.values.get(ACCT_SYSCTL) ?? null),
      timestamps: flag(this.values.get(TIMESTAMP_SYSCTL) ?? null),
      enabledByHelper: this.previous.size > 0,
      optOut: !this.options.enable,
    };
  }

  /** Counters or start times are kept on new entries. */
  get active(): boolean {
    const s = this.state;
    return s.accounting === true || s.timestamps === true;
  }

  /** Writes back the values this helper changed. Idempotent; failures are logged. */
  restore(): Promise<void> {
    this.restoring ??= (async () => {
      let failed = false;
      for (const [key, value] of this.previous) {
        try {
          await this.options.access.write(key, value);
          this.values.set(key, value);
          this.options.log.info(COMPONENT, `restored ${key}`, { value });
        } catch (error) {
          failed = true;
          this.options.log.error(COMPONENT, `cannot restore ${key}: ${(error as Error).message}`);
        }
      }
      // Kept when a write failed: the next start tries again.
      const { marker, log } = this.options;
      if (marker !== undefined && this.previous.size > 0 && !failed) {
        if (this.unresolved.size === 0) await removeMarker(marker, log);
        else {
          await writeMarker(marker, this.unresolved).catch((error: unknown) => {
            log.warn(COMPONENT, `cannot write ${marker}: ${(error as Error).message}`);
          });
        }
      }
      this.previous.clear();
    })();
    return this.restoring;
  }
}
