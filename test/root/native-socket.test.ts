import { chmodSync, readdirSync, readFileSync, readlinkSync, openSync, closeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeBinding } from '../../helper/native/load.js';
import type { NativeNetlinkSocket, NativeOpenOptions } from '../../helper/native/types.js';
import {
  AF_UNSPEC,
  NETLINK_NETFILTER,
  NFNL_SUBSYS_CTNETLINK,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_REQUEST,
  NLMSG_ERROR,
  nfnlMsgType,
} from '../../helper/netlink/constants.js';
import { parseErrorMessage } from '../../helper/netlink/ack.js';
import { forEachMessage, type NetlinkMessage } from '../../helper/netlink/message.js';
import { NetlinkWriter } from '../../helper/netlink/writer.js';
import { IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_NEW } from '../../helper/conntrack/constants.js';
import { ctNewUdp } from '../support/ct-raw.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';

const skip = rootTestsUnavailable();
if (skip) console.warn(`skipping native socket root tests: ${skip}`);

const NFNLGRP_CONNTRACK_NEW = 1;

function statsRequest(seq: number): Uint8Array {
  return new NetlinkWriter()
    .beginMessage(
      nfnlMsgType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS),
      NLM_F_REQUEST | NLM_F_ACK,
      seq,
    )
    .nfgenmsg(AF_UNSPEC)
    .endMessage()
    .finish();
}

/** A CT_NEW whose CTA_TIMEOUT has the wrong size: the kernel rejects it in policy validation. */
function badRequest(seq: number): Uint8Array {
  return new NetlinkWriter()
    .beginMessage(
      nfnlMsgType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW),
      NLM_F_REQUEST | NLM_F_ACK,
      seq,
    )
    .nfgenmsg(2)
    .u16be(7, 5)
    .endMessage()
    .finish();
}

interface Received {
  messages: NetlinkMessage[];
  datagrams: { multicast: boolean; sender: number; truncated: boolean }[];
  errnos: number[];
}

