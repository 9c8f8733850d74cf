/**
 * `portcullis start`, run for real as the README says: the demo form (`npx portcullis
 * start --demo`: its own namespaces, programs making connections, the helper in it, the
 * web UI) must bring a prompt that a person answers in the printed link (Debian's
 * Chromium; over the helper's socket where Chromium is missing), and after
 * SIGTERM leave no namespace, process, file or rule behind; the guarding form is run
 * against a namespace this test made (--netns), never this machine's network.
 *
 * Only the namespaces and temp dirs this file (or the command it runs) creates are
 * touched; the command is stopped by the PID it prints.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Prompt } from '../../helper/protocol/model.js';
import type { PromptsEvent } from '../../helper/protocol/messages.js';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS } from '../support/chromium.js';
import { showView } from '../support/web-ui.js';
import { IpcClient } from '../../helper/protocol/client.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { sleep } from '../support/udp-agent.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping portcullis start tests: ${skip}`);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The command's output, line by line, and its end. */
class Started {
  readonly out: string[] = [];
  readonly err: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcess;

  constructor(cmd: string, args: string[], extraEnv: Record<string, string> = {}) {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // As root itself: the UI stays root (a test run via sudo must not switch user).
    for (const k of [
      'SUDO_UID',
      'SUDO_GID',
      'SUDO_USER',
      'PKEXEC_UID',
      'DISPLAY',
      'WAYLAND_DISPLAY',
    ])
      delete env[k];
    Object.assign(env, extraEnv);
    this.proc = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.out.push(l));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.err.push(l));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  /** The first capture of `re` in stdout, once it is there. */
  async line(re: RegExp, ms = 90_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      for (const l of this.out) {
        const m = re.exec(l);
        if (m) return m[1]!;
      }
      if (this.proc.exitCode !== null || Date.now() > end) {
        throw new Error(`no ${re} in:\n${this.out.join('\n')}\n${this.err.join('\n')}`);
      }
      await sleep(50);
    }
  }

  /** The pid `start` prints for stopping it (npx runs it as a child). */
  async pid(): Promise<number> {
    return Number(await this.line(/Stop with Ctrl-C \(or `kill (\d+)`\)/));
  }

  /** `signal` to `pid`; resolves with the exit status of what was spawned. */
  async stop(pid: number, signal: NodeJS.Signals = 'SIGTERM', ms = 60_000): Promise<number | null> {
    process.kill(pid, signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

function netnsList(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n !== '');
}

/** Every process descending from `pid` (from /proc/PID/stat's ppid). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/u.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Exited while listed.
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** Running (a zombie has ended: only its parent's or init's reaping is left). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The pids of `pids` still running once a SIGKILL had time to land (at most 10 s). */
async function leftRunning(pids: number[]): Promise<number[]> {
  const end = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < end) await sleep(50);
  return pids.filter(alive);
}

function ruleset(netns: string): string {
  return spawnSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' })
    .stdout;
}

/** The host's rules mentioning Portcullis (read-only commands). */
function hostPortcullisRules(): string[] {
  const r = spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => /portcullis/iu.test(l));
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

async function connectHelper(socket: string): Promise<IpcClient> {
  const token = readFileSync(join(dirname(socket), 'token'), 'utf8').trim();
  return IpcClient.connect({ path: socket, token });
}

/** The client's prompts events, once it is subscribed. */
async function promptEvents(c: IpcClient): Promise<PromptsEvent[]> {
  const events: PromptsEvent[] = [];
  c.on('prompts', (e) => events.push(e));
  await c.call('subscribe', { topics: ['prompts'] });
  return events;
}

/**
 * The person's way: the printed link in Debian's Chromium, the first prompt card's
 * Allow. Resolves with what asked, once the helper says a person allowed it.
 */
async function answerInPage(link: string, events: PromptsEvent[]): Promise<string> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  try {
    const page = await browser.newPage();
    await page.goto(link);
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 30_000 });
    await showView(page, 'Prompts');
    const card = page
      .getByRole('listitem')
      .filter({ has: page.getByRole('button', { name: 'Allow' }) })
      .first();
    await card.waitFor({ timeout: 60_000 });
    await card.getByRole('button', { name: 'Allow' }).click();
    const end = Date.now() + 30_000;
    for (;;) {
      const byPerson = events.find(
        (e): e is Extract<PromptsEvent, { kind: 'resolved' }> =>
          e.kind === 'resolved' && e.reason === 'prompt' && e.action === 'allow',
      );
      const added = events.find((e) => e.kind === 'added' && e.prompt.id === byPerson?.id);
      if (added?.kind === 'added') return describePrompt(added.prompt.request);
      if (Date.now() > end) throw new Error('the Allow click reached no prompt');
      await sleep(50);
    }
  } finally {
    await browser.close();
  }
}

