/**
 * `portcullis conntrack -E ...` (conntrack-tools syntax) against conntrack-tools
 * 1.4.7's `conntrack -E`, in a throw-away network namespace. Every command
 * line of the corpus runs as two child processes (ours built: `node
 * bin/portcullis.js`), all listening at once; one sequence of `conntrack
 * -I/-U/-D/-F` and expectation changes makes the events; then every process
 * gets SIGTERM and exit status, stdout and stderr are compared.
 *
 * Normalised, and only that: the `progname=` conntrack-tools adds to
 * `[USERSPACE] portid=N` when it still finds the requesting process in /proc
 * (racy; we print the port id only), and the wall-clock `[sec.usec]` of
 * `-o timestamp` (compared within 5 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../helper/cli.js';
import { Conntrack } from '../../helper/conntrack/client.js';
import type { Tuple } from '../../helper/conntrack/types.js';
import { TestNetns } from '../support/netns.js';
import { oracleUnavailable } from '../support/conntrack-oracle.js';
import { waitForListeners } from '../support/netlink-listeners.js';

const skip = oracleUnavailable({ built: true });
if (skip) console.warn(`skipping conntrack -E compat root tests: ${skip}`);

const CORPUS: string[] = [
  '-E',
  '--event',
  '-E conntrack',
  '-E -e NEW',
  '-E -e UPDATES',
  '-E -e DESTROY',
  '-E -e NEW,DESTROY',
  '-E -e new -e destroy',
  '-E -e ALL -o extended',
  '-E -e U',
  '-E -o id',
  '-E -o extended,id',
  '-E -o timestamp',
  '-E -o timestamp,extended',
  '-E -p tcp',
  '-E -p udp',
  '-E -p tcp --dport 2',
  '-E -p tcp --state SYN_SENT',
  '-E -s 10.0.0.0/24',
  '-E -d 10.0.0.2',
  '-E -s 2001:db8::1',
  '-E -f ipv6',
  '-E -f ipv4 -o extended',
  '-E -m 5',
  '-E -m 0/0xf0',
  '-E -u ASSURED',
  '-E -w 3',
  '-E -b 100000',
  '-E -o save',
  '-E -o save -p tcp',
  '-E -e DESTROY -o save',
  '-E -o save,userspace',
  '-E -o save,extended',
  '-E -o xml',
  '-E -o ktimestamp,extended',
  '-E -o xml -p tcp -e DESTROY',
  '-E -o xml,extended,id',
  '-E -o xml -p 99',
  '-E -n',
  '-E -n 10.0.0.7',
  '-E -g',
  '-E -j -p tcp',
  '-E -s 10.0.0.0 --mask-src 255.255.255.0',
  '-E -d 10.0.0.0/30',
  '-E --orig-zone 0',
  '-E -c 5',
  '-E --mask-src 255.0.0.0',
  '-E -i 5',
  '-E expect',
  '-E expect -o extended',
  '-E expect -e NEW',
  '-E expect -o timestamp',
  '-E expect -o xml',
  '-E expect -o xml,timestamp',
  '-E -o xml,timestamp -p tcp',
  // Malformed: parse errors, exit status 2 at once.
  '-E -e FOO',
  '-E -e',
  '-E -e NEW,',
  '-E -t 5',
  '-E -z',
  '-E expect -p tcp',
  '-E -o bogus',
  '-E -L',
];

interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  done: Promise<Result>;
}

function start(cmd: string, args: string[]): Running {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<Result>((resolve) => {
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  return { child, done };
}

/** SIGTERM, then SIGKILL after 5 s: every wait is bounded. */
async function stop(r: Running): Promise<Result> {
  if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 5000);
  try {
    return await r.done;
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function normalise(stdout: string): { lines: string[]; stamps: number[] } {
  const stamps: number[] = [];
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) =>
      line
        .replace(/^\[([\d ]+\.[\d ]+)\]\t/, (_m, t: string) => {
          // Conntrack events zero-pad, expectation ones blank-pad (%-8ld.%-6ld).
          stamps.push(Number(t.replace(/ /g, '')));
          return '[T]\t';
        })
        .replace(/ progname=\S+$/, '')
        // -o xml,timestamp: the local time of day (within the 5 s of the stamps).
        .replace(/<when>(<\w+>\d+<\/\w+>){7}<\/when>/, '<when/>'),
    );
  return { lines, stamps };
}

