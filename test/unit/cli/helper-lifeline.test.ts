/**
 * The lifeline of a helper started for one app (helper/cli/lifeline.ts): stdin's end
 * and the parent's end ask for a stop, nothing else does. The full lifecycle (the
 * launcher's command line, SIGKILL, rules gone) is test/root/launcher-lifeline.test.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runHelper } from '../../../helper/cli/helper.js';
import {
  parentGone,
  parseProcStat,
  processStartTime,
  watchParent,
  watchStdinEnd,
} from '../../../helper/cli/lifeline.js';

/** A /proc/PID/stat line with this name, state and start time. */
function stat(comm: string, state: string, startTime: string): string {
  const middle = Array.from({ length: 18 }, (_, i) => String(i + 4));
  return `42 (${comm}) ${state} ${middle.join(' ')} ${startTime} 123 0\n`;
}

describe('/proc/PID/stat', () => {
  it('reads the state and field 22 after the last ")" of the command name', () => {
    expect(parseProcStat(stat('node', 'S', '1234'))).toEqual({ state: 'S', startTime: '1234' });
    expect(parseProcStat(stat('a) Z (b', 'R', '99'))).toEqual({ state: 'R', startTime: '99' });
    expect(parseProcStat('42 node S')).toBeNull();
    expect(parseProcStat('42 (x) S 1 2')).toBeNull();
  });

  it('this process is alive, with the start time /proc gives', () => {
    const mine = processStartTime(process.pid);
    expect(mine).toMatch(/^[0-9]+$/);
    expect(parentGone(process.pid, mine!)).toBeNull();
  });

  it('gone: no such process, a zombie, or the pid reused by a later process', () => {
    expect(parentGone(42, '1000', () => null)).toMatch(/42 has ended/);
    expect(parentGone(42, '1000', () => stat('app', 'Z', '1000'))).toMatch(/has ended/);
    expect(parentGone(42, '1000', () => stat('other', 'S', '2000'))).toMatch(/another process/);
    expect(parentGone(42, '1000', () => stat('app', 'S', '1000'))).toBeNull();
    expect(() => parentGone(42, '1000', () => 'garbage')).toThrow(/unexpected format/);
  });
});

describe('watchParent', () => {
  it('calls onGone once after a real child is killed with SIGKILL', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.once('exit', r));
    const pid = child.pid!;
    const startTime = processStartTime(pid)!;
    const reasons: string[] = [];
    const gone = new Promise<void>((resolve) => {
      watchParent({
        pid,
        startTime,
        intervalMs: 20,
        onGone: (reason) => {
          reasons.push(reason);
          resolve();
        },
      });
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(reasons).toEqual([]);
    child.kill('SIGKILL');
    await exited;
    await gone;
    await new Promise((r) => setTimeout(r, 100));
    expect(reasons).toEqual([`the parent process ${pid} has ended`]);
  });

  it('a /proc read error is reported and the watch goes on', async () => {
    const errors: string[] = [];
    let reads = 0;
    await new Promise<void>((resolve) => {
      watchParent({
        pid: 42,
        startTime: '1',
        intervalMs: 5,
        read: () => {
          reads++;
          if (reads === 1) throw new Error('EACCES');
          return null;
        },
        onError: (e) => errors.push(e.message),
        onGone: () => resolve(),
      });
    });
    expect(errors).toEqual(['EACCES']);
  });
});

describe('watchStdinEnd', () => {
  it('data after the token is ignored; the end asks for a stop, once', () => {
    const s = new PassThrough();
    const reasons: string[] = [];
    watchStdinEnd(s, (r) => reasons.push(r));
    s.write('anything at all\n--fail-closed\n');
    expect(reasons).toEqual([]);
    s.end();
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(reasons).toEqual(['stdin closed (the app is gone)']);
        s.destroy();
        setImmediate(() => {
          expect(reasons).toHaveLength(1);
          resolve();
        });
      }),
    );
  });

  it('an error is the app gone too, and a late error after the stop does not throw', () => {
    const s = new PassThrough();
    const reasons: string[] = [];
    const stop = watchStdinEnd(s, (r) => reasons.push(r));
    s.destroy(new Error('ECONNRESET'));
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(reasons).toEqual(['stdin failed (ECONNRESET): the app is gone']);
        stop();
        const t = new PassThrough();
        watchStdinEnd(t, () => undefined)();
        expect(() => t.emit('error', new Error('late'))).not.toThrow();
        resolve();
      }),
    );
  });

  it('a stream that already ended asks at once', async () => {
    const s = new PassThrough();
    s.end();
    s.resume();
    await new Promise((r) => s.once('end', r));
    const reasons: string[] = [];
    watchStdinEnd(s, (r) => reasons.push(r));
    expect(reasons).toHaveLength(1);
  });
});

describe('portcullis helper: an app already gone installs nothing', () => {
  const quiet = (lines: string[]) => ({
    stdout: () => undefined,
    stderr: (l: string) => lines.push(l),
  });
  // Should a refusal ever be missed, the helper must still touch nothing of the host:
  // a namespace that does not exist stops it before any rule (these tests run as root).
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const safe = () => [
    '--netns',
    `portcullis-unit-none-${process.pid}`,
    '--state-dir',
    dirs[dirs.push(mkdtempSync(join(tmpdir(), 'portcullis-lifeline-'))) - 1]!,
    '--socket',
    '/nonexistent/portcullis-unit.sock',
  ];

  it('--parent-pid of an ended process: exit 1 before anything starts', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((r) => child.once('exit', r));
    const lines: string[] = [];
    const code = await runHelper(['--parent-pid', String(child.pid), ...safe()], quiet(lines));
    expect(code).toBe(1);
    expect(lines.join('\n')).toMatch(/cannot start: the parent process \d+ has ended/);
  });

  it('--parent-pid with a start time that is not the process’s: the pid was reused', async () => {
    const lines: string[] = [];
    const code = await runHelper(
      ['--parent-pid', String(process.pid), '--parent-start-time', '1', ...safe()],
      quiet(lines),
    );
    expect(code).toBe(1);
    expect(lines.join('\n')).toMatch(/cannot start: .*another process/);
  });

  it('--token-stdin whose stdin ends after the token: exit 1, no rules', async () => {
    const stdin = new PassThrough();
    stdin.end('tok-123\n');
    const lines: string[] = [];
    const code = await runHelper(['--token-stdin', ...safe()], quiet(lines), { stdin });
    expect(code).toBe(1);
    expect(lines.join('\n')).toMatch(/cannot start: stdin closed \(the app is gone\)/);
  });
});
