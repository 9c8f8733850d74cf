import { execFile, exec } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  APPIMAGE_BOOTSTRAP,
  DEB_HELPER_WRAPPER,
  describePkexecExit,
  helperModeArgs,
  pkexecCommand,
  sudoPromptCommand,
  type ElevationContext,
} from '../../../src-main/node/elevation.js';
import { resolveAppPaths, type RuntimeFacts } from '../../../src-main/node/resources.js';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-elev-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const packaged: RuntimeFacts = {
  execPath: '/opt/Portcullis/portcullis',
  resourcesPath: '/opt/Portcullis/resources',
  isPackaged: true,
  isElectron: true,
  appImage: null,
  appRoot: '/opt/Portcullis/resources/app.asar',
};
const appImage: RuntimeFacts = {
  ...packaged,
  execPath: '/tmp/.mount_PortcXYZ/portcullis',
  resourcesPath: '/tmp/.mount_PortcXYZ/resources',
  appImage: '/home/ann/Apps/Portcullis-0.1.0.AppImage',
};
const devNode: RuntimeFacts = {
  execPath: '/usr/bin/node',
  resourcesPath: null,
  isPackaged: false,
  isElectron: false,
  appImage: null,
  appRoot: '/src/portcullis',
};
const ctx = (facts: RuntimeFacts, deb = false): ElevationContext => ({
  facts,
  paths: resolveAppPaths(facts),
  debWrapperInstalled: deb,
});
const mode = {
  ownerUid: 1000,
  socketPath: '/run/portcullis/helper.sock',
  parent: { pid: 4321, startTime: '987654' },
};
const helperTail = [
  '--token-stdin',
  '--owner-uid',
  '1000',
  '--socket',
  '/run/portcullis/helper.sock',
  '--parent-pid',
  '4321',
  '--parent-start-time',
  '987654',
];

describe('pkexec command lines', () => {
  it('uses the .deb wrapper, and so our polkit action, when it is installed', () => {
    const c = pkexecCommand(ctx(packaged, true), mode);
    expect(c).toEqual({
      method: 'pkexec',
      actionId: 'org.portcullis.helper',
      file: '/usr/bin/pkexec',
      args: [DEB_HELPER_WRAPPER, ...helperTail],
    });
  });

  it('runs the packaged binary as Node through env (pkexec clears the environment)', () => {
    const c = pkexecCommand(ctx(packaged), mode);
    expect(c.actionId).toBe('org.freedesktop.policykit.exec');
    expect(c.args).toEqual([
      '/usr/bin/env',
      'ELECTRON_RUN_AS_NODE=1',
      '/opt/Portcullis/portcullis',
      '/opt/Portcullis/resources/helper/bin/portcullis.js',
      'helper',
      ...helperTail,
    ]);
  });

  it('re-runs $APPIMAGE (root cannot read the FUSE mount) with the bootstrap, even with the .deb installed', () => {
    const c = pkexecCommand(ctx(appImage, true), mode);
    expect(c.args.slice(0, 5)).toEqual([
      '/usr/bin/env',
      'ELECTRON_RUN_AS_NODE=1',
      '/home/ann/Apps/Portcullis-0.1.0.AppImage',
      '-e',
      APPIMAGE_BOOTSTRAP,
    ]);
    expect(c.args.slice(5)).toEqual(['helper', ...helperTail]);
    expect(c.args.join(' ')).not.toContain('.mount_');
  });

  it('runs the dev tree under plain Node without env', () => {
    expect(pkexecCommand(ctx(devNode), mode).args).toEqual([
      '/usr/bin/node',
      '/src/portcullis/bin/portcullis.js',
      'helper',
      ...helperTail,
    ]);
  });

  it('never puts the token in argv, and refuses a bad uid', () => {
    const token = 'S3cr3t-token';
    for (const f of [packaged, appImage, devNode]) {
      expect(pkexecCommand(ctx(f), mode).args.join(' ')).not.toContain(token);
    }
    expect(() => helperModeArgs({ ...mode, ownerUid: -1, token: 'stdin' })).toThrow(RangeError);
  });

  it('names the app as the parent the helper outlives by at most a poll, and checks it', () => {
    const { parent: _parent, ...noParent } = mode;
    expect(helperModeArgs({ ...noParent, token: 'stdin' })).not.toContain('--parent-pid');
    for (const parent of [
      { pid: 0, startTime: '1' },
      { pid: 1.5, startTime: '1' },
      { pid: 7, startTime: '1 --fail-closed' },
      { pid: 7, startTime: '' },
    ]) {
      expect(() => helperModeArgs({ ...mode, parent, token: 'stdin' })).toThrow(RangeError);
    }
  });

  it('names pkexec exit statuses', () => {
    expect(describePkexecExit(126, null)).toMatch(/dismissed/);
    expect(describePkexecExit(127, null)).toMatch(/not authorized/);
    expect(describePkexecExit(1, null)).toMatch(/status 1/);
    expect(describePkexecExit(null, 'SIGTERM')).toMatch(/SIGTERM/);
  });
});

