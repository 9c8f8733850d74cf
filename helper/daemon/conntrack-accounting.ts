/**
 * Conntrack byte/packet accounting and flow timestamps for the helper's network
 * namespace. `net.netfilter.nf_conntrack_acct` and `nf_conntrack_timestamp` are off by
 * default, and the kernel attaches the counters and the start time to an entry only when
 * the entry is created while they are on: without them every flow shows "–" for bytes,
 * packets and age. Both sysctls are per network namespace.
 *
 * `ConntrackAccounting.start` reads them, turns on those that are off (unless told not to),
 * remembers the previous values and `restore()` writes them back at a clean stop. A crash
 * leaves them on, which costs a few bytes per conntrack entry and changes nothing else.
 *
 * In the helper's own namespace the files of /proc/sys are written directly. For
 * `--netns NAME` the process never changes namespace (DESIGN.md section 3), and /proc/sys
 * shows the namespace of the task that opens it, so a short-lived `ip netns exec NAME`
 * child reads (`cat`) and writes (`tee`) them, like the firewall commands.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
  ) {}

  /** Reads both sysctls and, when asked, turns on those that are off. Never throws. */
  static async start(options: ConntrackAccountingOptions): Promise<ConntrackAccounting> {
    const { access, log } = options;
    await options.prepare?.().catch((error: unknown) => {
      log.warn(COMPONENT, `cannot load nf_conntrack: ${(error as Error).message}`);
    });
    const values = new Map<string, string | null>();
    const previous = new Map<string, string>();
    for (const key of [ACCT_SYSCTL, TIMESTAMP_SYSCTL]) {
      let value: string | null;
      try {
        value = await access.read(key);
      } catch (error) {
        log.warn(COMPONENT, `cannot read ${key}: ${(error as Error).message}`);
        value = null;
      }
      values.set(key, value);
      if (!options.enable || value === null || flag(value) !== false) continue;
      try {
        await access.write(key, '1');
        previous.set(key, value);
        values.set(key, '1');
      } catch (error) {
        // Under systemd's ProtectKernelTunables /proc/sys is read-only (EROFS): the
        // helper works on, the flows just have no counters.
        log.warn(COMPONENT, `cannot turn on ${key}: ${(error as Error).message}`);
      }
    }
    const self = new ConntrackAccounting(options, values, previous);
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
      for (const [key, value] of this.previous) {
        try {
          await this.options.access.write(key, value);
          this.values.set(key, value);
          this.options.log.info(COMPONENT, `restored ${key}`, { value });
        } catch (error) {
          this.options.log.error(COMPONENT, `cannot restore ${key}: ${(error as Error).message}`);
        }
      }
      this.previous.clear();
    })();
    return this.restoring;
  }
}
