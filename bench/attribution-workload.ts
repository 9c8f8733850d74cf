// The attribution accuracy workload, shared by test/root/attribution-accuracy.test.ts and
// bench/attribution-accuracy.ts: real short-lived programs (C, compiled with the system cc
// into a temp dir) that send one flow each in a network namespace where a helper
// intercepts, and the scoring of the helper's history against what each program was.
//
// Every flow has its own destination port, so that a history entry names exactly one
// sender: the test knows the pid (printed by the launcher that forked it) and the
// executable (the path it exec'd) of every port. Destination ports rather than source
// ports: kernel-chosen source ports repeat within a run, and a repeated UDP tuple hits a
// live conntrack entry and is never queued.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { IpcClient } from '../helper/protocol/client.js';
import type { HistoryEntry } from '../helper/protocol/model.js';

/** The program kinds, each a way a real program's flow can outrun /proc. */
export const KINDS = [
  'udp-sendto', // one datagram with sendto(), exit at once
  'tcp-connect', // blocking connect(), exit
  'tcp-nonblock', // non-blocking connect() (EINPROGRESS), exit at once
  'udp-connected', // connect() then send(), as glibc's resolver does, exit at once
  'exec-loop', // one process forks and execs a different executable per flow
  'threads', // threads of one process, each sending one datagram
] as const;
export type Kind = (typeof KINDS)[number];

/** Threads per process in the `threads` kind. */
export const THREADS = 8;

const PROTOCOL: Record<Kind, 'udp' | 'tcp'> = {
  'udp-sendto': 'udp',
  'tcp-connect': 'tcp',
  'tcp-nonblock': 'tcp',
  'udp-connected': 'udp',
  'exec-loop': 'udp',
  threads: 'udp',
};
/** The sender's mode argument per kind. */
const MODE: Record<Kind, string> = {
  'udp-sendto': 'udp',
  'tcp-connect': 'tcp',
  'tcp-nonblock': 'tcp-nonblock',
  'udp-connected': 'udp-connected',
  'exec-loop': 'udp',
  threads: 'threads',
};

/** Ports per kind: kind k sends to BASE_PORT + k * PORTS_PER_KIND + i. */
export const BASE_PORT = 20_000;
export const PORTS_PER_KIND = 2_000;

export function portRange(kind: Kind): { from: number; to: number } {
  const from = BASE_PORT + KINDS.indexOf(kind) * PORTS_PER_KIND;
  return { from, to: from + PORTS_PER_KIND - 1 };
}

