/**
 * A helper started for an app stops, and removes its rules, when the app ends, however
 * it ends. The app is test/support/launcher-app.mjs: the compiled launcher and
 * elevation of src-main/node, run as root so that only the password prompt is left out
 * (pkexec by a script that execs the program as pkexec does once authorized;
 * sudo-prompt's double shell wrapping without its password binary). The helper works
 * in a namespace this file creates (`--netns`). The test kills the app with SIGKILL
 * (or lets it quit) and polls until the helper is gone, then checks its rules.
 * Only processes this file started are signalled, by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { removeHelperRules } from '../support/helper-process.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { sleep } from '../support/udp-agent.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping launcher lifeline root tests: ${skip}`);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const APP = join(ROOT, 'test', 'support', 'launcher-app.mjs');
const QUEUE = 21;
/** The launcher promises 2 s; a loaded CI machine gets more before the test fails. */
const GONE_WITHIN_MS = 5_000;

interface LinkState {
  kind: string;
  method?: string;
  reason?: string;
}

/** The app process and what it printed. */
class App {
  readonly states: LinkState[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly proc: ChildProcess;

  constructor(config: object) {
    this.proc = spawn(process.execPath, [APP, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      this.states.push(JSON.parse(l) as LinkState);
    });
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.stderr.push(l));
    this.exited = new Promise((resolve) =>
      this.proc.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  async connected(ms = 30_000): Promise<LinkState[]> {
    const end = Date.now() + ms;
    while (!this.states.some((s) => s.kind === 'connected')) {
      const failed = this.states.find((s) => s.kind === 'failed');
      if (failed || this.proc.exitCode !== null || Date.now() > end) {
        throw new Error(
          `app did not connect: ${JSON.stringify(this.states)}\n${this.stderr.join('\n')}`,
        );
      }
      await sleep(50);
    }
    return this.states;
  }
}

/** Pids of live processes whose argv holds `helper` and `--socket socket` as words. */
function helperPids(socket: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // ended meanwhile
    }
    const at = argv.indexOf('--socket');
    if (argv.includes('helper') && at >= 0 && argv[at + 1] === socket) pids.push(Number(entry));
  }
  return pids;
}

/** A process that ended but was not reaped yet (Z) has ended too. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Polls until `pid` has ended; the time it took, or throws after `limitMs`. */
async function goneWithin(pid: number, since: number, limitMs: number): Promise<number> {
  while (alive(pid)) {
    if (Date.now() - since > limitMs)
      throw new Error(`helper ${pid} still runs after ${limitMs} ms`);
    await sleep(25);
  }
  return Date.now() - since;
}