describe('sudo-prompt command', () => {
  it('quotes every word, passes the token as a private file, discards output', () => {
    const c = sudoPromptCommand(ctx(packaged), { ...mode, tokenFile: '/run/user/1000/p-1/token' });
    expect(c.method).toBe('sudo-prompt');
    expect(c.shell).toBe(
      "exec '/usr/bin/env' 'ELECTRON_RUN_AS_NODE=1' '/opt/Portcullis/portcullis' " +
        "'/opt/Portcullis/resources/helper/bin/portcullis.js' 'helper' '--token-file' " +
        "'/run/user/1000/p-1/token' '--owner-uid' '1000' '--socket' '/run/portcullis/helper.sock' " +
        "'--parent-pid' '4321' '--parent-start-time' '987654' </dev/null >/dev/null 2>&1",
    );
  });

  it('refuses paths the outer shell would expand', () => {
    for (const bad of ['/a/$HOME', '/a/`id`', "/a/'x", '/a/b\\c', '/a/!x']) {
      expect(() =>
        sudoPromptCommand(ctx({ ...packaged, execPath: bad }), { ...mode, tokenFile: '/t' }),
      ).toThrow(/safely/);
    }
  });

  it('reaches the program with exactly our argv through sudo-prompt-style double wrapping', async () => {
    // The "helper" prints its argv; the command is wrapped the way sudo-prompt
    // wraps it on Linux (with the elevation binary left out).
    const script = join(tmp, 'argv.cjs');
    writeFileSync(script, 'console.log(JSON.stringify(process.argv.slice(2)))');
    const facts: RuntimeFacts = { ...devNode, execPath: process.execPath, appRoot: tmp };
    const paths = { ...resolveAppPaths(facts), helperScript: script };
    const c = sudoPromptCommand(
      { facts, paths, debWrapperInstalled: false },
      { ...mode, tokenFile: join(tmp, 'a b"c') },
    );
    const shell = (c.shell as string).replace(' >/dev/null 2>&1', '');
    const wrapped = `/bin/bash -c "echo SUDOPROMPT; ${shell.replace(/"/g, '\\"')}"`;
    const { stdout } = await promisify(exec)(wrapped);
    expect(stdout.split('\n')[0]).toBe('SUDOPROMPT');
    expect(JSON.parse(stdout.split('\n')[1] as string)).toEqual([
      'helper',
      '--token-file',
      join(tmp, 'a b"c'),
      '--owner-uid',
      '1000',
      '--socket',
      '/run/portcullis/helper.sock',
      '--parent-pid',
      '4321',
      '--parent-start-time',
      '987654',
    ]);
  });
});

