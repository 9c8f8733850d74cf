// Conntrack accounting sysctls (helper/daemon/conntrack-accounting.ts) against a
// temporary copy of the /proc/sys tree: these tests never read or write the host's
// sysctls (every access below is rooted in a mkdtemp directory, checked first).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ACCT_SYSCTL,
  accountingMarkerName,
  ConntrackAccounting,
  TIMESTAMP_SYSCTL,
  netnsSysctlAccess,
  procSysAccess,
  type SysctlAccess,
} from '../../../helper/daemon/conntrack-accounting.js';
import type { ConntrackMirror } from '../../../helper/conntrack/index.js';
import { CounterRefresh, nextRefreshDelay } from '../../../helper/daemon/counter-refresh.js';
import { FlowTable, type FlowEndSource } from '../../../helper/daemon/flows.js';
import { createLogger } from '../../../helper/daemon/log.js';
import type { CommandRunner } from '../../../helper/firewall/exec.js';

let root: string;
let lines: string[];
const log = () => createLogger({ write: (l) => lines.push(l) });

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pcl-sysctl-'));
  expect(root.startsWith(tmpdir())).toBe(true);
  mkdirSync(join(root, 'net', 'netfilter'), { recursive: true });
  lines = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function set(acct: string, ts: string): void {
  writeFileSync(join(root, ACCT_SYSCTL), `${acct}\n`);
  writeFileSync(join(root, TIMESTAMP_SYSCTL), `${ts}\n`);
}
function get(): [string, string] {
  return [
    readFileSync(join(root, ACCT_SYSCTL), 'utf8').trim(),
    readFileSync(join(root, TIMESTAMP_SYSCTL), 'utf8').trim(),
  ];
}
/** procSysAccess on the temp tree, recording writes. */
function recorded(): SysctlAccess & { writes: [string, string][] } {
  const inner = procSysAccess(root);
  const writes: [string, string][] = [];
  return {
    writes,
    read: (k) => inner.read(k),
    write: async (k, v) => {
      writes.push([k, v]);
      await inner.write(k, v);
    },
  };
}

