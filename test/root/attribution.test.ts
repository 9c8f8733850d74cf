import { readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Attributor } from '../../helper/attribution/attributor.js';
import { CgroupIndex, findCgroup2Root } from '../../helper/attribution/cgroups.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { SocketChild } from '../support/socket-child.js';
import { socketInodesOf, tcpPair, udpSender } from '../support/socket-pair.js';

const skip = rootTestsUnavailable();
if (skip) console.warn(`skipping attribution root tests: ${skip}`);

function holds(pid: number, inode: number): boolean {
  return socketInodesOf(pid).includes(inode);
}

describe.skipIf(skip)('Attributor: tuple -> socket -> process (root, throw-away netns)', () => {
  let ns: TestNetns;
  let attributor: Attributor;
  const children: SocketChild[] = [];
  const child = (args: string[], asUser?: { uid: number; gid: number }) => {
    const c = new SocketChild(ns, args, asUser);
    children.push(c);
    return c;
  };
  const nodeExe = realpathSync(process.execPath);

  beforeAll(() => {
    ns = new TestNetns('pcl-attr');
    // These tests look right after a process exits: check liveness on every reuse
    // (the verdict loop's default reuses a check for 250 ms).
    attributor = Attributor.open({ netns: ns.name, livenessTtlMs: 0 });
  });
  afterAll(async () => {
    for (const c of children) await c.stop();
    attributor?.close();
    ns?.delete();
  });

  it('attributes an outgoing TCP connection, its accepted end and its listener to their processes', async () => {
    const { server, client, port, sport, tuple } = await tcpPair(child);

    const a = await attributor.attribute(tuple);
    expect(a).not.toBeNull();
    expect(a!.socket).toMatchObject({ state: 'ESTABLISHED', sport, dport: port, uid: 0 });
    expect(holds(client.pid, a!.socket.inode)).toBe(true);
    expect(a!.process).toMatchObject({
      pid: client.pid,
      ppid: process.pid,
      comm: 'node',
      exe: nodeExe,
      exeDeleted: false,
      cmdline: client.argv,
      uid: 0,
      gid: 0,
      user: 'root',
    });
    expect(a!.process!.startTime).toBeGreaterThan(0);

    // The same packet seen arriving at the server: the accepted socket.
    // inbound: the packet's dst (the server's end) is the local end.
    const b = await attributor.attribute({ ...tuple, inbound: true });
    expect(b!.process!.pid).toBe(server.pid);
    expect(b!.socket.state).toBe('ESTABLISHED');

    // A new inbound SYN from elsewhere: the listener.
    const c = await attributor.attribute({
      family: 'ipv4',
      protocol: 'tcp',
      src: '127.0.0.5',
      sport: 45678,
      dst: '127.0.0.1',
      dport: port,
      inbound: true,
    });
    expect(c!.socket.state).toBe('LISTEN');
    expect(c!.process!.pid).toBe(server.pid);
  });

  it('attributes an unconnected UDP sender running as another uid, with its user name', async () => {
    const { sender: udp, tuple } = await udpSender((args) =>
      child(args, { uid: 65534, gid: 65534 }),
    );
    const a = await attributor.attribute(tuple);
    expect(a!.socket).toMatchObject({ state: 'CLOSE', uid: 65534 });
    expect(a!.process).toMatchObject({
      pid: udp.pid,
      exe: nodeExe,
      cmdline: udp.argv,
      uid: 65534,
      gid: 65534,
      euid: 65534,
      user: 'nobody',
    });

    const { sender: six, tuple: t6 } = await udpSender(child, 'ipv6');
    const b = await attributor.attribute(t6);
    expect(b!.process!.pid).toBe(six.pid);
  });

  it("reports the creator's cgroup id: the inode of its cgroup v2 directory, which lists the process", async () => {
    const root = findCgroup2Root();
    if (root === undefined) {
      console.warn('no cgroup v2 mount: cgroup ids are not checked');
      return;
    }
    const udp = child(['udp-send', '127.0.0.1', '9', 'ipv4']);
    const sport = (await udp.ready()).port!;
    const a = await attributor.attribute({
      family: 'ipv4',
      protocol: 'udp',
      src: '127.0.0.1',
      sport,
      dst: '127.0.0.1',
      dport: 9,
    });
    // The v2 line ("0::/path"): the hierarchy whose ids sockets carry.
    const v2 = readFileSync(`/proc/${udp.pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'))!;
    const path = v2.slice(3);
    expect(a!.socket.cgroupId).toBe(statSync(join(root, path), { bigint: true }).ino);
    expect(new CgroupIndex({ root }).pidsOf(a!.socket.cgroupId!)).toContain(udp.pid);
  });

  it('reuses an answer for the same tuple and drops it, and the owner, when the process exits', async () => {
    const { sender: udp, tuple } = await udpSender(child);
    const first = await attributor.attribute(tuple);
    const hits = attributor.stats.tupleHits;
    const again = await attributor.attribute(tuple);
    expect(again).toBe(first);
    expect(attributor.stats.tupleHits).toBe(hits + 1);
    const inode = first!.socket.inode;
    expect(attributor.owners.peek(inode)?.pid).toBe(udp.pid);
    expect(attributor.process(udp.pid)?.pid).toBe(udp.pid);

    await udp.stop();
    expect(attributor.process(udp.pid)).toBeNull();
    expect(attributor.owners.peek(inode)).toBeNull();
    await expect(attributor.attribute(tuple)).resolves.toBeNull();
  });

  it('gives the socket without a process when no process holds it any more', async () => {
    const { client, tuple } = await tcpPair(child);
    expect((await attributor.attribute(tuple))!.process!.pid).toBe(client.pid);
    await client.stop();
    // The closed connection lingers (FIN_WAIT/TIME_WAIT) as an orphan: inode 0, no owner.
    const after = await attributor.attribute(tuple);
    expect(after).not.toBeNull();
    expect(after!.socket.state).toMatch(/^(FIN_WAIT1|FIN_WAIT2|TIME_WAIT|CLOSING|LAST_ACK)$/);
    expect(after!.socket.inode).toBe(0);
    expect(after!.process).toBeNull();
  });
});