describe('AppImage bootstrap', () => {
  it('runs the helper CLI from $APPDIR with the remaining argv (real Node -e)', async () => {
    const appdir = join(tmp, 'mount');
    const helper = join(appdir, 'resources', 'helper');
    mkdirSync(join(helper, 'dist', 'helper'), { recursive: true });
    writeFileSync(join(helper, 'package.json'), '{"type":"module"}');
    const out = join(tmp, 'argv.json');
    writeFileSync(
      join(helper, 'dist', 'helper', 'cli.js'),
      `import { writeFileSync } from 'node:fs';
       export async function main(argv) { writeFileSync(${JSON.stringify(out)}, JSON.stringify(argv)); return 3; }`,
    );
    const child = run(process.execPath, ['-e', APPIMAGE_BOOTSTRAP, 'helper', '--owner-uid', '7'], {
      env: { APPDIR: appdir, PATH: process.env['PATH'] },
    });
    await expect(child).rejects.toMatchObject({ code: 3 });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(['helper', '--owner-uid', '7']);
  });

  it('survives the sudo-prompt quoting', () => {
    const c = sudoPromptCommand(ctx(appImage), { ...mode, tokenFile: '/run/user/1000/t' });
    expect(c.shell).toContain(`'${APPIMAGE_BOOTSTRAP}'`);
    expect(APPIMAGE_BOOTSTRAP).not.toMatch(/[$`'\\!]/);
  });
});

describe('makeElevator', () => {
  it('sudo-prompt fallback: the token is in a 0600 file in a 0700 dir, gone after exit', async () => {
    const { makeElevator } = await import('../../../src-main/node/elevate.js');
    const { statSync, existsSync } = await import('node:fs');
    let finish: (e?: Error) => void = () => undefined;
    let seen = '';
    const elevate = makeElevator({
      facts: devNode,
      paths: resolveAppPaths(devNode),
      socketPath: '/run/portcullis/helper.sock',
      ownerUid: 1000,
      runtimeDir: tmp,
      exists: () => false,
      sudoExec: async () => (command, options, cb) => {
        seen = command;
        expect(options.name).toBe('Portcullis');
        finish = (e) => cb(e);
      },
    });
    const h = await elevate('tok-123');
    expect(h.method).toBe('sudo-prompt');
    expect(seen).not.toContain('tok-123');
    const file = /'--token-file' '([^']+)'/.exec(seen)?.[1] as string;
    expect(readFileSync(file, 'utf8')).toBe('tok-123\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    // No pipe reaches a sudo-prompt helper: it watches this process instead.
    expect(seen).toContain(`'--parent-pid' '${process.pid}' '--parent-start-time' '`);
    finish(new Error('User did not grant permission.'));
    expect(await h.exited).toBe('User did not grant permission.');
    expect(existsSync(file)).toBe(false);
  });

  it('pkexec: a missing binary is reported as the exit reason', async () => {
    const { makeElevator } = await import('../../../src-main/node/elevate.js');
    const elevate = makeElevator({
      facts: devNode,
      paths: resolveAppPaths(devNode),
      socketPath: '/run/portcullis/helper.sock',
      // Never the machine's own pkexec: as root it would start a real helper here.
      pkexec: '/nonexistent/portcullis-test/pkexec',
      exists: (p) => p === '/nonexistent/portcullis-test/pkexec',
    });
    const h = await elevate('tok');
    expect(h.method).toBe('pkexec');
    expect(await h.exited).toMatch(/cannot run pkexec|exited/);
    h.release();
  });

  it("names this process as the helper's parent: pid and start time from /proc/self/stat", async () => {
    const { selfAsParent } = await import('../../../src-main/node/elevate.js');
    const me = selfAsParent();
    expect(me.pid).toBe(process.pid);
    expect(me.startTime).toMatch(/^[0-9]+$/);
    // The command name may hold spaces and ')': fields are counted after the last ')'.
    const fields = ['S', ...Array.from({ length: 18 }, (_, i) => String(i + 4)), '55555', '0'];
    expect(selfAsParent(`77 (a) b (c)) ${fields.join(' ')}\n`)).toEqual({
      pid: 77,
      startTime: '55555',
    });
    expect(() => selfAsParent('garbage')).toThrow(/unexpected format/);
  });

  it('without pkexec or sudo-prompt it says so', async () => {
    const { makeElevator } = await import('../../../src-main/node/elevate.js');
    const elevate = makeElevator({
      facts: devNode,
      paths: resolveAppPaths(devNode),
      socketPath: '/s',
      exists: () => false,
    });
    await expect(elevate('t')).rejects.toThrow(/neither pkexec nor sudo-prompt/);
  });
});
