import { integerTable, readNetnsProcFile, type NetnsProcOptions } from '../common/netns-proc.js';

export const NFLOG_PROC_PATH = '/proc/net/netfilter/nfnetlink_log';

/** One line of /proc/net/netfilter/nfnetlink_log: a bound group as the kernel has it. */
export interface LogProcStats {
  group: number;
  /** Netlink port id of the bound socket. */
  portId: number;
  /** Packets batched and not sent yet (waiting for qthresh or the timeout). */
  queued: number;
  copyMode: number;
  copyRange: number;
  /** Flush timeout in 1/100 s. */
  flushTimeout: number;
}

const COLUMNS = ['group', 'portId', 'queued', 'copyMode', 'copyRange', 'flushTimeout'] as const;

/** Parses the file: `group portid qlen copy_mode copy_range flushtimeout use` per
 * bound group (nfnetlink_log.c seq_show). Lines without seven numbers are skipped. */
export function parseLogProcStats(text: string): LogProcStats[] {
  return integerTable(text, COLUMNS, 7);
}

/** `netns`: another network namespace, an `ip netns` name or a path to a netns file. */
export type ReadLogStatsOptions = NetnsProcOptions;

/** Every bound NFLOG group of a network namespace (this process's by default); none
 * when nfnetlink_log is not loaded. */
export async function readLogStats(options: ReadLogStatsOptions = {}): Promise<LogProcStats[]> {
  const text = await readNetnsProcFile(NFLOG_PROC_PATH, options);
  return text === undefined ? [] : parseLogProcStats(text);
}