/** Starts reading and collects copies of everything. */
function collect(sock: NativeNetlinkSocket, slotSize = 32768, slots = 8): Received {
  const got: Received = { messages: [], datagrams: [], errnos: [] };
  const slab = Buffer.alloc(slotSize * slots);
  const records = new Uint32Array(slots * 4);
  sock.startReading(slab, slotSize, records, (count, errno) => {
    if (errno) got.errnos.push(errno);
    for (let i = 0; i < count; i++) {
      const [off, len, flags, sender] = [
        records[i * 4]!,
        records[i * 4 + 1]!,
        records[i * 4 + 2]!,
        records[i * 4 + 3]!,
      ];
      got.datagrams.push({ truncated: (flags & 1) !== 0, multicast: (flags & 2) !== 0, sender });
      const copy = slab.subarray(off, off + len).slice();
      forEachMessage(new DataView(copy.buffer, copy.byteOffset, copy.byteLength), 0, len, (m) =>
        got.messages.push(m),
      );
    }
  });
  return got;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

describe.skipIf(skip)('native netlink socket (root, in a throw-away netns)', () => {
  const native = loadNativeBinding();
  let ns: TestNetns;
  const open = (opts: NativeOpenOptions = {}) =>
    new native.NetlinkSocket(NETLINK_NETFILTER, { netns: ns.name, ...opts });

  beforeAll(() => {
    ns = new TestNetns('pcl-native');
    ns.exec('conntrack', [
      '-I',
      '-p',
      'tcp',
      '-s',
      '192.0.2.1',
      '-d',
      '192.0.2.2',
      '--sport',
      '1',
      '--dport',
      '2',
      '--state',
      'ESTABLISHED',
      '-t',
      '100',
    ]);
  });
  afterAll(() => ns?.delete());

  it('opens inside a named netns, and by path, without moving the process', async () => {
    const before = readlinkSync('/proc/thread-self/ns/net');
    for (const netns of [ns.name, `/run/netns/${ns.name}`]) {
      const sock = new native.NetlinkSocket(NETLINK_NETFILTER, { netns });
      const got = collect(sock);
      sock.send(statsRequest(1));
      await until(() => got.messages.some((m) => m.type === NLMSG_ERROR));
      const stats = got.messages.find((m) => m.type !== NLMSG_ERROR)!;
      // CTA_STATS_GLOBAL_ENTRIES of that namespace: the one entry created there.
      expect(stats.view.getUint32(stats.offset + 16 + 4 + 4, false)).toBe(1);
      sock.close();
    }
    expect(readlinkSync('/proc/thread-self/ns/net')).toBe(before);
    expect(readlinkSync('/proc/self/ns/net')).toBe(before);
  });

  it('reports a missing namespace as ENOENT with the path', () => {
    expect(
      () => new native.NetlinkSocket(NETLINK_NETFILTER, { netns: 'pcl-no-such-netns' }),
    ).toThrow(
      expect.objectContaining({
        code: 'ENOENT',
        errno: 2,
        syscall: 'open netns /run/netns/pcl-no-such-netns',
      }),
    );
    expect(() => new native.NetlinkSocket(NETLINK_NETFILTER, { netns: '..' })).toThrow(TypeError);
  });

  it('forces a receive buffer beyond rmem_max with SO_RCVBUFFORCE', () => {
    const sock = open({ rcvbuf: 8 * 1024 * 1024 });
    expect(sock.receiveBufferSize()).toBeGreaterThanOrEqual(16 * 1024 * 1024); // the kernel doubles it
    sock.close();
  });

  it('binds the requested port id', () => {
    const port = 0x7f000000 + (process.pid & 0xffff);
    const sock = open({ portId: port });
    expect(sock.portId).toBe(port);
    expect(() => open({ portId: port })).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    sock.close();
  });

  it('NETLINK_CAP_ACK and NETLINK_EXT_ACK change what the kernel sends back', async () => {
    const plain = open();
    const tuned = open({ capAck: true, extAck: true });
    const a = collect(plain);
    const b = collect(tuned);
    const request = badRequest(7);
    plain.send(request);
    tuned.send(request);
    await until(() => a.messages.length > 0 && b.messages.length > 0);
    const [ea, eb] = [a.messages[0]!, b.messages[0]!];
    expect(ea.flags & NLM_F_CAPPED).toBe(0);
    expect(ea.flags & NLM_F_ACK_TLVS).toBe(0);
    expect(ea.length).toBe(16 + 4 + request.length); // the whole request echoed
    expect(eb.flags & NLM_F_CAPPED).toBe(NLM_F_CAPPED);
    expect(eb.flags & NLM_F_ACK_TLVS).toBe(NLM_F_ACK_TLVS);
    const status = parseErrorMessage(eb);
    expect(status.errno).toBe(34); // ERANGE
    expect(status.extack.message).toMatch(/policy/);
    expect(status.extack.offset).toBe(20);
    plain.close();
    tuned.close();
  });

  it('sendMany sends one datagram per buffer', async () => {
    const sock = open();
    const got = collect(sock);
    expect(sock.sendMany([statsRequest(11), statsRequest(12), statsRequest(13)])).toBe(3);
    await until(() => got.messages.filter((m) => m.type === NLMSG_ERROR).length === 3);
    expect(new Set(got.messages.map((m) => m.seq))).toEqual(new Set([11, 12, 13]));
    sock.close();
  });

  it('sendQueued sends on the sender thread, in order, and reports completion', async () => {
    const sock = open();
    const got = collect(sock);
    const done: [number, number, number][] = [];
    const onDone = (id: number, sent: number, errno: number) => void done.push([id, sent, errno]);
    const a = sock.sendQueued([statsRequest(31), statsRequest(32)], onDone);
    const b = sock.sendQueued([statsRequest(33)], onDone);
    const c = sock.sendQueued([new Uint8Array(1024 * 1024)], onDone); // too big: EMSGSIZE
    await until(() => done.length === 3);
    expect(done).toEqual([
      [a, 2, 0],
      [b, 1, 0],
      [c, 0, 90], // EMSGSIZE
    ]);
    await until(() => got.messages.filter((m) => m.type === NLMSG_ERROR).length === 3);
    // The kernel saw them in queue order.
    expect(got.messages.filter((m) => m.type === NLMSG_ERROR).map((m) => m.seq)).toEqual([
      31, 32, 33,
    ]);
    sock.close();
    expect(() => sock.sendQueued([statsRequest(1)], onDone)).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    );
  });

  it('send errors carry the errno name', () => {
    const sock = open();
    expect(() => sock.send(new Uint8Array(1024 * 1024))).toThrow(
      expect.objectContaining({ code: 'EMSGSIZE', syscall: 'sendto' }),
    );
    sock.close();
    expect(() => sock.send(statsRequest(1))).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => sock.sendMany([statsRequest(1)])).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    );
  });

  it('joins multicast groups and flags what arrives through them', async () => {
    const sock = open({ groups: [NFNLGRP_CONNTRACK_NEW] });
    const got = collect(sock);
    ns.exec('conntrack', [
      '-I',
      '-p',
      'udp',
      '-s',
      '192.0.2.9',
      '-d',
      '192.0.2.10',
      '--sport',
      '5',
      '--dport',
      '53',
      '-t',
      '50',
    ]);
    await until(() => got.datagrams.length > 0);
    expect(got.datagrams[0]).toEqual({ multicast: true, sender: 0, truncated: false });
    expect(got.messages[0]!.type).toBe(nfnlMsgType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW));
    sock.dropMembership(NFNLGRP_CONNTRACK_NEW);
    sock.close();
  });

  it('pause stops delivery and resume delivers what waited', async () => {
    const sock = open({ groups: [NFNLGRP_CONNTRACK_NEW] });
    const got = collect(sock);
    sock.pause();
    const writer = open();
    writer.sendMany([ctNewUdp(1), ctNewUdp(2), ctNewUdp(3)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(got.messages).toHaveLength(0);
    sock.resume();
    await until(() => got.messages.length === 3);
    sock.close();
    writer.close();
    ns.exec('conntrack', ['-F']);
  });

  it('reports ENOBUFS as an event (not an exception) and keeps reading; NETLINK_NO_ENOBUFS silences it', async () => {
    for (const noEnobufs of [false, true]) {
      const listener = open({ groups: [NFNLGRP_CONNTRACK_NEW], rcvbuf: 4096, noEnobufs });
      const got = collect(listener);
      const writer = open({ sndbuf: 4 * 1024 * 1024 });
      const base = noEnobufs ? 2000 : 0;
      const batch: Uint8Array[] = [];
      for (let i = 0; i < 1500; i++) batch.push(ctNewUdp(base + i));
      writer.sendMany(batch);
      await new Promise((r) => setTimeout(r, 200));
      if (noEnobufs) expect(got.errnos).toEqual([]);
      else expect(got.errnos).toContain(native.constants.ENOBUFS);
      expect(got.messages.length).toBeGreaterThan(0);
      expect(got.messages.length).toBeLessThan(1500);
      expect(listener.closed).toBe(false);
      listener.close();
      writer.close();
    }
    ns.exec('conntrack', ['-F']);
  });

  it('close is idempotent and safe inside the read callback', async () => {
    const sock = open({ groups: [NFNLGRP_CONNTRACK_NEW] });
    let calls = 0;
    const slab = Buffer.alloc(32768 * 4);
    sock.startReading(slab, 32768, new Uint32Array(16), () => {
      calls++;
      sock.close();
      sock.close();
    });
    const writer = open();
    writer.sendMany([ctNewUdp(10), ctNewUdp(11), ctNewUdp(12)]);
    await until(() => calls > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(1);
    expect(sock.closed).toBe(true);
    expect(sock.fd).toBe(-1);
    writer.close();
    ns.exec('conntrack', ['-F']);
  });

  it('threaded reader: delivers batches, pauses, resumes, and closes inside its callback', async () => {
    const sock = open({ groups: [NFNLGRP_CONNTRACK_NEW] });
    const slotSize = 8192;
    const perBatch = 2;
    const slab = Buffer.alloc(slotSize * perBatch * 3);
    const records = new Uint32Array(perBatch * 3 * 4);
    const seen: number[] = [];
    let closeAt = -1;
    sock.startThreadedReading(slab, slotSize, perBatch, records, (batch, count, errno) => {
      expect(errno).toBe(0);
      expect(batch).toBeLessThan(3);
      for (let i = 0; i < count; i++) {
        const r = (batch * perBatch + i) * 4;
        expect(records[r + 2]! & 2).toBe(2); // multicast
        forEachMessage(
          new DataView(slab.buffer, slab.byteOffset),
          records[r]!,
          records[r]! + records[r + 1]!,
          (m) => seen.push(m.type),
        );
      }
      if (closeAt > 0 && seen.length >= closeAt) sock.close();
    });
    const writer = open();
    writer.sendMany([ctNewUdp(21), ctNewUdp(22), ctNewUdp(23), ctNewUdp(24), ctNewUdp(25)]);
    await until(() => seen.length === 5).catch((e) => {
      throw new Error(`seen ${seen.length}: ${String(e)}`);
    });
    sock.pause();
    await new Promise((r) => setTimeout(r, 20));
    writer.sendMany([ctNewUdp(26), ctNewUdp(27)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.length).toBe(5);
    closeAt = 6;
    sock.resume();
    await until(() => sock.closed);
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.length).toBeGreaterThanOrEqual(6);
    expect(sock.fd).toBe(-1);
    writer.close();
    ns.exec('conntrack', ['-F']);
  });

  it('leaks no file descriptors across 10,000 open/close cycles', () => {
    const before = fdCount();
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 10_000; i++) {
      const sock = new native.NetlinkSocket(
        NETLINK_NETFILTER,
        i % 100 === 0 ? { netns: ns.name } : { capAck: true },
      );
      if (i % 10 === 0) sock.startReading(Buffer.alloc(4096), 4096, new Uint32Array(4), () => {});
      else if (i % 10 === 7) sock.sendQueued([statsRequest(i)], () => {});
      else if (i % 10 === 5)
        sock.startThreadedReading(Buffer.alloc(8192), 4096, 1, new Uint32Array(8), () => {});
      sock.close();
    }
    expect(fdCount()).toBe(before);
    // Loose bound: a leak of the slab or the poll handle per cycle would be far above this.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
  });
});

