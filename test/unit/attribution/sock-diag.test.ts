import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Attributor } from '../../../helper/attribution/attributor.js';
import * as C from '../../../helper/attribution/constants.js';
import { SockDiag } from '../../../helper/attribution/sock-diag.js';
import type { SocketInfo, SocketTuple } from '../../../helper/attribution/types.js';
import { NLM_F_DUMP, NLM_F_MULTI } from '../../../helper/netlink/constants.js';
import { NetlinkError } from '../../../helper/netlink/errors.js';
import type { NetlinkMessage } from '../../../helper/netlink/message.js';
import { diagReply, type DiagReplySpec } from '../../support/diag-reply.js';
import {
  FakeKernel,
  ackMessage,
  datagram,
  doneMessage,
  errorMessage,
  type ReplyLike,
} from '../../support/fake-kernel.js';
import { FakeProc } from '../../support/fake-proc.js';

const ENOENT = 2;
const EOPNOTSUPP = 95;

/** The request's inet_diag_req_v2, decoded for assertions. */
function reqOf(m: NetlinkMessage) {
  const at = m.offset + 16;
  const v = m.view;
  const addr = (o: number, n: number) =>
    Array.from({ length: n }, (_, i) => v.getUint8(at + o + i)).join('.');
  const family = v.getUint8(at);
  return {
    type: m.type,
    dump: (m.flags & NLM_F_DUMP) === NLM_F_DUMP,
    family,
    protocol: v.getUint8(at + 1),
    states: v.getUint32(at + 4, true),
    sport: v.getUint16(at + 8, false),
    dport: v.getUint16(at + 10, false),
    src: addr(12, family === 2 ? 4 : 16),
    dst: addr(28, family === 2 ? 4 : 16),
    cookie: [v.getUint32(at + 48, true), v.getUint32(at + 52, true)],
  };
}

/** A fake sock_diag: exact lookups answer from `sockets` (matching the
 * kernel's src/dst conventions), dumps list them by family and local port. */
function sockDiagKernel(
  sockets: (DiagReplySpec & { proto: number })[],
  opts: { exact?: boolean; destroyErrno?: number } = {},
) {
  return new FakeKernel((m) => {
    const r = reqOf(m);
    const fam = r.family === 2 ? 'ipv4' : 'ipv6';
    const mine = sockets.filter((s) => s.proto === r.protocol);
    if (r.dump) {
      const out: ReplyLike[] = mine
        .filter((s) => (s.family ?? 'ipv4') === fam && (!r.sport || s.sport === r.sport))
        .map((s) => datagram(diagReply(s, undefined, m.seq, NLM_F_MULTI)));
      return [...out, datagram(doneMessage(m))];
    }
    if (r.type === C.SOCK_DESTROY) {
      if (opts.destroyErrno) return [datagram(errorMessage(m, opts.destroyErrno))];
      const hit = mine.find((s) => s.sport === r.sport);
      return [datagram(hit ? ackMessage(m) : errorMessage(m, ENOENT))];
    }
    // UDP lookups carry the local end in dst/dport.
    const localPort = r.protocol === C.IPPROTO_UDP ? r.dport : r.sport;
    const hit = opts.exact === false ? undefined : mine.find((s) => s.sport === localPort);
    if (!hit) return [datagram(errorMessage(m, ENOENT))];
    return [datagram(diagReply(hit, undefined, m.seq), ackMessage(m))];
  });
}

const tcp: SocketTuple = {
  family: 'ipv4',
  protocol: 'tcp',
  src: '10.0.0.1',
  sport: 40000,
  dst: '10.0.0.2',
  dport: 443,
};

