// How the helper makes the kernel remember a verdict: `repeat` with a packet mark that
// the rules copy to the connmark (what the helper does, works on every kernel), against
// `accept` with the connmark set in the verdict through the nfqueue conntrack glue
// (NFQA_CT; needs CONFIG_NETFILTER_NETLINK_GLUE_CT, which stock kernels have and this
// machine's does not). Anchor: libnetfilter_queue's accept loop (../shared/bench
// nfq-accept, single mode) on the same rules, which remembers nothing but is only asked
// once per connection too, since the rules queue only a new connection's first packet.
//
// Runs as root on a kernel with nft `queue` and the glue (bench/verdict-cache-vm.sh runs
// it under Debian's kernels). Two namespaces joined by a veth: the client's with the
// helper's own nft table (nftInstallScript), the server's with a TCP listener. Per mode
// and round: N sequential connections (connect, close), the loop's CPU per verdict, the
// verdicts per connection, and the connmark each connection ended up with.
//
//   node dist/bench/verdict-cache.js [--connections N] [--rounds R] [--anchor PATH]
//   node dist/bench/verdict-cache.js --loop repeat|connmark --queue Q --netns NS   (internal)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MARKS, helperFirewallConfig, resolveConfig } from '../helper/firewall/config.js';
import { nftInstallScript } from '../helper/firewall/nft.js';
import { NfQueue } from '../helper/nfqueue/queue.js';

type Mode = 'anchor' | 'repeat' | 'connmark';

const QUEUE = 11;
const CLIENT_NS = 'pcbench-vc-a';
const SERVER_NS = 'pcbench-vc-b';
const CLIENT_ADDR = '198.18.9.1';
const SERVER_ADDR = '198.18.9.2';
const PORT = 9000;
const { mask, accepted } = DEFAULT_MARKS;

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

