import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CgroupIndex } from '../../../helper/attribution/cgroups.js';
import { SocketOwnerIndex } from '../../../helper/attribution/owners.js';
import { cgroup2Mount, parsePidList } from '../../../helper/attribution/proc-parse.js';
import { PasswdCache, ProcReader } from '../../../helper/attribution/procfs.js';
import { FakeProc } from '../../support/fake-proc.js';

describe('cgroup parsers', () => {
  it('finds the cgroup2 mount in mountinfo, unescaping its path', () => {
    const text = [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu',
      '41 31 0:38 / /sys/fs/cgroup/my\\040unified rw,nosuid shared:10 master:2 - cgroup2 cgroup2 rw,nsdelegate',
    ].join('\n');
    expect(cgroup2Mount(text)).toBe('/sys/fs/cgroup/my unified');
    expect(cgroup2Mount('31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n')).toBeUndefined();
  });

  it('reads cgroup.procs', () => {
    expect(parsePidList('1\n42\n\nx\n0\n7\n')).toEqual([1, 42, 7]);
  });
});

describe('CgroupIndex and the owner scan order', () => {
  let dir: string;
  let fake: FakeProc;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pcl-cg-'));
    fake = new FakeProc();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    fake.cleanup();
  });

  const cgroup = (rel: string, pids: number[]): bigint => {
    mkdirSync(join(dir, rel), { recursive: true });
    writeFileSync(join(dir, rel, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
    return statSync(join(dir, rel), { bigint: true }).ino;
  };

  it('maps a cgroup id (its directory inode) to its processes; re-walks on a miss, rate-limited', () => {
    const rootId = cgroup('', [1]);
    const app = cgroup('user.slice/user-1000.slice/app-x.scope', [500, 501]);
    let now = 0;
    const index = new CgroupIndex({ root: dir, minRefreshMs: 1000, now: () => now });
    expect(index.pidsOf(rootId)).toEqual([1]);
    expect(index.pathOf(app)).toBe('/user.slice/user-1000.slice/app-x.scope');
    expect(index.pidsOf(app)).toEqual([500, 501]);
    const later = cgroup('system.slice/late.service', [9]);
    expect(index.pidsOf(later)).toBeNull(); // walked less than a second ago
    now = 2000;
    expect(index.pidsOf(later)).toEqual([9]);
    rmSync(join(dir, 'system.slice/late.service'), { recursive: true });
    expect(index.pidsOf(later)).toBeNull();
    expect(new CgroupIndex({ root: join(dir, 'missing') }).pidsOf(1n)).toBeNull();
  });

  it('scans the processes of the socket cgroup first', async () => {
    for (let pid = 100; pid < 150; pid++) fake.add({ pid, fds: { 3: `socket:[${pid}]` } });
    const id = cgroup('app.slice/app-y.scope', [100]);
    const reader = new ProcReader({ root: fake.root, passwd: new PasswdCache(fake.passwd) });
    const scannedWhenAnswered = async (index: SocketOwnerIndex, hint: { cgroupId?: bigint }) => {
      const owner = await index.ownerOf(100, hint);
      expect(owner?.pid).toBe(100);
      const n = index.stats.processesScanned;
      index.close();
      return n;
    };
    const withCgroups = new SocketOwnerIndex(reader, {
      minScanIntervalMs: 0,
      yieldEvery: 1,
      cgroups: new CgroupIndex({ root: dir }),
    });
    expect(await scannedWhenAnswered(withCgroups, { cgroupId: id })).toBeLessThan(5);
    // Without the hint, pid 100 (the oldest) comes last.
    const without = new SocketOwnerIndex(reader, { minScanIntervalMs: 0, yieldEvery: 1 });
    expect(await scannedWhenAnswered(without, {})).toBeGreaterThanOrEqual(50);
  });
});
