/**
 * The .deb on a real system: a guest of test/vm/ booted with systemd as PID 1, with a
 * stock kernel. What a user who installs the package gets, in order: `dpkg -i` starts
 * the service; the unit's sandbox holds with the real helper running; a member of the
 * `portcullis` group controls it and a non-member cannot; it intercepts connections to a
 * namespace this file makes; `systemctl stop` removes its rules; with the service
 * stopped, the app's launcher starts a helper through pkexec and polkit's action
 * `org.portcullis.helper` for a member who authenticates; `dpkg --purge` leaves nothing.
 *
 * Never on a host (it installs a package and starts a service): outside the VM the
 * file skips; inside it, a missing package or another init is a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, sh } from '../support/staging.js';
import { sleep } from '../support/udp-agent.js';

const IN_VM = process.env['PORTCULLIS_IN_VM'] === '1';
if (!IN_VM) console.log('system tests: skipped: they run only in the test VM (test/vm/)');

const DEB = process.env['PORTCULLIS_DEB'] ?? '';
const SERVICE = 'portcullis-helper.service';
const SOCKET = '/run/portcullis/helper.sock';
const APP = '/opt/Portcullis';
const PEER_NS = 'pc-system-peer';
const HOST_ADDR = '198.18.7.1';
const PEER_ADDR = '198.18.7.2';
const [ALLOWED, DENIED, LATER] = [8081, 8082, 8083];
const PASSWORD = 'correct horse battery staple';
/** Electron's desktop libraries: what the guest (this machine's root) lacks on purpose. */
const DESKTOP_LIBRARIES = [
  'libgtk-3-0',
  'libnotify4',
  'libnss3',
  'libxss1',
  'libxtst6',
  'xdg-utils',
  'libatspi2.0-0',
  'libsecret-1-0',
];

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/** argv that runs `argv` as `user`, with the user's groups and a login's environment. */
function asUser(user: string, argv: string[]): string[] {
  return ['--reuid', user, '--regid', user, '--init-groups', '--reset-env', ...argv];
}

/** The package's command line, run by `user` the way the package's wrapper runs it. */
function cli(user: string, args: string[], env: string[] = []) {
  return sh(
    'setpriv',
    asUser(user, [
      '/usr/bin/env',
      ...env,
      'ELECTRON_RUN_AS_NODE=1',
      `${APP}/portcullis`,
      `${APP}/resources/helper/bin/portcullis.js`,
      ...args,
    ]),
  );
}

const CLIENT = `
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4)
    s.sendall(b'ping')
    print(s.recv(16).decode())
except OSError as e:
    print(type(e).__name__, e.errno, e)
    sys.exit(1)
`;

/** A TCP connection from `user` to the peer: the echo, or the error. */
function connect(user: string, port: number): { ok: boolean; out: string } {
  const r = sh('setpriv', asUser(user, ['python3', '-c', CLIENT, PEER_ADDR, String(port)]));
  return { ok: r.status === 0 && r.stdout.trim() === 'ping', out: r.stdout + r.stderr };
}

const SERVER = `
import socket, sys, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(c.recv(64))
        c.close()
for p in sys.argv[2:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
`;

/** Our rules in the guest's own namespace, through both tools. */
function ourRules(): string[] {
  const found: string[] = [];
  if (sh('nft', ['list', 'table', 'inet', 'portcullis']).status === 0) found.push('nft table');
  for (const cmd of ['iptables-nft', 'ip6tables-nft']) {
    const r = sh(cmd, ['-w', '-S']);
    found.push(...r.stdout.split('\n').filter((l) => l.includes('PORTCULLIS')));
  }
  return found;
}

function unitState(): string {
  return sh('systemctl', ['is-active', SERVICE]).stdout.trim();
}

async function until(what: string, ok: () => boolean, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(250);
  }
}

function status(pid: number): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}

/** Capability numbers (linux/capability.h) of the ones the unit may name. */
const CAP_NUMBERS: Record<string, number> = {
  CAP_DAC_READ_SEARCH: 2,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_SYS_PTRACE: 19,
};

