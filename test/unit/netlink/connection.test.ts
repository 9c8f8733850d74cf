import { afterEach, describe, expect, it, vi } from 'vitest';
import { NetlinkConnection, type ConnectionOptions } from '../../../helper/netlink/connection.js';
import {
  AF_INET,
  NFNL_SUBSYS_CTNETLINK,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_ERROR,
  NLMSG_NOOP,
  nfnlMsgType,
} from '../../../helper/netlink/constants.js';
import { HOST_LITTLE_ENDIAN } from '../../../helper/netlink/endian.js';
import { errnoNumber } from '../../../helper/netlink/errno.js';
import {
  DumpInterruptedError,
  NetlinkAbortError,
  NetlinkError,
  NetlinkTimeoutError,
} from '../../../helper/netlink/errors.js';
import {
  nfAttributes,
  parseMessages,
  type NetlinkMessage,
} from '../../../helper/netlink/message.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import {
  FakeKernel,
  POISON,
  ackMessage,
  dataMessage,
  datagram,
  doneMessage,
  errorMessage,
  fromPort,
  lost,
  multicast,
  readError,
  truncated,
  type FakeKernelOptions,
  type KernelHandler,
  type ReplyLike,
} from '../../support/fake-kernel.js';

const ENOENT = errnoNumber('ENOENT') ?? 2;
const EINVAL = errnoNumber('EINVAL') ?? 22;
const EPERM = errnoNumber('EPERM') ?? 1;
const ENOBUFS = errnoNumber('ENOBUFS') ?? 105;

const CT_NEW = nfnlMsgType(NFNL_SUBSYS_CTNETLINK, 0);
const CT_GET = nfnlMsgType(NFNL_SUBSYS_CTNETLINK, 1);
/** An attribute the tests use to tell messages apart (u32, big endian). */
const ATTR_ID = 12;

// ---------------------------------------------------------------------------
// helpers

/** A request: nlmsghdr + nfgenmsg, optionally with an id attribute. */
function req(options: { flags?: number; id?: number; type?: number } = {}): Uint8Array {
  const w = new NetlinkWriter();
  w.beginMessage(options.type ?? CT_GET, options.flags ?? 0).nfgenmsg(AF_INET);
  if (options.id !== undefined) w.u32be(ATTR_ID, options.id);
  return w.endMessage().finish();
}

/** The id attribute of a message (request or reply); throws on garbage. */
function idOf(msg: NetlinkMessage): number | undefined {
  const ad = nfAttributes(msg);
  while (ad.next()) if (ad.type === ATTR_ID) return ad.u32be();
  return undefined;
}

/** A data message answering `request`, carrying `id`. */
function data(request: NetlinkMessage | number, id: number, flags = 0): Uint8Array {
  return dataMessage({
    type: CT_NEW,
    flags,
    seq: typeof request === 'number' ? request : request.seq,
    payload: (w) => w.nfgenmsg(AF_INET).u32be(ATTR_ID, id),
  });
}

/** Answers every request with a reply echoing its id (+1000), then an ACK. */
const echoHandler: KernelHandler = (request) => [
  datagram(data(request, (idOf(request) ?? 0) + 1000), ackMessage(request)),
];

/** Answers a dump request with `count` messages, `perDatagram` a datagram, then DONE. */
function dumpReplies(
  request: NetlinkMessage,
  count: number,
  perDatagram: number,
  base = 0,
  flagsOf: (i: number) => number = () => 0,
): ReplyLike[] {
  const out: ReplyLike[] = [];
  let group: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    group.push(data(request, base + i, NLM_F_MULTI | flagsOf(i)));
    if (group.length === perDatagram) {
      out.push(datagram(...group));
      group = [];
    }
  }
  if (group.length > 0) out.push(datagram(...group));
  out.push(datagram(doneMessage(request)));
  return out;
}

function isDumpRequest(request: NetlinkMessage): boolean {
  return (request.flags & NLM_F_DUMP) === NLM_F_DUMP;
}

interface Tracked<T> {
  settled: boolean;
  value: T | undefined;
  error: unknown;
}

/** Observes a promise without leaving its rejection unhandled. */
function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { settled: false, value: undefined, error: undefined };
  promise.then(
    (value) => {
      t.settled = true;
      t.value = value;
    },
    (error: unknown) => {
      t.settled = true;
      t.error = error;
    },
  );
  return t;
}

