import { writeFileSync, utimesSync, rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PasswdCache, ProcFormatError, ProcReader } from '../../../helper/attribution/procfs.js';
import { SocketOwnerIndex } from '../../../helper/attribution/owners.js';
import { FakeProc } from '../../support/fake-proc.js';

let fake: FakeProc;
let reader: ProcReader;
beforeEach(() => {
  fake = new FakeProc();
  reader = new ProcReader({ root: fake.root, passwd: new PasswdCache(fake.passwd) });
});
afterEach(() => fake.cleanup());

describe('ProcReader', () => {
  it('reads a process: stat, status, cmdline, exe, user, cgroup units and container', () => {
    fake.add({
      pid: 4242,
      comm: 'curl (x)',
      ppid: 4000,
      startTime: 777,
      uid: 1000,
      gid: 1000,
      euid: 0,
      cmdline: ['/usr/bin/curl', '-s', 'https://example.org'],
      exe: '/usr/bin/curl',
      cgroup: `0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker-${'a'.repeat(64)}.scope\n`,
    });
    expect(reader.process(4242)).toEqual({
      pid: 4242,
      ppid: 4000,
      comm: 'curl (x)',
      exe: '/usr/bin/curl',
      exeDeleted: false,
      cmdline: ['/usr/bin/curl', '-s', 'https://example.org'],
      uid: 1000,
      gid: 1000,
      euid: 0,
      egid: 1000,
      user: 'alice',
      startTime: 777,
      systemdUnit: 'user@1000.service',
      systemdUserUnit: `docker-${'a'.repeat(64)}.scope`,
      container: { runtime: 'docker', id: 'a'.repeat(64) },
      app: null,
    });
    expect(reader.pids()).toEqual([4242]);
    expect(reader.startTime(4242)).toBe(777);
  });

  it('keeps " (deleted)" on a replaced executable, has no exe for kernel threads, no user for unknown uids', () => {
    fake.add({ pid: 10, exe: '/usr/lib/firefox/firefox (deleted)', uid: 4321 });
    fake.add({ pid: 2, exe: null, comm: 'kthreadd' });
    expect(reader.process(10)).toMatchObject({
      exe: '/usr/lib/firefox/firefox (deleted)',
      exeDeleted: true,
      user: null,
    });
    expect(reader.process(2)).toMatchObject({ exe: null, exeDeleted: false, cmdline: [] });
  });

  it('takes the flatpak id from the process root over the cgroup hint, and snap from the cgroup', () => {
    fake.add({
      pid: 20,
      cgroup:
        '0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.hint.App-99.scope\n',
      flatpakInfo: '[Application]\nname=org.gnome.Maps\n',
    });
    fake.add({
      pid: 21,
      cgroup:
        '0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.hint.App-99.scope\n',
    });
    fake.add({
      pid: 22,
      cgroup:
        '0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap.spotify.spotify-1.scope\n',
    });
    expect(reader.process(20)?.app).toEqual({ kind: 'flatpak', id: 'org.gnome.Maps' });
    expect(reader.process(21)?.app).toEqual({ kind: 'flatpak', id: 'org.hint.App' });
    expect(reader.process(22)?.app).toEqual({ kind: 'snap', id: 'spotify' });
  });

  it('gives null for a gone process and throws ProcFormatError for unparseable stat', () => {
    expect(reader.process(999)).toBeNull();
    expect(reader.startTime(999)).toBeNull();
    expect(reader.socketInodes(999)).toBeNull();
    fake.add({ pid: 30 });
    writeFileSync(`${fake.root}/30/stat`, 'garbage');
    expect(() => reader.process(30)).toThrow(ProcFormatError);
  });

  it('lists socket inodes among the fds', () => {
    fake.add({
      pid: 40,
      fds: { 0: '/dev/null', 3: 'socket:[1001]', 4: 'pipe:[5]', 7: 'socket:[1002]' },
    });
    expect(reader.socketInodes(40)?.sort()).toEqual([1001, 1002]);
  });
});

describe('PasswdCache', () => {
  it('reloads when the file changes and copes with it missing', () => {
    const cache = new PasswdCache(fake.passwd);
    expect(cache.name(1000)).toBe('alice');
    writeFileSync(fake.passwd, 'root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n');
    utimesSync(fake.passwd, new Date(), new Date(Date.now() + 5000));
    expect(cache.name(1000)).toBe('bob');
    rmSync(fake.passwd);
    expect(cache.name(0)).toBeNull();
  });
});