/** The unit's bounding set as /proc/PID/status prints it. */
function unitCapabilityMask(unitText: string): string {
  const line = unitText.split('\n').findLast((l) => l.startsWith('CapabilityBoundingSet='));
  if (line === undefined) throw new Error('the unit has no CapabilityBoundingSet=');
  let mask = 0n;
  for (const name of line.slice('CapabilityBoundingSet='.length).trim().split(/\s+/u)) {
    const n = CAP_NUMBERS[name];
    if (n === undefined) throw new Error(`unknown capability ${name} in the unit`);
    mask |= 1n << BigInt(n);
  }
  return mask.toString(16).padStart(16, '0');
}

/** One mount of `pid`'s namespace (mountinfo fields: mount point, options, super options). */
function mountOf(pid: number, point: string): { options: string; superOptions: string } {
  const lines = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n');
  const line = lines.findLast((l) => l.split(' ')[4] === point);
  if (line === undefined) throw new Error(`no mount at ${point} for ${pid}`);
  const [left, right] = line.split(' - ') as [string, string];
  return { options: left.split(' ')[5] ?? '', superOptions: right.split(' ')[2] ?? '' };
}

/**
 * The app's launcher run by `user`, with the user's polkit authentication agent (a
 * desktop has a graphical one; here pkttyagent in a terminal, registered for the app's
 * process before the app asks).
 */
class MemberApp {
  readonly app: ChildProcess;
  agent: ChildProcess | undefined;
  /** What the agent printed (pkexec's request, the prompt, the result). */
  agentOutput = '';
  readonly states: { kind: string; reason?: string }[] = [];
  private readonly appErr: string[] = [];

  constructor(
    private readonly user: string,
    private readonly uid: number,
    readonly dir: string,
  ) {
    const config = {
      socket: SOCKET,
      pkexec: '/usr/bin/pkexec',
      runtimeDir: dir,
      extraArgs: [],
      startOnLine: true,
    };
    this.app = spawn(
      'setpriv',
      asUser(user, [
        process.execPath,
        join(repoRoot, 'test/support/launcher-app.mjs'),
        JSON.stringify(config),
      ]),
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    createInterface({ input: this.app.stdout! }).on('line', (line) => {
      this.states.push(JSON.parse(line) as { kind: string; reason?: string });
    });
    createInterface({ input: this.app.stderr! }).on('line', (line) => this.appErr.push(line));
  }

  /** Registers the agent for the app's process, then lets the app start. */
  async start(): Promise<void> {
    const fifo = join(this.dir, `agent-ready-${this.app.pid}`);
    must('mkfifo', ['--mode', '0600', fifo]);
    must('chown', [`${this.uid}:${this.uid}`, fifo]);
    // pkttyagent closes --notify-fd once polkitd has registered it.
    const registered = new Promise<void>((resolve, reject) => {
      const ready = createReadStream(fifo);
      ready.on('data', () => undefined);
      ready.once('end', () => resolve());
      ready.once('error', reject);
    });
    const command = `exec pkttyagent --process ${this.app.pid} --notify-fd 3 3>${fifo}`;
    this.agent = spawn(
      'setpriv',
      asUser(this.user, ['script', '--quiet', '--command', command, '/dev/null']),
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const read = (chunk: Buffer): void => {
      this.agentOutput += chunk.toString('utf8');
    };
    this.agent.stdout!.on('data', read);
    this.agent.stderr!.on('data', read);
    await registered;
    this.app.stdin!.write('start\n');
  }

  answer(line: string): void {
    this.agent!.stdin!.write(`${line}\n`);
  }

  quit(): void {
    this.app.stdin!.write('quit\n');
  }

  async waitFor(what: string, ok: () => boolean, ms = 120_000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end || this.app.exitCode !== null) {
        throw new Error(
          `${what} did not come: states ${JSON.stringify(this.states)}\n` +
            `agent:\n${this.agentOutput}\napp:\n${this.appErr.join('\n')}`,
        );
      }
      await sleep(100);
    }
  }

  stop(): void {
    for (const p of [this.agent, this.app]) {
      if (p && p.exitCode === null && p.pid !== undefined) p.kill('SIGKILL');
    }
  }
}

