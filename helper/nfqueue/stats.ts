import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { QueueProcStats } from './types.js';

export const NFQUEUE_PROC_PATH = '/proc/net/netfilter/nfnetlink_queue';

/**
 * Parses /proc/net/netfilter/nfnetlink_queue: one line per bound queue,
 * `queue_num peer_portid queue_total copy_mode copy_range queue_dropped
 * user_dropped id_sequence 1`. Lines that do not have nine numbers are skipped.
 */
export function parseQueueProcStats(text: string): QueueProcStats[] {
  const out: QueueProcStats[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 9) continue;
    const n = f.slice(0, 9).map((x) => (/^-?\d+$/.test(x) ? Number(x) : Number.NaN));
    if (n.some((x) => !Number.isSafeInteger(x))) continue;
    out.push({
      queue: n[0]!,
      portId: n[1]!,
      queueTotal: n[2]!,
      copyMode: n[3]!,
      copyRange: n[4]!,
      queueDropped: n[5]!,
      userDropped: n[6]!,
      lastId: n[7]!,
    });
  }
  return out;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

export interface ReadQueueStatsOptions {
  /** Read the table of another network namespace: an `ip netns` name (read
   * with `ip netns exec NAME cat ...`) or a path to a netns file (read with
   * `nsenter --net=PATH cat ...`). The file is per network namespace, and
   * this process stays in its own, so a short-lived child does the reading. */
  netns?: string;
  timeoutMs?: number;
}

/** Every bound queue of a network namespace (this process's by default). */
export async function readQueueStats(
  options: ReadQueueStatsOptions = {},
): Promise<QueueProcStats[]> {
  const { netns, timeoutMs = 5000 } = options;
  let text: string;
  if (netns === undefined) {
    try {
      text = await readFile(NFQUEUE_PROC_PATH, 'utf8');
    } catch (error) {
      // The file exists once nfnetlink_queue is loaded (or built in).
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  } else if (netns.includes('/')) {
    text = await run('nsenter', [`--net=${netns}`, 'cat', NFQUEUE_PROC_PATH], timeoutMs);
  } else {
    if (!/^[A-Za-z0-9_.-]+$/.test(netns) || netns === '.' || netns === '..') {
      throw new TypeError(`invalid netns name ${JSON.stringify(netns)}`);
    }
    text = await run('ip', ['netns', 'exec', netns, 'cat', NFQUEUE_PROC_PATH], timeoutMs);
  }
  return parseQueueProcStats(text);
}
