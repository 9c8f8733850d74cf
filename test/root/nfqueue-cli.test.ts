/**
 * `portcullis nfqueue watch|accept|stats`, run in-process through main()
 * against real queued UDP traffic in a throw-away network namespace.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../helper/cli.js';
import { runNfqueue } from '../../helper/cli/nfqueue.js';
import { NfQueue } from '../../helper/nfqueue/queue.js';
import { readQueueStats } from '../../helper/nfqueue/stats.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { Agent, sleep } from '../support/udp-agent.js';
import { pythonUnavailable, sendBurst } from '../support/py-socket.js';

function missing(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  if (spawnSync('iptables', ['-V']).error) return 'iptables is not installed';
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping nfqueue CLI root tests: ${skip}`);

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Rejects when `p` does not settle in time (the CLI waits for packets forever otherwise). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
    }),
  ]);
}

interface Captured {
  io: { stdout(s: string): void; stderr(s: string): void };
  out(): string;
  err(): string;
}

function capture(): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = capture();
  const code = await main(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

interface WatchLine {
  time: string;
  queue: number;
  id: number;
  hook: string;
  outdev?: number;
  uid?: number;
  protocol: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  length: number;
  payloadLength: number;
  verdict: string;
}

const jsonLines = <T>(text: string): T[] =>
  text
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);

describe.skipIf(skip)('portcullis nfqueue (root, real queued UDP)', () => {
  let ns: TestNetns;
  let agent: Agent;
  const ipt = (...args: string[]) => ns.exec('iptables', args);
  const queueRule = (port: number, queue: number) =>
    ipt(
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      String(port),
      '-j',
      'NFQUEUE',
      '--queue-num',
      String(queue),
    );
  const bound = async (queue: number) =>
    (await readQueueStats({ netns: ns.name })).some((s) => s.queue === queue && s.portId !== 0);

  beforeAll(async () => {
    ns = new TestNetns('pcl-nfqcli');
    agent = new Agent(ns);
    await agent.waitFor((e) => e.ev === 'ready', 10_000);
  });
  afterEach(() => {
    ipt('-F', 'OUTPUT');
  });
  afterAll(() => {
    agent?.stop();
    ns?.delete();
  });

  it('watch --json --count 3 prints each datagram and accepts it; stats --json shows the queue meanwhile', async () => {
    await agent.listen('ipv4', 9000);
    queueRule(9000, 21);
    const run = cli(
      'nfqueue',
      'watch',
      '--queue',
      '21',
      '--netns',
      ns.name,
      '--json',
      '--count',
      '3',
    );
    // stats --json, while watch runs: the queue appears with our socket as its peer.
    let stats: Record<string, unknown>[] = [];
    await until(async () => {
      const r = await cli('nfqueue', 'stats', '--netns', ns.name, '--json');
      expect(r.code, r.err).toBe(0);
      stats = jsonLines<Record<string, unknown>>(r.out).filter((s) => s.queue === 21);
      return stats.length === 1 && stats[0]!.portId !== 0;
    });
    expect(stats[0]).toMatchObject({
      queue: 21,
      queueTotal: 0,
      copyMode: 'packet',
      copyRange: 65531,
      queueDropped: 0,
      userDropped: 0,
    });
    const text = await cli('nfqueue', 'stats', '--netns', ns.name);
    expect(text.out).toMatch(
      /^queue +port_id +queue_total +copy_mode +copy_range +queue_dropped +user_dropped +last_id\n/,
    );
    expect(text.out).toMatch(/\n +21 +\d+ +0 +packet +65531 +0 +0 +\d+\n/);

    const sport = await agent.send('ipv4', 9000, 'a', 'bcd', 'efghi');
    const r = await within(run, 10_000, 'nfqueue watch');
    expect(r.code, r.err).toBe(0);
    const lines = jsonLines<WatchLine>(r.out);
    const loIndex = Number(/^(\d+):/.exec(ns.exec('ip', ['-o', 'link', 'show', 'lo']))![1]);
    expect(lines.map((l) => [l.sport, l.dport, l.payloadLength, l.length, l.verdict])).toEqual([
      [sport, 9000, 1, 29, 'accept'],
      [sport, 9000, 3, 31, 'accept'],
      [sport, 9000, 5, 33, 'accept'],
    ]);
    for (const l of lines) {
      expect(l).toMatchObject({
        queue: 21,
        hook: 'LOCAL_OUT',
        outdev: loIndex,
        protocol: 'udp',
        src: '127.0.0.1',
        dst: '127.0.0.1',
      });
      expect(Math.abs(Date.parse(l.time) - Date.now())).toBeLessThan(60_000);
    }
    expect(lines[1]!.id).toBeGreaterThan(lines[0]!.id);
    expect(r.err).toMatch(
      /queue 21: 3 packets shown, received=3 verdicts=3 accepted=3 dropped=0\n$/,
    );
    await until(() => agent.received('ipv4', 9000).length === 3);
    expect(agent.received('ipv4', 9000)).toEqual(['a', 'bcd', 'efghi']);
    // Unbound on exit.
    const after = await cli('nfqueue', 'stats', '--netns', ns.name, '--json');
    expect(jsonLines<{ queue: number }>(after.out).filter((s) => s.queue === 21)).toEqual([]);
  });

  it('watch --verdict drop stops the datagrams', async () => {
    await agent.listen('ipv4', 9001);
    queueRule(9001, 22);
    const run = cli(
      'nfqueue',
      'watch',
      '--queue',
      '22',
      '--netns',
      ns.name,
      '--json',
      '--count',
      '2',
      '--verdict',
      'drop',
    );
    await until(() => bound(22));
    await agent.send('ipv4', 9001, 'x', 'y');
    const r = await within(run, 10_000, 'nfqueue watch --verdict drop');
    expect(r.code, r.err).toBe(0);
    expect(jsonLines<WatchLine>(r.out).map((l) => [l.dport, l.verdict])).toEqual([
      [9001, 'drop'],
      [9001, 'drop'],
    ]);
    expect(r.err).toMatch(/2 packets shown, received=2 verdicts=2 accepted=0 dropped=2/);
    await sleep(300);
    expect(agent.received('ipv4', 9001)).toEqual([]);
  });

  it('watch --uid-gid prints a text line with the owner of the socket', async () => {
    await agent.listen('ipv4', 9002);
    queueRule(9002, 23);
    const run = cli(
      'nfqueue',
      'watch',
      '--queue',
      '23',
      '--netns',
      ns.name,
      '--uid-gid',
      '--count',
      '1',
    );
    await until(() => bound(23));
    const sport = await agent.send('ipv4', 9002, 'z');
    const r = await within(run, 10_000, 'nfqueue watch --uid-gid');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} q=23 id=\\d+ LOCAL_OUT in=- out=\\d+ uid=0 gid=0 udp 127\\.0\\.0\\.1:${sport} -> 127\\.0\\.0\\.1:9002 length=29 payload=1 accept\\n$`,
      ),
    );
    await until(() => agent.received('ipv4', 9002).length === 1);
  });

  it('accept --count N --batch passes N datagrams', async () => {
    await agent.listen('ipv4', 9003);
    queueRule(9003, 24);
    const run = cli(
      'nfqueue',
      'accept',
      '--queue',
      '24',
      '--netns',
      ns.name,
      '--count',
      '5',
      '--batch',
      '--max-len',
      '64',
    );
    await until(() => bound(24));
    await agent.send('ipv4', 9003, '1', '2', '3', '4', '5');
    const r = await within(run, 10_000, 'nfqueue accept --count 5 --batch');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toMatch(
      /queue 24: received=5 verdicts=5 accepted=5 messages=\d+ batch_messages=\d+ datagrams=\d+ enobufs=0\n$/,
    );
    await until(() => agent.received('ipv4', 9003).length === 5);
    expect(agent.received('ipv4', 9003).sort()).toEqual(['1', '2', '3', '4', '5']);
  });

  it('accept (one verdict per packet) runs until stopped, then unbinds and prints its summary', async () => {
    await agent.listen('ipv4', 9004);
    queueRule(9004, 25);
    const c = capture();
    const stop = new AbortController();
    const run = runNfqueue(['accept', '--queue', '25', '--netns', ns.name], c.io, {
      signal: stop.signal,
    });
    try {
      await until(() => bound(25));
      await agent.send('ipv4', 9004, 'p', 'q', 'r');
      await until(() => agent.received('ipv4', 9004).length === 3);
    } finally {
      stop.abort();
    }
    expect(await within(run, 10_000, 'nfqueue accept')).toBe(0);
    expect(c.err()).toMatch(
      /queue 25: received=3 verdicts=3 accepted=3 messages=3 batch_messages=0 /,
    );
    expect(await bound(25)).toBe(false);
  });

  it('without --batch a burst gets one NFQNL_MSG_VERDICT per packet; with --batch it shares batch messages', async (ctx) => {
    const noPython = pythonUnavailable();
    if (noPython) ctx.skip(noPython);
    await agent.listen('ipv4', 9005);
    queueRule(9005, 27);
    for (const batch of [false, true]) {
      const run = cli(
        'nfqueue',
        'accept',
        '--queue',
        '27',
        '--netns',
        ns.name,
        '--count',
        '20',
        ...(batch ? ['--batch'] : []),
      );
      await until(() => bound(27));
      // Sent while this process (and so the verdict loop) is blocked: all 20 are
      // queued before the loop reads, and it reads them in one wakeup.
      sendBurst(ns, '127.0.0.1', 9005, 20, batch ? 'b' : 'p');
      const r = await within(run, 10_000, `nfqueue accept ${batch ? '--batch' : ''}`);
      expect(r.code, r.err).toBe(0);
      const m = /received=20 verdicts=20 accepted=20 messages=(\d+) batch_messages=(\d+) /.exec(
        r.err,
      );
      expect(m, r.err).not.toBeNull();
      const [messages, batchMessages] = [Number(m![1]), Number(m![2])];
      if (batch) {
        expect(batchMessages).toBeGreaterThan(0);
        expect(messages).toBeLessThan(20);
      } else {
        expect([messages, batchMessages]).toEqual([20, 0]);
      }
      await until(async () => !(await bound(27)));
    }
    await until(() => agent.received('ipv4', 9005).length === 40);
  });

  it('a queue bound by another socket, or a missing namespace, is exit 1 with the reason', async () => {
    const other = await NfQueue.open({ queue: 26, netns: ns.name, probeConntrackGlue: false });
    try {
      const r = await cli('nfqueue', 'accept', '--queue', '26', '--netns', ns.name, '--count', '1');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^portcullis: queue 26 is bound by another socket .*EPERM\n$/);
    } finally {
      await other.close();
    }
    const w = await cli('nfqueue', 'watch', '--queue', '1', '--netns', 'pcl-surely-missing');
    expect(w.code).toBe(1);
    expect(w.err).toMatch(/^portcullis: .*pcl-surely-missing/);
    const s = await cli('nfqueue', 'stats', '--netns', 'pcl-surely-missing');
    expect(s.code).toBe(1);
    expect(s.err).toMatch(/^portcullis: .*pcl-surely-missing/);
  });
});
