// `portcullis start`: its arguments, which UI it opens, as whom, with which
// environment, and the demo's pieces that need no kernel (DNS answers, programs).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dnsAnswer, DEMO_NAMES } from '../../../src-main/node/start/demo-peer.js';
import { asUser, demoPrograms } from '../../../src-main/node/start/demo-programs.js';
import {
  GUARD_SOCKET,
  parseStartArgs,
  StartUsageError,
} from '../../../src-main/node/start/start-args.js';
import { chooseUi, electronBinary, type UiFacts } from '../../../src-main/node/start/ui-choice.js';
import { hasDesktop, invokingUser, userEnv } from '../../../src-main/node/start/ui-user.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('parseStartArgs', () => {
  it('defaults: guard this machine, UI chosen automatically, opened', () => {
    expect(parseStartArgs([])).toEqual({
      help: false,
      demo: false,
      ui: 'auto',
      noOpen: false,
      port: 0,
      verbose: false,
      helperArgs: [],
    });
  });

  it('reads every option; what follows -- goes to the helper', () => {
    expect(
      parseStartArgs([
        '--ui',
        'web',
        '--no-open',
        '--port',
        '8123',
        '--netns',
        'ns-1',
        '--socket',
        '/tmp/s.sock',
        '--state-dir',
        '/tmp/state',
        '--verbose',
        '--',
        '--fail-closed',
        '--prompt-timeout',
        '60',
      ]),
    ).toEqual({
      help: false,
      demo: false,
      ui: 'web',
      noOpen: true,
      port: 8123,
      netns: 'ns-1',
      socket: '/tmp/s.sock',
      stateDir: '/tmp/state',
      verbose: true,
      helperArgs: ['--fail-closed', '--prompt-timeout', '60'],
    });
    expect(parseStartArgs(['--demo'])).toMatchObject({ demo: true });
    expect(parseStartArgs(['-h']).help).toBe(true);
  });

  it('refuses mistakes before starting anything', () => {
    const bad: [string[], RegExp][] = [
      [['--bogus'], /unknown option '--bogus'/],
      [['--ui', 'tk'], /--ui: 'tk' is not auto, web, electron or none/],
      [['--ui'], /--ui needs a value/],
      [['--port', '70000'], /--port: '70000' is not a port/],
      [['--netns', '../x'], /not a namespace name/],
      [['--socket', 'rel.sock'], /not an absolute path/],
      [['--demo', '--netns', 'x'], /--demo makes its own namespace/],
      [['--demo', '--demo'], /--demo given twice/],
      [['--', '--socket', '/x'], /--socket after --/],
      [['--', '--allow-uid=5'], /--allow-uid after --/],
    ];
    for (const [argv, message] of bad) {
      expect(() => parseStartArgs(argv), argv.join(' ')).toThrow(StartUsageError);
      expect(() => parseStartArgs(argv), argv.join(' ')).toThrow(message);
    }
  });
});

describe('which UI', () => {
  const usable: UiFacts = {
    electron: '/e/electron',
    desktop: true,
    asRoot: false,
    defaultSocket: true,
  };

  it('Electron where it can run, the web UI otherwise', () => {
    expect(chooseUi('auto', usable)).toEqual({ kind: 'electron', binary: '/e/electron' });
    for (const f of [
      { electron: null },
      { desktop: false },
      { asRoot: true },
      { defaultSocket: false },
    ]) {
      expect(chooseUi('auto', { ...usable, ...f })).toEqual({ kind: 'web' });
    }
    expect(chooseUi('web', usable)).toEqual({ kind: 'web' });
    expect(chooseUi('none', usable)).toEqual({ kind: 'none' });
    expect(chooseUi('electron', { ...usable, electron: null })).toEqual({
      error: expect.stringMatching(/--ui electron: its binary is not installed/) as string,
    });
  });

  it("finds node_modules/electron's binary only when it was downloaded", () => {
    const root = mkdtempSync(join(tmpdir(), 'pcl-start-'));
    dirs.push(root);
    expect(electronBinary(root)).toBeNull();
    const pkg = join(root, 'node_modules', 'electron');
    mkdirSync(join(pkg, 'dist'), { recursive: true });
    writeFileSync(join(pkg, 'path.txt'), 'electron');
    expect(electronBinary(root)).toBeNull();
    writeFileSync(join(pkg, 'dist', 'electron'), '');
    expect(electronBinary(root)).toBe(join(pkg, 'dist', 'electron'));
  });
});