describe.skipIf(skip)('portcullis conntrack -E against conntrack 1.4.7 -E', () => {
  let ns: TestNetns;
  const theirs = new Map<string, Result>();
  const ours = new Map<string, Result>();
  let json: Result | undefined;
  let plain: Result | undefined;

  beforeAll(async () => {
    ns = new TestNetns('pcl-ctcompat-ev');
    const running: [string, Running, Running][] = [];
    let jsonRun: Running | undefined;
    let plainRun: Running | undefined;
    try {
      for (const line of CORPUS) {
        const argv = line.split(' ');
        running.push([
          line,
          start('ip', ['netns', 'exec', ns.name, 'conntrack', ...argv]),
          start('node', ['bin/portcullis.js', 'conntrack', '--netns', ns.name, ...argv]),
        ]);
      }
      plainRun = start('node', ['bin/portcullis.js', 'conntrack', '--netns', ns.name, '-E']);
      jsonRun = start('node', [
        'bin/portcullis.js',
        'conntrack',
        '--netns',
        ns.name,
        '-E',
        '--json',
      ]);
      const pids = [
        ...running.flatMap(([, a, b]) => [a.child.pid!, b.child.pid!]),
        plainRun.child.pid!,
        jsonRun.child.pid!,
      ];
      const late = await waitForListeners(ns.name, pids);
      expect(late, 'listeners that never subscribed').toEqual([]);
      const tool = (line: string) => ns.exec('conntrack', line.split(' '));
      tool('-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --state SYN_SENT -t 100 -m 5');
      tool(
        '-I -p tcp -s 10.0.0.3 -d 10.0.0.4 --sport 3 --dport 4 --state ESTABLISHED -u ASSURED,SEEN_REPLY -t 200 -w 3',
      );
      tool('-I -p udp -s 2001:db8::1 -d 2001:db8::2 --sport 1 --dport 2 -t 100');
      tool('-I -p icmp -s 10.0.0.1 -d 10.0.0.9 --icmp-type 8 --icmp-code 0 --icmp-id 7 -t 100');
      tool(
        '-I -p tcp -s 10.0.0.5 -d 10.0.0.6 --sport 5 --dport 6 --state ESTABLISHED -t 100 --src-nat 10.0.0.7',
      );
      tool('-U -p tcp -s 10.0.0.1 -t 50');
      tool('-U -p tcp -s 10.0.0.1 -m 0x30');
      tool('-D -p udp');
      // An FTP master and an expectation (created and flushed) for -E expect.
      const ct = Conntrack.open({ netns: ns.name });
      try {
        const master: Tuple = {
          src: '192.0.2.1',
          dst: '192.0.2.2',
          proto: 6,
          srcPort: 4000,
          dstPort: 21,
        };
        await ct.create({
          orig: master,
          timeout: 600,
          tcpState: 'ESTABLISHED',
          status: ['SEEN_REPLY', 'ASSURED'],
          helper: 'ftp',
        });
        await ct.expectations.create({
          master,
          tuple: { ...master, srcPort: 0, dstPort: 50000 },
          mask: { srcPort: 0 },
          timeout: 120,
        });
        await ct.expectations.flush();
      } finally {
        ct.close();
      }
      tool('-F');
      // Every listener has read its queue; a short grace lets it print.
      await waitForListeners(ns.name, pids, { drained: true });
      await sleep(300);
    } finally {
      for (const [line, a, b] of running) {
        theirs.set(line, await stop(a));
        ours.set(line, await stop(b));
      }
      if (jsonRun) json = await stop(jsonRun);
      if (plainRun) plain = await stop(plainRun);
    }
  }, 60_000);

  afterAll(() => {
    ns?.delete();
  });

  it.each(CORPUS.map((l) => [l]))('conntrack %s', (line) => {
    const a = theirs.get(line)!;
    const b = ours.get(line)!;
    const what = `conntrack ${line}`;
    expect({ status: b.status, signal: b.signal, stderr: b.stderr }, what).toEqual({
      status: a.status,
      signal: a.signal,
      stderr: a.stderr,
    });
    const x = normalise(a.stdout);
    const y = normalise(b.stdout);
    expect(y.lines, what).toEqual(x.lines);
    x.stamps.forEach((t, i) => expect(Math.abs(t - y.stamps[i]!), what).toBeLessThan(5));
  });

  it('saw events at all', () => {
    expect(normalise(theirs.get('-E')!.stdout).lines.length).toBeGreaterThan(8);
    expect(theirs.get('-E expect')!.stdout).toMatch(/\[NEW\].*\n.*\[DESTROY\]/);
  });

  it('--json: one object per event, the same events as the text form', () => {
    const lines = json!.stdout.split('\n').filter(Boolean);
    const text = plain!.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(text.length);
    lines.forEach((l, i) => {
      const o = JSON.parse(l) as { event: string };
      expect(text[i]).toContain(`[${o.event.toUpperCase()}]`);
    });
    expect(json!.stderr).toBe(plain!.stderr);
    expect(json!.status).toBe(0);
  });

  it.each(
    [
      '-L expect',
      '-L expect -o extended,id',
      '-L expect -o timestamp',
      '-L expect -o ktimestamp',
      '-L expect -f ipv6',
      '-C expect',
      '-L expect -p tcp',
      '-C expect -p tcp',
      '-F expect',
      '-F expect -f ipv6',
    ].map((l) => [l]),
  )('conntrack %s (expect table)', async (line) => {
    const argv = line.split(' ');
    async function populate(): Promise<void> {
      const ct = Conntrack.open({ netns: ns.name });
      try {
        await ct.expectations.flush();
        const master: Tuple = {
          src: '192.0.2.1',
          dst: '192.0.2.2',
          proto: 6,
          srcPort: 4001,
          dstPort: 21,
        };
        await ct.create(
          {
            orig: master,
            timeout: 600,
            tcpState: 'ESTABLISHED',
            status: ['SEEN_REPLY', 'ASSURED'],
            helper: 'ftp',
          },
          { ifExists: 'update' },
        );
        await ct.expectations.create({
          master,
          tuple: { ...master, srcPort: 0, dstPort: 50001 },
          mask: { srcPort: 0 },
          timeout: 100,
          flags: ['PERMANENT'],
        });
      } finally {
        ct.close();
      }
    }
    const count = () => ns.exec('conntrack', ['-C', 'expect']);
    await populate();
    const t = ns.try('conntrack', argv);
    const theirCount = count();
    await populate();
    const out: string[] = [];
    const err: string[] = [];
    const status = await main(['conntrack', '--netns', ns.name, ...argv], {
      stdout: (x) => void out.push(x),
      stderr: (x) => void err.push(x),
    });
    // Timeouts tick; -o timestamp puts the wall clock first.
    const timeless = (x: string) =>
      x.replace(/^\[[\d ]+\.[\d ]+\]\t/gm, '[T]\t').replace(/^(\[T\]\t)?\d+ /gm, '$1T ');
    expect({ status, stdout: timeless(out.join('')), stderr: err.join('') }, line).toEqual({
      status: t.status,
      stdout: timeless(t.stdout),
      stderr: t.stderr,
    });
    expect(count()).toBe(theirCount);
  });
});