function describePrompt(r: Prompt['request']): string {
  return `${r.process?.exe ?? '?'} ${r.protocol} ${r.dst}:${r.dport}`;
}

/** Without a browser: waits for a prompt from a demo program and allows it once over IPC. */
async function answerOnePrompt(c: IpcClient, events: PromptsEvent[]): Promise<string> {
  const end = Date.now() + 60_000;
  for (;;) {
    const added = events.find((e) => e.kind === 'added');
    if (added?.kind === 'added') {
      await c.call('prompts.answer', {
        promptId: added.prompt.id,
        action: 'allow',
        duration: { kind: 'once' },
        scope: 'destination',
      });
      while (!events.some((e) => e.kind === 'resolved' && e.id === added.prompt.id)) {
        if (Date.now() > end) throw new Error('the answered prompt was not resolved');
        await sleep(50);
      }
      return describePrompt(added.prompt.request);
    }
    if (Date.now() > end) throw new Error('no prompt within 60 s');
    await sleep(50);
  }
}

describe.skipIf(skip)('portcullis start', () => {
  const running: Started[] = [];
  const made: TestNetns[] = [];
  const dirs: string[] = [];

  afterAll(async () => {
    for (const s of running) s.kill();
    for (const ns of made) ns.delete();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("the README's demo: a prompt is answered in the browser; after SIGTERM nothing is left", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('bash scripts/setup.sh && npx portcullis start --demo');
    const hostRulesBefore = hostPortcullisRules();
    // --ignore-scripts: where npm's npx cache has no entry for this tree yet (setup.sh
    // makes it), npm's install of it would rebuild the native addon under the feet of
    // the tests running beside this one.
    const s = new Started('npx', [
      '--ignore-scripts',
      'portcullis',
      'start',
      '--demo',
      '--no-open',
    ]);
    running.push(s);
    const ns = await s.line(/guarding only the network namespace (portcullis-demo-[0-9a-f]+),/);
    const socket = await s.line(/^helper socket: (\/\S+)$/);
    const link = await s.line(/Portcullis UI \(a one-time link\): (http:\/\/\S+)/);
    const pid = await s.pid();
    expect(netnsList()).toEqual(expect.arrayContaining([ns, `${ns}-peer`]));
    expect(readFileSync(`/etc/netns/${ns}/resolv.conf`, 'utf8')).toMatch(/^nameserver 198\.18\./u);
    // The built UI is served (not a 404 for every URL).
    expect(await httpStatus(new URL('/', link).href)).toBe(200);
    expect(ruleset(ns)).toMatch(/portcullis/iu);

    const c = await connectHelper(socket);
    const events = await promptEvents(c);
    const asked = existsSync(CHROMIUM)
      ? await answerInPage(link, events)
      : await answerOnePrompt(c, events);
    expect(asked).toMatch(/(curl|python3[.\d]*|bash|node) (tcp|udp) 198\.18\.42\.\d+:\d+$/u);
    await c.close();

    const children = descendants(pid);
    const inside = [ns, `${ns}-peer`].flatMap((n) =>
      spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean),
    );
    expect(children.length).toBeGreaterThanOrEqual(6);
    expect(await s.stop(pid)).toBe(0);
    expect(s.err.join('\n')).toContain(
      'portcullis start: stopped; the demo namespaces are removed',
    );
    expect(netnsList().filter((n) => n.startsWith(ns))).toEqual([]);
    expect(existsSync(`/etc/netns/${ns}`)).toBe(false);
    expect(existsSync(dirname(dirname(socket)))).toBe(false);
    expect(await leftRunning([...children, ...inside.map(Number)])).toEqual([]);
    expect(hostPortcullisRules()).toEqual(hostRulesBefore);
  }, 240_000);

  it('the guarding form, pointed at a namespace: rules while it runs, none after Ctrl-C (SIGINT)', async () => {
    const ns = new TestNetns('pcl-start');
    made.push(ns);
    const dir = mkdtempSync(join(tmpdir(), 'pcl-start-'));
    dirs.push(dir);
    const socket = join(dir, 'run', 'helper.sock');
    const s = new Started(process.execPath, [
      join(ROOT, 'bin', 'portcullis.js'),
      'start',
      '--netns',
      ns.name,
      '--socket',
      socket,
      '--state-dir',
      join(dir, 'state'),
      '--no-open',
      '--',
      '--queue',
      '23',
    ]);
    running.push(s);
    expect(await s.line(/Portcullis is guarding (the network namespace \S+):/)).toBe(
      `the network namespace ${ns.name}`,
    );
    const link = await s.line(/Portcullis UI \(a one-time link\): (http:\/\/\S+)/);
    expect(await httpStatus(new URL('/', link).href)).toBe(200);
    expect(ruleset(ns.name)).toMatch(/portcullis/iu);
    const c = await connectHelper(socket);
    await expect(c.call('settings.get', {})).resolves.toBeTruthy();
    await c.close();
    // A second start on the same socket refuses before it starts anything.
    const again = spawnSync(
      process.execPath,
      [join(ROOT, 'bin', 'portcullis.js'), 'start', '--netns', ns.name, '--socket', socket],
      { encoding: 'utf8' },
    );
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`a helper already serves ${socket}`);
    const pid = await s.pid();
    const children = descendants(pid);
    // Ctrl-C's signal.
    expect(await s.stop(pid, 'SIGINT')).toBe(0);
    expect(s.err.join('\n')).toContain('portcullis start: SIGINT: stopping');
    expect(s.err.join('\n')).toContain('the firewall rules are removed');
    expect(ruleset(ns.name)).not.toMatch(/portcullis/iu);
    expect(existsSync(socket)).toBe(false);
    expect(await leftRunning(children)).toEqual([]);
  }, 120_000);

  it('via sudo: the UI runs as that user, and their browser gets a link of its own', async (ctx) => {
    const bin = join(ROOT, 'bin', 'portcullis.js');
    const readable = spawnSync('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'test',
      '-r',
      bin,
    ]);
    if (readable.status !== 0) {
      console.warn(`skipping: nobody (65534) cannot read ${bin}`);
      ctx.skip();
    }
    const ns = new TestNetns('pcl-start');
    made.push(ns);
    const dir = mkdtempSync(join(tmpdir(), 'pcl-start-'));
    dirs.push(dir);
    chmodSync(dir, 0o755);
    // A desktop session's xdg-open that writes down who ran it and with what.
    const fake = join(dir, 'bin');
    mkdirSync(fake);
    const record = join(dir, 'opened');
    writeFileSync(record, '');
    chmodSync(record, 0o666);
    writeFileSync(
      join(fake, 'xdg-open'),
      `#!/bin/sh\necho "$(id -u) \${PORTCULLIS_TOKEN:-none} $1" >> ${record}\n`,
    );
    chmodSync(join(fake, 'xdg-open'), 0o755);
    const socket = join(dir, 'run', 'helper.sock');
    const s = new Started(
      process.execPath,
      [bin, 'start', '--netns', ns.name, '--socket', socket, '--state-dir', join(dir, 'state')],
      {
        SUDO_UID: '65534',
        SUDO_GID: '65534',
        SUDO_USER: 'nobody',
        DISPLAY: ':99',
        PATH: `${fake}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
        PORTCULLIS_TOKEN: 'must-not-leak',
      },
    );
    running.push(s);
    const printed = await s.line(/Portcullis UI \(a one-time link\): (http:\/\/\S+)/);
    const pid = await s.pid();
    // The helper lets them in: the token file is theirs.
    expect(statSync(join(dirname(socket), 'token')).uid).toBe(65534);
    const end = Date.now() + 30_000;
    while (readFileSync(record, 'utf8') === '' && Date.now() < end) await sleep(50);
    const [uid, token, url] = readFileSync(record, 'utf8').trim().split(' ');
    expect(uid).toBe('65534');
    expect(token).toBe('none');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#code=/u);
    expect(url).not.toBe(printed);
    expect(new URL(url!).origin).toBe(new URL(printed).origin);
    const ui = descendants(pid).find((p) =>
      readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('\0ui\0--web'),
    );
    expect(ui).toBeDefined();
    expect(statSync(`/proc/${ui}`).uid).toBe(65534);
    expect(await s.stop(pid)).toBe(0);
  }, 120_000);

  it('bad arguments exit 2, and a user who is not root is told to use sudo, before anything starts', async () => {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'bin', 'portcullis.js'), 'start', '--bogus'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
    // Not root: says how to run it, creates nothing.
    const demos = (): string[] => netnsList().filter((n) => n.startsWith('portcullis-demo-'));
    const before = demos();
    const user = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        join(ROOT, 'bin', 'portcullis.js'),
        'start',
        '--demo',
      ],
      { encoding: 'utf8' },
    );
    expect(user.status).toBe(1);
    expect(user.stderr).toContain('run as root: `sudo npx portcullis start`');
    expect(demos()).toEqual(before);
  });
});
