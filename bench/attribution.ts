// Per-lookup cost of attribution, for the helper's budget per new connection.
// Creates its own network namespace (deleted at the end) with a child
// process holding N TCP connections, then times: the sock_diag exact lookup,
// a tuple-cache hit, attribute() with the owner known, and attribute() for a
// socket the owner index has not seen (a /proc scan, as for every new
// connection of a process that is not among the recent owners).
//   npm run build:ts && node dist/bench/attribution.js [connections] [rounds]
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Attributor } from '../helper/attribution/attributor.js';
import { CgroupIndex } from '../helper/attribution/cgroups.js';
import { ProcReader } from '../helper/attribution/procfs.js';
import { SocketOwnerIndex } from '../helper/attribution/owners.js';
import { SockDiag } from '../helper/attribution/sock-diag.js';
import type { SocketTuple } from '../helper/attribution/types.js';

const connections = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 5);
const ns = `pcl-bench-${process.pid}-${randomBytes(3).toString('hex')}`;

const CHILD = `
const net = require('net');
const n = Number(process.argv[1]);
const keep = [];
const srv = net.createServer((s) => keep.push(s)).listen(0, '127.0.0.1', () => {
  const port = srv.address().port;
  let done = 0;
  const ports = [];
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, '127.0.0.1', () => {
      ports.push(c.localPort);
      if (++done === n) process.stdout.write(JSON.stringify({ port, ports }) + '\\n');
    });
    keep.push(c);
  }
});
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
`;

/** A start mark: wall clock and this process's CPU time (user + system).
 * On a loaded machine the CPU time is the steadier figure. */
interface Mark {
  wall: bigint;
  cpu: NodeJS.CpuUsage;
}
function mark(): Mark {
  return { wall: process.hrtime.bigint(), cpu: process.cpuUsage() };
}

function perOp(label: string, start: Mark, ops: number): void {
  const wall = Number(process.hrtime.bigint() - start.wall) / 1e3 / ops;
  const used = process.cpuUsage(start.cpu);
  const cpu = (used.user + used.system) / ops;
  process.stdout.write(
    `${label.padEnd(46)} ${wall.toFixed(1).padStart(9)} us wall ${cpu.toFixed(1).padStart(9)} us cpu  (${ops} lookups)\n`,
  );
}

execFileSync('ip', ['netns', 'add', ns]);
const child = spawn(
  'ip',
  ['netns', 'exec', ns, process.execPath, '-e', CHILD, String(connections)],
  {
    stdio: ['pipe', 'pipe', 'inherit'],
  },
);
try {
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout }).once('line', resolve),
  );
  const { port, ports } = JSON.parse(line) as { port: number; ports: number[] };
  const tuples: SocketTuple[] = ports.map((sport) => ({
    family: 'ipv4',
    protocol: 'tcp',
    src: '127.0.0.1',
    sport,
    dst: '127.0.0.1',
    dport: port,
  }));
  const proc = new ProcReader();
  process.stdout.write(
    `host processes: ${proc.pids().length}; child connections: ${connections}; rounds: ${rounds}\n`,
  );

  const diag = SockDiag.open({ netns: ns });
  for (const t of tuples) await diag.lookup(t); // warm-up
  let t0 = mark();
  for (let r = 0; r < rounds; r++) for (const t of tuples) await diag.lookup(t);
  perOp('sock_diag exact lookup (sequential)', t0, rounds * tuples.length);
  t0 = mark();
  for (let r = 0; r < rounds; r++) await Promise.all(tuples.map((t) => diag.lookup(t)));
  perOp('sock_diag exact lookup (concurrent)', t0, rounds * tuples.length);

  const attributor = Attributor.open({ sockDiag: diag, tupleTtlMs: 0 });
  for (const t of tuples) await attributor.attribute(t); // owners and processes known
  t0 = mark();
  for (let r = 0; r < rounds; r++) for (const t of tuples) await attributor.attribute(t);
  perOp('attribute(), owner known, no tuple cache', t0, rounds * tuples.length);

  const cached = Attributor.open({ sockDiag: diag, tupleTtlMs: 60_000 });
  for (const t of tuples) await cached.attribute(t);
  t0 = mark();
  for (let r = 0; r < rounds; r++) for (const t of tuples) await cached.attribute(t);
  perOp('attribute(), tuple cache hit', t0, rounds * tuples.length);

  // A socket the index has not seen: a fresh index scans /proc (the child is
  // the newest process, so it is found early; the scan still completes).
  const first = (await diag.lookup(tuples[0]!))!;
  const scans = Math.max(3, rounds);
  const cgroups = new CgroupIndex();
  const hint = {
    uid: first.uid,
    ...(first.cgroupId !== undefined ? { cgroupId: first.cgroupId } : {}),
  };
  process.stdout.write(`socket cgroup: ${cgroups.pathOf(first.cgroupId ?? -1n) ?? 'unknown'}\n`);
  t0 = mark();
  for (let r = 0; r < scans; r++) {
    const index = new SocketOwnerIndex(proc, { minScanIntervalMs: 0, cgroups });
    await index.ownerOf(first.inode, hint);
    index.close();
  }
  perOp('owner of an unseen socket (answer of a scan)', t0, scans);
  t0 = mark();
  for (let r = 0; r < scans; r++) {
    const index = new SocketOwnerIndex(proc, { minScanIntervalMs: 0 });
    await index.ownerOf(0xfffffff0); // never found: the whole scan
    index.close();
  }
  perOp('full /proc scan (socket held by nobody)', t0, scans);
  cached.close();
  attributor.close();
  diag.close();
} finally {
  child.stdin.end();
  await new Promise((r) => child.once('exit', r));
  execFileSync('ip', ['netns', 'delete', ns]);
}
