/**
 * The web UI (`portcullis ui --web`, the real command) against other local
 * users: what it puts in command lines gives them nothing, and their
 * connections (or this user's unauthenticated ones) never keep the page out.
 *
 * Everything runs in a network namespace this file creates: the command, the
 * browsers (Debian's Chromium) and test/support/web-probe.mjs, the attacker,
 * as uid 65534 (setpriv) or as the host's own user. The helper is the
 * scripted IpcServer of test/support/ipc-harness.ts on a Unix socket.
 * Children are stopped by PID (the stub xdg-open by its process group, which
 * holds the browser it started).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TOKEN, until, type Harness } from '../support/ipc-harness.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../support/chromium.js';

const NOBODY = 65534;
const PORT = 8123;

function missing(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed`;
  if (spawnSync('setpriv', ['--version']).error) return 'setpriv is not installed';
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping web secrets tests: ${skip}`);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROBE = join(ROOT, 'test', 'support', 'web-probe.mjs');
const WS_MODULE = join(ROOT, 'node_modules', 'ws', 'wrapper.mjs');

/** A child whose output lines are kept. */
interface Child {
  proc: ChildProcess;
  out: string[];
  err: string[];
  exited: Promise<number | null>;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const proc = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: string[] = [];
  const err: string[] = [];
  const lines = (into: string[]) => {
    let rest = '';
    return (chunk: Buffer) => {
      rest += chunk.toString('utf8');
      const parts = rest.split('\n');
      rest = parts.pop()!;
      into.push(...parts);
    };
  };
  proc.stdout!.on('data', lines(out));
  proc.stderr!.on('data', lines(err));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  return { proc, out, err, exited };
}

