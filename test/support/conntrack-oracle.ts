// Running a command line through conntrack-tools 1.4.7 (the oracle) and
// through our CLI, and comparing what they print, for the compatibility tests.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import { main } from '../../helper/cli.js';
import { rootTestsUnavailable, type TestNetns } from './netns.js';

export interface ToolResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Why the comparison tests cannot run here, or undefined. `built`: they run dist/. */
export function oracleUnavailable(options: { built?: boolean } = {}): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  const v = spawnSync('conntrack', ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return 'conntrack-tools is not installed';
  if (!`${v.stdout}${v.stderr}`.includes('v1.4.7')) return 'conntrack-tools is not 1.4.7';
  if (options.built && !existsSync('dist/helper/cli.js')) {
    return 'not built (npx tsc -p tsconfig.node.json)';
  }
  return undefined;
}

/** `conntrack ARGV` inside the namespace. */
export function conntrackIn(ns: TestNetns, argv: string[]): ToolResult {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, 'conntrack', ...argv], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The table of `ns` as conntrack-tools lists it with -o extended, then with
 * -o save (which has the SCTP tags and GRE keys): what is compared after a
 * command that changes the table.
 */
export function conntrackTableIn(ns: TestNetns): ToolResult {
  const a = conntrackIn(ns, ['-L', '-o', 'extended']);
  const b = conntrackIn(ns, ['-L', '-o', 'save']);
  return {
    status: a.status + b.status,
    stdout: a.stdout + b.stdout,
    stderr: a.stderr + b.stderr,
  };
}

/** `portcullis conntrack --netns NS ARGV`, in-process. */
export async function portcullisIn(ns: TestNetns, argv: string[]): Promise<ToolResult> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(['conntrack', '--netns', ns.name, ...argv], {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
  });
  return { status, stdout: out.join(''), stderr: err.join('') };
}

/**
 * Listing lines with their timeout taken out (timeouts tick down between two
 * runs) and sorted (we dump per family, conntrack-tools in kernel order); the
 * timeouts by line, sorted. Handles `-o save` lines (`-A -t N ...`, `-D -t N ...`) and
 * `-o xml` ones (`<timeout>N</timeout>`) too.
 */
export function normaliseListing(stdout: string): {
  lines: string[];
  timeouts: Map<string, number[]>;
} {
  const timeouts = new Map<string, number[]>();
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      // "[ipv4     2 ]tcp      6 <timeout> ...": the timeout follows the protocol.
      const m =
        /^(-[A-Z] -t )(\d+)( .*)$/.exec(line) ??
        /^(<flow>.*<timeout>)(\d+)(<\/timeout>.*)$/.exec(line) ??
        /^((?:ipv[46] +\d+ +)?\S+ +\d+ )(\d+)( .*)$/.exec(line);
      if (!m) return line;
      const key = `${m[1]}T${m[3]}`;
      const list = timeouts.get(key) ?? [];
      list.push(Number(m[2]));
      timeouts.set(key, list);
      return key;
    })
    .sort();
  for (const list of timeouts.values()) list.sort((a, b) => a - b);
  return { lines, timeouts };
}

/** Same exit status and stderr, same lines, timeouts within 2 s. */
/**
 * `slackSeconds`: how far the entries' remaining timeouts may differ; the default 2 covers
 * two listings taken back to back, a comparison with a listing taken earlier adds the
 * seconds in between.
 */
export function expectSameOutput(
  what: string,
  theirs: ToolResult,
  mine: ToolResult,
  slackSeconds = 2,
): void {
  expect({ status: mine.status, stderr: mine.stderr }, what).toEqual({
    status: theirs.status,
    stderr: theirs.stderr,
  });
  const a = normaliseListing(theirs.stdout);
  const b = normaliseListing(mine.stdout);
  expect(b.lines, what).toEqual(a.lines);
  for (const [key, list] of a.timeouts) {
    const other = b.timeouts.get(key)!;
    list.forEach((t, i) => {
      expect(Math.abs(t - other[i]!), `${what}: timeout of ${key}`).toBeLessThanOrEqual(
        slackSeconds,
      );
    });
  }
}
