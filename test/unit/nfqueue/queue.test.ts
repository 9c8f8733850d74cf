import { afterEach, describe, expect, it, vi } from 'vitest';
import { HOST_LITTLE_ENDIAN } from '../../../helper/netlink/endian.js';
import { NLM_F_ACK, NLMSG_ERROR } from '../../../helper/netlink/constants.js';
import {
  nfAttributes,
  parseMessages,
  type NetlinkMessage,
} from '../../../helper/netlink/message.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import * as Q from '../../../helper/nfqueue/constants.js';
import { NFQNL_PACKET_TYPE } from '../../../helper/nfqueue/decode.js';
import {
  NFQNL_CONFIG_TYPE,
  NFQNL_VERDICT_BATCH_TYPE,
  NFQNL_VERDICT_TYPE,
} from '../../../helper/nfqueue/encode.js';
import { NfQueueError } from '../../../helper/nfqueue/errors.js';
import { NfQueue, type NfQueueOptions, type NfQueuePacket } from '../../../helper/nfqueue/queue.js';
import {
  ackMessage,
  datagram,
  errorMessage,
  FakeKernel,
  lost,
  readError,
} from '../../support/fake-kernel.js';

const EOPNOTSUPP = 95;
const ENOENT = 2;

interface Config {
  cmd?: number;
  params?: { range: number; mode: number };
  maxlen?: number;
  mask?: number;
  flags?: number;
}

function readConfig(msg: NetlinkMessage): Config {
  const c: Config = {};
  const ad = nfAttributes(msg);
  while (ad.next()) {
    if (ad.type === Q.NFQA_CFG_CMD) c.cmd = ad.view.getUint8(ad.valueOffset);
    else if (ad.type === Q.NFQA_CFG_PARAMS)
      c.params = {
        range: ad.view.getUint32(ad.valueOffset, false),
        mode: ad.view.getUint8(ad.valueOffset + 4),
      };
    else if (ad.type === Q.NFQA_CFG_QUEUE_MAXLEN) c.maxlen = ad.u32be();
    else if (ad.type === Q.NFQA_CFG_MASK) c.mask = ad.u32be();
    else if (ad.type === Q.NFQA_CFG_FLAGS) c.flags = ad.u32be();
  }
  return c;
}

/** A kernel that acknowledges config (refusing CONNTRACK like a kernel
 * without the glue) and stays silent on verdicts, as the real one does. */
function fakeKernel(options: { refuseConntrack?: boolean; datagramsPerWakeup?: number } = {}) {
  const configs: Config[] = [];
  const kernel = new FakeKernel({
    datagramsPerWakeup: options.datagramsPerWakeup ?? 1,
    slotSize: 80 * 1024,
    handler: (req) => {
      if (req.type !== NFQNL_CONFIG_TYPE) return [];
      const c = readConfig(req);
      configs.push(c);
      if (options.refuseConntrack && (c.flags ?? 0) & (c.mask ?? 0) & Q.NFQA_CFG_F_CONNTRACK) {
        return [errorMessage(req, EOPNOTSUPP, { capped: false })];
      }
      return [ackMessage(req)];
    },
  });
  return { kernel, configs };
}

function packetHdr(id: number): Uint8Array {
  const b = new Uint8Array(7);
  new DataView(b.buffer).setUint32(0, id, false);
  new DataView(b.buffer).setUint16(4, 0x0800, false);
  b[6] = Q.NF_INET_LOCAL_OUT;
  return b;
}

function packet(id: number, payload = Uint8Array.from([0x45, 0, 0, 20]), queue = 3): Uint8Array {
  const w = new NetlinkWriter();
  w.beginMessage(NFQNL_PACKET_TYPE, 0, 0, 0).nfgenmsg(2, 0, queue);
  w.bytes(Q.NFQA_PACKET_HDR, packetHdr(id));
  w.u32be(Q.NFQA_MARK, 0x11);
  w.bytes(Q.NFQA_PAYLOAD, payload);
  return w.endMessage().finish();
}

