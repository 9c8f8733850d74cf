/**
 * Wait for event listeners by looking at the kernel's side of their sockets
 * instead of sleeping: a process is subscribed once one of its netlink
 * sockets in the namespace has multicast groups, and it has read everything
 * once that socket's receive queue (Rmem) is empty. Fixed sleeps were flaky
 * when dozens of processes start at once on a loaded machine.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

interface NetlinkRow {
  protocol: number;
  groups: number;
  rmem: number;
  inode: number;
}

function netlinkRows(netns: string): Map<number, NetlinkRow> {
  const text = execFileSync('ip', ['netns', 'exec', netns, 'cat', '/proc/net/netlink'], {
    encoding: 'utf8',
  });
  const rows = new Map<number, NetlinkRow>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const row = {
      protocol: Number(f[1]),
      groups: parseInt(f[3]!, 16),
      rmem: Number(f[4]),
      inode: Number(f[9]),
    };
    rows.set(row.inode, row);
  }
  return rows;
}

function socketInodes(pid: number): number[] {
  const inodes: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes; // exited
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.push(Number(m[1]));
    } catch {
      // the fd closed between readdir and readlink
    }
  }
  return inodes;
}

function alive(pid: number): boolean {
  try {
    // A zombie has exited: it holds no sockets any more.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves when every live process of `pids` has a netfilter (protocol 12)
 * netlink socket in `netns` that is subscribed to groups, and, with `drained`,
 * when those sockets' receive queues are empty too. Processes that exit
 * (malformed command lines) count as done. Bounded by `timeoutMs`; returns the
 * pids still not ready so a test can report them.
 */
export async function waitForListeners(
  netns: string,
  pids: number[],
  { drained = false, timeoutMs = 60_000 }: { drained?: boolean; timeoutMs?: number } = {},
): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = netlinkRows(netns);
    const waiting = pids.filter((pid) => {
      if (!alive(pid)) return false;
      const mine = socketInodes(pid)
        .map((inode) => rows.get(inode))
        .filter((row): row is NetlinkRow => row !== undefined && row.protocol === 12);
      const subscribed = mine.filter((row) => row.groups !== 0);
      if (subscribed.length === 0) return true;
      return drained && subscribed.some((row) => row.rmem !== 0);
    });
    if (waiting.length === 0 || Date.now() > deadline) return waiting;
    await sleep(50);
  }
}