/** Each exits with _exit() right after its socket call: no close, no stdio flush. */
const SENDER_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *addr;
static struct sockaddr_in dest(int port) {
  struct sockaddr_in d;
  memset(&d, 0, sizeof d);
  d.sin_family = AF_INET;
  d.sin_port = htons(port);
  inet_pton(AF_INET, addr, &d.sin_addr);
  return d;
}
static int udp_sendto(int port) {
  struct sockaddr_in d = dest(port);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  return s >= 0 && sendto(s, "pcl", 3, 0, (struct sockaddr *)&d, sizeof d) == 3 ? 0 : 1;
}
static int udp_connected(int port) {
  struct sockaddr_in d = dest(port);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&d, sizeof d) != 0) return 1;
  return send(s, "pcl", 3, 0) == 3 ? 0 : 1;
}
static int tcp(int port, int nonblock) {
  struct sockaddr_in d = dest(port);
  int s = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (s < 0) return 1;
  if (connect(s, (struct sockaddr *)&d, sizeof d) == 0) return 0;
  return (nonblock && errno == EINPROGRESS) || errno == ECONNREFUSED ? 0 : 1;
}
static int first_port, failed;
static void *thread_send(void *arg) {
  if (udp_sendto(first_port + (int)(long)arg)) __atomic_add_fetch(&failed, 1, __ATOMIC_SEQ_CST);
  return NULL;
}
static int threads(int n) {
  pthread_t t[64];
  if (n < 1 || n > 64) return 1;
  for (long i = 0; i < n; i++)
    if (pthread_create(&t[i], NULL, thread_send, (void *)i) != 0) return 1;
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  return failed ? 1 : 0;
}
int main(int argc, char **argv) {
  if (argc < 4) _exit(64);
  const char *mode = argv[1];
  addr = argv[2];
  first_port = atoi(argv[3]);
  if (!strcmp(mode, "udp")) _exit(udp_sendto(first_port));
  if (!strcmp(mode, "udp-connected")) _exit(udp_connected(first_port));
  if (!strcmp(mode, "tcp")) _exit(tcp(first_port, 0));
  if (!strcmp(mode, "tcp-nonblock")) _exit(tcp(first_port, 1));
  if (!strcmp(mode, "threads") && argc > 4) _exit(threads(atoi(argv[4])));
  _exit(64);
}
`;

/**
 * launch EXE|DIR/ MODE ADDR FIRST_PORT COUNT STRIDE PARALLEL [THREADS]: forks COUNT
 * children, child i execs EXE (or DIR/sender-NNNN) with port FIRST_PORT + i * STRIDE,
 * at most PARALLEL at a time; prints "i pid" per child, then "failed K".
 */
const LAUNCH_C = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;
static void reap(void) {
  int st;
  if (wait(&st) > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) failed++;
}
int main(int argc, char **argv) {
  if (argc < 8) return 64;
  const char *exe = argv[1];
  int dir = exe[strlen(exe) - 1] == '/';
  int first = atoi(argv[4]), count = atoi(argv[5]), stride = atoi(argv[6]);
  int parallel = atoi(argv[7]), running = 0;
  for (int i = 0; i < count; i++) {
    char path[4096], port[16];
    if (dir) snprintf(path, sizeof path, "%ssender-%04d", exe, i);
    else snprintf(path, sizeof path, "%s", exe);
    snprintf(port, sizeof port, "%d", first + i * stride);
    pid_t pid = fork();
    if (pid < 0) return 71;
    if (pid == 0) {
      char *args[] = {path, argv[2], argv[3], port, argc > 8 ? argv[8] : NULL, NULL};
      execv(path, args);
      _exit(127);
    }
    printf("%d %d\n", i, (int)pid);
    if (++running >= parallel) {
      reap();
      running--;
    }
  }
  while (running-- > 0) reap();
  printf("failed %d\n", failed);
  return 0;
}
`;

/** The compiled programs: a sender, the launcher, and distinct copies of the sender. */
export interface Programs {
  dir: string;
  sender: string;
  launch: string;
  /** Directory (ending in "/") of copies sender-0000... for the exec loop. */
  copies: string;
}

/** Why the workload cannot be built here (no C compiler), or undefined. */
export function programsUnavailable(): string | undefined {
  if (spawnSync('cc', ['--version']).error) return 'no C compiler (cc): install build-essential';
  return undefined;
}

function compile(source: string, out: string, extra: string[] = []): void {
  const src = `${out}.c`;
  writeFileSync(src, source);
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', out, src, ...extra], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc ${src} failed: ${r.stderr || r.error?.message}`);
}

/** Compiles the programs into `dir` (a temp dir the caller made) with `copies` copies. */
export function buildPrograms(dir: string, copies: number): Programs {
  const base = realpathSync(dir);
  const sender = join(base, 'sender');
  const launch = join(base, 'launch');
  compile(SENDER_C, sender, ['-pthread']);
  compile(LAUNCH_C, launch);
  const copiesDir = join(base, 'exec-loop');
  mkdirSync(copiesDir, { recursive: true });
  for (let i = 0; i < copies; i++) {
    const copy = join(copiesDir, `sender-${String(i).padStart(4, '0')}`);
    copyFileSync(sender, copy);
    chmodSync(copy, 0o755);
  }
  return { dir: base, sender, launch, copies: `${copiesDir}/` };
}

/** Binds `script`'s listeners in `netns` and waits for its "ready" line. */
async function startPython(netns: string, script: string, args: string[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', netns, 'python3', '-c', script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const line = await new Promise<string | null>((resolve) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', () => resolve(null));
  });
  if (line !== 'ready') throw new Error(`sink server did not start: ${err.trim()}`);
  return child;
}

const SINK_PY = `
import resource, selectors, socket, sys
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
addr, sel = sys.argv[1], selectors.DefaultSelector()
for spec in sys.argv[2:]:
    proto, lo, hi = spec.split(':')
    for port in range(int(lo), int(hi) + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        if proto == 'tcp':
            s.listen(64)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, proto)
print('ready', flush=True)
while True:
    for key, _ in sel.select():
        try:
            if key.data == 'tcp':
                key.fileobj.accept()[0].close()
            else:
                key.fileobj.recvfrom(2048)
        except OSError:
            pass
`;

