/**
 * conntrack-tools 1.4.7 behaviours around how a command line or a -R batch is
 * written, against `portcullis conntrack`, in throw-away network namespaces:
 * stray words (`conntrack conntrack -L`), repeated options, odd spacing,
 * comments and empty lines in -R input; and `-R - --netns NS`, run from
 * inside another namespace, must change NS and nothing where it runs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../helper/cli.js';
import { TestNetns } from '../support/netns.js';
import {
  conntrackIn,
  conntrackTableIn,
  expectSameOutput,
  oracleUnavailable,
  portcullisIn,
  type ToolResult,
} from '../support/conntrack-oracle.js';

const skip = oracleUnavailable({ built: true });
if (skip) console.warn(`skipping conntrack compat batch root tests: ${skip}`);

const POPULATION: string[] = [
  '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80 --state ESTABLISHED -u ASSURED,SEEN_REPLY -m 1 -t 3001',
  '-p tcp -s 10.1.0.3 -d 10.1.0.2 --sport 1003 --dport 443 --state SYN_SENT -t 3003',
  '-p tcp -s 10.1.0.1 -d 10.1.0.4 --sport 1004 --dport 22 --state CLOSE -w 5 -t 3004',
  '-p udp -s 10.1.0.1 -d 10.1.0.5 --sport 5000 --dport 53 -u SEEN_REPLY -m 2 -t 3011',
  '-p udp -s 2001:db8:1::1 -d 2001:db8:1::5 --sport 5002 --dport 53 -t 3013',
  '-p icmp -s 10.1.0.1 -d 10.1.0.9 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 3016',
];

/** 1.4.7 ignores words that are not options, wherever they stand. */
const STRAY: string[] = [
  'conntrack -L',
  'conntrack -L -p tcp',
  'words -L conntrack -p udp more words',
  'conntrack --dump -o extended',
  'conntrack -C',
  'conntrack -D -p udp',
  'x -G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80',
  'conntrack -I -p tcp -s 10.7.0.1 -d 10.7.0.2 --sport 1 --dport 2 --state SYN_SENT -t 50',
  'conntrack -R FILE',
];

/** Options given twice: the last wins, or they add up, or they clash, as in 1.4.7. */
const REPEATED: string[] = [
  '-L -p tcp -p udp',
  '-L -s 10.1.0.1 -s 10.1.0.3',
  '-L -m 1 -m 2',
  '-L -u ASSURED -u SEEN_REPLY',
  '-L -u SEEN_REPLY -u SEEN_REPLY',
  '-L -u UNSET -u SEEN_REPLY',
  '-D -u ASSURED -u SEEN_REPLY',
  '-D -u SEEN_REPLY,ASSURED',
  '-L -f ipv4 -f ipv6',
  '-L -w 5 -w 0',
  '-L -p tcp --dport 80 --dport 443',
  '-L -o save -o save',
  '-L -L',
  '-D -p tcp -p udp',
  '-D -s 10.1.0.1 -s 10.1.0.3',
  '-I -p tcp -p udp -s 10.7.0.1 -d 10.7.0.2 --sport 1 --dport 2 -t 5 -t 60',
  '-I -p udp -s 10.7.0.1 -s 10.7.0.3 -d 10.7.0.2 --sport 1 --dport 2 --sport 7 -t 5',
];

/** -R input written by hand: blanks, tabs, CRLF, comments, empty lines, repeats. */
const LOADS: string[] = [
  '-I\t-p  tcp   -s 10.7.0.1 -d 10.7.0.2 --sport 1 --dport 2 --state SYN_SENT -t 5   \t\n',
  '\n\n-D -p udp\n\n\n-D -p icmp\n\n',
  '\t# a comment after a tab\n#\n   #\n-D -p tcp --dport 443\t# and one after a command\n',
  '-I -p udp -s 10.7.0.1 -d 10.7.0.2 --sport 1 --dport 2 -t 5\r\n-D -p icmp\r\n',
  '-D -p udp\n-I -p tcp -s 10.7.0.1 -d 10.7.0.2 --sport 1 --dport 2 --state SYN_SENT -t 5',
  '   \n\t\n-D  -s 10.1.0.1   -p tcp\n',
  '-I -p tcp -p udp -s 10.7.0.1 -d 10.7.0.2 --sport 1 --dport 2 -t 5 -t 60\n' +
    '-I -p udp -s 10.7.0.1 -s 10.7.0.3 -d 10.7.0.2 --sport 1 --dport 2 --sport 7 -t 5\n' +
    '-D -p tcp -p icmp\n',
  '-D -p udp\n  conntrack -D -p icmp\n',
  '-D -p udp\n-L\n',
  '-D -p udp\n-D -p bogus\n',
];

