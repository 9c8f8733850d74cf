import type { NetlinkConnection } from '../netlink/connection.js';
import { NetlinkError } from '../netlink/errors.js';
import * as Q from './constants.js';
import { encodeConfig } from './encode.js';
import { NfQueueError } from './errors.js';

export interface NfQueueFlags {
  /** NFQA_CFG_F_FAIL_OPEN: accept packets when the queue is full instead of dropping them. */
  failOpen?: boolean;
  /** NFQA_CFG_F_CONNTRACK: send the packet's conntrack entry (NFQA_CT, NFQA_CT_INFO). */
  conntrack?: boolean;
  /** NFQA_CFG_F_GSO: deliver GSO packets unsegmented (payload may exceed the MTU). */
  gso?: boolean;
  /** NFQA_CFG_F_UID_GID: send the uid/gid of the owning socket. */
  uidGid?: boolean;
  /** NFQA_CFG_F_SECCTX: send the security context. */
  secctx?: boolean;
}
export type NfQueueFlagName = keyof NfQueueFlags;

export const FLAG_BITS: Record<NfQueueFlagName, number> = {
  failOpen: Q.NFQA_CFG_F_FAIL_OPEN,
  conntrack: Q.NFQA_CFG_F_CONNTRACK,
  gso: Q.NFQA_CFG_F_GSO,
  uidGid: Q.NFQA_CFG_F_UID_GID,
  secctx: Q.NFQA_CFG_F_SECCTX,
};

/** What became of the requested flags. */
export interface FlagReport {
  /** Flags asked to be on. */
  requested: NfQueueFlagName[];
  /** Flags that are on. */
  applied: NfQueueFlagName[];
  /** Flags asked to be off (and turned off). */
  cleared: NfQueueFlagName[];
  /** Flags the kernel refused, with its errno (EOPNOTSUPP: not built in). */
  refused: { flag: NfQueueFlagName; errno: number; code: string; message?: string }[];
}

export function emptyFlagReport(): FlagReport {
  return { requested: [], applied: [], cleared: [], refused: [] };
}

/** Sets the flags in `mask` to the bits of `value` on one bound queue. */
async function setQueueFlags(
  conn: NetlinkConnection,
  queue: number,
  value: number,
  mask: number,
): Promise<void> {
  const message = () => encodeConfig(queue, { flags: { value, mask } });
  try {
    await conn.request(message(), { operation: `nfqueue flags ${queue}` });
  } catch (error) {
    // The kernel answers EAGAIN when setting CONNTRACK just loaded ctnetlink: retry once.
    if (error instanceof NetlinkError && error.code === 'EAGAIN') {
      await conn.request(message(), { operation: `nfqueue flags ${queue}` });
    } else throw error;
  }
}

/**
 * Applies `flags` (true sets, false clears, absent leaves alone), filling
 * `report` as it goes. When the kernel refuses the whole set, each requested
 * flag is tried alone so that the report says which one and why; with
 * `strict`, a refused flag then throws CONFIG_FAILED.
 */
export async function applyFlags(
  conn: NetlinkConnection,
  queue: number,
  flags: NfQueueFlags,
  strict: boolean,
  report: FlagReport,
): Promise<void> {
  let value = 0;
  let mask = 0;
  for (const [name, bit] of Object.entries(FLAG_BITS) as [NfQueueFlagName, number][]) {
    const want = flags[name];
    if (want === undefined) continue;
    mask |= bit;
    if (want) {
      value |= bit;
      report.requested.push(name);
    } else report.cleared.push(name);
  }
  if (mask === 0) return;
  try {
    await setQueueFlags(conn, queue, value, mask);
    report.applied.push(...report.requested);
  } catch (error) {
    if (!(error instanceof NetlinkError)) throw error;
    // Clear-only first (never refused), then one flag at a time.
    if ((mask & ~value) !== 0) await setQueueFlags(conn, queue, 0, mask & ~value);
    for (const name of report.requested) {
      const bit = FLAG_BITS[name];
      try {
        await setQueueFlags(conn, queue, bit, bit);
        report.applied.push(name);
      } catch (e) {
        if (!(e instanceof NetlinkError)) throw e;
        report.refused.push({
          flag: name,
          errno: e.errno,
          code: e.code,
          message: e.extack.message,
        });
      }
    }
    if (strict && report.refused.length > 0) {
      throw new NfQueueError(
        'CONFIG_FAILED',
        `queue ${queue}: the kernel refused flag(s) ${report.refused.map((r) => `${r.flag} (${r.code})`).join(', ')}`,
        {
          queue,
          errno: report.refused[0]!.errno,
          errnoName: report.refused[0]!.code,
        },
      );
    }
  }
}

/** Whether the kernel has the nfqueue conntrack glue (nfnl_ct_hook): it refuses
 * NFQA_CFG_F_CONNTRACK with EOPNOTSUPP exactly when the glue is missing. Leaves
 * the flag cleared. */
export async function probeConntrackGlue(conn: NetlinkConnection, queue: number): Promise<boolean> {
  const bit = Q.NFQA_CFG_F_CONNTRACK;
  try {
    await setQueueFlags(conn, queue, bit, bit);
  } catch (error) {
    if (error instanceof NetlinkError && error.code === 'EOPNOTSUPP') return false;
    throw error;
  }
  await setQueueFlags(conn, queue, 0, bit);
  return true;
}