describe.skipIf(skip)('peerCredentials (root)', () => {
  const native = loadNativeBinding();

  it('returns pid, uid, gid and groups of the connected peer', async () => {
    const path = join(tmpdir(), `pcl-peercred-${process.pid}.sock`);
    const server = createServer();
    const accepted = new Promise<Socket>((resolve) => server.on('connection', resolve));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const client = connect(path);
    const conn = await accepted;
    const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
    expect(native.peerCredentials(fd)).toEqual({
      pid: process.pid,
      uid: process.getuid!(),
      gid: process.getgid!(),
      // The kernel's supplementary list (process.getgroups() adds the egid).
      groups: (/^Groups:(.*)$/mu.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '')
        .trim()
        .split(/\s+/u)
        .filter(Boolean)
        .map(Number),
    });
    client.destroy();
    conn.destroy();
    await new Promise((r) => server.close(r));
  });

  it('returns the groups another process held when it connected, however many', async () => {
    const path = join(tmpdir(), `pcl-peergroups-${process.pid}.sock`);
    const server = createServer();
    const accepted = new Promise<Socket>((resolve) => server.on('connection', resolve));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    chmodSync(path, 0o777);
    // More groups than the first buffer holds (32): the ERANGE retry.
    const groups = Array.from({ length: 40 }, (_, i) => 20_000 + i);
    const child = spawn('setpriv', [
      '--reuid=65534',
      '--regid=65533',
      `--groups=${groups.join(',')}`,
      process.execPath,
      '-e',
      `const s = require('net').connect(${JSON.stringify(path)}); s.on('data', () => process.exit(0));`,
    ]);
    const conn = await accepted;
    const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
    const peer = native.peerCredentials(fd);
    expect(peer).toMatchObject({ pid: child.pid, uid: 65534, gid: 65533 });
    expect([...peer.groups].sort((a, b) => a - b)).toEqual(groups);
    conn.end('bye');
    await new Promise((r) => child.once('exit', r));
    await new Promise((r) => server.close(r));
  });

  it('fails with ENOTSOCK on a file', () => {
    const fd = openSync('/proc/self/stat', 'r');
    try {
      expect(() => native.peerCredentials(fd)).toThrow(
        expect.objectContaining({ code: 'ENOTSOCK' }),
      );
    } finally {
      closeSync(fd);
    }
    expect(() => native.peerCredentials(Number.NaN as number)).toThrow();
  });
});
