import { integerTable, readNetnsProcFile, type NetnsProcOptions } from '../common/netns-proc.js';
import type { QueueProcStats } from './types.js';

export const NFQUEUE_PROC_PATH = '/proc/net/netfilter/nfnetlink_queue';

const COLUMNS = [
  'queue',
  'portId',
  'queueTotal',
  'copyMode',
  'copyRange',
  'queueDropped',
  'userDropped',
  'lastId',
] as const;

/**
 * Parses /proc/net/netfilter/nfnetlink_queue: one line per bound queue,
 * `queue_num peer_portid queue_total copy_mode copy_range queue_dropped
 * user_dropped id_sequence 1`. Lines that do not have nine numbers are skipped.
 */
export function parseQueueProcStats(text: string): QueueProcStats[] {
  return integerTable(text, COLUMNS, 9, true);
}

/** `netns`: another network namespace, an `ip netns` name or a path to a netns file. */
export type ReadQueueStatsOptions = NetnsProcOptions;

/** Every bound queue of a network namespace (this process's by default); none when
 * nfnetlink_queue is not loaded. */
export async function readQueueStats(
  options: ReadQueueStatsOptions = {},
): Promise<QueueProcStats[]> {
  const text = await readNetnsProcFile(NFQUEUE_PROC_PATH, options);
  return text === undefined ? [] : parseQueueProcStats(text);
}
