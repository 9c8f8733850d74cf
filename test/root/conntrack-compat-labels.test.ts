/**
 * Labels in the conntrack-tools syntax (`-l`, `--label-add`, `--label-del`,
 * `-o labels`) against conntrack-tools 1.4.7, in a throw-away network
 * namespace. Both tools read /etc/xtables/connlabel.conf; each command runs
 * in a private mount namespace where an overlay on /etc provides one (never
 * the host's /etc), so our CLI runs as a process (`node bin/portcullis.js`,
 * the compiled CLI) there too. Exit status, stdout and stderr compared, with
 * timeouts within ±2 s and entry order normalised, as in
 * conntrack-compat.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNetns } from '../support/netns.js';
import { waitForListeners } from '../support/netlink-listeners.js';
import {
  expectSameOutput,
  oracleUnavailable,
  type ToolResult,
} from '../support/conntrack-oracle.js';

/** Same output as conntrack-tools for the command line `argv`. */
const compare = (argv: string[], theirs: ToolResult, mine: ToolResult): void =>
  expectSameOutput(`conntrack ${argv.join(' ')}`, theirs, mine);

const skip = oracleUnavailable({ built: true });
if (skip) console.warn(`skipping conntrack compat label tests: ${skip}`);

type Result = ToolResult;

const split = (line: string) => line.split(' ');

/** TCP only: conntrack-tools 1.4.7's -U fails for UDP entries (docs/conntrack-cli.md). */
const POPULATION: string[] = [
  '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80 --state ESTABLISHED -t 3001 --label-add l1',
  '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 --state ESTABLISHED -t 3002 --label-add l1,l64',
  '-p tcp -s 10.1.0.3 -d 10.1.0.2 --sport 1003 --dport 443 --state SYN_SENT -t 3003 --label-add l2,l127',
  '-p tcp -s 10.1.0.4 -d 10.1.0.2 --sport 1004 --dport 443 --state SYN_SENT -m 5 -t 3004',
  '-p tcp -s 2001:db8:1::1 -d 2001:db8:1::2 --sport 2001 --dport 80 --state ESTABLISHED -t 3005 --label-add l0,l64',
];

const READ_ONLY: string[] = [
  '-L',
  '-L -o labels',
  '-L -o extended,labels',
  '-L -o id,labels',
  '-L -o LAB',
  '-L -l l1',
  '-L -l l1,l64',
  '-L -l l1 -l l64',
  '-L --label=l2',
  '-L --label l127 -o extended',
  '-L -l l0 -f ipv6',
  '-L -l l5',
  '-L -p tcp --dport 443 -l l2',
  '-L -ll1',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 -o labels',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80',
  // Malformed.
  '-L -l foo',
  '-L -l l1,foo',
  '-L -l l1,',
  '-L -l L1',
  '-L -l',
  '-L --label-add l1',
  '-L --label-del',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 -l l1',
  '-I -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state SYN_SENT -t 10 -l l1',
  '-I -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state SYN_SENT -t 10 --label-del l1',
  '-I -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state SYN_SENT -t 10 --label-add nope',
  '-U -p tcp --label-add l1 --label-del l2',
  '-U -p tcp --label-del l2 --label-add l1',
  '-U -p tcp --label-add nope',
  '-F -l l1',
  '-C -l l1',
];

/**
 * Lines starting with `~` update several entries: 1.4.7 counts them all but
 * prints only some (a quirk of its -U, labels or not; docs/conntrack-cli.md),
 * so their stdout is not compared; exit status, stderr and the table are.
 */
const MUTATING: string[] = [
  '~-U -p tcp -s 10.1.0.1 --label-add l5',
  '~-U -p tcp -d 10.1.0.2 --label-del l64',
  '~-U -p tcp -s 10.1.0.1 --label-del l1,l64 -o labels',
  '-I -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 100 --label-add l3,l127',
  '-I -p tcp -s 2001:db8:9::1 -d 2001:db8:9::2 --sport 1 --dport 2 --state SYN_SENT -t 100 --label-add l9',
  '-A -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 100 --label-add l4',
  '-U -p tcp -s 10.1.0.3 --label-add l2',
  '-U -p tcp -s 10.1.0.4 --label-add l6,l7',
  '-U -p tcp -s 10.1.0.3 --label-del l2',
  '-U -p tcp -s 10.1.0.2 --label-del l1,l64 -o labels',
  '-U -p tcp -s 10.1.0.3 --label-del',
  '-U -p tcp -f ipv6 --label-del l0',
  '-U -p tcp -s 10.9.9.9 --label-add l1',
  '-D -l l1',
  '-D -l l1 -o labels',
  '-D -l l2,l127',
  '-D -l l99',
  '-D -p tcp --dport 443 -l l2',
];