/** Verdict messages sent (after the config requests). */
function verdicts(
  kernel: FakeKernel,
): { batch: boolean; verdict: number; id: number; flags: number; seq: number; attrs: number[] }[] {
  return kernel.sentMessages
    .filter((m) => m.type === NFQNL_VERDICT_TYPE || m.type === NFQNL_VERDICT_BATCH_TYPE)
    .map((m) => {
      const ad = nfAttributes(m);
      let verdict = -1;
      let id = -1;
      const attrs: number[] = [];
      while (ad.next()) {
        attrs.push(ad.type);
        if (ad.type === Q.NFQA_VERDICT_HDR) {
          verdict = ad.view.getUint32(ad.valueOffset, false);
          id = ad.view.getUint32(ad.valueOffset + 4, false);
        }
      }
      return {
        batch: m.type === NFQNL_VERDICT_BATCH_TYPE,
        verdict,
        id,
        flags: m.flags,
        seq: m.seq,
        attrs,
      };
    });
}

async function open(kernel: FakeKernel, options: Partial<NfQueueOptions> = {}): Promise<NfQueue> {
  return NfQueue.open({ queue: 3, transport: kernel, ...options });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('NfQueue over a fake kernel', () => {
  it('binds, configures and reports flags the kernel refuses, then falls back', async () => {
    const { kernel, configs } = fakeKernel({ refuseConntrack: true });
    const q = await open(kernel, {
      copyRange: 128,
      maxQueueLength: 64,
      flags: { failOpen: true, conntrack: true, uidGid: true, gso: false },
    });
    // Bind, params and queue length travel in one message: no window with defaults.
    expect(configs[0]).toEqual({
      cmd: Q.NFQNL_CFG_CMD_BIND,
      params: { range: 128, mode: Q.NFQNL_COPY_PACKET },
      maxlen: 64,
    });
    // All at once (refused), then the clears, then one flag at a time.
    expect(configs.slice(1).map((c) => [c.flags, c.mask])).toEqual([
      [0b1011, 0b1111],
      [0, 0b0100],
      [Q.NFQA_CFG_F_FAIL_OPEN, Q.NFQA_CFG_F_FAIL_OPEN],
      [Q.NFQA_CFG_F_CONNTRACK, Q.NFQA_CFG_F_CONNTRACK],
      [Q.NFQA_CFG_F_UID_GID, Q.NFQA_CFG_F_UID_GID],
    ]);
    expect(q.flagReport).toEqual({
      requested: ['failOpen', 'conntrack', 'uidGid'],
      applied: ['failOpen', 'uidGid'],
      cleared: ['gso'],
      refused: [{ flag: 'conntrack', errno: EOPNOTSUPP, code: 'EOPNOTSUPP', message: undefined }],
    });
    expect(q.conntrackGlue).toBe(false);
    for (const m of kernel.sentMessages) expect(m.flags & NLM_F_ACK).toBe(NLM_F_ACK);
    await q.close();
  });

  it('strictFlags turns a refused flag into an error and closes the socket', async () => {
    const { kernel } = fakeKernel({ refuseConntrack: true });
    await expect(
      open(kernel, { flags: { conntrack: true }, strictFlags: true }),
    ).rejects.toMatchObject({
      name: 'NfQueueError',
      code: 'CONFIG_FAILED',
      details: { errnoName: 'EOPNOTSUPP' },
    });
    expect(kernel.closed).toBe(true);
  });

  it('probes the conntrack glue by setting and clearing the flag', async () => {
    const withGlue = fakeKernel();
    const q1 = await open(withGlue.kernel);
    expect(q1.conntrackGlue).toBe(true);
    expect(withGlue.configs.slice(1).map((c) => [c.flags, c.mask])).toEqual([
      [Q.NFQA_CFG_F_CONNTRACK, Q.NFQA_CFG_F_CONNTRACK],
      [0, Q.NFQA_CFG_F_CONNTRACK],
    ]);
    await q1.close();
    const noGlue = fakeKernel({ refuseConntrack: true });
    const q2 = await open(noGlue.kernel);
    expect(q2.conntrackGlue).toBe(false);
    await q2.close();
  });

  it('reports EPERM at bind as a queue owned by someone else', async () => {
    const kernel = new FakeKernel((req) => [errorMessage(req, 1, { capped: true })]);
    await expect(open(kernel)).rejects.toMatchObject({
      code: 'CONFIG_FAILED',
      details: { errnoName: 'EPERM' },
    });
  });

  it('delivers packets and sends verdicts without NLM_F_ACK, coalesced per wakeup', async () => {
    const { kernel } = fakeKernel({ datagramsPerWakeup: 8 });
    const q = await open(kernel, { probeConntrackGlue: false });
    const seen: number[] = [];
    q.onPacket((p) => {
      seen.push(p.id);
      expect(p.mark).toBe(0x11);
      expect(Array.from(p.payload!)).toEqual([0x45, 0, 0, 20]);
      if (p.id === 3) p.drop();
      else p.accept();
    });
    const before = kernel.sentDatagrams.length;
    kernel.reply(
      datagram(packet(1)),
      datagram(packet(2)),
      datagram(packet(3)),
      datagram(packet(4)),
    );
    await kernel.idle();
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(kernel.sentDatagrams.length - before).toBe(1); // one datagram, one syscall
    expect(verdicts(kernel).map((v) => [v.batch, v.verdict, v.id])).toEqual([
      [true, Q.NF_ACCEPT, 2],
      [false, Q.NF_DROP, 3],
      [false, Q.NF_ACCEPT, 4],
    ]);
    for (const v of verdicts(kernel)) {
      expect(v.flags & NLM_F_ACK).toBe(0);
      expect(v.seq).toBe(0);
    }
    expect(q.counters).toMatchObject({
      received: 4,
      accepted: 3,
      dropped: 1,
      verdictMessages: 3,
      batchMessages: 1,
    });
    await q.close();
  });

  it('sends marks, payloads and queue-to-N as single verdicts', async () => {
    const { kernel } = fakeKernel();
    const q = await open(kernel, { probeConntrackGlue: false, batchVerdicts: true });
    q.onPacket((p) => {
      if (p.id === 1) p.accept({ mark: 7, payload: Uint8Array.from([1, 2, 3]) });
      else if (p.id === 2) p.queue(9, { bypass: true });
      else p.repeat({ mark: 1 });
    });
    kernel.reply(datagram(packet(1)), datagram(packet(2)), datagram(packet(3)));
    await kernel.idle();
    expect(verdicts(kernel).map((v) => [v.batch, v.verdict, v.id, v.attrs])).toEqual([
      [false, Q.NF_ACCEPT, 1, [Q.NFQA_VERDICT_HDR, Q.NFQA_MARK, Q.NFQA_PAYLOAD]],
      [false, 0x00098003, 2, [Q.NFQA_VERDICT_HDR]],
      [false, Q.NF_REPEAT, 3, [Q.NFQA_VERDICT_HDR, Q.NFQA_MARK]],
    ]);
    expect(q.counters).toMatchObject({ accepted: 1, queued: 1, repeated: 1 });
    await q.close();
  });

  it('unknown ids, second verdicts and unsupported connmark are typed errors, never crashes', async () => {
    const { kernel } = fakeKernel({ refuseConntrack: true });
    const q = await open(kernel);
    let kept: NfQueuePacket | undefined;
    q.onPacket((p) => (kept = p));
    kernel.reply(datagram(packet(10)));
    await kernel.idle();
    expect(() => q.setVerdict(11, 'accept')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_PACKET' }),
    );
    expect(() => kept!.accept({ connmark: 1 })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED' }),
    );
    expect(() => kept!.accept({ mark: -5 })).toThrow(RangeError);
    expect(kept!.decided).toBe(false); // nothing was recorded by the failed calls
    kept!.drop();
    expect(() => kept!.accept()).toThrow(expect.objectContaining({ code: 'ALREADY_DECIDED' }));
    await kernel.idle();
    expect(() => kept!.accept()).toThrow(NfQueueError);
    expect(() => q.setVerdict(10, 'accept')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_PACKET' }),
    );
    await q.close();
    expect(() => q.setVerdict(10, 'accept')).toThrow(expect.objectContaining({ code: 'CLOSED' }));
  });

  it('the payload view ends with the callback; copy() keeps it', async () => {
    const { kernel } = fakeKernel();
    const q = await open(kernel, { probeConntrackGlue: false });
    let kept: NfQueuePacket | undefined;
    let copy: NfQueuePacket | undefined;
    q.onPacket((p) => {
      kept = p;
      copy = p.copy();
    });
    kernel.reply(datagram(packet(1, Uint8Array.from([0x45, 9, 9, 9]))));
    await kernel.idle();
    expect(() => kept!.payload).toThrow(expect.objectContaining({ code: 'STALE_VIEW' }));
    expect(Array.from(copy!.payload!)).toEqual([0x45, 9, 9, 9]); // the slab was poisoned since
    expect(kept!.mark).toBe(0x11); // metadata stays readable
    copy!.accept(); // either object decides the same packet
    expect(kept!.decided).toBe(true);
    await q.close();
  });

  it('the deadline gives the default verdict to unanswered packets', async () => {
    vi.useFakeTimers();
    const { kernel } = fakeKernel({ datagramsPerWakeup: 4 });
    const q = await open(kernel, {
      probeConntrackGlue: false,
      deadlineMs: 200,
      defaultVerdict: 'drop',
    });
    let kept: NfQueuePacket | undefined;
    q.onPacket((p) => {
      if (p.id === 2) p.accept();
      else kept = p;
    });
    kernel.reply(datagram(packet(1)), datagram(packet(2)), datagram(packet(3)));
    await kernel.idle();
    expect(verdicts(kernel).map((v) => [v.verdict, v.id])).toEqual([[Q.NF_ACCEPT, 2]]);
    await vi.advanceTimersByTimeAsync(199);
    expect(verdicts(kernel)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    // 2 is out of the kernel's queue already, so one batch up to 3 drops exactly 1 and 3.
    expect(verdicts(kernel).map((v) => [v.batch, v.verdict, v.id])).toEqual([
      [false, Q.NF_ACCEPT, 2],
      [true, Q.NF_DROP, 3],
    ]);
    expect(q.counters.deadline).toBe(2);
    expect(kept!.decidedByDefault).toBe(true);
    expect(() => kept!.accept()).toThrow(expect.objectContaining({ code: 'ALREADY_DECIDED' }));
    expect(q.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0); // nothing left armed
    await q.close();
  });

  it('kernel errors for verdicts surface through onError with the packet id', async () => {
    const { kernel } = fakeKernel();
    const q = await open(kernel, { probeConntrackGlue: false });
    const errors: NfQueueError[] = [];
    q.onError((e) => errors.push(e));
    q.onPacket((p) => p.accept());
    kernel.reply(datagram(packet(77)));
    await kernel.idle();
    const sent = kernel.sentMessages.find((m) => m.type === NFQNL_VERDICT_TYPE)!;
    kernel.reply(errorMessage(sent, ENOENT, { capped: false, extack: { message: 'no such id' } }));
    await kernel.idle();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'VERDICT_REFUSED', details: { errnoName: 'ENOENT' } });
    expect(errors[0]!.details.ids).toEqual([77]);
    expect(errors[0]!.message).toMatch(/verdict for packet 77: ENOENT: no such id/);
    expect(q.counters.kernelErrors).toBe(1);
    await q.close();
  });

  it('counts ENOBUFS, and answers an undecodable packet with the default verdict', async () => {
    const { kernel } = fakeKernel();
    const q = await open(kernel, { probeConntrackGlue: false, defaultVerdict: 'drop' });
    const errors: string[] = [];
    q.onError((e) => errors.push(e.code));
    q.onPacket(() => {
      throw new Error('listener bug');
    });
    const w = new NetlinkWriter();
    w.beginMessage(NFQNL_PACKET_TYPE, 0).nfgenmsg(2, 0, 3);
    w.bytes(Q.NFQA_PACKET_HDR, packetHdr(5));
    w.u16be(Q.NFQA_MARK, 1); // wrong size
    kernel.reply(lost(), datagram(w.endMessage().finish()), datagram(packet(6)));
    await kernel.idle();
    expect(errors).toEqual(['LOST', 'DECODE', 'LISTENER']);
    expect(q.counters).toMatchObject({ enobufs: 1, decodeErrors: 1, listenerErrors: 1 });
    expect(verdicts(kernel).map((v) => [v.verdict, v.id])).toEqual([[Q.NF_DROP, 5]]);
    expect(q.waiting).toBe(1); // packet 6 waits for its deadline
    await q.close();
  });

  it('the async iterator yields copies and ends on close; close gives waiting packets the default verdict and unbinds', async () => {
    const { kernel, configs } = fakeKernel();
    const q = await open(kernel, { probeConntrackGlue: false, defaultVerdict: 'accept' });
    const got: number[] = [];
    const consumer = (async () => {
      for await (const p of q) {
        got.push(p.payload![1]!);
        if (p.id === 1) p.drop();
      }
    })();
    kernel.reply(
      datagram(packet(1, Uint8Array.from([0x45, 1]))),
      datagram(packet(2, Uint8Array.from([0x45, 2]))),
    );
    await kernel.idle();
    expect(got).toEqual([1, 2]);
    await q.close();
    await consumer;
    expect(verdicts(kernel).map((v) => [v.verdict, v.id])).toEqual([
      [Q.NF_DROP, 1],
      [Q.NF_ACCEPT, 2],
    ]);
    expect(q.counters.closeVerdicts).toBe(1);
    expect(configs[configs.length - 1]).toEqual({ cmd: Q.NFQNL_CFG_CMD_UNBIND });
    expect(kernel.closed).toBe(true);
    await q.close(); // idempotent
  });

  it('splits verdicts with big payloads over several datagrams', async () => {
    const { kernel } = fakeKernel({ datagramsPerWakeup: 4 });
    const q = await open(kernel, { probeConntrackGlue: false });
    q.onPacket((p) => p.accept({ payload: new Uint8Array(40000).fill(0x45) }));
    const before = kernel.sentDatagrams.length;
    kernel.reply(datagram(packet(1)), datagram(packet(2)), datagram(packet(3)));
    await kernel.idle();
    expect(kernel.sentDatagrams.length - before).toBe(3);
    expect(verdicts(kernel)).toHaveLength(3);
    await q.close();
  });

  it('reports a fatal read error as SOCKET', async () => {
    const { kernel } = fakeKernel();
    const q = await open(kernel, { probeConntrackGlue: false });
    const errors: NfQueueError[] = [];
    q.onError((e) => errors.push(e));
    kernel.reply(readError(Object.assign(new Error('EIO, recvmmsg'), { code: 'EIO' })));
    await kernel.idle();
    expect(errors.map((e) => e.code)).toEqual(['SOCKET']);
    await q.close();
  });

  it('validates options', async () => {
    await expect(NfQueue.open({ queue: 65536, transport: new FakeKernel() })).rejects.toThrow(
      RangeError,
    );
    await expect(
      NfQueue.open({ queue: 1, deadlineMs: 0, transport: new FakeKernel() }),
    ).rejects.toThrow(RangeError);
  });
});

describe('verdict error echo', () => {
  it('keeps host-order lengths (sanity of the fake kernel helpers)', () => {
    const m = parseMessages(errorMessage(1, ENOENT))[0]!;
    expect(m.type).toBe(NLMSG_ERROR);
    expect(m.view.getInt32(16, HOST_LITTLE_ENDIAN)).toBe(-ENOENT);
  });
});
