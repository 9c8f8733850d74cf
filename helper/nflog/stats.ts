import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

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

/** Parses the file: `group portid qlen copy_mode copy_range flushtimeout use` per
 * bound group (nfnetlink_log.c seq_show). Lines without seven numbers are skipped. */
export function parseLogProcStats(text: string): LogProcStats[] {
  const out: LogProcStats[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    const n = f.slice(0, 7).map((x) => (/^\d+$/.test(x) ? Number(x) : Number.NaN));
    if (n.some((x) => !Number.isSafeInteger(x))) continue;
    out.push({
      group: n[0]!,
      portId: n[1]!,
      queued: n[2]!,
      copyMode: n[3]!,
      copyRange: n[4]!,
      flushTimeout: n[5]!,
    });
  }
  return out;
}

export interface ReadLogStatsOptions {
  /** Another network namespace: an `ip netns` name or a path to a netns file. The file
   * is per namespace and this process stays in its own, so a short-lived child reads it. */
  netns?: string;
  timeoutMs?: number;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/** Every bound NFLOG group of a network namespace (this process's by default). */
export async function readLogStats(options: ReadLogStatsOptions = {}): Promise<LogProcStats[]> {
  const { netns, timeoutMs = 5000 } = options;
  let text: string;
  if (netns === undefined) {
    try {
      text = await readFile(NFLOG_PROC_PATH, 'utf8');
    } catch (error) {
      // The file exists once nfnetlink_log is loaded (or built in).
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  } else if (netns.includes('/')) {
    text = await run('nsenter', [`--net=${netns}`, 'cat', NFLOG_PROC_PATH], timeoutMs);
  } else {
    if (!/^[A-Za-z0-9_.-]+$/.test(netns) || netns === '.' || netns === '..') {
      throw new TypeError(`invalid netns name ${JSON.stringify(netns)}`);
    }
    text = await run('ip', ['netns', 'exec', netns, 'cat', NFLOG_PROC_PATH], timeoutMs);
  }
  return parseLogProcStats(text);
}