describe('SockDiag over a fake kernel', () => {
  it('lookup sends one exact request and decodes the reply; ENOENT is null', async () => {
    const kernel = sockDiagKernel([
      {
        proto: 6,
        src: '10.0.0.1',
        sport: 40000,
        dst: '10.0.0.2',
        dport: 443,
        inode: 77,
        uid: 1000,
        cookie: 5n,
      },
    ]);
    const diag = SockDiag.open({ transport: kernel });
    // Over a custom transport there is no socket for the synchronous path.
    expect(diag.lookupSync(tcp)).toBeUndefined();
    const s = await diag.lookup(tcp);
    expect(s).toMatchObject({
      protocol: 'tcp',
      inode: 77,
      uid: 1000,
      cookie: 5n,
      state: 'ESTABLISHED',
    });
    const sent = reqOf(kernel.lastRequest());
    expect(sent).toMatchObject({
      type: C.SOCK_DIAG_BY_FAMILY,
      dump: false,
      family: 2,
      protocol: 6,
      states: 0xffffffff,
      src: '10.0.0.1',
      sport: 40000,
      dst: '10.0.0.2',
      dport: 443,
      cookie: [0xffffffff, 0xffffffff],
    });
    await expect(diag.lookup({ ...tcp, sport: 1 })).resolves.toBeNull();
    diag.close();
  });

  it('find() falls back to dumps of both families by local port and keeps the best match', async () => {
    const kernel = sockDiagKernel(
      [
        {
          proto: 17,
          family: 'ipv4',
          src: '0.0.0.0',
          sport: 5353,
          dst: '0.0.0.0',
          dport: 0,
          inode: 1,
        },
        {
          proto: 17,
          family: 'ipv4',
          src: '10.0.0.9',
          sport: 5353,
          dst: '0.0.0.0',
          dport: 0,
          inode: 2,
        },
        {
          proto: 17,
          family: 'ipv6',
          src: '::ffff:10.0.0.1',
          sport: 5353,
          dst: '::',
          dport: 0,
          inode: 3,
        },
        {
          proto: 17,
          family: 'ipv4',
          src: '0.0.0.0',
          sport: 9999,
          dst: '0.0.0.0',
          dport: 0,
          inode: 4,
        },
      ],
      { exact: false },
    );
    const diag = SockDiag.open({ transport: kernel });
    const found = await diag.find({ ...tcp, protocol: 'udp', sport: 5353, dport: 53 });
    expect(found?.inode).toBe(3); // the bound (mapped) address beats the wildcard
    const sent = kernel.sentMessages.map(reqOf);
    expect(sent.map((r) => [r.dump, r.family, r.sport])).toEqual([
      [false, 2, 53], // UDP: local end in dst
      [true, 2, 5353],
      [true, 10, 5353],
    ]);
    await expect(diag.find({ ...tcp, protocol: 'udp', sport: 1 })).resolves.toBeNull();
    diag.close();
  });

  it('find() does not dump for a TCP miss unless asked to', async () => {
    const kernel = sockDiagKernel([{ proto: 6, sport: 40000, inode: 5 }], { exact: false });
    const diag = SockDiag.open({ transport: kernel });
    await expect(diag.find(tcp)).resolves.toBeNull();
    expect(kernel.sentMessages.map((m) => reqOf(m).dump)).toEqual([false]);
    expect((await diag.find(tcp, { dumpFallback: true }))?.inode).toBe(5);
    expect(kernel.sentMessages.map((m) => reqOf(m).dump)).toEqual([false, false, true, true]);
    diag.close();
  });

  it('list() applies state masks, ports and a predicate; listAll() collects', async () => {
    const kernel = sockDiagKernel([
      { proto: 6, sport: 80, inode: 1, stateNo: 10 },
      { proto: 6, sport: 81, inode: 2 },
    ]);
    const diag = SockDiag.open({ transport: kernel });
    const all = await diag.listAll({
      protocol: 'tcp',
      family: 'ipv4',
      states: ['LISTEN', 'ESTABLISHED'],
    });
    expect(all.map((s: SocketInfo) => s.inode)).toEqual([1, 2]);
    expect(reqOf(kernel.lastRequest()).states).toBe((1 << 10) | (1 << 1));
    const where = await diag.listAll({
      protocol: 'tcp',
      family: 'ipv4',
      where: (s) => s.state === 'LISTEN',
    });
    expect(where.map((s) => s.inode)).toEqual([1]);
    const both = await diag.listAll({ protocol: 'tcp', localPort: 81 });
    expect(both.map((s) => s.inode)).toEqual([2]);
    expect(kernel.sentMessages.slice(-2).map((m) => reqOf(m).family)).toEqual([2, 10]);
    diag.close();
  });

  it('destroy: true, false for no such socket, a typed NetlinkError when the kernel refuses', async () => {
    const sockets = [{ proto: 6, sport: 40000, inode: 1 }];
    const diag = SockDiag.open({ transport: sockDiagKernel(sockets) });
    await expect(diag.destroy({ ...tcp, cookie: 9n })).resolves.toBe(true);
    await expect(diag.destroy({ ...tcp, sport: 1 })).resolves.toBe(false);
    diag.close();

    const kernel = sockDiagKernel(sockets, { destroyErrno: EOPNOTSUPP });
    const old = SockDiag.open({ transport: kernel });
    const error = await old.destroy(tcp).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetlinkError);
    expect(error).toMatchObject({
      errno: EOPNOTSUPP,
      code: 'EOPNOTSUPP',
      operation: 'sock_diag destroy',
    });
    const sent = reqOf(kernel.lastRequest());
    expect(sent).toMatchObject({ type: C.SOCK_DESTROY, src: '10.0.0.1', sport: 40000 });
    // UDP destroy takes the local end in src (unlike the UDP lookup).
    await old.destroy({ ...tcp, protocol: 'udp' }).catch(() => undefined);
    expect(reqOf(kernel.lastRequest())).toMatchObject({ protocol: 17, sport: 40000, dport: 443 });
    old.close();
  });
});

