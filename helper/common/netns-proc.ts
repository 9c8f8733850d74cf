import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface NetnsProcOptions {
  /** Read the file of another network namespace: an `ip netns` name (read
   * with `ip netns exec NAME cat ...`) or a path to a netns file (read with
   * `nsenter --net=PATH cat ...`). A /proc/net file is per network namespace,
   * and this process stays in its own, so a short-lived child does the reading. */
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

/** The text of a /proc/net file in a network namespace (this process's by
 * default); undefined when this namespace has no such file (its module is not
 * loaded). A netns name that is not a plain name is refused (TypeError). */
export async function readNetnsProcFile(
  path: string,
  options: NetnsProcOptions = {},
): Promise<string | undefined> {
  const { netns, timeoutMs = 5000 } = options;
  if (netns === undefined) {
    try {
      return await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }
  if (netns.includes('/')) return run('nsenter', [`--net=${netns}`, 'cat', path], timeoutMs);
  if (!/^[A-Za-z0-9_.-]+$/.test(netns) || netns === '.' || netns === '..') {
    throw new TypeError(`invalid netns name ${JSON.stringify(netns)}`);
  }
  return run('ip', ['netns', 'exec', netns, 'cat', path], timeoutMs);
}

/**
 * The rows of a /proc table of integers, each as an object with the first
 * `columns.length` fields under those names. Lines that do not start with
 * `count` integers (`signed`: they may be negative) are skipped.
 */
export function integerTable<Column extends string>(
  text: string,
  columns: readonly Column[],
  count: number,
  signed = false,
): Record<Column, number>[] {
  const integer = signed ? /^-?\d+$/ : /^\d+$/;
  const rows: Record<Column, number>[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < count) continue;
    const n = f.slice(0, count).map((x) => (integer.test(x) ? Number(x) : Number.NaN));
    if (n.some((x) => !Number.isSafeInteger(x))) continue;
    const row = {} as Record<Column, number>;
    columns.forEach((column, i) => (row[column] = n[i]!));
    rows.push(row);
  }
  return rows;
}