describe('the UI runs as the user who ran sudo', () => {
  const lookup = (uid: number) =>
    uid === 1000 ? { uid, gid: 1000, name: 'alice', home: '/home/alice' } : null;

  it('SUDO_UID or PKEXEC_UID; root itself stays root', () => {
    expect(invokingUser({ SUDO_UID: '1000' }, lookup)).toMatchObject({ name: 'alice' });
    expect(invokingUser({ PKEXEC_UID: '1000' }, lookup)).toMatchObject({ uid: 1000 });
    expect(invokingUser({}, lookup)).toBeNull();
    expect(invokingUser({ SUDO_UID: '0' }, lookup)).toBeNull();
    expect(invokingUser({ SUDO_UID: 'x' }, lookup)).toBeNull();
    expect(invokingUser({ SUDO_UID: '1001', SUDO_GID: '1001', SUDO_USER: 'bob' }, lookup)).toEqual({
      uid: 1001,
      gid: 1001,
      name: 'bob',
      home: '/',
    });
  });

  it("with their home, runtime dir, bus and display, and never the helper's token", () => {
    const alice = { uid: 1000, gid: 1000, name: 'alice', home: '/home/alice' };
    const exists = (p: string): boolean =>
      ['/run/user/1000', '/run/user/1000/bus', '/run/user/1000/wayland-0'].includes(p);
    const env = userEnv(
      alice,
      { PATH: '/usr/bin', HOME: '/root', PORTCULLIS_TOKEN: 'secret', SUDO_COMMAND: 'x' },
      exists,
    );
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/alice',
      USER: 'alice',
      LOGNAME: 'alice',
      XDG_RUNTIME_DIR: '/run/user/1000',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
      WAYLAND_DISPLAY: 'wayland-0',
    });
    expect(hasDesktop(env)).toBe(true);
    expect(hasDesktop({ DISPLAY: ':0' })).toBe(true);
    expect(hasDesktop({})).toBe(false);
  });
});

describe('the demo', () => {
  function query(name: string, qtype = 1): Buffer {
    const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
    return Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, qtype, 0, 1]);
  }

  it("its DNS server answers the demo's names with the peer, others NXDOMAIN", () => {
    const yes = dnsAnswer(query(DEMO_NAMES[0]!), DEMO_NAMES, '198.18.42.2')!;
    expect(yes.readUInt16BE(0)).toBe(0x1234);
    expect(yes.readUInt16BE(2) & 0xf).toBe(0);
    expect(yes.readUInt16BE(6)).toBe(1);
    expect([...yes.subarray(-4)]).toEqual([198, 18, 42, 2]);
    const no = dnsAnswer(query('example.com'), DEMO_NAMES, '198.18.42.2')!;
    expect(no.readUInt16BE(2) & 0xf).toBe(3);
    expect(no.readUInt16BE(6)).toBe(0);
    expect(dnsAnswer(Buffer.alloc(5), DEMO_NAMES, '198.18.42.2')).toBeNull();
  });

  it('runs curl, python3, bash and node, each as the given user', () => {
    const programs = demoPrograms('198.18.42.2', '/usr/bin/node');
    expect(programs.map((p) => p.needs)).toEqual(['curl', 'python3', 'bash', '/usr/bin/node']);
    expect(asUser(1000, 1000, ['curl'])).toEqual([
      'setpriv',
      '--reuid=1000',
      '--regid=1000',
      '--clear-groups',
      '--',
      'curl',
    ]);
    expect(GUARD_SOCKET).toBe('/run/portcullis/helper.sock');
  });
});