/** Live processes whose argv holds `--socket path`. */
function helpersOn(path: string): number[] {
  const r = sh('pgrep', ['-f', '--', `--socket ${path}`]);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

describe.skipIf(!IN_VM)('the .deb under systemd', () => {
  let server: ChildProcess | undefined;
  let installedFiles: string[] = [];
  const launchers: MemberApp[] = [];

  beforeAll(async () => {
    expect(readFileSync('/proc/1/comm', 'utf8').trim(), 'PID 1').toBe('systemd');
    expect(existsSync(DEB), `PORTCULLIS_DEB=${DEB}`).toBe(true);
    expect(sh('dpkg-query', ['-W', 'portcullis']).status, 'not installed before').not.toBe(0);
    must('ip', ['netns', 'add', PEER_NS]);
    must('ip', ['link', 'add', 'pcsys0', 'type', 'veth', 'peer', 'name', 'pcsys1']);
    must('ip', ['link', 'set', 'pcsys1', 'netns', PEER_NS]);
    must('ip', ['addr', 'add', `${HOST_ADDR}/30`, 'dev', 'pcsys0']);
    must('ip', ['link', 'set', 'pcsys0', 'up']);
    must('ip', ['-n', PEER_NS, 'addr', 'add', `${PEER_ADDR}/30`, 'dev', 'pcsys1']);
    must('ip', ['-n', PEER_NS, 'link', 'set', 'pcsys1', 'up']);
    must('ip', ['-n', PEER_NS, 'link', 'set', 'lo', 'up']);
    const ports = [ALLOWED, DENIED, LATER].map(String);
    server = spawn('ip', ['netns', 'exec', PEER_NS, 'python3', '-c', SERVER, PEER_ADDR, ...ports], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: server!.stdout! }).once('line', () => resolve());
      server!.once('exit', (code) => reject(new Error(`echo server exited ${code}`)));
    });
  });

  afterAll(() => {
    for (const l of launchers) l.stop();
    if (server?.pid !== undefined) server.kill('SIGKILL');
    sh('ip', ['netns', 'del', PEER_NS]);
  });

  it('installs with dpkg, and its postinst starts the service', async () => {
    const r = sh('dpkg', ['--install', '--force-depends', DEB]);
    expect(r.status, r.stderr).toBe(0);
    // The only dependencies left unmet are Electron's desktop libraries.
    const unmet = [...r.stderr.matchAll(/depends on ([^;\s]+)[^;]*; however:/gu)].map((m) =>
      (m[1] as string).replace(/[,;]$/u, ''),
    );
    for (const name of unmet) expect(DESKTOP_LIBRARIES, r.stderr).toContain(name);
    installedFiles = must('dpkg', ['--listfiles', 'portcullis'])
      .split('\n')
      .filter((p) => p.startsWith('/') && sh('test', ['-d', p]).status !== 0);
    expect(installedFiles).toContain('/usr/lib/portcullis/portcullis-helper');
    expect(sh('getent', ['group', 'portcullis']).status).toBe(0);
    expect(must('systemctl', ['is-enabled', SERVICE]).trim()).toBe('enabled');
    await until('the service is active with its socket', () => {
      return unitState() === 'active' && existsSync(SOCKET);
    });
    expect(ourRules()).toContain('nft table');
  });

  it("holds the unit's sandbox with the real helper running", () => {
    const pid = Number(must('systemctl', ['show', '--property', 'MainPID', '--value', SERVICE]));
    expect(pid).toBeGreaterThan(1);
    const unit = readFileSync('/usr/lib/systemd/system/portcullis-helper.service', 'utf8');
    const s = status(pid);
    expect(s['CapBnd']).toBe(unitCapabilityMask(unit));
    expect(s['CapEff']).toBe(unitCapabilityMask(unit));
    expect(s['CapAmb']).toBe('0000000000000000');
    expect(s['NoNewPrivs']).toBe('1');
    expect(s['Seccomp']).toBe('2');
    const gid = must('getent', ['group', 'portcullis']).split(':')[2];
    expect(s['Gid']?.split(/\s+/u)[0]).toBe(gid);
    expect(s['Uid']?.split(/\s+/u)[0]).toBe('0');

    // ProtectSystem=strict, ProtectHome=read-only, PrivateTmp, ProtectProc=invisible.
    expect(mountOf(pid, '/').options).toMatch(/^ro\b/u);
    expect(mountOf(pid, '/var/lib/portcullis').options).toMatch(/^rw\b/u);
    expect(mountOf(pid, '/proc').superOptions).toContain('hidepid=invisible');
    const inside = (script: string) =>
      sh('nsenter', ['--target', String(pid), '--mount', '--', 'sh', '-c', script]);
    expect(inside('touch /usr/lib/portcullis/probe').stderr).toMatch(/Read-only file system/u);
    expect(inside('touch /etc/portcullis-probe').stderr).toMatch(/Read-only file system/u);
    expect(inside('touch /root/portcullis-probe').stderr).toMatch(/Read-only file system/u);
    expect(inside('touch /var/lib/portcullis/probe && rm /var/lib/portcullis/probe').status).toBe(
      0,
    );
    writeFileSync('/tmp/portcullis-host-tmp', 'x');
    expect(inside('test -e /tmp/portcullis-host-tmp').status).not.toBe(0);
    expect(inside('ls /dev').stdout.split('\n')).not.toContain('ttyS0');

    // IPAddressDeny=any: a process of the unit's cgroup may not open a connection that
    // a process outside it opens (the unit's egress filter drops the SYN).
    expect(connect('root', LATER)).toEqual({ ok: true, out: 'ping\n' });
    const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('::')[1];
    expect(cgroup).toBe(`/system.slice/${SERVICE}`);
    const denied = sh('sh', [
      '-c',
      'echo $$ > "/sys/fs/cgroup$1/cgroup.procs" && exec python3 -c "$2" "$3" "$4"',
      'sh',
      cgroup!,
      CLIENT,
      PEER_ADDR,
      String(LATER),
    ]);
    expect(denied.status).toBe(1);
    expect(denied.stdout).toMatch(/^(TimeoutError|PermissionError)\b/u);
    expect(status(pid)['State']).not.toMatch(/zombie/u);
  });

  it('lets a member of the portcullis group decide, and intercepts its connections', () => {
    must('useradd', ['--create-home', '--groups', 'portcullis,sudo', 'alice']);
    must('useradd', ['--create-home', 'bob']);
    const chpasswd = sh('sh', ['-c', `echo 'alice:${PASSWORD}' | chpasswd`]);
    expect(chpasswd.status, chpasswd.stderr).toBe(0);
    const python = must('readlink', ['-f', '/usr/bin/python3']).trim();

    const allow = cli('alice', [
      'rules',
      'add',
      '--action',
      'allow',
      '--exe',
      python,
      '--address',
      PEER_ADDR,
      '--port',
      String(ALLOWED),
    ]);
    expect(allow.status, allow.stderr).toBe(0);
    const deny = cli('alice', ['rules', 'add', '--action', 'deny', '--port', String(DENIED)]);
    expect(deny.status, deny.stderr).toBe(0);

    expect(connect('alice', ALLOWED)).toEqual({ ok: true, out: 'ping\n' });
    const refused = connect('alice', DENIED);
    expect(refused.ok, refused.out).toBe(false);

    const history = cli('alice', ['history', '--json', '--text', PEER_ADDR]);
    expect(history.status, history.stderr).toBe(0);
    const entries = history.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            action: string;
            request: { dport: number; uid: number; process: { exe: string } | null };
          },
      );
    const uid = Number(must('id', ['-u', 'alice']).trim());
    const to = (port: number) => entries.find((e) => e.request.dport === port);
    // The program of another user is named by the sandboxed helper (ptrace-read of /proc).
    expect(to(ALLOWED)).toMatchObject({
      action: 'allow',
      request: { uid, process: { exe: python } },
    });
    expect(to(DENIED)).toMatchObject({
      action: 'deny',
      request: { uid, process: { exe: python } },
    });

    // bob is in no group: no token, and the token alone does not open the socket either.
    const noToken = cli('bob', ['rules', 'list']);
    expect(noToken.status).toBe(1);
    expect(noToken.stderr).toMatch(/token/u);
    const token = readFileSync('/run/portcullis/token', 'utf8').trim();
    const withToken = cli('bob', ['rules', 'list'], [`PORTCULLIS_TOKEN=${token}`]);
    expect(withToken.status).toBe(1);
    expect(withToken.stderr).toMatch(/EACCES|permission denied/iu);

    // Nothing in the journal at error or worse while all this ran.
    const errors = sh('journalctl', [
      '--unit',
      SERVICE,
      '--priority',
      'err',
      '--quiet',
      '--no-pager',
    ]);
    expect(errors.stdout).toBe('');
  });

  it('removes its rules on systemctl stop', async () => {
    must('systemctl', ['stop', SERVICE]);
    await until('the service is inactive', () => unitState() === 'inactive');
    expect(ourRules()).toEqual([]);
    expect(existsSync('/run/portcullis')).toBe(false);
    expect(connect('alice', DENIED).ok).toBe(true);
  });

  it('starts a helper for a member through pkexec and the org.portcullis.helper action', async () => {
    const uid = Number(must('id', ['-u', 'alice']).trim());
    const dir = `/run/user/${uid}`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    must('chown', [`${uid}:${uid}`, dir]);

    const wrong = new MemberApp('alice', uid, dir);
    launchers.push(wrong);
    await wrong.start();
    await wrong.waitFor('the password prompt', () => /Password:/u.test(wrong.agentOutput));
    expect(wrong.agentOutput).toContain('AUTHENTICATING FOR org.portcullis.helper');
    expect(wrong.agentOutput).toContain('Authentication is required to start the Portcullis');
    wrong.answer('not the password');
    await wrong.waitFor('a refusal', () => wrong.states.some((s) => s.kind === 'failed'));
    expect(ourRules()).toEqual([]);
    expect(helpersOn(SOCKET)).toEqual([]);
    wrong.stop();

    const app = new MemberApp('alice', uid, dir);
    launchers.push(app);
    await app.start();
    await app.waitFor('the password prompt', () => /Password:/u.test(app.agentOutput));
    app.answer(PASSWORD);
    await app.waitFor('connected', () => app.states.some((s) => s.kind === 'connected'));
    expect(app.states.find((s) => s.kind === 'elevating')).toMatchObject({
      method: 'pkexec',
      actionId: 'org.portcullis.helper',
    });
    const helpers = helpersOn(SOCKET);
    expect(helpers.length).toBeGreaterThan(0);
    for (const pid of helpers) expect(status(pid)['Uid']?.split(/\s+/u)[0]).toBe('0');
    expect(ourRules()).toContain('nft table');

    // The app quits: the helper's stdin ends, it removes its rules and exits.
    app.quit();
    await until('the helper has stopped', () => helpersOn(SOCKET).length === 0);
    expect(ourRules()).toEqual([]);
  });

  it('leaves nothing after dpkg --purge', () => {
    must('systemctl', ['start', SERVICE]);
    const r = sh('dpkg', ['--purge', 'portcullis']);
    expect(r.status, r.stderr).toBe(0);
    expect(sh('dpkg-query', ['-W', 'portcullis']).status).not.toBe(0);
    expect(installedFiles.filter((p) => existsSync(p))).toEqual([]);
    for (const path of [
      '/var/lib/portcullis',
      '/run/portcullis',
      '/etc/systemd/system/multi-user.target.wants/portcullis-helper.service',
      '/var/lib/systemd/deb-systemd-helper-enabled/portcullis-helper.service.dsh-also',
    ]) {
      expect(existsSync(path), path).toBe(false);
    }
    expect(ourRules()).toEqual([]);
    expect(sh('systemctl', ['is-active', SERVICE]).stdout.trim()).not.toBe('active');
    expect(helpersOn(SOCKET)).toEqual([]);
    expect(sh('getent', ['group', 'portcullis']).status).toBe(2);
    expect(sh('getent', ['passwd', 'portcullis']).status).toBe(2);
  });
});