describe.skipIf(skip)('portcullis conntrack command lines and -R input, against 1.4.7', () => {
  let ns: TestNetns;
  /** Where the -R --netns commands run from: its table must stay as it was. */
  let runner: TestNetns;
  let dir: string;

  const tool = (argv: string[], where = ns): ToolResult => conntrackIn(where, argv);

  function populate(where = ns): void {
    const f = tool(['-F'], where);
    expect(f.status, f.stderr).toBe(0);
    for (const line of POPULATION) {
      const r = tool(['-I', ...line.split(' ')], where);
      expect(r.status, `${line}: ${r.stderr}`).toBe(0);
    }
  }

  const table = (where = ns): ToolResult => conntrackTableIn(where);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pcl-ctbatch-'));
    ns = new TestNetns('pcl-ctbatch');
    runner = new TestNetns('pcl-ctrun');
  });

  afterAll(() => {
    try {
      ns?.delete();
      runner?.delete();
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Runs a command and its effect on the table through both tools. */
  async function compare(
    what: string,
    theirs: () => ToolResult,
    mine: () => Promise<ToolResult> | ToolResult,
  ): Promise<void> {
    populate();
    const a = theirs();
    const aTable = table();
    populate();
    const b = await mine();
    const bTable = table();
    expectSameOutput(what, a, b);
    expectSameOutput(`table after ${what}`, aTable, bTable);
  }

  it.each(STRAY.map((l) => [l]))('conntrack %s (a stray word)', async (line) => {
    const argv = line.replace('FILE', join(dir, 'none')).split(' ');
    await compare(
      line,
      () => tool(argv),
      async () => {
        // `portcullis conntrack WORD ...`: the stray word first, as scripts write it.
        let stdout = '';
        let stderr = '';
        const status = await main(['conntrack', ...argv, '--netns', ns.name], {
          stdout: (s) => void (stdout += s),
          stderr: (s) => void (stderr += s),
        });
        return { status, stdout, stderr };
      },
    );
  });

  it.each(REPEATED.map((l) => [l]))('conntrack %s (a repeated option)', async (line) => {
    const argv = line.split(' ');
    await compare(
      line,
      () => tool(argv),
      () => portcullisIn(ns, argv),
    );
  });

  it.each(LOADS.map((c, n) => [n, c]))('conntrack -R file #%i', async (n, content) => {
    const file = join(dir, `load-${n}`);
    writeFileSync(file, content);
    await compare(
      `-R ${JSON.stringify(content)}`,
      () => tool(['-R', file]),
      () => portcullisIn(ns, ['-R', file]),
    );
  });

  it.each([
    [['-R', '-', '--netns', 'NS']],
    [['--load-file', 'FILE', '--netns', 'NS']],
    [['-R', '-', 'ignored', '--netns=NS', 'words']],
    [['--netns', 'NS', '-R', '-']],
  ])('conntrack %j run from another namespace changes NS only', async (words) => {
    const input =
      '-I -p udp -s 10.7.0.9 -d 10.7.0.2 --sport 1 --dport 2 -t 100\n' +
      '# a comment\n\n-D -p icmp\n-D -p tcp --dport 443\n';
    const file = join(dir, 'isolation');
    writeFileSync(file, input);
    const argv = words.map((w) => w.replace('NS', ns.name).replace('FILE', file));
    // The commands read the file through a pipe: /dev/stdin cannot open spawnSync's socket.
    const run = (where: TestNetns, cmd: string, args: string[]): ToolResult => {
      const r = spawnSync(
        'ip',
        ['netns', 'exec', where.name, 'sh', '-c', `cat "$0" | ${cmd} "$@"`, file, ...args],
        { encoding: 'utf8' },
      );
      return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    populate(runner);
    const runnerBefore = table(runner);
    const listedAt = Date.now();
    await compare(
      words.join(' '),
      () =>
        run(ns, 'conntrack', [
          words[0] === '--load-file' ? '--load-file' : '-R',
          words[0] === '--load-file' ? file : '-',
        ]),
      () => run(runner, 'node bin/portcullis.js conntrack', argv),
    );
    expect(table().stdout).toContain('src=10.7.0.9');
    // Nothing happened where the command ran.
    // The timeouts ran down meanwhile: the slack is the time since the first listing.
    const elapsed = Math.ceil((Date.now() - listedAt) / 1000);
    expectSameOutput('the runner namespace', runnerBefore, table(runner), 2 + elapsed);
    expect(table(runner).stdout).not.toContain('src=10.7.0.9');
  });
});
