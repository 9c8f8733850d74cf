/**
 * `portcullis ui link`: a new one-time link from the running web host over a Unix
 * socket in a directory only its user may enter. Another uid (setpriv) cannot ask
 * for one, a directory others may enter is refused, and a stale socket is replaced.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  linkDir,
  requestLink,
  runningPorts,
  serveLinks,
  UiLinkError,
} from '../../src-main/node/ui-links.js';

describe('ui link sockets', () => {
  let base: string;
  let runtime: string;
  const closers: (() => Promise<void>)[] = [];
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'pcl-ui-links-'));
    chmodSync(base, 0o755); // so that another uid could reach the runtime dir if it were open
    runtime = join(base, 'run');
    mkdirSync(runtime, { mode: 0o700 });
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    rmSync(base, { recursive: true, force: true });
  });

  it('hands out a fresh link with the asked lifetime from the running UI', async () => {
    const dir = linkDir({ XDG_RUNTIME_DIR: runtime });
    const ttls: number[] = [];
    let n = 0;
    const links = await serveLinks(
      8123,
      (ttl) => {
        ttls.push(ttl);
        return `http://127.0.0.1:8123/#code=c${n++}`;
      },
      dir,
    );
    closers.push(() => links.close());
    expect(runningPorts(dir)).toEqual([8123]);
    expect(await requestLink(null, dir)).toBe('http://127.0.0.1:8123/#code=c0');
    expect(await requestLink(8123, dir)).toBe('http://127.0.0.1:8123/#code=c1');
    expect(ttls).toEqual([300_000, 300_000]);
    await expect(requestLink(9999, dir)).rejects.toThrow(
      /no Portcullis UI is listening on port 9999/,
    );
  });

  it('says what to do when none or several UIs run', async () => {
    const dir = linkDir({ XDG_RUNTIME_DIR: runtime });
    await expect(requestLink(null, dir)).rejects.toThrow(/start `portcullis ui --web`/);
    for (const port of [8001, 8002]) {
      const l = await serveLinks(port, () => `http://127.0.0.1:${port}/#code=x`, dir);
      closers.push(() => l.close());
    }
    await expect(requestLink(null, dir)).rejects.toThrow(/ports 8001, 8002\): add --port N/);
  });

  it('replaces a socket left by a UI that died, and removes its own at close', async () => {
    const dir = linkDir({ XDG_RUNTIME_DIR: runtime });
    // A UI killed with SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(join(dir, 'ui-8200.sock'))}, () => console.log('ready'))`,
    ]);
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await gone;
    expect(runningPorts(dir)).toEqual([8200]);
    await expect(requestLink(8200, dir)).rejects.toThrow(UiLinkError);
    const links = await serveLinks(8200, () => 'http://127.0.0.1:8200/#code=new', dir);
    expect(await requestLink(8200, dir)).toBe('http://127.0.0.1:8200/#code=new');
    await links.close();
    expect(runningPorts(dir)).toEqual([]);
  });

  it('refuses a directory that others may enter or that is not a directory', () => {
    const open = join(base, 'open');
    mkdirSync(join(open, 'portcullis'), { recursive: true });
    chmodSync(join(open, 'portcullis'), 0o755);
    expect(() => linkDir({ XDG_RUNTIME_DIR: open })).toThrow(/only it may enter \(mode 0700\)/);
    const file = join(base, 'file');
    mkdirSync(file);
    writeFileSync(join(file, 'portcullis'), '');
    expect(() => linkDir({ XDG_RUNTIME_DIR: file })).toThrow();
  });

  it('another uid cannot ask the running UI for a link', async () => {
    const dir = linkDir({ XDG_RUNTIME_DIR: runtime });
    chmodSync(runtime, 0o755); // even with the runtime dir itself open
    const links = await serveLinks(8300, () => 'http://127.0.0.1:8300/#code=secret', dir);
    closers.push(() => links.close());
    const script = `require('node:net').connect(${JSON.stringify(links.path)})
      .on('data', (d) => process.stdout.write(String(d)))
      .on('error', (e) => { process.stdout.write(e.code); });`;
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script],
      { encoding: 'utf8' },
    );
    expect(r.stdout).not.toContain('secret');
    expect(r.stdout).toBe('EACCES');
  });
});