describe('ConntrackAccounting', () => {
  it('turns both on, reports it, and restores the previous values once', async () => {
    set('0', '0');
    const access = recorded();
    const a = await ConntrackAccounting.start({ access, enable: true, log: log() });
    expect(get()).toEqual(['1', '1']);
    expect(a.state).toEqual({
      accounting: true,
      timestamps: true,
      enabledByHelper: true,
      optOut: false,
    });
    expect(a.active).toBe(true);
    expect(lines.join('')).toMatch(/info conntrack: accounting accounting=true timestamps=true/);
    await a.restore();
    await a.restore();
    expect(get()).toEqual(['0', '0']);
    expect(access.writes).toEqual([
      [ACCT_SYSCTL, '1'],
      [TIMESTAMP_SYSCTL, '1'],
      [ACCT_SYSCTL, '0'],
      [TIMESTAMP_SYSCTL, '0'],
    ]);
    expect(a.state.enabledByHelper).toBe(false);
    expect(a.state.accounting).toBe(false);
  });

  it('leaves values that are already on, and restores only what it changed', async () => {
    set('0', '1');
    const access = recorded();
    const a = await ConntrackAccounting.start({ access, enable: true, log: log() });
    expect(get()).toEqual(['1', '1']);
    expect(access.writes).toEqual([[ACCT_SYSCTL, '1']]);
    await a.restore();
    expect(get()).toEqual(['0', '1']);

    set('1', '1');
    const b = await ConntrackAccounting.start({ access: recorded(), enable: true, log: log() });
    expect(b.state).toMatchObject({ accounting: true, timestamps: true, enabledByHelper: false });
    await b.restore();
    expect(get()).toEqual(['1', '1']);
  });

  describe('after a helper that was killed (the marker file)', () => {
    const marker = () => join(root, 'state', 'conntrack-sysctls.json');
    const markerText = () => readFileSync(marker(), 'utf8');
    beforeEach(() => mkdirSync(join(root, 'state')));
    /** A helper that turns them on and is killed: started, never restore()d. */
    const killedHelper = () =>
      ConntrackAccounting.start({ access: recorded(), enable: true, log: log(), marker: marker() });

    it('records what it changed until restore() and removes the record then', async () => {
      set('0', '1');
      const a = await ConntrackAccounting.start({
        access: recorded(),
        enable: true,
        log: log(),
        marker: marker(),
      });
      expect(JSON.parse(markerText())).toEqual({ [ACCT_SYSCTL]: '0' });
      await a.restore();
      expect(get()).toEqual(['0', '1']);
      expect(existsSync(marker())).toBe(false);
    });

    it('writes the record before it changes anything (a kill in between is covered)', async () => {
      set('0', '0');
      const inner = procSysAccess(root);
      const seen: boolean[] = [];
      await ConntrackAccounting.start({
        access: {
          read: inner.read,
          write: async (k, v) => {
            seen.push(existsSync(marker()));
            await inner.write(k, v);
          },
        },
        enable: true,
        log: log(),
        marker: marker(),
      });
      expect(seen).toEqual([true, true]);
    });

    it('the next start restores at its stop what a killed helper left on', async () => {
      set('0', '0');
      await killedHelper();
      expect(get()).toEqual(['1', '1']);
      const access = recorded();
      const b = await ConntrackAccounting.start({
        access,
        enable: true,
        log: log(),
        marker: marker(),
      });
      expect(access.writes).toEqual([]); // already on
      expect(b.state.enabledByHelper).toBe(true);
      expect(lines.join('')).toMatch(
        /a previous run left net\/netfilter\/nf_conntrack_acct changed/,
      );
      await b.restore();
      expect(get()).toEqual(['0', '0']);
      expect(existsSync(marker())).toBe(false);
    });

    it('with accounting off, a start restores them at once', async () => {
      set('0', '0');
      await killedHelper();
      const b = await ConntrackAccounting.start({
        access: recorded(),
        enable: false,
        log: log(),
        marker: marker(),
      });
      expect(get()).toEqual(['0', '0']);
      expect(b.state).toMatchObject({ accounting: false, timestamps: false, optOut: true });
      expect(existsSync(marker())).toBe(false);
    });

    it('keeps the record when restoring fails, so that the next start tries again', async () => {
      set('0', '0');
      await killedHelper();
      const inner = procSysAccess(root);
      const b = await ConntrackAccounting.start({
        access: {
          read: inner.read,
          write: async () => {
            throw new Error('EROFS');
          },
        },
        enable: false,
        log: log(),
        marker: marker(),
      });
      expect(b.state.accounting).toBe(true);
      expect(JSON.parse(markerText())).toEqual({ [ACCT_SYSCTL]: '0', [TIMESTAMP_SYSCTL]: '0' });
    });

    it('ignores a damaged record with a warning', async () => {
      set('0', '1');
      writeFileSync(marker(), '{not json');
      const a = await ConntrackAccounting.start({
        access: recorded(),
        enable: true,
        log: log(),
        marker: marker(),
      });
      expect(lines.join('')).toMatch(/warn conntrack: ignoring .*conntrack-sysctls\.json/);
      expect(JSON.parse(markerText())).toEqual({ [ACCT_SYSCTL]: '0' });
      await a.restore();
      expect(get()).toEqual(['0', '1']);
    });

    it('one record per namespace', () => {
      expect(accountingMarkerName(undefined)).toBe('conntrack-sysctls.json');
      expect(accountingMarkerName('blue')).toBe('conntrack-sysctls.netns-blue.json');
      expect(accountingMarkerName('/run/netns/a b')).toBe(
        'conntrack-sysctls.netns-%2Frun%2Fnetns%2Fa%20b.json',
      );
    });
  });

  it('--no-conntrack-accounting: reads and reports, writes nothing', async () => {
    set('0', '0');
    const access = recorded();
    const a = await ConntrackAccounting.start({ access, enable: false, log: log() });
    expect(a.state).toEqual({
      accounting: false,
      timestamps: false,
      enabledByHelper: false,
      optOut: true,
    });
    expect(a.active).toBe(false);
    await a.restore();
    expect(access.writes).toEqual([]);
  });

  it('no nf_conntrack (no files): unknown, a warning, no throw', async () => {
    const a = await ConntrackAccounting.start({
      access: procSysAccess(root),
      enable: true,
      log: log(),
    });
    expect(a.state).toMatchObject({ accounting: null, timestamps: null, enabledByHelper: false });
    expect(lines.filter((l) => / warn conntrack: cannot read/.test(l))).toHaveLength(2);
  });

  it('a read-only /proc/sys (systemd ProtectKernelTunables): off, a warning, nothing to restore', async () => {
    set('0', '0');
    const inner = procSysAccess(root);
    const write = vi.fn(async () => {
      throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
    });
    const a = await ConntrackAccounting.start({
      access: { read: inner.read, write },
      enable: true,
      log: log(),
    });
    expect(a.state).toMatchObject({ accounting: false, timestamps: false, enabledByHelper: false });
    expect(lines.filter((l) => / warn conntrack: cannot turn on .*EROFS/.test(l))).toHaveLength(2);
    await a.restore();
    expect(write).toHaveBeenCalledTimes(2);
  });

  it('runs prepare (loading nf_conntrack) first; its failure is a warning', async () => {
    set('0', '0');
    const order: string[] = [];
    const inner = procSysAccess(root);
    await ConntrackAccounting.start({
      access: {
        read: async (k) => (order.push(`read ${k}`), inner.read(k)),
        write: inner.write,
      },
      enable: false,
      prepare: async () => {
        order.push('prepare');
        throw new Error('EPERM');
      },
      log: log(),
    });
    expect(order[0]).toBe('prepare');
    expect(order).toHaveLength(3);
    expect(lines.join('')).toMatch(/warn conntrack: cannot load nf_conntrack: EPERM/);
  });

  it('a value that is not a number is unknown and left alone', async () => {
    set('garbage', '0');
    const access = recorded();
    const a = await ConntrackAccounting.start({ access, enable: true, log: log() });
    expect(a.state.accounting).toBeNull();
    expect(access.writes).toEqual([[TIMESTAMP_SYSCTL, '1']]);
  });
});