describe('Attributor over a fake kernel and a fixture /proc', () => {
  let fake: FakeProc;
  beforeEach(() => {
    fake = new FakeProc();
  });
  afterEach(() => fake.cleanup());

  const open = (kernel: FakeKernel, ttl = 60_000) =>
    Attributor.open({
      sockDiag: SockDiag.open({ transport: kernel }),
      procRoot: fake.root,
      passwdPath: fake.passwd,
      tupleTtlMs: ttl,
      // These tests reuse pids at once: check liveness on every reuse.
      livenessTtlMs: 0,
      owners: { minScanIntervalMs: 0 },
    });

  it('attributes a tuple to its process, caches the answer, and drops it when the pid is reused', async () => {
    fake.add({
      pid: 321,
      comm: 'curl',
      uid: 1000,
      gid: 1000,
      startTime: 50,
      cmdline: ['curl', 'x'],
      exe: '/usr/bin/curl',
      fds: { 3: 'socket:[77]' },
    });
    const kernel = sockDiagKernel([
      {
        proto: 6,
        src: '10.0.0.1',
        sport: 40000,
        dst: '10.0.0.2',
        dport: 443,
        inode: 77,
        uid: 1000,
      },
    ]);
    const attributor = open(kernel);
    const a = await attributor.attribute(tcp);
    expect(a?.socket.inode).toBe(77);
    expect(a?.process).toMatchObject({
      pid: 321,
      comm: 'curl',
      user: 'alice',
      cmdline: ['curl', 'x'],
    });
    const requests = kernel.sentMessages.length;
    // Concurrent and repeated calls for the same tuple: no new request.
    const [b, c] = await Promise.all([attributor.attribute(tcp), attributor.attribute(tcp)]);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(kernel.sentMessages.length).toBe(requests);
    expect(attributor.stats.tupleHits).toBe(2);

    // The same addresses through a dual-stack IPv6 socket are another lookup.
    await attributor.attribute({ ...tcp, family: 'ipv6' });
    expect(reqOf(kernel.lastRequest()).family).toBe(10);
    const afterSix = kernel.sentMessages.length;

    // pid 321 now names another process (same socket inode for the test's sake).
    fake.add({ pid: 321, comm: 'other', startTime: 51, fds: { 3: 'socket:[77]' } });
    const d = await attributor.attribute(tcp);
    expect(d?.process).toMatchObject({ pid: 321, comm: 'other', startTime: 51 });
    expect(kernel.sentMessages.length).toBe(afterSix + 1);
    expect(requests).toBeLessThan(afterSix);
    attributor.close();
  });

  it('inbound tuples are swapped; sockets without an owner give process null; no socket gives null', async () => {
    fake.add({ pid: 5, fds: { 3: 'socket:[10]' } });
    const kernel = sockDiagKernel([
      { proto: 6, sport: 443, inode: 10, stateNo: 10 },
      { proto: 6, sport: 444, inode: 0, stateNo: 6 },
      { proto: 6, sport: 445, inode: 99 },
    ]);
    const attributor = open(kernel, 0);
    const inbound = await attributor.attribute({
      ...tcp,
      src: '10.0.0.2',
      sport: 5555,
      dst: '10.0.0.1',
      dport: 443,
      inbound: true,
    });
    expect(inbound?.process?.pid).toBe(5);
    expect(reqOf(kernel.lastRequest())).toMatchObject({
      src: '10.0.0.1',
      sport: 443,
      dst: '10.0.0.2',
      dport: 5555,
    });
    expect((await attributor.attribute({ ...tcp, sport: 444 }))?.process).toBeNull();
    expect((await attributor.attribute({ ...tcp, sport: 445 }))?.process).toBeNull();
    await expect(attributor.attribute({ ...tcp, sport: 446 })).resolves.toBeNull();
    expect(attributor.stats).toMatchObject({ noSocket: 1, noOwner: 2 });
    attributor.close();
  });

  it('an exited owner is forgotten: process() null, the tuple re-resolved', async () => {
    fake.add({ pid: 8, startTime: 3, fds: { 3: 'socket:[12]' } });
    const kernel = sockDiagKernel([{ proto: 6, sport: 40000, inode: 12 }]);
    const attributor = open(kernel);
    expect((await attributor.attribute(tcp))?.process?.pid).toBe(8);
    fake.remove(8);
    expect(attributor.process(8)).toBeNull();
    expect(attributor.owners.peek(12)).toBeNull();
    expect((await attributor.attribute(tcp))?.process).toBeNull();
    attributor.close();
  });
});