async function stop(child: Child | undefined): Promise<void> {
  if (!child || child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill('SIGTERM');
  await child.exited;
}

interface ProbeReport {
  readable?: { cmdline: number; environ: number };
  candidates: string[];
  successes: { candidate: string; how: string }[];
  outcomes: Record<string, number>;
}

describe.skipIf(skip)('the web UI against other local users', () => {
  let ns: TestNetns;
  let dir: string;
  let pub: string;
  let priv: string;
  let harness: Harness;
  let tokenFile: string;
  let ui: Child | undefined;
  const children: Child[] = [];
  let browser: Browser | undefined;

  /** `portcullis ui --web` in the namespace, with the stub xdg-open first on PATH. */
  async function startUi(extra: string[]): Promise<{ child: Child; url: string }> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${join(pub, 'bin')}:${process.env['PATH'] ?? ''}`,
    };
    delete env['PORTCULLIS_TOKEN'];
    const child = start(
      'ip',
      [
        ...['netns', 'exec', ns.name, process.execPath, join(ROOT, 'bin', 'portcullis.js')],
        ...['ui', '--web', '--port', String(PORT), '--socket', harness.path],
        ...['--token-file', tokenFile, ...extra],
      ],
      env,
    );
    await until(
      () => child.out.some((l) => l.includes('http://')) || child.proc.exitCode !== null,
      20_000,
      'the UI to print its link',
    );
    const line = child.out.find((l) => l.includes('http://'));
    if (!line) throw new Error(`portcullis ui failed: ${child.err.join('\n')}`);
    return { child, url: /http:\/\/\S+/u.exec(line)![0] };
  }

  /** web-probe.mjs in the namespace, as `uid` (the host's own without one). */
  function probe(uid: number | null, args: string[]): Child {
    const drop =
      uid === null ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
    const child = start('ip', [
      ...['netns', 'exec', ns.name, ...drop, process.execPath, PROBE],
      ...[args[0]!, String(PORT), WS_MODULE, ...args.slice(1)],
    ]);
    children.push(child);
    return child;
  }

  /** A hold probe's counts, asked for until `ok` holds. */
  async function countsWhen(
    child: Child,
    ok: (counts: Record<string, number>) => boolean,
  ): Promise<Record<string, number>> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const before = child.out.length;
      child.proc.stdin!.write('report\n');
      await until(() => child.out.length > before, 10_000, 'a report');
      const counts = JSON.parse(child.out.at(-1)!) as Record<string, number>;
      if (ok(counts)) return counts;
      if (Date.now() > deadline) throw new Error(`counts never got there: ${child.out.at(-1)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async function report(child: Child): Promise<ProbeReport> {
    const code = await child.exited;
    if (code !== 0) throw new Error(`web-probe exited ${code}: ${child.err.join('\n')}`);
    return JSON.parse(child.out.at(-1)!) as ProbeReport;
  }

  beforeAll(async () => {
    ns = new TestNetns('pcl-wsec');
    dir = mkdtempSync(join(tmpdir(), 'pcl-web-secrets-'));
    // Other users may traverse to the stub, nothing else.
    chmodSync(dir, 0o711);
    pub = join(dir, 'public');
    priv = join(dir, 'private');
    mkdirSync(join(pub, 'bin'), { recursive: true, mode: 0o755 });
    mkdirSync(priv, { mode: 0o700 });
    harness = await startHarness();
    tokenFile = join(priv, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    // xdg-open: it keeps its argv while it lives, as the real one may, and
    // starts a real browser on the URL, whose command line holds it too.
    writeFileSync(
      join(pub, 'bin', 'xdg-open'),
      [
        '#!/bin/sh',
        `echo $$ > '${priv}/opener.pid'`,
        `printf '%s\\n' "$1" > '${priv}/opened-url'`,
        `'${CHROMIUM}' ${CHROMIUM_FLAGS.join(' ')} --user-data-dir='${priv}/profile' "$1" &`,
        'wait',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    // Playwright's browser runs in the namespace too.
    writeFileSync(
      join(pub, 'bin', 'chromium-in-ns'),
      `#!/bin/sh\nexec ip netns exec '${ns.name}' '${CHROMIUM}' "$@"\n`,
      { mode: 0o755 },
    );
    browser = await chromium.launch({
      executablePath: join(pub, 'bin', 'chromium-in-ns'),
      args: CHROMIUM_FLAGS,
    });
  }, 240_000);

  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.proc.stdin?.end();
      await stop(c);
    }
    await stop(ui);
    ui = undefined;
    // The stub xdg-open was started detached: its process group holds the browser it ran.
    const pidFile = join(priv, 'opener.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      rmSync(pidFile);
      try {
        process.kill(-pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
  });

  afterAll(async () => {
    await browser?.close();
    await harness?.stop();
    ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("another user's connections and this user's unauthenticated ones never keep the page out; idle ones are closed", async () => {
    const started = await startUi([]);
    ui = started.child;
    // Both keep their connections up: each one that closes is opened again.
    const nobody = probe(NOBODY, ['hold', '24', '24']);
    const own = probe(null, ['hold', '12', '12']);
    // Every connection has been tried at least once.
    await countsWhen(nobody, (c) => c.tcpOpened! >= 24 && c.wsOpened! + c.wsEnded! >= 24);
    await countsWhen(own, (c) => c.tcpOpened! >= 12 && c.wsOpened! + c.wsEnded! >= 12);

    const page = await (await browser!.newContext()).newPage();
    await page.goto(started.url);
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 30_000 });
    // Still connected with the flood going on: a reload gets back in.
    await page.reload();
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 30_000 });

    // This user's idle connections are closed by the server (the handshake
    // deadline), its upgrades without a session refused; another user's
    // connections were all closed unread.
    const mine = await countsWhen(own, (c) => c.tcpClosedByPeer! >= 12 && c.wsRefused! >= 12);
    expect(mine.wsOpened).toBe(0);
    const theirs = await countsWhen(nobody, (c) => c.tcpClosedByPeer! >= 48);
    expect(theirs.wsOpened).toBe(0);
    expect(theirs.wsRefused).toBe(0);
    expect(harness.service.rules).toEqual([]);
    // Refused for their owner, per uid; logged once.
    const refusals = ui.err.filter((l) => l.includes(`the client socket belongs to uid ${NOBODY}`));
    expect(refusals).toHaveLength(1);
  }, 120_000);

  it('what --open puts in command lines gives another user nothing, nor this user once the page has it', async () => {
    const before = { ...harness.service.settings };
    const started = await startUi(['--open']);
    ui = started.child;
    // The browser the stub started exchanged its code and connected.
    await until(
      () => ui!.err.some((l) => l.includes('web host: a page connected')),
      60_000,
      'the opened page',
    );
    const opened = readFileSync(join(priv, 'opened-url'), 'utf8').trim();
    const code = new URL(opened).hash.replace(/^#\w+=/u, '');
    expect(code).toMatch(/^[\w-]{43}$/u);

    // Another user reads every command line and environment it can and
    // tries every token-like string in them.
    const theirs = await report(probe(NOBODY, ['scan']));
    expect(theirs.readable!.cmdline).toBeGreaterThan(0);
    // It did see the opened link's code (in the stub's and the browser's argv).
    expect(theirs.candidates).toContain(code);
    expect(theirs.successes).toEqual([]);

    // The same strings from the UI's own user (past the owner check): the
    // code died on its exchange.
    const list = join(priv, 'candidates.json');
    writeFileSync(list, JSON.stringify(theirs.candidates));
    const own = await report(probe(null, ['try', list]));
    expect(own.successes).toEqual([]);
    expect(own.outcomes['exchange: 403']).toBe(theirs.candidates.length);

    expect(harness.service.rules).toEqual([]);
    expect(harness.service.settings).toEqual(before);
    // The printed link (this terminal only) still opens the UI once.
    const page = await (await browser!.newContext()).newPage();
    await page.goto(started.url);
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 30_000 });
  }, 180_000);
});