describe('SocketOwnerIndex', () => {
  it('finds an owner by scanning, then answers from the index', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 3: 'socket:[501]' } });
    fake.add({ pid: 200, startTime: 6, fds: { 3: 'socket:[502]', 4: 'socket:[503]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 0 });
    await expect(index.ownerOf(503)).resolves.toEqual({ pid: 200, startTime: 6 });
    expect(index.stats.scans).toBe(1);
    await expect(index.ownerOf(501)).resolves.toEqual({ pid: 100, startTime: 5 });
    expect(index.stats).toMatchObject({ scans: 1, hits: 1, misses: 1 });
    index.close();
  });

  it('shares one scan among concurrent misses and answers an unknown inode with null', async () => {
    fake.add({ pid: 100, fds: { 3: 'socket:[501]' } });
    fake.add({ pid: 101, fds: { 3: 'socket:[502]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 0 });
    const results = await Promise.all([index.ownerOf(501), index.ownerOf(502), index.ownerOf(999)]);
    expect(results.map((r) => r?.pid ?? null)).toEqual([100, 101, null]);
    expect(index.stats.scans).toBe(1);
    index.close();
  });

  it('a socket opened after a scan passed its owner is found by the next scan, not missed', async () => {
    for (let pid = 100; pid < 150; pid++) fake.add({ pid, fds: { 3: `socket:[${pid}]` } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 0, yieldEvery: 1 });
    const first = index.ownerOf(999);
    // The highest pids are scanned first: wait until 149 is behind the scan.
    while (index.stats.processesScanned < 5) await new Promise((r) => setImmediate(r));
    fake.addFd(149, 9, 'socket:[777]');
    const second = index.ownerOf(777);
    await expect(first).resolves.toBeNull();
    await expect(second).resolves.toMatchObject({ pid: 149 });
    expect(index.stats.scans).toBe(2);
    index.close();
  });

  it('rate-limits scans: misses within the interval wait for one later scan', async () => {
    fake.add({ pid: 100, fds: { 3: 'socket:[501]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 150 });
    await index.ownerOf(998);
    const started = Date.now();
    const [a, b] = await Promise.all([index.ownerOf(997), index.ownerOf(996)]);
    expect([a, b]).toEqual([null, null]);
    expect(index.stats.scans).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    index.close();
  });

  it('a new socket of a recent owner is found by reading that owner at once, without waiting for a scan', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 3: 'socket:[501]' } });
    fake.add({ pid: 200, startTime: 6, fds: { 3: 'socket:[601]' } });
    // A long interval: any answer that needed a second scan would take a minute.
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 60_000 });
    await expect(index.ownerOf(501)).resolves.toEqual({ pid: 100, startTime: 5 });
    expect(index.stats.scans).toBe(1);
    for (let fd = 4; fd < 10; fd++) {
      fake.addFd(100, fd, `socket:[${500 + fd * 10}]`);
      await expect(index.ownerOf(500 + fd * 10)).resolves.toEqual({ pid: 100, startTime: 5 });
    }
    expect(index.stats.scans).toBe(1);
    expect(index.stats.probeHits).toBe(6);
    // Not a recent owner's socket: the probe misses and the lookup waits for a scan.
    fake.addFd(200, 4, 'socket:[602]');
    let settled = false;
    const pending = index.ownerOf(602).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    index.close();
    await expect(pending).rejects.toThrow(/closed/);
  });

  it('the first socket of a process started after the last scan is found without waiting for a scan', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 3: 'socket:[501]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 60_000 });
    await index.ownerOf(501);
    fake.add({ pid: 300, startTime: 9, fds: { 3: 'socket:[901]' } });
    await expect(index.ownerOf(901)).resolves.toEqual({ pid: 300, startTime: 9 });
    expect([index.stats.scans, index.stats.probeHits]).toEqual([1, 1]);
    index.close();
  });

  it('checks that an owner is alive at most once per liveness TTL, then notices a reused pid', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 3: 'socket:[501]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 0, livenessTtlMs: 60 });
    await index.ownerOf(501);
    fake.writeStat(100, { startTime: 9 });
    // Within the TTL the earlier reading stands...
    expect(index.peek(501)).toEqual({ pid: 100, startTime: 5 });
    await new Promise((r) => setTimeout(r, 80));
    // ...after it, /proc is read again and the reused pid is seen.
    expect(index.peek(501)).toBeNull();
    index.close();
  });

  it('a probe reads a recent owner fds from the highest down and stops at the socket', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 3: 'socket:[501]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 60_000 });
    await index.ownerOf(501);
    // fd 9 is the new socket; fds 4..8 are sockets the probe never needs to read.
    for (let fd = 4; fd < 9; fd++) fake.addFd(100, fd, `socket:[${700 + fd}]`);
    fake.addFd(100, 9, 'socket:[999]');
    await expect(index.ownerOf(999)).resolves.toEqual({ pid: 100, startTime: 5 });
    expect(index.stats.probeHits).toBe(1);
    expect(index.peek(708)).toBeNull();
    index.close();
  });

  it('holdsSocket reports every socket it read before the match, and null for a gone process', () => {
    fake.add({
      pid: 100,
      fds: { 0: '/dev/null', 3: 'socket:[1]', 10: 'socket:[2]', 7: 'pipe:[3]' },
    });
    const seen: number[] = [];
    expect(reader.holdsSocket(100, 1, (i) => seen.push(i))).toBe(true);
    expect(seen).toEqual([2, 1]);
    expect(reader.holdsSocket(100, 42)).toBe(false);
    expect(reader.holdsSocket(555, 1)).toBeNull();
  });

  it('processes taking turns are found in two probes, the last owner then the longest waiting', async () => {
    for (const pid of [100, 101, 102, 103]) fake.add({ pid, fds: { 3: `socket:[${pid}0]` } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 60_000 });
    for (const pid of [100, 101, 102, 103]) await index.ownerOf(pid * 10);
    const before = { ...index.stats };
    let inode = 5000;
    for (let round = 0; round < 10; round++) {
      for (const pid of [100, 101, 102, 103]) {
        // Each closes its socket and opens the next one on the same fd, as a client does.
        rmSync(`${fake.root}/${pid}/fd/3`);
        fake.addFd(pid, 3, `socket:[${++inode}]`);
        await expect(index.ownerOf(inode)).resolves.toMatchObject({ pid });
      }
    }
    const misses = index.stats.misses - before.misses;
    const probed = index.stats.processesProbed - before.processesProbed;
    expect(index.stats.scans).toBe(before.scans);
    expect(misses).toBe(40);
    // Most recent first would read 4 processes for each of them.
    expect(probed / misses).toBeLessThanOrEqual(2);
    index.close();
  });

  it('reading a recent owner fd that holds its next socket remembers it for its own lookup', async () => {
    for (const pid of [100, 101, 102, 103]) fake.add({ pid, fds: { 3: `socket:[${pid}0]` } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 60_000 });
    for (const pid of [100, 101, 102, 103]) await index.ownerOf(pid * 10);
    // A socket each on fd 4, found by probes, which note the fd...
    for (const pid of [100, 101, 102, 103]) {
      fake.addFd(pid, 4, `socket:[${pid}2]`);
      await index.ownerOf(pid * 10 + 2);
    }
    // ...then all four close it and open their next one there before any lookup.
    for (const pid of [100, 101, 102, 103]) {
      rmSync(`${fake.root}/${pid}/fd/4`);
      fake.addFd(pid, 4, `socket:[${pid}1]`);
    }
    // ...then the lookups come: the first one reads the most recent owner's fd on the
    // way (103's next socket), so 103's own lookup is a hit.
    const hits = index.stats.hits;
    for (const pid of [100, 101, 102, 103]) {
      await expect(index.ownerOf(pid * 10 + 1)).resolves.toMatchObject({ pid });
    }
    expect(index.stats.hits - hits).toBe(1);
    expect(index.peek(1031)).toMatchObject({ pid: 103 });
    index.close();
  });

  it('a new socket on the fd of the owner previous one is found with one readlink', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 0: '/dev/null', 3: 'socket:[501]' } });
    fake.add({ pid: 200, startTime: 6, fds: { 3: 'socket:[601]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 60_000 });
    await index.ownerOf(501);
    // The first probe finds the fd (4) and remembers it.
    fake.addFd(100, 4, 'socket:[502]');
    await expect(index.ownerOf(502)).resolves.toMatchObject({ pid: 100 });
    const probed = index.stats.processesProbed;
    // Closed and reopened on the same fd: one readlink, no fd table read.
    rmSync(`${fake.root}/100/fd/4`);
    fake.addFd(100, 4, 'socket:[503]');
    await expect(index.ownerOf(503)).resolves.toEqual({ pid: 100, startTime: 5 });
    expect(index.stats.fdHits).toBe(1);
    expect(index.stats.processesProbed).toBe(probed);
    // On another fd: the fd check misses and the fd table is read as before.
    fake.addFd(100, 7, 'socket:[504]');
    await expect(index.ownerOf(504)).resolves.toMatchObject({ pid: 100 });
    expect(index.stats.fdHits).toBe(1);
    expect(index.stats.processesProbed).toBe(probed + 1);
    // A reused pid is not trusted through its remembered fd.
    fake.remove(100);
    fake.add({ pid: 100, startTime: 9, fds: { 7: 'socket:[505]' } });
    await new Promise((r) => setTimeout(r, 300));
    await expect(index.ownerOf(505)).resolves.toEqual({ pid: 100, startTime: 9 });
    index.close();
  });

  it('prime() scans once at start, so the first lookups need no scan', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 3: 'socket:[501]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 60_000 });
    await index.prime();
    await index.prime();
    expect(index.stats.scans).toBe(1);
    expect(index.peek(501)).toEqual({ pid: 100, startTime: 5 });
    // A process started after it is found by a probe, not by waiting a minute for a scan.
    fake.add({ pid: 300, startTime: 9, fds: { 3: 'socket:[901]' } });
    await expect(index.ownerOf(901)).resolves.toEqual({ pid: 300, startTime: 9 });
    expect(index.stats.scans).toBe(1);
    index.close();
  });

  it('the probe can be turned off', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 3: 'socket:[501]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 0, probeRecent: 0 });
    await index.ownerOf(501);
    fake.addFd(100, 4, 'socket:[502]');
    await expect(index.ownerOf(502)).resolves.toEqual({ pid: 100, startTime: 5 });
    expect([index.stats.scans, index.stats.probeHits]).toEqual([2, 0]);
    index.close();
  });

  it('drops owners whose pid went away or was reused, and sockets a complete scan no longer saw', async () => {
    fake.add({ pid: 100, startTime: 5, fds: { 3: 'socket:[501]', 4: 'socket:[502]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 0, livenessTtlMs: 0 });
    await index.ownerOf(501);
    expect(index.peek(502)?.pid).toBe(100);
    // Same pid, another process.
    fake.writeStat(100, { startTime: 9 });
    expect(index.peek(501)).toBeNull();
    expect(index.size).toBe(0);
    await expect(index.ownerOf(501)).resolves.toEqual({ pid: 100, startTime: 9 });
    // Socket 502 closed: the next complete scan forgets it.
    rmSync(`${fake.root}/100/fd/4`);
    await index.ownerOf(12345);
    expect(index.peek(502)).toBeNull();
    expect(index.peek(501)?.pid).toBe(100);
    fake.remove(100);
    expect(index.peek(501)).toBeNull();
    index.close();
  });

  it('a socket shared after fork() keeps the owner its lookup was answered with', async () => {
    fake.add({ pid: 300, fds: { 3: 'socket:[900]' } });
    fake.add({ pid: 301, fds: { 5: 'socket:[900]' } });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 0 });
    const owner = await index.ownerOf(900);
    expect([300, 301]).toContain(owner?.pid);
    await index.ownerOf(12345); // a complete scan
    expect(index.peek(900)?.pid).toBe(owner?.pid);
    index.close();
  });

  it('stays within maxEntries and rejects waiters on close', async () => {
    const fds: Record<number, string> = {};
    for (let i = 0; i < 10; i++) fds[i + 3] = `socket:[${600 + i}]`;
    fake.add({ pid: 100, fds });
    const index = new SocketOwnerIndex(reader, { minScanIntervalMs: 0, maxEntries: 4 });
    await index.ownerOf(1);
    expect(index.size).toBe(4);
    const slow = new SocketOwnerIndex(reader, { minScanIntervalMs: 10_000 });
    await slow.ownerOf(1);
    const waiting = slow.ownerOf(2);
    slow.close();
    await expect(waiting).rejects.toThrow(/closed/);
    index.close();
  });
});
