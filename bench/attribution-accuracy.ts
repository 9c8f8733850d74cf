// Attribution accuracy and cost, side by side in one run: the same short-lived programs
// (bench/attribution-workload.ts: UDP sendto, TCP connect, non-blocking connect, connected
// UDP, a fork+exec loop of distinct executables, threads; each exits at once) against the
// real helper with `--attribution procfs` (sock_diag + /proc, the anchor) and with the
// default path (eBPF owner records where the kernel allows them). Per path and kind: the
// flows decided, named at all, named with the right executable and pid, named wrongly, the
// decision time after the packet was read, and the helper's CPU per flow (utime + stime
// from /proc/PID/stat over the kind's run, divided by its flows).
//
// Runs as root in two namespaces it creates and deletes (veth, 198.18.182.0/24). A helper
// without the --attribution option has only the /proc path: it is measured alone.
//   npm run build:ts && node dist/bench/attribution-accuracy.js [--flows 500] [--paths procfs,auto]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { IpcClient } from '../helper/protocol/client.js';
import {
  buildPrograms,
  cpuMicros,
  decisions,
  formatScore,
  historyTo,
  KINDS,
  percent,
  runKind,
  score,
  scoreHeader,
  settle,
  startSinkServer,
  type Programs,
  type Score,
} from './attribution-workload.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const QUEUE = 24;
const tag = `${process.pid}`;
const CLIENT = `pcl-accb-c${tag}`;
const SERVER = `pcl-accb-s${tag}`;
const CLIENT_ADDR = '198.18.182.1';
const SERVER_ADDR = '198.18.182.2';

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function setUpNamespaces(): void {
  must('ip', ['netns', 'add', CLIENT]);
  must('ip', ['netns', 'add', SERVER]);
  const [vc, vs] = [`ac${tag}`, `as${tag}`];
  must('ip', [
    '-n',
    CLIENT,
    'link',
    'add',
    vc,
    'type',
    'veth',
    'peer',
    'name',
    vs,
    'netns',
    SERVER,
  ]);
  for (const [ns, dev, a] of [
    [CLIENT, vc, CLIENT_ADDR],
    [SERVER, vs, SERVER_ADDR],
  ] as const) {
    must('ip', ['-n', ns, 'link', 'set', dev, 'addrgenmode', 'none']);
    must('ip', ['-n', ns, 'addr', 'add', `${a}/24`, 'dev', dev]);
    must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
}

function tearDownNamespaces(): void {
  for (const ns of [CLIENT, SERVER]) spawnSync('ip', ['netns', 'delete', ns]);
}

interface Helper {
  child: ChildProcess;
  ipc: IpcClient;
  pid: number;
  mode: string;
}

/** `portcullis helper` in the client namespace, allowing everything, as a test would. */
async function startHelper(dir: string, path: string): Promise<Helper> {
  const run = join(dir, `run-${path}`);
  mkdirSync(run, { recursive: true });
  const socket = join(run, 'helper.sock');
  const args = ['helper', '--netns', CLIENT, '--queue', String(QUEUE), '--socket', socket];
  args.push('--state-dir', join(dir, `state-${path}`), '--default-action', 'allow');
  args.push('--no-gui-policy', 'allow', ...(path === 'current' ? [] : ['--attribution', path]));
  const child = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      lines.push(l);
      if (/ info helper: serving /u.test(l)) resolve();
    });
    child.once('exit', () => reject(new Error(`helper exited:\n${lines.join('\n')}`)));
  });
  const token = readFileSync(join(run, 'token'), 'utf8').trim();
  const ipc = await IpcClient.connect({ path: socket, token, build: 'accuracy-bench' });
  const state = await ipc.call('state.get');
  // A helper of protocol 1.3 or older does not say: it has only the /proc path.
  const a = state.attribution;
  const mode = a?.mode ?? 'procfs';
  if (a?.reason) process.stdout.write(`helper --attribution ${path}: ${mode}, ${a.reason}\n`);
  // The row label: the path in use ("auto/proc": auto fell back to /proc).
  const label =
    path === 'auto' && mode !== 'ebpf' ? 'auto/proc' : path === 'auto' ? mode : 'procfs';
  return { child, ipc, pid: state.pid, mode: label };
}

async function stopHelper(h: Helper): Promise<void> {
  await h.ipc.close().catch(() => undefined);
  const exited = new Promise((r) => h.child.once('exit', r));
  h.child.kill('SIGTERM');
  const t = setTimeout(() => h.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

interface Row {
  path: string;
  score: Score;
  cpuUsPerFlow: number;
}

async function measure(h: Helper, programs: Programs, flows: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const kind of KINDS) {
    const since = Date.now();
    const before = await decisions(h.ipc);
    const cpu = cpuMicros(h.pid);
    const run = await runKind(programs, kind, { netns: CLIENT, server: SERVER_ADDR, flows });
    await settle(h.ipc, before + run.senders.size);
    const cpuUsPerFlow = (cpuMicros(h.pid) - cpu) / run.senders.size;
    if (run.failed > 0) process.stdout.write(`${kind}: ${run.failed} senders failed\n`);
    rows.push({
      path: h.mode,
      score: score(run, await historyTo(h.ipc, SERVER_ADDR, since)),
      cpuUsPerFlow,
    });
  }
  return rows;
}

function print(rows: Row[], flows: number): void {
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(
    `attribution accuracy: ${flows} flows per kind, kernel ${release()}, ${cpus().length} CPUs, load ${load}\n`,
  );
  process.stdout.write(`${scoreHeader('helper cpu us/flow')}\n`);
  for (const kind of KINDS) {
    for (const r of rows.filter((x) => x.score.kind === kind)) {
      process.stdout.write(
        `${formatScore(r.score, r.path, r.cpuUsPerFlow.toFixed(0).padStart(10))}\n`,
      );
    }
  }
  for (const path of [...new Set(rows.map((r) => r.path))]) {
    const mine = rows.filter((r) => r.path === path);
    const sum = (f: (s: Score) => number): number => mine.reduce((n, r) => n + f(r.score), 0);
    const all = sum((s) => s.flows);
    const cpu = mine.reduce((n, r) => n + r.cpuUsPerFlow * r.score.flows, 0) / all;
    process.stdout.write(
      `${path.padEnd(8)} all kinds: ${all} flows, right exe ${percent(
        sum((s) => s.rightExe),
        all,
      ).toFixed(1)} %, ` +
        `right pid ${percent(
          sum((s) => s.rightPid),
          all,
        ).toFixed(1)} %, wrong ${sum((s) => s.wrong)}, ` +
        `helper cpu ${cpu.toFixed(0)} us/flow\n`,
    );
  }
}

async function main(): Promise<void> {
  const flows = Number(arg('flows', '500'));
  const help = must(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'helper', '--help']);
  const paths = help.includes('--attribution')
    ? arg('paths', 'procfs,auto').split(',')
    : ['current'];
  if (paths[0] === 'current') {
    process.stdout.write(
      'this helper has no --attribution option: only its /proc path is measured\n',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'pcl-accuracy-bench-'));
  let sink: ChildProcess | undefined;
  try {
    tearDownNamespaces();
    setUpNamespaces();
    const programs = buildPrograms(dir, flows);
    sink = await startSinkServer(SERVER, SERVER_ADDR, flows);
    const rows: Row[] = [];
    for (const path of paths) {
      const h = await startHelper(dir, path);
      try {
        rows.push(...(await measure(h, programs, flows)));
      } finally {
        await stopHelper(h);
      }
    }
    print(rows, flows);
  } finally {
    sink?.kill('SIGKILL');
    tearDownNamespaces();
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