/**
 * `-E` with label filters, each run at once through `conntrack -E` and our
 * CLI (both in the overlay), while -I/-U/-D with labels make events; then
 * SIGTERM. Exit status, stderr (the summary) and stdout compared (without
 * the racy ` progname=` 1.4.7 adds after `[USERSPACE] portid=N`).
 */
const EVENT_LINES: string[] = [
  '-E -l l1',
  '-E -l l1,l64',
  '-E -l l1 -l l5',
  '-E -l l2 -o labels',
  '-E -o labels',
  '-E -l l1 -e UPDATES',
  '-E -l l7 -e DESTROY',
  '-E -l l1 -o save',
  '-E -l l1 -p tcp --dport 80 -o extended,labels',
  '-E -l nosuch',
  '-E -l l1 --label-add l2',
];

describe.skipIf(skip)('portcullis conntrack labels, conntrack-tools syntax, against 1.4.7', () => {
  let ns: TestNetns;
  let etcDir: string;

  /** argv run in a private mount namespace with our connlabel.conf over /etc. */
  function withLabels(argv: string[]): Result {
    const r = spawnSync(
      'unshare',
      [
        '-m',
        '--',
        'sh',
        '-c',
        'mount -t overlay overlay -o lowerdir="$0":/etc /etc && exec "$@"',
        etcDir,
        ...argv,
      ],
      { encoding: 'utf8' },
    );
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
  const tool = (argv: string[]) =>
    withLabels(['ip', 'netns', 'exec', ns.name, 'conntrack', ...argv]);
  const ours = (argv: string[]) =>
    withLabels(['node', 'bin/portcullis.js', 'conntrack', '--netns', ns.name, ...argv]);

  function populate(): void {
    const f = tool(['-F']);
    expect(f.status, f.stderr).toBe(0);
    for (const line of POPULATION) {
      const r = tool(['-I', ...split(line)]);
      expect(r.status, `${line}: ${r.stderr}`).toBe(0);
    }
  }

  beforeAll(() => {
    ns = new TestNetns('pcl-ctlabels');
    // Labels are stored only when something in the netns uses connlabel.
    for (const cmd of ['iptables', 'ip6tables']) {
      ns.exec(cmd, ['-A', 'OUTPUT', '-m', 'connlabel', '--label', '0', '-j', 'ACCEPT']);
    }
    etcDir = mkdtempSync(join(tmpdir(), 'pcl-ctlabels-'));
    mkdirSync(join(etcDir, 'xtables'));
    writeFileSync(
      join(etcDir, 'xtables', 'connlabel.conf'),
      '# comment\n' + Array.from({ length: 128 }, (_, i) => `${i} l${i}\n`).join(''),
    );
    populate();
  });

  afterAll(() => {
    ns?.delete();
    if (etcDir) rmSync(etcDir, { recursive: true, force: true });
  });

  it.each(READ_ONLY.map((l) => [l]))('conntrack %s', (line) => {
    const argv = split(line);
    compare(argv, tool(argv), ours(argv));
  });

  it.each(MUTATING.map((l) => [l]))('conntrack %s (then the table)', (line) => {
    const several = line.startsWith('~');
    const argv = split(several ? line.slice(1) : line);
    const table = ['-L', '-o', 'extended,labels'];
    populate();
    const theirs = tool(argv);
    const theirTable = tool(table);
    populate();
    const mine = ours(argv);
    const myTable = tool(table);
    if (several) {
      expect({ status: mine.status, stderr: mine.stderr }, line).toEqual({
        status: theirs.status,
        stderr: theirs.stderr,
      });
    } else compare(argv, theirs, mine);
    compare(table, theirTable, myTable);
  });

  it('-E with -l / -o labels, against conntrack -E', async () => {
    populate();
    const mountArgs = (argv: string[]) => [
      '-m',
      '--',
      'sh',
      '-c',
      'mount -t overlay overlay -o lowerdir="$0":/etc /etc && exec "$@"',
      etcDir,
      ...argv,
    ];
    interface Run {
      child: ReturnType<typeof spawn>;
      done: Promise<Result>;
    }
    // unshare and sh exec the command: the child's pid is the tool's.
    const start = (argv: string[]): Run => {
      const child = spawn('unshare', mountArgs(argv), { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const done = new Promise<Result>((resolve) =>
        child.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr })),
      );
      return { child, done };
    };
    const stop = async (r: Run): Promise<Result> => {
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
      const timer = setTimeout(() => r.child.kill('SIGKILL'), 5000);
      try {
        return await r.done;
      } finally {
        clearTimeout(timer);
      }
    };
    const runs = EVENT_LINES.map((line) => ({
      line,
      theirs: start(['ip', 'netns', 'exec', ns.name, 'conntrack', ...split(line)]),
      mine: start(['node', 'bin/portcullis.js', 'conntrack', '--netns', ns.name, ...split(line)]),
    }));
    const results: { line: string; theirs: Result; mine: Result }[] = [];
    try {
      const pids = runs.flatMap((r) => [r.theirs.child.pid!, r.mine.child.pid!]);
      const late = await waitForListeners(ns.name, pids);
      expect(late, 'listeners that never subscribed').toEqual([]);
      for (const line of [
        '-I -p tcp -s 10.8.0.1 -d 10.8.0.2 --sport 1 --dport 80 --state ESTABLISHED -t 100 --label-add l1,l5',
        '-I -p tcp -s 10.8.0.3 -d 10.8.0.2 --sport 1 --dport 22 --state SYN_SENT -t 100',
        '-U -p tcp -s 10.1.0.4 --label-add l7',
        '-U -p tcp -s 10.1.0.3 --label-add l2',
        '-U -p tcp -s 10.8.0.1 -t 50',
        '-D -p tcp -s 10.1.0.4',
        '-D -l l1 -p tcp -s 10.1.0.1 --sport 1001',
      ]) {
        const r = tool(split(line));
        expect(r.status, `${line}: ${r.stderr}`).toBe(0);
      }
      // Every listener has read its queue; a short grace lets it print.
      await waitForListeners(ns.name, pids, { drained: true });
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      for (const r of runs) {
        results.push({ line: r.line, theirs: await stop(r.theirs), mine: await stop(r.mine) });
      }
    }
    const noProgname = (x: Result): Result => ({
      ...x,
      stdout: x.stdout.replace(/ progname=\S+$/gm, ''),
    });
    for (const { line, theirs, mine } of results) {
      expect(noProgname(mine), line).toEqual(noProgname(theirs));
    }
    const out = (line: string) => results.find((r) => r.line === line)!.theirs.stdout;
    expect(out('-E -l l1'), 'saw events').toMatch(/\[NEW\].* labels=l1,l5/);
    expect(out('-E -l l1'), 'saw events').toMatch(/\[UPDATE\].* labels=l1,l5/);
    expect(out('-E -l l1'), 'filtered').not.toContain('10.8.0.3');
    expect(out('-E -o labels'), 'saw events').toContain('10.8.0.3');
    // Destroy events carry no labels: a label filter never matches them (both tools).
    expect(out('-E -l l7 -e DESTROY')).toBe('');
  }, 60_000);

  it.skipIf(existsSync('/etc/xtables/connlabel.conf'))(
    'says so when there is no connlabel.conf, as 1.4.7',
    () => {
      for (const line of ['-L -o labels', '-L -l l1', '-U -p tcp --label-add l1']) {
        const argv = split(line);
        const theirs = spawnSync('ip', ['netns', 'exec', ns.name, 'conntrack', ...argv], {
          encoding: 'utf8',
        });
        const mine = spawnSync(
          'node',
          ['bin/portcullis.js', 'conntrack', '--netns', ns.name, ...argv],
          { encoding: 'utf8' },
        );
        compare(
          argv,
          { status: theirs.status ?? -1, stdout: theirs.stdout, stderr: theirs.stderr },
          { status: mine.status ?? -1, stdout: mine.stdout, stderr: mine.stderr },
        );
      }
    },
  );
});