/** A server in `netns` on `addr`: accepts and closes on every TCP port of the kinds, and
 * reads every UDP port's datagrams (no ICMP unreachable flood). Stop it with kill(). */
export async function startSinkServer(
  netns: string,
  addr: string,
  perKind: number,
): Promise<ChildProcess> {
  const ports = Math.ceil(perKind / THREADS) * THREADS;
  if (ports > PORTS_PER_KIND) throw new Error(`at most ${PORTS_PER_KIND} flows per kind`);
  const specs = KINDS.map((k) => {
    const { from } = portRange(k);
    return `${PROTOCOL[k]}:${from}:${from + ports - 1}`;
  });
  return startPython(netns, SINK_PY, [addr, ...specs]);
}

/** What the test knows of the sender of one destination port. */
export interface Sender {
  pid: number;
  exe: string;
}

export interface KindRun {
  kind: Kind;
  protocol: 'udp' | 'tcp';
  /** Destination port -> its sender. */
  senders: Map<number, Sender>;
  /** Senders whose socket call failed (they did not send). */
  failed: number;
}

/**
 * Runs `flows` flows of `kind` from `netns` to `server` (`threads`: rounded up to whole
 * processes): the launcher forks the senders (`parallel` at a time), reports their pids.
 */
export async function runKind(
  programs: Programs,
  kind: Kind,
  o: { netns: string; server: string; flows: number; parallel?: number },
): Promise<KindRun> {
  const threaded = kind === 'threads';
  const stride = threaded ? THREADS : 1;
  const processes = Math.ceil(o.flows / stride);
  const flows = processes * stride;
  const exe = kind === 'exec-loop' ? programs.copies : programs.sender;
  const { from } = portRange(kind);
  const argv = [exe, MODE[kind], o.server, String(from), String(processes), String(stride)];
  argv.push(String(o.parallel ?? 16), ...(threaded ? [String(THREADS)] : []));
  const out = await collect(spawn('ip', ['netns', 'exec', o.netns, programs.launch, ...argv]));
  const senders = new Map<number, Sender>();
  let failed = -1;
  for (const line of out.split('\n')) {
    const done = /^failed (\d+)$/u.exec(line);
    if (done) failed = Number(done[1]);
    const m = /^(\d+) (\d+)$/u.exec(line);
    if (!m) continue;
    const i = Number(m[1]);
    const path = kind === 'exec-loop' ? `${exe}sender-${String(i).padStart(4, '0')}` : exe;
    for (let t = 0; t < stride; t++) {
      senders.set(from + i * stride + t, { pid: Number(m[2]), exe: path });
    }
  }
  if (failed < 0 || senders.size !== flows) {
    throw new Error(`launcher for ${kind} gave ${senders.size} of ${flows} senders:\n${out}`);
  }
  return { kind, protocol: PROTOCOL[kind], senders, failed };
}

function collect(child: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`launcher exited ${code}: ${err}`)),
    ),
  );
}

/** Every history entry to `dst` decided since `since` (epoch ms), paging backwards. */
export async function historyTo(
  client: IpcClient,
  dst: string,
  since: number,
): Promise<HistoryEntry[]> {
  const all: HistoryEntry[] = [];
  let beforeSeq: number | undefined;
  for (;;) {
    const page = await client.call('history.query', {
      since,
      text: dst,
      limit: 1000,
      ...(beforeSeq !== undefined ? { beforeSeq } : {}),
    });
    all.push(...page.entries.filter((e) => e.request.dst === dst));
    if (!page.more || page.entries.length === 0) return all;
    beforeSeq = page.entries[page.entries.length - 1]!.seq;
  }
}

/** Decisions the helper has made since it started (stats.get: cheap to poll). */
export async function decisions(client: IpcClient): Promise<number> {
  const s = await client.call('stats.get');
  return s.allowed + s.denied;
}

/**
 * Waits until the helper has made `target` decisions, or made none for `quietMs` (a
 * packet the kernel lost is then counted as undecided, not waited for forever).
 */
