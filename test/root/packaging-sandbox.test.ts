/**
 * The service unit's sandbox, tried without systemd as PID 1: the real helper runs with
 * the unit's capability bounding set (read from the unit file), as root in an access
 * group (the unit's `Group=`; here `nogroup`, so that the test creates no group), with no
 * new privileges, and with a /proc mounted `hidepid=invisible` (`ProtectProc=invisible`)
 * in a mount namespace of its own (`PrivateMounts=`). It must start, create its socket
 * directory, socket and token for the group without CAP_CHOWN, and name a program of
 * another user that connects. Everything runs in namespaces this file creates.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { echoServer, vethPair, type Peer } from '../support/tcp-peers.js';
import { sleep } from '../support/udp-agent.js';
import { removeHelperRules } from '../support/helper-process.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping the service sandbox tests: ${skip}`);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const UNIT = join(ROOT, 'packaging/systemd/portcullis-helper.service');
const NOGROUP = 65534;
const PORT = 8090;

/** `Key=value` lines of the unit (the last one wins, as in systemd for these keys). */
function unitValue(key: string): string {
  const lines = readFileSync(UNIT, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`));
  const last = lines.at(-1);
  if (last === undefined) throw new Error(`${key}= is not in the unit`);
  return last.slice(key.length + 1).trim();
}

/** The unit's bounding set as setpriv's `--bounding-set` argument. */
function boundingSet(): string {
  const caps = unitValue('CapabilityBoundingSet')
    .split(/\s+/u)
    .map((c) => `+${c.replace(/^CAP_/u, '').toLowerCase()}`);
  return ['-all', ...caps].join(',');
}

/**
 * argv that runs `command` in `ns` under the unit's sandbox: a private mount namespace
 * with /proc remounted `hidepid=invisible`, then the credentials.
 */
function sandboxed(ns: TestNetns, creds: string[], command: string[]): string[] {
  return [
    'netns',
    'exec',
    ns.name,
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    'mount -t proc -o hidepid=invisible proc /proc && exec "$@"',
    'sh',
    'setpriv',
    ...creds,
    ...command,
  ];
}

describe.skipIf(skip)('the service unit', () => {
  it('is rated 2.5 or better by systemd-analyze security, with PrivateMounts and IPAddressDeny', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', UNIT], {
      encoding: 'utf8',
    });
    const m = /Overall exposure level for \S+: (\d+\.\d)/u.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.5);
    expect(unitValue('PrivateMounts')).toBe('true');
    expect(unitValue('IPAddressDeny')).toBe('any');
    expect(unitValue('ProtectProc')).toBe('invisible');
    expect(unitValue('CapabilityBoundingSet')).not.toContain('CAP_CHOWN');
  });
});

describe.skipIf(skip)("the helper inside the unit's sandbox", () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  let echo: Peer | undefined;
  let dir: string;
  let helper: ChildProcess | undefined;
  const lines: string[] = [];

  beforeAll(async () => {
    client = new TestNetns('pcl-sbc');
    server = new TestNetns('pcl-sbs');
    addr = vethPair(client, server);
    echo = await echoServer(server, addr.b, PORT);
    dir = mkdtempSync(join(tmpdir(), 'pcl-sandbox-'));
    const creds = [
      `--regid=${NOGROUP}`,
      '--clear-groups',
      '--no-new-privs',
      '--inh-caps=-all',
      `--bounding-set=${boundingSet()}`,
    ];
    helper = spawn(
      'ip',
      sandboxed(client, creds, [
        process.execPath,
        join(ROOT, 'bin/portcullis.js'),
        'helper',
        '--queue',
        '23',
        '--socket',
        join(dir, 'run', 'helper.sock'),
        '--state-dir',
        join(dir, 'state'),
        '--access-group',
        'nogroup',
        '--no-gui-policy',
        'allow',
      ]),
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    createInterface({ input: helper.stderr! }).on('line', (l) => lines.push(l));
    const end = Date.now() + 30_000;
    while (!lines.some((l) => / info helper: serving /u.test(l))) {
      if (helper.exitCode !== null || Date.now() > end) {
        throw new Error(`helper did not start in the sandbox:\n${lines.join('\n')}`);
      }
      await sleep(20);
    }
  }, 120_000);

  afterAll(async () => {
    if (helper && helper.exitCode === null) {
      const exited = new Promise((r) => helper!.once('exit', r));
      helper.kill('SIGTERM');
      const t = setTimeout(() => helper!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    echo?.stop();
    if (client) await removeHelperRules(client.name).catch(() => undefined);
    client?.delete();
    server?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the sandbox is real: another user there sees none of root processes in /proc', () => {
    const r = spawnSync(
      'ip',
      sandboxed(client, ['--reuid=65534', `--regid=${NOGROUP}`, '--clear-groups'], ['ls', '/proc']),
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const pids = r.stdout.split(/\s+/u).filter((n) => /^\d+$/u.test(n));
    expect(pids).not.toContain('1');
    expect(pids).not.toContain(String(process.pid));
  });

  it('creates its directory, socket and token for the group without CAP_CHOWN', () => {
    const run = statSync(join(dir, 'run'));
    expect([run.uid, run.gid, run.mode & 0o777]).toEqual([0, NOGROUP, 0o750]);
    const sock = statSync(join(dir, 'run', 'helper.sock'));
    expect([sock.uid, sock.gid]).toEqual([0, NOGROUP]);
    const token = statSync(join(dir, 'run', 'token'));
    expect([token.uid, token.gid, token.mode & 0o777]).toEqual([0, NOGROUP, 0o440]);
  });

  it("names another user's program that connects, through the hidden /proc", async () => {
    const connect = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        client.name,
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '/usr/bin/python3',
        '-c',
        `import socket; socket.create_connection(('${addr.b}', ${PORT}), timeout=5).close()`,
      ],
      { encoding: 'utf8' },
    );
    expect(connect.status, connect.stderr).toBe(0);
    const token = readFileSync(join(dir, 'run', 'token'), 'utf8').trim();
    const ipc = await IpcClient.connect({
      path: join(dir, 'run', 'helper.sock'),
      token,
      build: 'sandbox-test',
    });
    try {
      let entry;
      for (let i = 0; i < 100 && !entry; i++) {
        const { entries } = await ipc.call('history.query', { limit: 50 });
        entry = entries.find((e) => e.request.dport === PORT);
        if (!entry) await sleep(50);
      }
      expect(entry, lines.join('\n')).toBeDefined();
      expect(entry!.action).toBe('allow');
      expect(entry!.request.process?.uid).toBe(65534);
      expect(entry!.request.process?.exe).toMatch(/\/python3[.\d]*$/u);
    } finally {
      await ipc.close();
    }
  });
});