/** The rejection reason of a promise that must reject. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

function setup(
  kernelOptions: FakeKernelOptions = {},
  options: ConnectionOptions = {},
): { kernel: FakeKernel; conn: NetlinkConnection } {
  const kernel = new FakeKernel(kernelOptions);
  const conn = new NetlinkConnection(kernel, options);
  return { kernel, conn };
}

function slabIsPoisoned(kernel: FakeKernel): boolean {
  return new Uint8Array(kernel.slab).every((b) => b === POISON);
}

afterEach(() => {
  vi.useRealTimers();
});

// ---------------------------------------------------------------------------

describe('FakeKernel', () => {
  it('delivers a view into a reused slab and poisons it afterwards', async () => {
    const kernel = new FakeKernel();
    const seen: { offset: number; first: number; sameBuffer: boolean }[] = [];
    let kept: DataView | undefined;
    kernel.read({
      onDatagram: (view, offset) => {
        kept = view;
        seen.push({
          offset,
          first: view.getUint32(offset, HOST_LITTLE_ENDIAN),
          sameBuffer: view.buffer === kernel.slab,
        });
      },
      onLost: () => {},
      onError: () => {},
    });
    kernel.reply(data(7, 1), data(8, 2));
    await kernel.idle();
    expect(seen).toHaveLength(2);
    expect(seen[0]!.first).toBe(28); // nlmsg_len: header + nfgenmsg + u32 attribute
    expect(seen.every((s) => s.sameBuffer)).toBe(true);
    expect(seen[0]!.offset).not.toBe(seen[1]!.offset);
    expect(kept!.getUint32(seen[1]!.offset, HOST_LITTLE_ENDIAN)).toBe(0xeeeeeeee);
    expect(slabIsPoisoned(kernel)).toBe(true);
  });

  it('holds deliveries while paused', async () => {
    const kernel = new FakeKernel();
    let count = 0;
    kernel.read({ onDatagram: () => count++, onLost: () => {}, onError: () => {} });
    kernel.pause();
    kernel.reply(data(1, 1), data(2, 2));
    await kernel.idle();
    expect(count).toBe(0);
    expect(kernel.queued).toBe(2);
    kernel.resume();
    await kernel.idle();
    expect(count).toBe(2);
  });
});

describe('NetlinkConnection: delivery styles', () => {
  it('works with microtask delivery and several datagrams per wakeup', async () => {
    let dumps = 0;
    const { kernel, conn } = setup({
      schedule: 'microtask',
      datagramsPerWakeup: 4,
      handler: (r, k) =>
        isDumpRequest(r) ? dumpReplies(r, 9, 2, 100 * dumps++) : echoHandler(r, k),
    });
    const ids: number[] = [];
    const [one, two, dumped] = await Promise.all([
      conn.request(req({ id: 1 })),
      conn.request(req({ id: 2 })),
      conn.dumpEach(req(), (m) => ids.push(idOf(m)!)),
    ]);
    expect([one, two].map((r) => r.map(idOf))).toEqual([[1001], [1002]]);
    expect(dumped).toEqual({ messages: 9, interrupted: false });
    expect(ids).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const yielded: number[] = [];
    for await (const m of conn.dump(req())) yielded.push(idOf(m)!);
    expect(yielded).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108]);
    expect(slabIsPoisoned(kernel)).toBe(true);
  });
});

describe('NetlinkConnection: requests', () => {
  it('sets NLM_F_REQUEST|NLM_F_ACK, keeps the caller flags and stamps a seq', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    const message = req({ flags: NLM_F_CREATE | NLM_F_EXCL, id: 5, type: CT_NEW });
    const replies = await conn.request(message);
    expect(kernel.sentMessages).toHaveLength(1);
    const sent = kernel.request(0);
    expect(sent.type).toBe(CT_NEW);
    expect(sent.flags).toBe(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    expect(sent.seq).not.toBe(0);
    expect(sent.portId).toBe(0);
    expect(idOf(sent)).toBe(5);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.seq).toBe(sent.seq);
    expect(idOf(replies[0]!)).toBe(1005);
    expect(conn.counters.sent).toBe(1);
    expect(conn.counters.received).toBe(2);
  });

  it('overwrites the seq and port id the caller left in the header', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    const w = new NetlinkWriter();
    const message = w.beginMessage(CT_GET, 0, 0xdead, 77).nfgenmsg(AF_INET).endMessage().finish();
    await conn.request(message);
    expect(kernel.request(0).seq).not.toBe(0xdead);
    expect(kernel.request(0).portId).toBe(0);
  });

  it('wraps the seq past 2^32 - 1, skipping 0 and seqs still pending', async () => {
    const { kernel, conn } = setup();
    const first = track(conn.request(req({ id: 1 })));
    await kernel.waitForSent(1);
    expect(kernel.request(0).seq).toBe(1);
    // Internal state poked to reach the wrap without 2^32 requests.
    (conn as unknown as { seq: number }).seq = 0xfffffffe;
    const more = [2, 3].map((id) => track(conn.request(req({ id }))));
    await kernel.waitForSent(3);
    expect(kernel.sentMessages.map((m) => m.seq)).toEqual([1, 0xffffffff, 2]);
    kernel.reply(...kernel.sentMessages.map((m) => ackMessage(m)));
    await kernel.idle();
    expect([first, ...more].map((t) => t.value)).toEqual([[], [], []]);
  });

  it('gives every request a unique non-zero seq', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    await Promise.all(Array.from({ length: 50 }, (_, i) => conn.request(req({ id: i }))));
    await Promise.all(Array.from({ length: 50 }, (_, i) => conn.request(req({ id: i }))));
    expect(kernel.sentMessages.every((m) => m.flags === (NLM_F_REQUEST | NLM_F_ACK))).toBe(true);
    const seqs = kernel.sentMessages.map((m) => m.seq);
    expect(seqs).toHaveLength(100);
    expect(seqs).not.toContain(0);
    expect(new Set(seqs).size).toBe(100);
  });

  it('resolves with copies that stay valid after the receive slab is overwritten', async () => {
    const { kernel, conn } = setup({
      handler: (r) => [
        datagram(data(r, 1), data(r, 2)),
        datagram(data(r, 3)),
        datagram(ackMessage(r)),
      ],
    });
    const replies = await conn.request(req());
    await kernel.idle();
    expect(kernel.datagramsDelivered).toBe(3);
    expect(slabIsPoisoned(kernel)).toBe(true);
    expect(replies.map((m) => m.view.buffer === kernel.slab)).toEqual([false, false, false]);
    expect(replies.map(idOf)).toEqual([1, 2, 3]);
    expect(replies.map((m) => m.type)).toEqual([CT_NEW, CT_NEW, CT_NEW]);
  });

  it('resolves only when the ACK arrives', async () => {
    const { kernel, conn } = setup();
    const t = track(conn.request(req()));
    await kernel.waitForSent(1);
    const sent = kernel.request(0);
    kernel.reply(data(sent, 1));
    await kernel.idle();
    expect(t.settled).toBe(false);
    kernel.reply(ackMessage(sent));
    await kernel.idle();
    expect(t.settled).toBe(true);
    expect(t.value!.map(idOf)).toEqual([1]);
  });

  it('matches out-of-order answers to their callers', async () => {
    const { kernel, conn } = setup();
    const promises = [1, 2, 3, 4].map((id) => conn.request(req({ id })));
    const tracked = promises.map((p) => track(p));
    await kernel.waitForSent(4);
    const byId = new Map(kernel.sentMessages.map((m) => [idOf(m)!, m]));
    // 3 first, then 1 and 4 interleaved in one datagram, then 2.
    kernel.reply(datagram(data(byId.get(3)!, 300), ackMessage(byId.get(3)!)));
    kernel.reply(
      datagram(
        data(byId.get(4)!, 400),
        data(byId.get(1)!, 100),
        ackMessage(byId.get(1)!),
        ackMessage(byId.get(4)!),
      ),
    );
    await kernel.idle();
    expect(tracked.map((t) => t.settled)).toEqual([true, false, true, true]);
    kernel.reply(data(byId.get(2)!, 200), ackMessage(byId.get(2)!));
    const results = await Promise.all(promises);
    expect(results.map((r) => r.map(idOf))).toEqual([[100], [200], [300], [400]]);
  });

  it('matches answers delivered in reverse order and packed into one datagram', async () => {
    const { kernel, conn } = setup({ handler: echoHandler, order: 'reverse', packReplies: true });
    const results = await Promise.all([1, 2, 3].map((id) => conn.request(req({ id }))));
    expect(kernel.sendCalls).toHaveLength(1);
    expect(kernel.datagramsDelivered).toBe(1);
    expect(results.map((r) => r.map(idOf))).toEqual([[1001], [1002], [1003]]);
  });

  it('rejects an error reply with NetlinkError: errno, code and extended ACK', async () => {
    const { conn } = setup({
      handler: (r) => [
        errorMessage(r, ENOENT, { extack: { message: 'no such conntrack', offset: 20 } }),
      ],
    });
    const error = await rejection(conn.request(req(), { operation: 'ctnetlink get' }));
    expect(error).toBeInstanceOf(NetlinkError);
    const e = error as NetlinkError;
    expect(e.errno).toBe(ENOENT);
    expect(e.code).toBe('ENOENT');
    expect(e.operation).toBe('ctnetlink get');
    expect(e.extack.message).toBe('no such conntrack');
    expect(e.extack.offset).toBe(20);
    expect(e.message).toContain('ctnetlink get');
    expect(e.message).toContain('no such conntrack');
  });

  it('reads the extended ACK after an uncapped echo of the request', async () => {
    const { conn } = setup({
      handler: (r) => [
        errorMessage(r, EPERM, { capped: false, extack: { message: 'denied', offset: 24 } }),
      ],
    });
    const error = await rejection(conn.request(req({ id: 9 })));
    expect(error).toBeInstanceOf(NetlinkError);
    const e = error as NetlinkError;
    expect(e.code).toBe('EPERM');
    expect(e.operation).toBe('request');
    expect(e.extack).toEqual({ message: 'denied', offset: 24 });
  });

  it('rejects an error without extended ACK with an empty extack', async () => {
    const { conn } = setup({ handler: (r) => [errorMessage(r, EINVAL)] });
    const e = (await rejection(conn.request(req()))) as NetlinkError;
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EINVAL');
    expect(e.extack).toEqual({});
  });

  it('rejects a message shorter than nlmsghdr without sending it', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    await expect(conn.request(new Uint8Array(12))).rejects.toBeInstanceOf(RangeError);
    await kernel.idle();
    expect(kernel.sentMessages).toHaveLength(0);
  });

  it('rejects the batch when sending fails and keeps working', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    const failure = new Error('EPERM, sendmsg');
    kernel.failNextSend = failure;
    const results = [1, 2].map((id) => track(conn.request(req({ id }))));
    await kernel.idle();
    expect(results.map((t) => t.error)).toEqual([failure, failure]);
    const replies = await conn.request(req({ id: 3 }));
    expect(replies.map(idOf)).toEqual([1003]);
  });
});

describe('NetlinkConnection: batching and flow control', () => {
  it('packs requests issued in one tick into one datagram, 4-byte aligned', async () => {
    const { kernel, conn } = setup({ handler: (r) => [ackMessage(r)] });
    const a = req(); // 20 bytes
    const b = req({ id: 7 }); // 28 bytes
    // 18 bytes: nlmsg_len need not be a multiple of 4.
    const c = new Uint8Array(18);
    new DataView(c.buffer).setUint32(0, 18, HOST_LITTLE_ENDIAN);
    new DataView(c.buffer).setUint16(4, CT_GET, HOST_LITTLE_ENDIAN);
    c[16] = 0xab;
    c[17] = 0xcd;
    const d = req({ id: 8 }); // 28 bytes, after the unaligned one
    const replies = await Promise.all([a, b, c, d].map((m) => conn.request(m)));
    expect(replies).toEqual([[], [], [], []]);
    expect(kernel.sendCalls).toHaveLength(1);
    expect(kernel.sentDatagrams).toHaveLength(1);
    const dg = kernel.sentDatagrams[0]!;
    expect(dg.byteLength).toBe(20 + 28 + 20 + 28);
    // The engine stamps the caller's buffers in place; they appear back to back.
    expect(dg.subarray(0, 20)).toEqual(a);
    expect(dg.subarray(20, 48)).toEqual(b);
    expect(dg.subarray(48, 66)).toEqual(c);
    expect([...dg.subarray(66, 68)]).toEqual([0, 0]);
    expect(dg.subarray(68, 96)).toEqual(d);
    const msgs = parseMessages(dg);
    expect(msgs.map((m) => m.offset)).toEqual([0, 20, 48, 68]);
    expect(msgs.map((m) => m.length)).toEqual([20, 28, 18, 28]);
    expect(new Set(msgs.map((m) => m.seq)).size).toBe(4);
    expect(
      msgs.every((m) => (m.flags & (NLM_F_REQUEST | NLM_F_ACK)) === (NLM_F_REQUEST | NLM_F_ACK)),
    ).toBe(true);
    expect(conn.counters.datagramsSent).toBe(1);
    expect(conn.counters.sent).toBe(4);
  });

  it('splits a batch into datagrams of at most maxDatagram bytes', async () => {
    const { kernel, conn } = setup({ handler: echoHandler }, { maxDatagram: 64 });
    const results = await Promise.all(
      Array.from({ length: 7 }, (_, i) => conn.request(req({ id: i }))),
    );
    expect(results.map((r) => r.map(idOf))).toEqual(
      Array.from({ length: 7 }, (_, i) => [1000 + i]),
    );
    expect(kernel.sendCalls).toHaveLength(1);
    // 28-byte messages: two fit in 64 bytes, a third would not.
    expect(kernel.sentDatagrams.map((d) => d.byteLength)).toEqual([56, 56, 56, 28]);
    for (const d of kernel.sentDatagrams) expect(d.byteLength).toBeLessThanOrEqual(64);
    expect(kernel.sentDatagrams.map((d) => parseMessages(d).length)).toEqual([2, 2, 2, 1]);
    expect(kernel.sentMessages.map(idOf)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(conn.counters.datagramsSent).toBe(4);
    expect(conn.counters.sent).toBe(7);
  });

  it('sends a request larger than maxDatagram alone', async () => {
    const { kernel, conn } = setup({ handler: echoHandler }, { maxDatagram: 24 });
    await Promise.all([conn.request(req()), conn.request(req({ id: 1 })), conn.request(req())]);
    expect(kernel.sentDatagrams.map((d) => d.byteLength)).toEqual([20, 28, 20]);
  });

  it('sends requests of different ticks in separate datagrams', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    await conn.request(req({ id: 1 }));
    await conn.request(req({ id: 2 }));
    expect(kernel.sendCalls).toHaveLength(2);
  });

  it('keeps at most maxInFlight requests unanswered and sends the rest as answers come', async () => {
    const { kernel, conn } = setup({}, { maxInFlight: 2 });
    const tracked = [0, 1, 2, 3, 4].map((id) => track(conn.request(req({ id }))));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([0, 1]);
    kernel.reply(ackMessage(kernel.request(0)));
    await kernel.idle();
    expect(tracked[0]!.settled).toBe(true);
    expect(kernel.sentMessages.map(idOf)).toEqual([0, 1, 2]);
    // An error answer frees a slot as well.
    kernel.reply(datagram(errorMessage(kernel.request(2), ENOENT), ackMessage(kernel.request(1))));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([0, 1, 2, 3, 4]);
    expect(tracked[2]!.error).toBeInstanceOf(NetlinkError);
    kernel.reply(ackMessage(kernel.request(3)), ackMessage(kernel.request(4)));
    await kernel.idle();
    expect(tracked.map((t) => t.settled)).toEqual([true, true, true, true, true]);
    expect(kernel.sentMessages).toHaveLength(5);
  });
});

describe('NetlinkConnection: dumpEach', () => {
  const dumpHandler =
    (count: number, perDatagram: number): KernelHandler =>
    (r, k) =>
      isDumpRequest(r) ? dumpReplies(r, count, perDatagram) : echoHandler(r, k);

  it('delivers every message zero-copy and resolves at NLMSG_DONE', async () => {
    const { kernel, conn } = setup({ handler: dumpHandler(5, 2) });
    const ids: number[] = [];
    const inSlab: boolean[] = [];
    const result = await conn.dumpEach(req(), (msg) => {
      ids.push(idOf(msg)!);
      inSlab.push(msg.view.buffer === kernel.slab);
      expect(msg.flags & NLM_F_MULTI).toBe(NLM_F_MULTI);
    });
    expect(result).toEqual({ messages: 5, interrupted: false });
    expect(ids).toEqual([0, 1, 2, 3, 4]);
    expect(inSlab.every(Boolean)).toBe(true);
    const sent = kernel.request(0);
    expect(sent.flags).toBe(NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
    expect(sent.seq).not.toBe(0);
  });

  it('resolves an empty dump', async () => {
    const { conn } = setup({ handler: (r) => [doneMessage(r)] });
    const onMessage = vi.fn();
    await expect(conn.dumpEach(req(), onMessage)).resolves.toEqual({
      messages: 0,
      interrupted: false,
    });
    expect(onMessage).not.toHaveBeenCalled();
  });

  it('ignores an ACK before NLMSG_DONE', async () => {
    const { conn } = setup({
      handler: (r) => [datagram(data(r, 1, NLM_F_MULTI)), ackMessage(r), doneMessage(r)],
    });
    await expect(conn.dumpEach(req(), () => {})).resolves.toEqual({
      messages: 1,
      interrupted: false,
    });
  });

  it('rejects with NetlinkError when NLMSG_DONE carries an error', async () => {
    const { conn } = setup({
      handler: (r) => [
        datagram(data(r, 1, NLM_F_MULTI)),
        doneMessage(r, { errno: EINVAL, extack: { message: 'bad filter' } }),
      ],
    });
    const e = (await rejection(
      conn.dumpEach(req(), () => {}, { operation: 'ctnetlink dump' }),
    )) as NetlinkError;
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.errno).toBe(EINVAL);
    expect(e.code).toBe('EINVAL');
    expect(e.operation).toBe('ctnetlink dump');
    expect(e.extack.message).toBe('bad filter');
  });

  it('rejects with NetlinkError when the dump request is refused', async () => {
    const { conn } = setup({ handler: (r) => [errorMessage(r, EPERM)] });
    const e = (await rejection(conn.dumpEach(req(), () => {}))) as NetlinkError;
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EPERM');
  });

  it('rejects with DumpInterruptedError when NLM_F_DUMP_INTR is seen', async () => {
    const { conn } = setup({
      handler: (r) => dumpReplies(r, 4, 2, 0, (i) => (i === 2 ? NLM_F_DUMP_INTR : 0)),
    });
    const onMessage = vi.fn();
    const error = await rejection(conn.dumpEach(req(), onMessage, { operation: 'ct dump' }));
    expect(error).toBeInstanceOf(DumpInterruptedError);
    expect((error as DumpInterruptedError).operation).toBe('ct dump');
    expect(onMessage).toHaveBeenCalledTimes(4);
  });

  it('sees NLM_F_DUMP_INTR set on NLMSG_DONE alone', async () => {
    // nl_dump_check_consistent() is applied to the DONE message as well.
    const { conn } = setup({
      handler: (r) => [
        datagram(data(r, 0, NLM_F_MULTI), data(r, 1, NLM_F_MULTI)),
        doneMessage(r, { flags: NLM_F_DUMP_INTR }),
      ],
    });
    await expect(conn.dumpEach(req(), () => {})).rejects.toBeInstanceOf(DumpInterruptedError);
    const onInterrupted = vi.fn();
    await expect(conn.dumpEach(req(), () => {}, { onInterrupted })).resolves.toEqual({
      messages: 2,
      interrupted: true,
    });
    expect(onInterrupted).toHaveBeenCalledTimes(1);
  });

  it('calls onInterrupted instead and reports interrupted: true', async () => {
    const { conn } = setup({
      handler: (r) => dumpReplies(r, 3, 1, 0, (i) => (i === 0 ? NLM_F_DUMP_INTR : 0)),
    });
    const onInterrupted = vi.fn();
    const ids: number[] = [];
    const result = await conn.dumpEach(req(), (m) => ids.push(idOf(m)!), { onInterrupted });
    expect(result).toEqual({ messages: 3, interrupted: true });
    expect(onInterrupted).toHaveBeenCalledTimes(1);
    expect(ids).toEqual([0, 1, 2]);
  });

  it('rejects with the callback exception, then serves the next dump', async () => {
    let dumps = 0;
    const { kernel, conn } = setup({
      handler: (r) => (isDumpRequest(r) ? dumpReplies(r, 5, 3, 100 * dumps++) : []),
    });
    const boom = new Error('consumer failed');
    const seen: number[] = [];
    const error = await rejection(
      conn.dumpEach(req(), (m) => {
        seen.push(idOf(m)!);
        if (seen.length === 2) throw boom;
      }),
    );
    expect(error).toBe(boom);
    expect(seen).toEqual([0, 1]);
    const next: number[] = [];
    const result = await conn.dumpEach(req(), (m) => next.push(idOf(m)!));
    expect(result).toEqual({ messages: 5, interrupted: false });
    expect(next).toEqual([100, 101, 102, 103, 104]);
    expect(conn.counters.stray).toBe(0);
    expect(kernel.callbackErrors).toEqual([]);
  });

  it('waits for the DONE of a dump whose callback threw before sending the next', async () => {
    const { kernel, conn } = setup();
    const first = track(
      conn.dumpEach(req({ id: 1 }), () => {
        throw new Error('nope');
      }),
    );
    const second = track(conn.dumpEach(req({ id: 2 }), () => {}));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([1]);
    const r1 = kernel.request(0);
    kernel.reply(datagram(data(r1, 1, NLM_F_MULTI), data(r1, 2, NLM_F_MULTI)));
    await kernel.idle();
    expect((first.error as Error).message).toBe('nope');
    expect(kernel.sentMessages).toHaveLength(1);
    kernel.reply(data(r1, 3, NLM_F_MULTI), doneMessage(r1));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([1, 2]);
    kernel.reply(doneMessage(kernel.request(1)));
    await kernel.idle();
    expect(second.value).toEqual({ messages: 0, interrupted: false });
  });

  it('keeps one dump in flight at a time; plain requests are not held back', async () => {
    const { kernel, conn } = setup();
    const a = track(conn.dumpEach(req({ id: 1 }), () => {}));
    const b = track(conn.dumpEach(req({ id: 2 }), () => {}));
    const r = track(conn.request(req({ id: 3 })));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([1, 3]);
    const dumpA = kernel.request(0);
    kernel.reply(datagram(data(dumpA, 10, NLM_F_MULTI)), ackMessage(kernel.request(1)));
    await kernel.idle();
    expect(r.settled).toBe(true);
    expect(kernel.sentMessages.map(idOf)).toEqual([1, 3]);
    kernel.reply(doneMessage(dumpA));
    await kernel.idle();
    expect(a.value).toEqual({ messages: 1, interrupted: false });
    expect(kernel.sentMessages.map(idOf)).toEqual([1, 3, 2]);
    expect(b.settled).toBe(false);
    kernel.reply(doneMessage(kernel.request(2)));
    await kernel.idle();
    expect(b.value).toEqual({ messages: 0, interrupted: false });
  });
});

describe('NetlinkConnection: dump() async iterator', () => {
  it('yields messages that stay valid after the slab is reused', async () => {
    const { kernel, conn } = setup({ handler: (r) => dumpReplies(r, 6, 2) });
    const messages: NetlinkMessage[] = [];
    for await (const msg of conn.dump(req())) messages.push(msg);
    expect(slabIsPoisoned(kernel)).toBe(true);
    expect(messages.map((m) => m.view.buffer === kernel.slab)).not.toContain(true);
    expect(messages.map(idOf)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(kernel.request(0).flags & NLM_F_DUMP).toBe(NLM_F_DUMP);
  });

  it('pauses the transport above dumpHighWaterMark and resumes when the consumer catches up', async () => {
    const { kernel, conn } = setup(
      { handler: (r) => dumpReplies(r, 12, 1) },
      { dumpHighWaterMark: 4 },
    );
    const it = conn.dump(req())[Symbol.asyncIterator]();
    await kernel.idle();
    expect(kernel.paused).toBe(true);
    expect(kernel.pauseCalls).toBe(1);
    expect(kernel.datagramsDelivered).toBe(4);
    const ids: number[] = [];
    const take = async () => {
      const r = await it.next();
      if (r.done) throw new Error('ended early');
      ids.push(idOf(r.value)!);
    };
    await take();
    await take();
    expect(kernel.resumeCalls).toBe(0); // 2 buffered: not below 4 / 2
    await take();
    expect(kernel.resumeCalls).toBe(1); // 1 buffered
    await kernel.idle();
    expect(kernel.datagramsDelivered).toBe(7); // 1 + 3 more, then paused again
    expect(kernel.pauseCalls).toBe(2);
    while (true) {
      const r = await it.next();
      if (r.done) break;
      ids.push(idOf(r.value)!);
    }
    expect(ids).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(kernel.paused).toBe(false);
    expect(kernel.pauseCalls).toBe(kernel.resumeCalls);
    expect(kernel.datagramsDelivered).toBe(13);
  });

  it('abandons the dump on break and serves the next dump', async () => {
    let dumps = 0;
    const sentAt: number[] = [];
    const { kernel, conn } = setup({
      handler: (r, k) => {
        sentAt.push(k.datagramsDelivered);
        return dumpReplies(r, 10, 2, 100 * dumps++);
      },
    });
    const first: number[] = [];
    for await (const msg of conn.dump(req())) {
      first.push(idOf(msg)!);
      if (first.length === 2) break;
    }
    expect(first).toEqual([0, 1]);
    const second: number[] = [];
    for await (const msg of conn.dump(req())) second.push(idOf(msg)!);
    expect(second).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
    // The second dump went out only after all of the first (5 datagrams + DONE).
    expect(sentAt).toEqual([0, 6]);
    expect(conn.counters.stray).toBe(0);
    expect(kernel.paused).toBe(false);
  });

  it('resumes reading when the consumer breaks off while paused', async () => {
    let dumps = 0;
    const { kernel, conn } = setup(
      { handler: (r) => dumpReplies(r, 10, 1, 100 * dumps++) },
      { dumpHighWaterMark: 2 },
    );
    for await (const msg of conn.dump(req())) {
      await kernel.idle();
      expect(kernel.paused).toBe(true);
      expect(idOf(msg)).toBe(0);
      break;
    }
    expect(kernel.paused).toBe(false);
    expect(kernel.pauseCalls).toBe(kernel.resumeCalls);
    const second: number[] = [];
    for await (const msg of conn.dump(req())) second.push(idOf(msg)!);
    expect(second).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
  });

  it('throws the dump error after the messages that came before it', async () => {
    const { conn } = setup({
      handler: (r) => [datagram(data(r, 1, NLM_F_MULTI)), doneMessage(r, { errno: ENOENT })],
    });
    const it = conn.dump(req())[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    const e = await rejection(it.next());
    expect(e).toBeInstanceOf(NetlinkError);
    expect((e as NetlinkError).code).toBe('ENOENT');
  });

  it('serves concurrent next() calls in order', async () => {
    const { kernel, conn } = setup();
    const it = conn.dump(req())[Symbol.asyncIterator]();
    const calls = [it.next(), it.next(), it.next()];
    const tracked = calls.map((c) => track(c));
    await kernel.waitForSent(1);
    const sent = kernel.request(0);
    kernel.reply(data(sent, 0, NLM_F_MULTI));
    kernel.reply(data(sent, 1, NLM_F_MULTI), doneMessage(sent));
    await kernel.idle();
    expect(tracked.map((t) => t.settled)).toEqual([true, true, true]);
    const results = await Promise.all(calls);
    expect(results.map((r) => (r.done ? 'done' : idOf(r.value)))).toEqual([0, 1, 'done']);
  });

  it('ends a waiting next() when return() is called', async () => {
    const { kernel, conn } = setup();
    const it = conn.dump(req())[Symbol.asyncIterator]();
    await kernel.waitForSent(1);
    const waiting = track(it.next());
    await expect(it.return!()).resolves.toEqual({ value: undefined, done: true });
    await kernel.idle();
    expect(waiting.value).toEqual({ value: undefined, done: true });
    // The abandoned dump still holds the socket until its DONE.
    const next = track(conn.dumpEach(req(), () => {}));
    await kernel.idle();
    expect(kernel.sentMessages).toHaveLength(1);
    kernel.reply(data(kernel.request(0), 1, NLM_F_MULTI), doneMessage(kernel.request(0)));
    await kernel.waitForSent(2);
    kernel.reply(doneMessage(kernel.request(1)));
    await kernel.idle();
    expect(next.value).toEqual({ messages: 0, interrupted: false });
  });

  it('throws DumpInterruptedError, or calls onInterrupted', async () => {
    const handler: KernelHandler = (r) =>
      dumpReplies(r, 2, 1, 0, (i) => (i === 1 ? NLM_F_DUMP_INTR : 0));
    const { conn } = setup({ handler });
    const collect = async (onInterrupted?: () => void) => {
      const ids: number[] = [];
      for await (const m of conn.dump(req(), onInterrupted ? { onInterrupted } : {}))
        ids.push(idOf(m)!);
      return ids;
    };
    await expect(collect()).rejects.toBeInstanceOf(DumpInterruptedError);
    const onInterrupted = vi.fn();
    await expect(collect(onInterrupted)).resolves.toEqual([0, 1]);
    expect(onInterrupted).toHaveBeenCalledTimes(1);
  });
});

describe('NetlinkConnection: timeouts', () => {
  it('rejects with NetlinkTimeoutError; a late reply is stray', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { kernel, conn } = setup({}, { timeoutMs: 1000 });
    const t = track(conn.request(req(), { operation: 'ct get' }));
    await kernel.waitForSent(1);
    vi.advanceTimersByTime(999);
    await kernel.idle();
    expect(t.settled).toBe(false);
    vi.advanceTimersByTime(1);
    await kernel.idle();
    expect(t.error).toBeInstanceOf(NetlinkTimeoutError);
    const e = t.error as NetlinkTimeoutError;
    expect(e.code).toBe('ETIMEDOUT');
    expect(e.operation).toBe('ct get');
    expect(e.timeoutMs).toBe(1000);
    const sent = kernel.request(0);
    kernel.reply(datagram(data(sent, 1), ackMessage(sent)));
    await kernel.idle();
    expect(conn.counters.stray).toBe(2);
    expect(kernel.callbackErrors).toEqual([]);
  });

  it('uses the per-request timeout and frees the in-flight slot', async () => {
    const { kernel, conn } = setup({}, { maxInFlight: 1, timeoutMs: 60_000 });
    const first = rejection(conn.request(req({ id: 1 }), { timeoutMs: 5 }));
    const second = track(conn.request(req({ id: 2 })));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([1]);
    expect(await first).toBeInstanceOf(NetlinkTimeoutError);
    await kernel.waitForSent(2);
    expect(kernel.sentMessages.map(idOf)).toEqual([1, 2]);
    kernel.reply(ackMessage(kernel.request(1)));
    await kernel.idle();
    expect(second.value).toEqual([]);
  });

  it('times a dump out only after a whole quiet period (progress is checked when the timer fires)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { kernel, conn } = setup({}, { timeoutMs: 100 });
    const t = track(conn.dumpEach(req(), () => {}));
    await kernel.waitForSent(1);
    const sent = kernel.request(0);
    vi.advanceTimersByTime(80);
    kernel.reply(data(sent, 1, NLM_F_MULTI));
    await kernel.idle();
    vi.advanceTimersByTime(80); // t=160: the timer fired at 100, saw progress, re-armed to 200
    await kernel.idle();
    expect(t.settled).toBe(false);
    vi.advanceTimersByTime(30); // t=190: still inside the period after the message
    await kernel.idle();
    expect(t.settled).toBe(false);
    vi.advanceTimersByTime(10); // t=200: a whole period without a message
    await kernel.idle();
    expect(t.error).toBeInstanceOf(NetlinkTimeoutError);
  });

  it('sends the next dump after a dump timed out', async () => {
    const { kernel, conn } = setup();
    const first = rejection(conn.dumpEach(req({ id: 1 }), () => {}, { timeoutMs: 5 }));
    const second = track(conn.dumpEach(req({ id: 2 }), () => {}));
    expect(await first).toBeInstanceOf(NetlinkTimeoutError);
    await kernel.waitForSent(2);
    kernel.reply(doneMessage(kernel.request(1)));
    await kernel.idle();
    expect(second.value).toEqual({ messages: 0, interrupted: false });
  });

  it('re-arms the dump timeout when reading resumes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { kernel, conn } = setup({}, { timeoutMs: 50, dumpHighWaterMark: 2 });
    const it = conn.dump(req())[Symbol.asyncIterator]();
    await kernel.waitForSent(1);
    const sent = kernel.request(0);
    kernel.reply(data(sent, 0, NLM_F_MULTI), data(sent, 1, NLM_F_MULTI));
    await kernel.idle();
    expect(kernel.paused).toBe(true);
    vi.advanceTimersByTime(1000);
    expect((await it.next()).done).toBe(false);
    expect((await it.next()).done).toBe(false);
    expect(kernel.paused).toBe(false);
    // The kernel now stays silent: the dump must not hang.
    const last = rejection(it.next());
    vi.advanceTimersByTime(50);
    expect(await last).toBeInstanceOf(NetlinkTimeoutError);
  });

  it('does not time out a dump while its consumer holds the transport paused', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { kernel, conn } = setup(
      { handler: (r) => dumpReplies(r, 8, 1) },
      { timeoutMs: 50, dumpHighWaterMark: 2 },
    );
    const it = conn.dump(req())[Symbol.asyncIterator]();
    await kernel.idle();
    expect(kernel.paused).toBe(true);
    vi.advanceTimersByTime(1000);
    const ids: number[] = [];
    while (true) {
      const r = await it.next();
      if (r.done) break;
      ids.push(idOf(r.value)!);
      await kernel.idle();
    }
    expect(ids).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('NetlinkConnection: AbortSignal', () => {
  it('rejects at once when the signal is already aborted and sends nothing', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    const signal = AbortSignal.abort();
    const e = await rejection(conn.request(req(), { signal }));
    expect(e).toBeInstanceOf(NetlinkAbortError);
    expect((e as Error).name).toBe('AbortError');
    await expect(conn.dumpEach(req(), () => {}, { signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    await kernel.idle();
    expect(kernel.sentMessages).toHaveLength(0);
  });

  it('never sends a request aborted while queued', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    const ac = new AbortController();
    const aborted = rejection(conn.request(req({ id: 1 }), { signal: ac.signal }));
    const kept = conn.request(req({ id: 2 }));
    ac.abort();
    expect(await aborted).toMatchObject({ name: 'AbortError' });
    expect((await kept).map(idOf)).toEqual([1002]);
    expect(kernel.sentMessages.map(idOf)).toEqual([2]);
  });

  it('never sends a request aborted while waiting for an in-flight slot', async () => {
    const { kernel, conn } = setup({}, { maxInFlight: 1 });
    const ac = new AbortController();
    const first = track(conn.request(req({ id: 1 })));
    const second = track(conn.request(req({ id: 2 }), { signal: ac.signal }));
    const third = track(conn.request(req({ id: 3 })));
    await kernel.idle();
    ac.abort();
    await kernel.idle();
    expect((second.error as Error).name).toBe('AbortError');
    kernel.reply(ackMessage(kernel.request(0)));
    await kernel.idle();
    expect(first.settled).toBe(true);
    expect(kernel.sentMessages.map(idOf)).toEqual([1, 3]);
    kernel.reply(ackMessage(kernel.request(1)));
    await kernel.idle();
    expect(third.value).toEqual([]);
  });

  it('rejects an in-flight request with AbortError; its late answer is absorbed', async () => {
    const { kernel, conn } = setup({}, { maxInFlight: 1 });
    const ac = new AbortController();
    const first = track(conn.request(req({ id: 1 }), { signal: ac.signal }));
    const second = track(conn.request(req({ id: 2 })));
    await kernel.idle();
    expect(kernel.sentMessages).toHaveLength(1);
    ac.abort();
    await kernel.idle();
    expect(first.error).toBeInstanceOf(NetlinkAbortError);
    expect((first.error as Error).name).toBe('AbortError');
    const sent = kernel.request(0);
    kernel.reply(datagram(data(sent, 1), ackMessage(sent)));
    await kernel.idle();
    expect(conn.counters.stray).toBe(0);
    expect(kernel.sentMessages.map(idOf)).toEqual([1, 2]);
    kernel.reply(ackMessage(kernel.request(1)));
    await kernel.idle();
    expect(second.value).toEqual([]);
  });

  it('aborts an in-flight dump; the next dump waits for its DONE', async () => {
    const { kernel, conn } = setup();
    const ac = new AbortController();
    const seen: number[] = [];
    const first = track(
      conn.dumpEach(req({ id: 1 }), (m) => seen.push(idOf(m)!), { signal: ac.signal }),
    );
    const second = track(conn.dumpEach(req({ id: 2 }), () => {}));
    await kernel.idle();
    const d1 = kernel.request(0);
    kernel.reply(data(d1, 10, NLM_F_MULTI));
    await kernel.idle();
    ac.abort();
    kernel.reply(data(d1, 11, NLM_F_MULTI));
    await kernel.idle();
    expect((first.error as Error).name).toBe('AbortError');
    expect(seen).toEqual([10]);
    expect(kernel.sentMessages).toHaveLength(1);
    kernel.reply(doneMessage(d1));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([1, 2]);
    kernel.reply(doneMessage(kernel.request(1)));
    await kernel.idle();
    expect(second.value).toEqual({ messages: 0, interrupted: false });
  });

  it('makes a dump iterator throw AbortError', async () => {
    const { kernel, conn } = setup();
    const ac = new AbortController();
    const it = conn.dump(req(), { signal: ac.signal })[Symbol.asyncIterator]();
    await kernel.waitForSent(1);
    const pending = rejection(it.next());
    ac.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
  });
});

describe('NetlinkConnection: notifications and foreign senders', () => {
  it('drops datagrams from a foreign sender port', async () => {
    const { kernel, conn } = setup();
    const t = track(conn.request(req()));
    await kernel.waitForSent(1);
    const sent = kernel.request(0);
    const notified = vi.fn();
    conn.onNotification(notified);
    kernel.reply(fromPort(4321, data(sent, 666), ackMessage(sent)));
    kernel.reply(fromPort(4321, data(0, 667)));
    await kernel.idle();
    expect(conn.counters.foreign).toBe(2);
    expect(conn.counters.received).toBe(0);
    expect(t.settled).toBe(false);
    expect(notified).not.toHaveBeenCalled();
    kernel.reply(datagram(data(sent, 1), ackMessage(sent)));
    await kernel.idle();
    expect(t.value!.map(idOf)).toEqual([1]);
  });

  it('routes multicast and seq-0 messages to notification listeners only', async () => {
    const { kernel, conn } = setup();
    const t = track(conn.request(req()));
    await kernel.waitForSent(1);
    const sent = kernel.request(0);
    const seen: { type: number; id: number | undefined; seq: number }[] = [];
    const second = vi.fn();
    conn.onNotification((m) =>
      seen.push({ type: m.type, id: m.type === CT_NEW ? idOf(m) : undefined, seq: m.seq }),
    );
    conn.onNotification(second);
    // A multicast event that happens to carry the request's seq, an ACK-looking
    // multicast, and a unicast message with seq 0.
    kernel.reply(multicast(data(sent, 50), ackMessage(sent)), datagram(data(0, 51)));
    await kernel.idle();
    expect(t.settled).toBe(false);
    expect(seen.map((s) => s.type)).toEqual([CT_NEW, NLMSG_ERROR, CT_NEW]);
    expect(seen.map((s) => s.id)).toEqual([50, undefined, 51]);
    expect(seen.map((s) => s.seq)).toEqual([sent.seq, sent.seq, 0]);
    expect(second).toHaveBeenCalledTimes(3);
    expect(conn.counters.stray).toBe(0);
    kernel.reply(ackMessage(sent));
    await kernel.idle();
    expect(t.value).toEqual([]);
  });

  it('counts messages for unknown seqs as stray', async () => {
    const { kernel, conn } = setup({ handler: echoHandler });
    await conn.request(req());
    kernel.reply(datagram(data(9999, 1), ackMessage(9999)));
    await kernel.idle();
    expect(conn.counters.stray).toBe(2);
  });
});

describe('NetlinkConnection: lost messages and errors', () => {
  it('ENOBUFS calls onLost listeners and rejects every in-flight request', async () => {
    const { kernel, conn } = setup();
    const onLost = vi.fn();
    conn.onLost(onLost);
    const a = track(conn.request(req({ id: 1 })));
    const b = track(conn.request(req({ id: 2 })));
    const d = track(conn.dumpEach(req({ id: 3 }), () => {}));
    await kernel.idle();
    expect(kernel.sentMessages).toHaveLength(3);
    kernel.reply(lost());
    await kernel.idle();
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(conn.counters.lost).toBe(1);
    for (const t of [a, b, d]) {
      expect(t.error).toBeInstanceOf(NetlinkError);
      expect((t.error as NetlinkError).code).toBe('ENOBUFS');
      expect((t.error as NetlinkError).errno).toBe(ENOBUFS);
    }
    // Still usable.
    kernel.handler = echoHandler;
    expect((await conn.request(req({ id: 4 }))).map(idOf)).toEqual([1004]);
  });

  it('treats a truncated datagram as lost', async () => {
    const { kernel, conn } = setup();
    const onLost = vi.fn();
    conn.onLost(onLost);
    const t = track(conn.request(req()));
    await kernel.waitForSent(1);
    const sent = kernel.request(0);
    kernel.reply(truncated(20, data(sent, 1), ackMessage(sent)));
    await kernel.idle();
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(conn.counters.lost).toBe(1);
    expect((t.error as NetlinkError).code).toBe('ENOBUFS');
    expect(conn.counters.stray).toBe(0);
  });

  it('treats a datagram larger than the receive slot as lost', async () => {
    const { kernel, conn } = setup({ slotSize: 64 });
    const t = track(conn.request(req()));
    await kernel.waitForSent(1);
    const sent = kernel.request(0);
    kernel.reply(datagram(data(sent, 1), data(sent, 2), data(sent, 3), ackMessage(sent)));
    await kernel.idle();
    expect((t.error as NetlinkError).code).toBe('ENOBUFS');
  });

  it('a fatal read error rejects everything and calls onError listeners', async () => {
    const { kernel, conn } = setup({}, { maxInFlight: 1 });
    const onError = vi.fn();
    conn.onError(onError);
    const a = track(conn.request(req({ id: 1 })));
    const b = track(conn.request(req({ id: 2 })));
    const d = track(conn.dumpEach(req({ id: 3 }), () => {}));
    const queuedDump = track(conn.dumpEach(req({ id: 4 }), () => {}));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([3, 1]);
    const failure = Object.assign(new Error('EBADF, recvmmsg'), { code: 'EBADF' });
    kernel.reply(readError(failure));
    await kernel.idle();
    expect(onError).toHaveBeenCalledWith(failure);
    for (const t of [a, b, d, queuedDump]) expect(t.error).toBe(failure);
    expect(kernel.sentMessages).toHaveLength(2);
  });
});

describe('NetlinkConnection: close', () => {
  it('rejects pending and queued requests, closes the transport once, refuses later requests', async () => {
    const { kernel, conn } = setup({}, { maxInFlight: 1 });
    const inFlight = track(conn.request(req({ id: 1 })));
    const queued = track(conn.request(req({ id: 2 })));
    const dump = track(conn.dumpEach(req({ id: 3 }), () => {}));
    const queuedDump = track(conn.dumpEach(req({ id: 4 }), () => {}));
    await kernel.idle();
    expect(kernel.sentMessages.map(idOf)).toEqual([3, 1]);
    conn.close();
    await kernel.idle();
    for (const t of [inFlight, queued, dump, queuedDump]) {
      expect(t.error).toBeInstanceOf(NetlinkAbortError);
      expect((t.error as Error).name).toBe('AbortError');
    }
    expect(kernel.closeCalls).toBe(1);
    conn.close();
    expect(kernel.closeCalls).toBe(1);
    await expect(conn.request(req())).rejects.toMatchObject({ name: 'AbortError' });
    await expect(conn.dumpEach(req(), () => {})).rejects.toMatchObject({ name: 'AbortError' });
    await expect(conn.dump(req())[Symbol.asyncIterator]().next()).rejects.toMatchObject({
      name: 'AbortError',
    });
    await kernel.idle();
    expect(kernel.sentMessages).toHaveLength(2);
  });

  it('ends a dump iterator that is being consumed', async () => {
    const { kernel, conn } = setup();
    const it = conn.dump(req())[Symbol.asyncIterator]();
    await kernel.waitForSent(1);
    kernel.reply(data(kernel.request(0), 1, NLM_F_MULTI));
    expect((await it.next()).done).toBe(false);
    const next = rejection(it.next());
    conn.close();
    expect(await next).toMatchObject({ name: 'AbortError' });
  });
});

describe('NetlinkConnection: requestBatch', () => {
  /** Like the kernel: refusals are always answered, successes only when an ACK is asked for. */
  const batchHandler =
    (refuse: Set<number>): KernelHandler =>
    (request) => {
      if (request.type === NLMSG_NOOP) return [datagram(ackMessage(request))];
      if (refuse.has(idOf(request) ?? -1)) return [datagram(errorMessage(request, EPERM))];
      return request.flags & NLM_F_ACK ? [datagram(ackMessage(request))] : [];
    };

  it('sends every message, counts the ACKs and reports refusals by index', async () => {
    const { kernel, conn } = setup({ handler: batchHandler(new Set([2, 5])) });
    const result = await conn.requestBatch(
      Array.from({ length: 8 }, (_, i) => req({ id: i, type: CT_NEW })),
      { operation: 'bulk' },
    );
    expect(result.ok).toBe(6);
    expect(result.errors.map((e) => e.index)).toEqual([2, 5]);
    expect(result.errors[0]!.error).toMatchObject({ code: 'EPERM', operation: 'bulk' });
    // Members go without NLM_F_ACK; each datagram ends with a NOOP barrier that asks for one.
    const members = kernel.sentMessages.filter((m) => m.type !== NLMSG_NOOP);
    const barriers = kernel.sentMessages.filter((m) => m.type === NLMSG_NOOP);
    expect(members).toHaveLength(8);
    for (const m of members) expect(m.flags & (NLM_F_REQUEST | NLM_F_ACK)).toBe(NLM_F_REQUEST);
    expect(barriers.length).toBe(kernel.sentDatagrams.length);
    for (const b of barriers)
      expect(b.flags & (NLM_F_REQUEST | NLM_F_ACK)).toBe(NLM_F_REQUEST | NLM_F_ACK);
    expect(new Set(kernel.sentMessages.map((m) => m.seq)).size).toBe(kernel.sentMessages.length);
  });

  it('asks for an ACK per request with ackEach, and sends no barrier', async () => {
    const { kernel, conn } = setup({ handler: batchHandler(new Set([1])) });
    const result = await conn.requestBatch([req({ id: 0 }), req({ id: 1 }), req({ id: 2 })], {
      ackEach: true,
    });
    expect(result).toMatchObject({ ok: 2, errors: [{ index: 1 }] });
    expect(
      kernel.sentMessages.every((m) => m.type !== NLMSG_NOOP && (m.flags & NLM_F_ACK) !== 0),
    ).toBe(true);
  });

  it('a refusal answered before the barrier is not counted as a success', async () => {
    const { conn } = setup({ handler: batchHandler(new Set([0, 1, 2, 3])) });
    const result = await conn.requestBatch([0, 1, 2, 3].map((id) => req({ id })));
    expect(result.ok).toBe(0);
    expect(result.errors.map((e) => e.index)).toEqual([0, 1, 2, 3]);
  });

  it('pulls lazily within maxInFlight and records Error items without sending them', async () => {
    const { kernel, conn } = setup({ handler: batchHandler(new Set()) }, { maxInFlight: 3 });
    let pulled = 0;
    function* source(): Generator<Uint8Array | Error> {
      for (let i = 0; i < 10; i++) {
        pulled++;
        yield i === 4 ? new RangeError('bad spec') : req({ id: i });
      }
    }
    const t = track(conn.requestBatch(source()));
    await Promise.resolve();
    await Promise.resolve();
    expect(pulled).toBeLessThanOrEqual(4); // 3 in flight (+1 Error item skipped)
    await kernel.idle();
    await vi.waitFor(() => expect(t.settled).toBe(true));
    expect(t.value).toEqual({ ok: 9, errors: [{ index: 4, error: expect.any(RangeError) }] });
    expect(kernel.sentMessages.filter((m) => m.type !== NLMSG_NOOP)).toHaveLength(9);
  });

  it('resolves an empty batch at once', async () => {
    const { conn } = setup();
    expect(await conn.requestBatch([])).toEqual({ ok: 0, errors: [] });
  });

  it('rejects the whole batch when ACKs are lost, and stays usable', async () => {
    const { kernel, conn } = setup({ handler: () => [] });
    const t = track(conn.requestBatch([req({ id: 1 }), req({ id: 2 })]));
    await kernel.waitForSent(2);
    kernel.reply(lost());
    await kernel.idle();
    await vi.waitFor(() => expect(t.settled).toBe(true));
    expect(t.error).toMatchObject({ code: 'ENOBUFS' });
    kernel.handler = echoHandler;
    expect(await conn.request(req({ id: 3 }))).toHaveLength(1);
  });

  it('times out when the kernel stops answering, and rejects on close', async () => {
    const { conn } = setup({ handler: () => [] });
    expect(await rejection(conn.requestBatch([req({ id: 1 })], { timeoutMs: 20 }))).toBeInstanceOf(
      NetlinkTimeoutError,
    );
    const pending = rejection(conn.requestBatch([req({ id: 2 })]));
    conn.close();
    expect(await pending).toBeInstanceOf(NetlinkAbortError);
  });

  it('aborts via its signal', async () => {
    const { conn } = setup({ handler: () => [] });
    const controller = new AbortController();
    const pending = rejection(conn.requestBatch([req({ id: 1 })], { signal: controller.signal }));
    controller.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
  });
});

describe('NetlinkConnection: a dump the kernel did not start', () => {
  it('resolves with no messages when the kernel answers a dump request with a plain ACK', async () => {
    const { conn } = setup({ handler: (request) => [datagram(ackMessage(request))] });
    expect(await conn.dumpEach(req(), () => {})).toEqual({ messages: 0, interrupted: false });
  });
});