export async function settle(client: IpcClient, target: number, quietMs = 5_000): Promise<void> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const n = await decisions(client);
    if (n >= target) return;
    if (n !== last) {
      last = n;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > quietMs) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One kind's figures. Percentages are of the flows sent. */
export interface Score {
  kind: Kind;
  flows: number;
  decided: number;
  /** Entries with a process at all. */
  named: number;
  rightExe: number;
  rightPid: number;
  /** Entries naming another process or executable than the sender's (worse than none). */
  wrong: number;
  /** Decision time after the packet was read (decidedAt - request.time), ms. */
  decideP50Ms: number;
  decideP99Ms: number;
  /** The first few flows not named right, for the reader of a failure. */
  misses: string[];
}

const MISSES_SHOWN = 5;

/** One flow not named right, in words: what the helper said against what sent it. */
function miss(port: number, sender: Sender, e: HistoryEntry | undefined): string {
  const p = e?.request.process;
  const said = !e
    ? 'no decision'
    : !p
      ? 'no process'
      : `pid ${p.pid} exe ${p.exe ?? '(none)'} comm ${p.comm}`;
  return `port ${port}: ${said}; sent by pid ${sender.pid} exe ${sender.exe}`;
}

export function score(run: KindRun, entries: HistoryEntry[]): Score {
  const byPort = new Map<number, HistoryEntry>();
  for (const e of entries) {
    const r = e.request;
    if (r.protocol !== run.protocol || r.dport === null || !run.senders.has(r.dport)) continue;
    byPort.set(r.dport, e);
  }
  let named = 0;
  let rightExe = 0;
  let rightPid = 0;
  let wrong = 0;
  const waits: number[] = [];
  const misses: string[] = [];
  for (const [port, sender] of run.senders) {
    const e = byPort.get(port);
    const p0 = e?.request.process;
    if ((p0?.exe !== sender.exe || p0.pid !== sender.pid) && misses.length < MISSES_SHOWN) {
      misses.push(miss(port, sender, e));
    }
    if (!e) continue;
    waits.push(e.decidedAt - e.request.time);
    const p = e.request.process;
    if (!p) continue;
    named++;
    if (p.exe === sender.exe) rightExe++;
    if (p.pid === sender.pid) rightPid++;
    // A pid that is not the sender's, or an executable that is not its own; a process
    // named without its executable (exited while /proc was read) is not wrong, only short.
    if (p.pid !== sender.pid || (p.exe !== null && p.exe !== sender.exe)) wrong++;
  }
  waits.sort((a, b) => a - b);
  const at = (q: number): number =>
    waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] ?? 0;
  return {
    kind: run.kind,
    flows: run.senders.size,
    decided: byPort.size,
    named,
    rightExe,
    rightPid,
    wrong,
    decideP50Ms: at(0.5),
    decideP99Ms: at(0.99),
    misses,
  };
}

export const percent = (part: number, whole: number): number =>
  whole === 0 ? 0 : (100 * part) / whole;

let clockTicks: number | undefined;

/** CPU time (user + system) of `pid` in microseconds, from /proc/PID/stat. */
export function cpuMicros(pid: number): number {
  clockTicks ??=
    Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return (ticks * 1e6) / clockTicks;
}

/** One line of the figures table: `path` names the attribution path, `extra` is appended. */
export function formatScore(s: Score, path: string, extra = ''): string {
  const pc = (n: number): string => `${percent(n, s.flows).toFixed(1)} %`.padStart(9);
  return [
    path.padEnd(10),
    s.kind.padEnd(14),
    String(s.flows).padStart(6),
    String(s.decided).padStart(8),
    pc(s.named),
    pc(s.rightExe),
    pc(s.rightPid),
    String(s.wrong).padStart(6),
    `${s.decideP50Ms}/${s.decideP99Ms}`.padStart(10),
    extra,
  ].join(' ');
}

export function scoreHeader(extra = ''): string {
  return [
    'path'.padEnd(10),
    'kind'.padEnd(14),
    'flows'.padStart(6),
    'decided'.padStart(8),
    'named'.padStart(9),
    'right exe'.padStart(9),
    'right pid'.padStart(9),
    'wrong'.padStart(6),
    'ms p50/99'.padStart(10),
    extra,
  ].join(' ');
}