/** The verdict loop of one mode, in its own process so that its CPU is its own. */
async function loop(mode: 'repeat' | 'connmark', queue: number, netns: string): Promise<void> {
  const q = await NfQueue.open({
    queue,
    netns,
    flags: { failOpen: true },
    probeConntrackGlue: mode === 'connmark',
  });
  let verdicts = 0;
  const start = process.cpuUsage();
  const done = (): void => {
    const cpu = process.cpuUsage(start);
    process.stdout.write(`${JSON.stringify({ verdicts, cpuUs: cpu.user + cpu.system })}\n`);
    void q.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', done);
  process.stdout.write('ready\n');
  for await (const p of q) {
    verdicts++;
    const mark = (((p.mark ?? 0) & ~mask) | accepted) >>> 0;
    if (mode === 'repeat') p.repeat({ mark });
    else p.accept({ connmark: accepted });
  }
}

function must(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...(input ? { input } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const inNs = (ns: string, argv: string[]): string[] => ['netns', 'exec', ns, ...argv];

function setUp(): ChildProcess {
  for (const ns of [CLIENT_NS, SERVER_NS]) spawnSync('ip', ['netns', 'del', ns]);
  must('ip', ['netns', 'add', CLIENT_NS]);
  must('ip', ['netns', 'add', SERVER_NS]);
  must('ip', ['-n', CLIENT_NS, 'link', 'add', 'vc0', 'type', 'veth', 'peer', 'name', 'vc1']);
  must('ip', ['-n', CLIENT_NS, 'link', 'set', 'vc1', 'netns', SERVER_NS]);
  must('ip', ['-n', CLIENT_NS, 'addr', 'add', `${CLIENT_ADDR}/30`, 'dev', 'vc0']);
  must('ip', ['-n', SERVER_NS, 'addr', 'add', `${SERVER_ADDR}/30`, 'dev', 'vc1']);
  for (const [ns, dev] of [
    [CLIENT_NS, 'vc0'],
    [SERVER_NS, 'vc1'],
  ] as const) {
    must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  const config = resolveConfig(helperFirewallConfig({ queue: QUEUE, ipv6: false }));
  must('ip', inNs(CLIENT_NS, ['nft', '-f', '-']), nftInstallScript(config));
  const server = spawn(
    'ip',
    inNs(SERVER_NS, [
      'python3',
      '-c',
      'import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n' +
        `s.bind(("${SERVER_ADDR}",${PORT}))\ns.listen(512)\nprint("ready",flush=True)\n` +
        'while True:\n c,_=s.accept()\n c.close()',
    ]),
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return server;
}

function tearDown(server: ChildProcess): void {
  if (server.pid !== undefined) server.kill('SIGKILL');
  for (const ns of [CLIENT_NS, SERVER_NS]) spawnSync('ip', ['netns', 'del', ns]);
}

const lineFrom = (p: ChildProcess): Promise<string> =>
  new Promise((resolve, reject) => {
    createInterface({ input: p.stdout! }).once('line', resolve);
    p.once('exit', (code) => reject(new Error(`exited ${code} before a line`)));
  });

const CLIENT = `
import socket, sys, time
n = int(sys.argv[1]); lat = []
t0 = time.perf_counter()
for _ in range(n):
    a = time.perf_counter()
    s = socket.create_connection(("${SERVER_ADDR}", ${PORT}), timeout=10)
    lat.append(time.perf_counter() - a)
    s.close()
total = time.perf_counter() - t0
lat.sort()
print(total, lat[len(lat) // 2], lat[int(len(lat) * 0.99)])
`;

interface Result {
  mode: Mode;
  connPerS: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerVerdict: number | null;
  verdictsPerConn: number | null;
  markedShare: number;
}

async function round(mode: Mode, n: number, anchorPath: string): Promise<Result> {
  spawnSync('ip', inNs(CLIENT_NS, ['conntrack', '-F']));
  const self = fileURLToPath(import.meta.url);
  const loopProc =
    mode === 'anchor'
      ? spawn('ip', inNs(CLIENT_NS, [anchorPath, '-m', 'single', '-q', String(QUEUE)]), {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(
          process.execPath,
          [self, '--loop', mode, '--queue', String(QUEUE), '--netns', CLIENT_NS],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
  if (mode === 'anchor') {
    // nfq-accept prints nothing when bound: wait for the queue in /proc.
    for (let i = 0; i < 200; i++) {
      const q = spawnSync('ip', inNs(CLIENT_NS, ['cat', '/proc/net/netfilter/nfnetlink_queue']), {
        encoding: 'utf8',
      });
      if (q.stdout.split('\n').some((l) => l.trim().split(/\s+/u)[0] === String(QUEUE))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } else {
    await lineFrom(loopProc);
  }
  const out = must('ip', inNs(CLIENT_NS, ['python3', '-c', CLIENT, String(n)]))
    .trim()
    .split(/\s+/u)
    .map(Number);
  const [total, p50, p99] = out as [number, number, number];
  const stats = new Promise<string>((resolve) => {
    let text = '';
    loopProc.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    loopProc.once('exit', () => resolve(text));
  });
  loopProc.kill('SIGTERM');
  const report = (await stats).trim().split('\n').at(-1) ?? '';
  let cpuUsPerVerdict: number | null = null;
  let verdictsPerConn: number | null = null;
  if (mode !== 'anchor') {
    const r = JSON.parse(report) as { verdicts: number; cpuUs: number };
    cpuUsPerVerdict = r.cpuUs / Math.max(1, r.verdicts);
    verdictsPerConn = r.verdicts / n;
  }
  const entries = must(
    'ip',
    inNs(CLIENT_NS, ['conntrack', '-L', '-p', 'tcp', '--dport', String(PORT)]),
  )
    .split('\n')
    .filter((l) => l.includes(`dport=${PORT}`));
  const marked = entries.filter((l) => {
    const m = /\bmark=(\d+)/u.exec(l);
    return m !== null && (Number(m[1]) & mask) >>> 0 === accepted;
  }).length;
  return {
    mode,
    connPerS: n / total,
    p50Ms: p50 * 1000,
    p99Ms: p99 * 1000,
    cpuUsPerVerdict,
    verdictsPerConn,
    markedShare: entries.length > 0 ? marked / entries.length : 0,
  };
}

async function main(): Promise<void> {
  const loopMode = arg('loop', '');
  if (loopMode === 'repeat' || loopMode === 'connmark') {
    await loop(loopMode, Number(arg('queue', String(QUEUE))), arg('netns', CLIENT_NS));
    return;
  }
  const n = Number(arg('connections', '300'));
  const rounds = Number(arg('rounds', '3'));
  const anchorPath = arg('anchor', '/tmp/portcullis-bench/bin/nfq-accept');
  const modes: Mode[] = existsSync(anchorPath)
    ? ['anchor', 'repeat', 'connmark']
    : ['repeat', 'connmark'];
  if (!existsSync(anchorPath))
    console.log(`no anchor at ${anchorPath}: run bench/run.sh once to build it`);
  console.log(`kernel ${must('uname', ['-r']).trim()}, ${n} connections per run, ${rounds} rounds`);
  const server = setUp();
  try {
    await lineFrom(server);
    const results: Result[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate the order each round, so drift on a noisy machine spreads over the modes.
      const order = r % 2 === 0 ? modes : [...modes].reverse();
      for (const mode of order) results.push(await round(mode, n, anchorPath));
    }
    const fmt = (v: number | null, d: number): string => (v === null ? '-' : v.toFixed(d));
    console.log(
      'mode      conn/s   p50 ms  p99 ms  loop µs CPU/verdict  verdicts/conn  accepted connmark',
    );
    for (const x of results) {
      console.log(
        `${x.mode.padEnd(9)} ${fmt(x.connPerS, 0).padStart(6)}  ${fmt(x.p50Ms, 2).padStart(6)}  ` +
          `${fmt(x.p99Ms, 2).padStart(6)}  ${fmt(x.cpuUsPerVerdict, 1).padStart(19)}  ` +
          `${fmt(x.verdictsPerConn, 2).padStart(13)}  ${(x.markedShare * 100).toFixed(0).padStart(16)} %`,
      );
    }
  } finally {
    tearDown(server);
  }
}

await main();
