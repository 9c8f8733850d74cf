import type { NetlinkConnection } from '../netlink/connection.js';
import { NetlinkError } from '../netlink/errors.js';
import {
  failOnRefusedFlags,
  requestFlags,
  tryEachFlag,
  type FlagOutcome,
  type InstanceErrors,
} from '../netlink/nfnl-instance.js';
import * as Q from './constants.js';
import { encodeConfig } from './encode.js';
import type { NfQueueError } from './errors.js';

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
export interface FlagReport extends FlagOutcome<NfQueueFlagName> {
  /** Flags asked to be off (and turned off). */
  cleared: NfQueueFlagName[];
}

export function emptyFlagReport(): FlagReport {
  return { requested: [], applied: [], cleared: [], refused: [] };
}

/** Sets the flags in `mask` to the bits of `value` on one bound queue. */
function setQueueFlags(
  conn: NetlinkConnection,
  queue: number,
  value: number,
  mask: number,
): Promise<void> {
  return requestFlags(
    conn,
    () => encodeConfig(queue, { flags: { value, mask } }),
    `nfqueue flags ${queue}`,
  );
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
  errors: InstanceErrors<NfQueueError>,
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
    await tryEachFlag(report, FLAG_BITS, (bit) => setQueueFlags(conn, queue, bit, bit));
    if (strict) failOnRefusedFlags(report.refused, errors);
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