describe('netnsSysctlAccess', () => {
  it('reads with `ip netns exec NAME cat` and writes with tee (no shell)', async () => {
    const calls: { argv: readonly string[]; input: string | undefined }[] = [];
    const run: CommandRunner = async (argv, input) => {
      calls.push({ argv, input });
      return { stdout: '0\n', stderr: '' };
    };
    const access = netnsSysctlAccess('pcl-test', run);
    expect(await access.read(ACCT_SYSCTL)).toBe('0');
    await access.write(TIMESTAMP_SYSCTL, '1');
    expect(calls).toEqual([
      {
        argv: [
          'ip',
          'netns',
          'exec',
          'pcl-test',
          'cat',
          '/proc/sys/net/netfilter/nf_conntrack_acct',
        ],
        input: undefined,
      },
      {
        argv: [
          'ip',
          'netns',
          'exec',
          'pcl-test',
          'tee',
          '/proc/sys/net/netfilter/nf_conntrack_timestamp',
        ],
        input: '1\n',
      },
    ]);
  });
});

describe('FlowTable.resync (what CounterRefresh calls)', () => {
  it('dumps only while the whole table is followed; a mirror let go meanwhile is no error', async () => {
    const resync = vi.fn(async () => ({ added: 0, updated: 0, removed: 0 }));
    let closed = false;
    const mirror = {
      flows: new Map(),
      size: 0,
      get: () => undefined,
      onChange: () => () => undefined,
      onError: () => () => undefined,
      resync,
      get closed() {
        return closed;
      },
      close: () => void (closed = true),
    } as unknown as ConntrackMirror;
    const ends: FlowEndSource = {
      onEvent: () => () => undefined,
      onError: () => () => undefined,
      close: () => undefined,
    };
    const table = await FlowTable.start({
      log: log(),
      openMirror: async () => mirror,
      openEnds: () => ends,
      idleMs: 60_000,
    });
    await table.resync(); // only ends: nothing to dump
    expect(resync).not.toHaveBeenCalled();
    table.setWatched(true);
    await table.follow();
    expect(table.following).toBe('all');
    await table.resync();
    expect(resync).toHaveBeenCalledTimes(1);
    // The mirror closes while a dump runs: swallowed.
    resync.mockImplementationOnce(async () => {
      closed = true;
      throw new Error('mirror closed');
    });
    await expect(table.resync()).resolves.toBeUndefined();
    await table.resync();
    expect(resync).toHaveBeenCalledTimes(2);
    table.close();
  });
});

describe('CounterRefresh', () => {
  afterEach(() => vi.useRealTimers());

  it('adapts the interval to the dump time, within its bounds', () => {
    const o = { minIntervalMs: 2000, maxIntervalMs: 30_000, maxShare: 0.05 };
    expect(nextRefreshDelay(10, o)).toBe(2000);
    expect(nextRefreshDelay(200, o)).toBe(4000);
    expect(nextRefreshDelay(5000, o)).toBe(30_000);
  });

  it('dumps periodically, keeps going after a failure, and stops', async () => {
    vi.useFakeTimers();
    let clock = 0;
    let fail = false;
    const resync = vi.fn(async () => {
      clock += 300; // each dump "takes" 300 ms: the next one in 6 s
      if (fail) throw new Error('ENOBUFS');
    });
    const r = new CounterRefresh({ resync }, { log: log(), now: () => clock });
    r.start();
    await vi.advanceTimersByTimeAsync(1999);
    expect(resync).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(resync).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(5999);
    expect(resync).toHaveBeenCalledTimes(1);
    fail = true;
    await vi.advanceTimersByTimeAsync(1);
    expect(resync).toHaveBeenCalledTimes(2);
    expect(lines.join('')).toMatch(/warn flows: counter refresh: ENOBUFS/);
    fail = false;
    await vi.advanceTimersByTimeAsync(6000);
    expect(resync).toHaveBeenCalledTimes(3);
    expect(r.runs).toBe(2);
    r.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(resync).toHaveBeenCalledTimes(3);
  });
});
