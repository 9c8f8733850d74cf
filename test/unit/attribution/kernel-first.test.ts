/**
 * KernelFirstAttributor over real processes, a real socket, real sock_diag and /proc,
 * and an in-test KernelOwnerSource (the records the eBPF programs would have made).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Attributor } from '../../../helper/attribution/attributor.js';
import { CgroupIndex } from '../../../helper/attribution/cgroups.js';
import { KernelFirstAttributor } from '../../../helper/attribution/kernel-first.js';
import { parseStat } from '../../../helper/attribution/proc-parse.js';
import type { SocketTuple } from '../../../helper/attribution/types.js';
import { ownerRecord, RecordedOwners } from '../../support/recorded-owners.js';

/** pid's start time now (field 22 of its stat). */
function startTimeOf(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))!.startTime;
}

const tuple = (sport: number, dport = 9): SocketTuple => ({
  family: 'ipv4',
  protocol: 'udp',
  src: '127.0.0.1',
  sport,
  dst: '127.0.0.1',
  dport,
});

function sleeper(): Promise<ChildProcess & { pid: number }> {
  const c = spawn('sleep', ['30'], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    c.once('spawn', () => resolve(c as ChildProcess & { pid: number }));
    c.once('error', reject);
  });
}

describe('KernelFirstAttributor: eBPF records first, sock_diag + /proc for the rest', () => {
  let attributor: Attributor;
  let kernel: RecordedOwners;
  let combined: KernelFirstAttributor;
  let cgroupRoot: string;
  let cgroups: CgroupIndex;
  const children: ChildProcess[] = [];
  const sockets: Socket[] = [];

  beforeAll(() => {
    cgroupRoot = mkdtempSync(join(tmpdir(), 'pcl-kf-cg-'));
    cgroups = new CgroupIndex({ root: cgroupRoot, minRefreshMs: 0 });
  });
  afterAll(() => rmSync(cgroupRoot, { recursive: true, force: true }));

  function open(): void {
    // Liveness checked on every lookup: these tests look right after a SIGKILL.
    attributor = Attributor.open({ livenessTtlMs: 0, cgroupRoot: null });
    kernel = new RecordedOwners();
    combined = new KernelFirstAttributor(attributor, { kernel, cgroups });
  }
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    for (const s of sockets.splice(0)) s.close();
    attributor?.close();
  });

  /** A real UDP socket of this process, connected to 127.0.0.1:`dport`. */
  async function udpSocket(dport = 9): Promise<SocketTuple> {
    const s = createSocket('udp4');
    sockets.push(s);
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => s.connect(dport, '127.0.0.1', () => resolve()));
    return tuple(s.address().port, dport);
  }

  it('a record of a live process: that process, read from /proc (command line, user, start time)', async () => {
    open();
    const child = await sleeper();
    children.push(child);
    const startTime = startTimeOf(child.pid);
    const t = tuple(40001);
    kernel.record(t, ownerRecord({ pid: child.pid, startTime, ppid: process.pid, uid: 0 }));

    const got = await combined.attribute(t);
    expect(got?.via).toBe('ebpf');
    expect(got?.uid).toBe(0);
    expect(got?.process).toMatchObject({
      pid: child.pid,
      startTime,
      comm: 'sleep',
      exe: realpathSync('/bin/sleep'),
      cmdline: ['sleep', '30'],
      ppid: process.pid,
    });
    // The record has no chain: the ppid walk from /proc, this test process first.
    expect(got?.process?.ancestors?.[0]).toMatchObject({
      pid: process.pid,
      exe: realpathSync(process.execPath),
    });
    expect(kernel.lookups).toEqual([t]);
    expect(combined.stats).toMatchObject({ kernelLive: 1, kernelExited: 0, fallbacks: 0 });
    // Its connections share one object.
    expect((await combined.attribute(t))?.process).toBe(got?.process);
  });

  it('a record of a process that has exited: described from the record and its cgroup id', async () => {
    open();
    const child = await sleeper();
    const startTime = startTimeOf(child.pid);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const scope =
      'user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.example.Chat-77.scope';
    mkdirSync(join(cgroupRoot, scope), { recursive: true });
    const cgroupId = statSync(join(cgroupRoot, scope), { bigint: true }).ino;
    const t = tuple(40002, 53);
    const chain = [{ pid: process.pid, startTime: 1, exe: '/usr/bin/bash', comm: 'bash' }];
    kernel.record(
      t,
      ownerRecord({ pid: child.pid, startTime, uid: 0, gid: 0, cgroupId, ancestors: chain }),
    );

    const got = await combined.attribute(t);
    expect(got?.via).toBe('ebpf');
    expect(got?.process).toEqual({
      pid: child.pid,
      ppid: 1,
      comm: 'sender',
      exe: '/usr/local/bin/sender',
      exeDeleted: false,
      cmdline: [],
      uid: 0,
      gid: 0,
      euid: 0,
      egid: 0,
      user: 'root',
      startTime,
      systemdUnit: 'user@1000.service',
      systemdUserUnit: 'app-flatpak-org.example.Chat-77.scope',
      container: null,
      app: { kind: 'flatpak', id: 'org.example.Chat' },
      ancestors: chain,
    });
    expect(combined.stats).toMatchObject({ kernelLive: 0, kernelExited: 1 });
  });

  it('a record whose pid now names another process is the recorded one, not the new one', async () => {
    open();
    const child = await sleeper();
    children.push(child);
    const t = tuple(40003);
    const startTime = startTimeOf(child.pid) - 1;
    kernel.record(t, ownerRecord({ pid: child.pid, startTime }));

    const got = await combined.attribute(t);
    expect(got?.process).toMatchObject({
      pid: child.pid,
      startTime,
      comm: 'sender',
      exe: '/usr/local/bin/sender',
      cmdline: [],
    });
  });

  it('no record: sock_diag + /proc, with the parent chain from /proc', async () => {
    open();
    const t = await udpSocket();

    const got = await combined.attribute(t);
    expect(kernel.lookups).toEqual([t]);
    expect(got?.via).toBe('procfs');
    expect(got?.uid).toBe(process.getuid!());
    expect(got?.process).toMatchObject({ pid: process.pid, ppid: process.ppid });
    expect(got?.process?.ancestors?.[0]?.pid).toBe(process.ppid);
    expect(combined.stats).toMatchObject({ kernelLive: 0, kernelExited: 0, fallbacks: 1 });
  });

  it('inbound: the records are not asked (they hold outbound sockets only)', async () => {
    open();
    const t = await udpSocket(7);
    // A record that would match the swapped tuple must not be used.
    kernel.record(t, ownerRecord({ pid: 1, startTime: 1 }));
    const got = await combined.attribute({
      ...t,
      src: t.dst,
      sport: t.dport,
      dst: t.src,
      dport: t.sport,
      inbound: true,
    });
    expect(kernel.lookups).toEqual([]);
    expect(got).toMatchObject({ via: 'procfs', process: { pid: process.pid } });
  });

  it('no source (BPF unavailable): sock_diag + /proc as before', async () => {
    attributor = Attributor.open({ livenessTtlMs: 0, cgroupRoot: null });
    const alone = new KernelFirstAttributor(attributor, { kernel: null, cgroups });
    const t = await udpSocket();
    await expect(alone.attribute(t)).resolves.toMatchObject({
      via: 'procfs',
      process: { pid: process.pid },
    });
    await expect(alone.attribute(tuple(9, 9))).resolves.toBeNull();
  });
});