describe.skipIf(skip)("the app's helper stops with the app (launcher lifecycle)", () => {
  let ns: TestNetns;
  let dir: string;
  let fakePkexec: string;
  let n = 0;
  const apps: App[] = [];
  const sockets: string[] = [];

  /** Our lines of `iptables -S` in the namespace, and whether our nft table exists. */
  function rules(): string[] {
    const lines = ns
      .exec('iptables-nft', ['-S'])
      .split('\n')
      .filter((l) => l.includes('PORTCULLIS'));
    const nft = ns.try('nft', ['list', 'tables']);
    if (nft.stdout.includes('portcullis')) lines.push('nft: table inet portcullis');
    return lines;
  }

  function startApp(
    via: 'pkexec' | 'sudo-prompt',
    extra: string[] = [],
    parent?: { pid: number; startTime: string },
  ): App {
    n++;
    const stateDir = join(dir, `state-${n}`);
    const socket = join(dir, `run-${n}`, 'helper.sock');
    sockets.push(socket);
    const app = new App({
      socket,
      pkexec: via === 'pkexec' ? fakePkexec : join(dir, 'no-pkexec-here'),
      runtimeDir: dir,
      extraArgs: ['--netns', ns.name, '--queue', String(QUEUE), '--state-dir', stateDir, ...extra],
      ...(parent ? { parent } : {}),
    });
    apps.push(app);
    return app;
  }

  /** The one helper serving `socket`, with its rules installed. */
  function theHelper(socket: string): number {
    const pids = helperPids(socket);
    expect(pids).toHaveLength(1);
    expect(rules().length).toBeGreaterThan(0);
    return pids[0]!;
  }

  beforeAll(() => {
    ns = new TestNetns('pcl-life');
    dir = mkdtempSync(join(tmpdir(), 'pcl-lifeline-'));
    // pkexec once the user is authorized: the program replaces it, keeping stdin (the
    // app's pipe), with pkexec's minimal environment.
    fakePkexec = join(dir, 'pkexec');
    writeFileSync(
      fakePkexec,
      '#!/bin/sh\nexec /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"\n',
    );
    chmodSync(fakePkexec, 0o755);
  }, 120_000);

  afterEach(async () => {
    for (const app of apps.splice(0)) {
      if (app.proc.exitCode === null && app.proc.signalCode === null) app.proc.kill('SIGKILL');
      await app.exited;
    }
    // A helper left behind by a failed test: ours (found by its socket), by PID.
    for (const socket of sockets.splice(0)) {
      for (const pid of helperPids(socket)) {
        process.kill(pid, 'SIGTERM');
        await goneWithin(pid, Date.now(), 10_000).catch(() => process.kill(pid, 'SIGKILL'));
      }
    }
    await removeHelperRules(ns.name);
  }, 30_000);

  afterAll(() => {
    ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pkexec: the app killed with SIGKILL; its helper removes its rules and exits', async () => {
    const app = startApp('pkexec');
    expect((await app.connected()).find((s) => s.kind === 'elevating')?.method).toBe('pkexec');
    const socket = sockets.at(-1)!;
    const pid = theHelper(socket);
    const killedAt = Date.now();
    app.proc.kill('SIGKILL');
    const ms = await goneWithin(pid, killedAt, GONE_WITHIN_MS);
    console.log(`pkexec path: helper gone ${ms} ms after the app's SIGKILL`);
    expect(rules()).toEqual([]);
    expect(existsSync(socket)).toBe(false);
    // The helper's stderr is the app's (pkexec passes it on): it stopped the clean way,
    // told by whichever lifeline came first.
    await sleep(100);
    const log = app.stderr.join('\n');
    expect(log).toMatch(
      /(stdin closed \(the app is gone\)|parent process \d+ has ended): stopping/,
    );
    expect(log).toMatch(/rules removed/);
  }, 60_000);

  it('pkexec, the stdin lifeline alone (the helper watches init instead of the app): SIGKILL', async () => {
    const init = readFileSync('/proc/1/stat', 'utf8');
    const startTime = init.slice(init.lastIndexOf(')') + 2).split(' ')[19]!;
    const app = startApp('pkexec', [], { pid: 1, startTime });
    await app.connected();
    const pid = theHelper(sockets.at(-1)!);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--parent-pid');
    const killedAt = Date.now();
    app.proc.kill('SIGKILL');
    const ms = await goneWithin(pid, killedAt, GONE_WITHIN_MS);
    console.log(`pkexec path, stdin alone: helper gone ${ms} ms after the app's SIGKILL`);
    expect(rules()).toEqual([]);
    await sleep(100);
    expect(app.stderr.join('\n')).toMatch(/stdin closed \(the app is gone\): stopping/);
  }, 60_000);

  it('sudo-prompt (no pipe reaches the helper), fail-closed: SIGKILL; --parent-pid stops it, rules removed', async () => {
    const app = startApp('sudo-prompt', ['--fail-closed']);
    expect((await app.connected()).find((s) => s.kind === 'elevating')?.method).toBe('sudo-prompt');
    const socket = sockets.at(-1)!;
    const pid = theHelper(socket);
    // Fail-closed: no --queue-bypass; a clean stop removes the rules all the same.
    expect(rules().some((l) => l.includes('--queue-bypass'))).toBe(false);
    expect(readlinkSync(`/proc/${pid}/fd/0`)).toBe('/dev/null');
    const killedAt = Date.now();
    app.proc.kill('SIGKILL');
    const ms = await goneWithin(pid, killedAt, GONE_WITHIN_MS);
    console.log(`sudo-prompt path: helper gone ${ms} ms after the app's SIGKILL`);
    expect(rules()).toEqual([]);
    expect(existsSync(socket)).toBe(false);
  }, 60_000);

  it('pkexec: a normal quit (launcher.stop) stops the helper, and the app exits 0', async () => {
    const app = startApp('pkexec');
    await app.connected();
    const socket = sockets.at(-1)!;
    const pid = theHelper(socket);
    const quitAt = Date.now();
    app.proc.stdin!.write('quit\n');
    expect(await app.exited).toEqual({ code: 0, signal: null });
    const ms = await goneWithin(pid, quitAt, GONE_WITHIN_MS);
    console.log(`pkexec path: helper gone ${ms} ms after the app's quit`);
    expect(rules()).toEqual([]);
    expect(existsSync(socket)).toBe(false);
  }, 60_000);

  it('sudo-prompt: a normal quit stops the helper once the app has exited', async () => {
    const app = startApp('sudo-prompt');
    await app.connected();
    const socket = sockets.at(-1)!;
    const pid = theHelper(socket);
    app.proc.stdin!.write('quit\n');
    expect(await app.exited).toEqual({ code: 0, signal: null });
    const ms = await goneWithin(pid, Date.now(), GONE_WITHIN_MS);
    console.log(`sudo-prompt path: helper gone ${ms} ms after the app's exit`);
    expect(rules()).toEqual([]);
  }, 60_000);
});
