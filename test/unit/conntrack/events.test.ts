import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AF_INET,
  AF_INET6,
  NFNL_SUBSYS_CTNETLINK,
  NFNL_SUBSYS_CTNETLINK_EXP,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_MULTI,
  nfnlMsgType,
} from '../../../helper/netlink/constants.js';
import { NetlinkDecodeError } from '../../../helper/netlink/errors.js';
import type { NetlinkMessage } from '../../../helper/netlink/message.js';
import type { NetlinkWriter } from '../../../helper/netlink/writer.js';
import type { NativeBinding, NativeOpenOptions } from '../../../helper/native/types.js';
import { Conntrack } from '../../../helper/conntrack/client.js';
import { bindingWith, StubNativeSocket } from '../../support/native-double.js';
import * as C from '../../../helper/conntrack/constants.js';
import { writeTuple } from '../../../helper/conntrack/encode.js';
import {
  ConntrackEvents,
  DEFAULT_EVENT_RCVBUF,
  eventTypeOf,
  type LostInfo,
} from '../../../helper/conntrack/events.js';
import {
  ConntrackMirror,
  flowChanged,
  flowKey,
  type MirrorChange,
} from '../../../helper/conntrack/mirror.js';
import type { ConntrackEvent, Family, Flow } from '../../../helper/conntrack/types.js';
import {
  FakeKernel,
  dataMessage,
  datagram,
  doneMessage,
  lost,
  multicast,
  readError,
  truncated,
} from '../../support/fake-kernel.js';

const ct = (msg: number) => nfnlMsgType(NFNL_SUBSYS_CTNETLINK, msg);
const NEW_FLAGS = NLM_F_CREATE | NLM_F_EXCL;

interface Spec {
  id?: number;
  family?: Family;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  mark?: number;
  status?: number;
  timeout?: number;
  /** Writes something malformed after the good attributes. */
  corrupt?: boolean;
}

function addresses(s: Spec): { src: string; dst: string } {
  if ((s.family ?? 'ipv4') === 'ipv6')
    return { src: s.src ?? '2001:db8::1', dst: s.dst ?? '2001:db8::2' };
  return { src: s.src ?? '198.18.0.1', dst: s.dst ?? '198.18.0.2' };
}

/** The payload of a ctnetlink entry message, as the kernel writes it. */
function entryPayload(s: Spec): (w: NetlinkWriter) => void {
  return (w) => {
    const family = s.family ?? 'ipv4';
    w.nfgenmsg(family === 'ipv4' ? AF_INET : AF_INET6);
    const { src, dst } = addresses(s);
    const sport = s.sport ?? 40000;
    const dport = s.dport ?? 53;
    writeTuple(
      w,
      C.CTA_TUPLE_ORIG,
      { src, dst, proto: 17, srcPort: sport, dstPort: dport },
      family,
    );
    writeTuple(
      w,
      C.CTA_TUPLE_REPLY,
      { src: dst, dst: src, proto: 17, srcPort: dport, dstPort: sport },
      family,
    );
    w.u32be(C.CTA_STATUS, s.status ?? C.STATUS_BITS.CONFIRMED);
    if (s.timeout !== undefined) w.u32be(C.CTA_TIMEOUT, s.timeout);
    if (s.mark !== undefined) w.u32be(C.CTA_MARK, s.mark);
    if (s.id !== undefined) w.u32be(C.CTA_ID, s.id);
    // CTA_MARK of 2 bytes: the decoder refuses it.
    if (s.corrupt) w.u16be(C.CTA_MARK, 1);
  };
}

type Kind = 'new' | 'update' | 'destroy';

function eventMessage(kind: Kind, s: Spec, flags?: number): Uint8Array {
  return dataMessage({
    type: ct(kind === 'destroy' ? C.IPCTNL_MSG_CT_DELETE : C.IPCTNL_MSG_CT_NEW),
    flags: flags ?? (kind === 'new' ? NEW_FLAGS : 0),
    seq: 0,
    payload: entryPayload(s),
  });
}

function event(kind: Kind, s: Spec = {}) {
  return multicast(eventMessage(kind, s));
}

function setup(options: { family?: Family } = {}) {
  const kernel = new FakeKernel();
  const events = ConntrackEvents.open({ transport: kernel, ...options });
  const seen: ConntrackEvent[] = [];
  const errors: Error[] = [];
  const losses: LostInfo[] = [];
  events.onEvent((e) => seen.push(e));
  events.onError((e) => errors.push(e));
  events.onLost((l) => losses.push(l));
  opened.push(events);
  return { kernel, events, seen, errors, losses };
}

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

describe('ConntrackEvents: event types', () => {
  it('classifies CT_NEW by NLM_F_CREATE|NLM_F_EXCL and CT_DELETE as destroy', () => {
    const m = (type: number, flags: number) => ({ type, flags });
    expect(eventTypeOf(m(ct(C.IPCTNL_MSG_CT_NEW), NEW_FLAGS))).toBe('new');
    expect(eventTypeOf(m(ct(C.IPCTNL_MSG_CT_NEW), NEW_FLAGS | NLM_F_MULTI))).toBe('new');
    // Only one of the two flags is not a new entry.
    expect(eventTypeOf(m(ct(C.IPCTNL_MSG_CT_NEW), NLM_F_CREATE))).toBe('update');
    expect(eventTypeOf(m(ct(C.IPCTNL_MSG_CT_NEW), NLM_F_EXCL))).toBe('update');
    expect(eventTypeOf(m(ct(C.IPCTNL_MSG_CT_NEW), 0))).toBe('update');
    expect(eventTypeOf(m(ct(C.IPCTNL_MSG_CT_DELETE), 0))).toBe('destroy');
    expect(eventTypeOf(m(ct(C.IPCTNL_MSG_CT_DELETE), NEW_FLAGS))).toBe('destroy');
    // Not conntrack entry events.
    expect(eventTypeOf(m(ct(C.IPCTNL_MSG_CT_GET), 0))).toBeUndefined();
    expect(eventTypeOf(m(nfnlMsgType(NFNL_SUBSYS_CTNETLINK_EXP, 0), NEW_FLAGS))).toBeUndefined();
    expect(eventTypeOf(m(2 /* NLMSG_ERROR */, 0))).toBeUndefined();
  });

  it('decodes multicast messages into typed events, in order', async () => {
    const { kernel, events, seen, errors } = setup();
    kernel.reply(
      event('new', { id: 1, mark: 7 }),
      multicast(eventMessage('update', { id: 1, mark: 8 }, NLM_F_CREATE)),
      event('update', { id: 1, mark: 9 }),
      event('destroy', { id: 1 }),
    );
    await kernel.idle();
    expect(errors).toEqual([]);
    expect(seen.map((e) => [e.type, e.flow.id, e.flow.mark])).toEqual([
      ['new', 1, 7],
      ['update', 1, 8],
      ['update', 1, 9],
      ['destroy', 1, undefined],
    ]);
    const flow = seen[0]!.flow;
    expect(flow.family).toBe('ipv4');
    expect(flow.orig).toEqual({
      src: '198.18.0.1',
      dst: '198.18.0.2',
      proto: 17,
      srcPort: 40000,
      dstPort: 53,
    });
    expect(flow.reply).toEqual({
      src: '198.18.0.2',
      dst: '198.18.0.1',
      proto: 17,
      srcPort: 53,
      dstPort: 40000,
    });
    expect(flow.statusFlags).toEqual(['CONFIRMED']);
    expect(events.counters).toMatchObject({ received: 4, lost: 0, errors: 0 });
  });

  it('ignores messages that are not conntrack entry events', async () => {
    const { kernel, seen, errors } = setup();
    kernel.reply(
      multicast(
        dataMessage({
          type: nfnlMsgType(NFNL_SUBSYS_CTNETLINK_EXP, 0),
          flags: NEW_FLAGS,
          seq: 0,
          payload: entryPayload({}),
        }),
      ),
      multicast(
        dataMessage({
          type: ct(C.IPCTNL_MSG_CT_GET_STATS),
          seq: 0,
          payload: (w) => w.nfgenmsg(AF_INET),
        }),
      ),
      event('new', { id: 2 }),
    );
    await kernel.idle();
    expect(errors).toEqual([]);
    expect(seen.map((e) => e.flow.id)).toEqual([2]);
  });

  it('opens a socket on the groups asked for, with a 64 MiB buffer by default', () => {
    const opens: NativeOpenOptions[] = [];
    const binding = fakeBinding(opens);
    ConntrackEvents.open({ socket: { binding } }).close();
    ConntrackEvents.open({
      socket: { binding },
      events: ['destroy', 'new'],
      rcvbuf: 4096,
      netns: 'x',
    }).close();
    expect(DEFAULT_EVENT_RCVBUF).toBe(64 * 1024 * 1024);
    expect(opens[0]).toMatchObject({
      rcvbuf: 64 * 1024 * 1024,
      groups: [1, 2, 3],
      noEnobufs: false,
    });
    expect(opens[1]).toMatchObject({ rcvbuf: 4096, groups: [3, 1], netns: 'x' });
    expect(() => ConntrackEvents.open({ socket: { binding }, events: [] })).toThrow(RangeError);
    expect(() => ConntrackEvents.open({ socket: { binding }, rcvbuf: 0 })).toThrow(RangeError);
  });

  it('unref() and ref() reach the socket; close() is idempotent', () => {
    const calls: string[] = [];
    const binding = fakeBinding([], calls);
    const events = ConntrackEvents.open({ socket: { binding } });
    events.unref();
    events.ref();
    events.close();
    events.close();
    expect(calls).toEqual(['unref', 'ref', 'close']);
    expect(events.closed).toBe(true);
  });
});

describe('ConntrackEvents: losses, filters and errors', () => {
  it('reports ENOBUFS and truncated datagrams as lost, and keeps going', async () => {
    const { kernel, events, seen, losses } = setup();
    kernel.reply(
      event('new', { id: 1 }),
      lost(),
      event('new', { id: 2 }),
      truncated(20, eventMessage('new', { id: 3 })),
    );
    kernel.reply(event('new', { id: 4 }));
    await kernel.idle();
    expect(losses).toEqual([{ reason: 'enobufs' }, { reason: 'enobufs' }]);
    expect(events.counters.lost).toBe(2);
    expect(seen.map((e) => e.flow.id)).toEqual([1, 2, 4]);
  });

  it('filters by family in user space', async () => {
    const { kernel, events, seen } = setup({ family: 'ipv6' });
    kernel.reply(
      event('new', { id: 1 }),
      event('new', { id: 2, family: 'ipv6' }),
      event('destroy', { id: 3 }),
    );
    await kernel.idle();
    expect(seen.map((e) => [e.flow.id, e.flow.family, e.flow.orig.src])).toEqual([
      [2, 'ipv6', '2001:db8::1'],
    ]);
    expect(events.counters).toMatchObject({ received: 1, filtered: 2 });
  });

  it('reports a message that does not decode, and delivers the rest of its datagram', async () => {
    const { kernel, events, seen, errors } = setup();
    kernel.reply(
      multicast(eventMessage('new', { id: 1, corrupt: true }), eventMessage('new', { id: 2 })),
      // An unknown address family.
      multicast(
        dataMessage({
          type: ct(C.IPCTNL_MSG_CT_NEW),
          flags: NEW_FLAGS,
          seq: 0,
          payload: (w) => w.nfgenmsg(7),
        }),
      ),
      // No room for an nfgenmsg.
      multicast(dataMessage({ type: ct(C.IPCTNL_MSG_CT_DELETE), seq: 0 })),
      event('new', { id: 3 }),
    );
    await kernel.idle();
    expect(seen.map((e) => e.flow.id)).toEqual([2, 3]);
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toBeInstanceOf(NetlinkDecodeError);
    expect(events.counters).toMatchObject({ received: 2, errors: 3 });
  });

  it('reports a datagram whose framing is broken, and keeps reading', async () => {
    const { kernel, seen, errors } = setup();
    const bad = eventMessage('new', { id: 1 });
    new DataView(bad.buffer, bad.byteOffset).setUint32(0, 4096, true); // nlmsg_len overruns the datagram
    kernel.reply(multicast(bad), event('new', { id: 2 }));
    await kernel.idle();
    expect(errors[0]).toBeInstanceOf(NetlinkDecodeError);
    expect(seen.map((e) => e.flow.id)).toEqual([2]);
  });

  it('a listener that throws is reported, other listeners and later events still run', async () => {
    const { kernel, events, seen, errors } = setup();
    const boom = new Error('listener failed');
    events.onEvent(() => {
      throw boom;
    });
    kernel.reply(event('new', { id: 1 }), event('new', { id: 2 }));
    await kernel.idle();
    expect(seen).toHaveLength(2);
    expect(errors).toEqual([boom, boom]);
  });

  it('unsubscribes listeners', async () => {
    const { kernel, events } = setup();
    const fn = vi.fn();
    const off = events.onEvent(fn);
    kernel.reply(event('new', { id: 1 }));
    await kernel.idle();
    off();
    kernel.reply(event('new', { id: 2 }));
    await kernel.idle();
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('ConntrackEvents: async iteration', () => {
  it('yields events in order and ends on close()', async () => {
    const { kernel, events } = setup();
    const got: number[] = [];
    const done = (async () => {
      for await (const e of events) got.push(e.flow.id!);
    })();
    kernel.reply(event('new', { id: 1 }), event('update', { id: 1 }), event('destroy', { id: 1 }));
    await kernel.idle();
    events.close();
    await done;
    expect(got).toEqual([1, 1, 1]);
  });

  it('bounds the queue of a slow consumer: drops, counts and reports lost', async () => {
    const { kernel, events, losses } = setup();
    const it = events.iterate({ maxQueued: 3 });
    for (let i = 1; i <= 10; i++) kernel.reply(event('new', { id: i }));
    await kernel.idle();
    expect(it.dropped).toBe(7);
    expect(events.counters.dropped).toBe(7);
    // One report per run of drops.
    expect(losses).toEqual([{ reason: 'overflow' }]);
    const first: number[] = [];
    for (let i = 0; i < 3; i++) first.push((await it.next()).value!.flow.id!);
    expect(first).toEqual([1, 2, 3]);
    // Caught up: new events are queued again; a new overflow is a new report.
    for (let i = 11; i <= 15; i++) kernel.reply(event('new', { id: i }));
    await kernel.idle();
    expect(losses).toHaveLength(2);
    const next: number[] = [];
    for (let i = 0; i < 3; i++) next.push((await it.next()).value!.flow.id!);
    expect(next).toEqual([11, 12, 13]);
    expect(it.dropped).toBe(9);
    // Listeners saw everything.
    expect(events.counters.received).toBe(15);
    await it.return!();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it('a broken-off iteration stops queueing', async () => {
    const { kernel, events, losses } = setup();
    const it = events.iterate({ maxQueued: 1 });
    kernel.reply(event('new', { id: 1 }));
    for await (const e of it) {
      expect(e.flow.id).toBe(1);
      break;
    }
    kernel.reply(event('new', { id: 2 }), event('new', { id: 3 }));
    await kernel.idle();
    // Unregistered: nothing queued, nothing dropped.
    expect(it.dropped).toBe(0);
    expect(losses).toEqual([]);
    expect(await it.next()).toEqual({ value: undefined, done: true });
    expect(events.counters.received).toBe(3);
  });

  it('ends with an abort signal', async () => {
    const { kernel, events } = setup();
    const ac = new AbortController();
    const it = events.iterate({ signal: ac.signal });
    const pending = it.next();
    ac.abort();
    expect(await pending).toEqual({ value: undefined, done: true });
    kernel.reply(event('new', { id: 1 }));
    await kernel.idle();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it('a fatal read error ends iterators with that error', async () => {
    const { kernel, events, errors } = setup();
    const it = events.iterate();
    const failure = Object.assign(new Error('EBADF, recvmmsg'), { code: 'EBADF' });
    kernel.reply(event('new', { id: 1 }), readError(failure));
    await kernel.idle();
    expect((await it.next()).value!.flow.id).toBe(1);
    await expect(it.next()).rejects.toBe(failure);
    expect(errors).toEqual([failure]);
    // A later iterator learns of it too.
    await expect(events.iterate().next()).rejects.toBe(failure);
  });
});

// ---------------------------------------------------------------------------
// ConntrackMirror over two fake kernels: one for dumps, one for events.

/** A dump reply part: the entry message as the kernel sends it in a dump. */
function dumpPart(req: NetlinkMessage, s: Spec): Uint8Array {
  return dataMessage({
    type: ct(C.IPCTNL_MSG_CT_NEW),
    flags: NLM_F_MULTI,
    seq: req.seq,
    portId: 0,
    payload: entryPayload(s),
  });
}

function mirrorSetup() {
  const eventsKernel = new FakeKernel();
  const dumpKernel = new FakeKernel();
  /** Dump requests waiting for the test to answer them. */
  const dumps: NetlinkMessage[] = [];
  dumpKernel.handler = (req) => {
    if (req.type === ct(C.IPCTNL_MSG_CT_GET) && (req.flags & NLM_F_DUMP) === NLM_F_DUMP)
      dumps.push(req);
    return [];
  };
  const events = ConntrackEvents.open({ transport: eventsKernel });
  const conntrack = Conntrack.open({ transport: dumpKernel });
  opened.push(events, conntrack);
  const answer = (entries: Spec[]) => {
    const req = dumps.shift();
    if (!req) throw new Error('no dump pending');
    dumpKernel.reply(datagram(...entries.map((s) => dumpPart(req, s)), doneMessage(req)));
  };
  return { eventsKernel, dumpKernel, dumps, events, conntrack, answer };
}

function ids(m: ConntrackMirror): number[] {
  return [...m.flows.values()].map((f) => f.id!).sort((a, b) => a - b);
}

describe('ConntrackMirror (fake kernel)', () => {
  it('a resync lets go of the events queued before its dump (a NEW whose DESTROY was lost stays out)', async () => {
    const f = mirrorSetup();
    const started = ConntrackMirror.start({ events: f.events, conntrack: f.conntrack });
    await f.dumpKernel.waitForSent(1);
    f.answer([{ id: 1, sport: 1 }]);
    const mirror = await started;
    opened.push(mirror);
    expect(ids(mirror)).toEqual([1]);
    // The kernel dropped events (the DESTROY of 2 among them); the NEW of 2, sent before,
    // is still queued when the loss report starts the resync.
    f.eventsKernel.reply(lost(), event('new', { id: 2, sport: 2 }));
    await f.dumpKernel.waitForSent(2);
    // 2 is gone by the time of the dump; 3 is created during it.
    f.eventsKernel.reply(event('new', { id: 3, sport: 3 }));
    await f.eventsKernel.idle();
    f.answer([{ id: 1, sport: 1 }]);
    await f.dumpKernel.idle();
    expect(mirror.stale).toBe(false);
    expect(ids(mirror)).toEqual([1, 3]);
  });

  it('subscribes before dumping and applies the events that arrived during the dump', async () => {
    const f = mirrorSetup();
    const started = ConntrackMirror.start({ events: f.events, conntrack: f.conntrack });
    await f.dumpKernel.waitForSent(1);
    // During the dump: 3 is created, 1 destroyed, 2 re-marked.
    f.eventsKernel.reply(
      event('new', { id: 3, sport: 3 }),
      event('destroy', { id: 1 }),
      event('update', { id: 2, sport: 2, mark: 5 }),
    );
    await f.eventsKernel.idle();
    // The dump still saw 1; it also repeats 2 (dumps may repeat entries).
    f.answer([
      { id: 1, sport: 1 },
      { id: 2, sport: 2, timeout: 30 },
      { id: 2, sport: 2, timeout: 30 },
    ]);
    const mirror = await started;
    opened.push(mirror);
    expect(ids(mirror)).toEqual([2, 3]);
    expect(mirror.size).toBe(2);
    // The update merged into the dumped entry.
    expect(mirror.flows.get('id:2')).toMatchObject({ mark: 5, timeout: 30 });
    expect(mirror.stale).toBe(false);
  });

  it('emits add, update and remove for live events; remove keeps what was known', async () => {
    const f = mirrorSetup();
    const started = ConntrackMirror.start({ events: f.events, conntrack: f.conntrack });
    await f.dumpKernel.waitForSent(1);
    f.answer([]);
    const mirror = await started;
    opened.push(mirror);
    const changes: MirrorChange[] = [];
    mirror.onChange((c) => changes.push(c));
    f.eventsKernel.reply(
      event('new', { id: 9, timeout: 30 }),
      event('update', { id: 9, mark: 1 }),
      event('destroy', { id: 9 }),
      event('destroy', { id: 10 }),
    );
    await f.eventsKernel.idle();
    expect(changes.map((c) => [c.type, c.flow.id, c.flow.mark, c.flow.timeout])).toEqual([
      ['add', 9, undefined, 30],
      ['update', 9, 1, 30],
      ['remove', 9, 1, 30],
    ]);
    expect(mirror.size).toBe(0);
  });

  it('resynchronises after ENOBUFS: diff, then the buffered events', async () => {
    const f = mirrorSetup();
    const started = ConntrackMirror.start({ events: f.events, conntrack: f.conntrack });
    await f.dumpKernel.waitForSent(1);
    f.answer([
      { id: 1, sport: 1 },
      { id: 2, sport: 2 },
      { id: 3, sport: 3, mark: 1 },
    ]);
    const mirror = await started;
    opened.push(mirror);
    const changes: [string, number][] = [];
    const resyncs = vi.fn();
    mirror.onChange((c) => changes.push([c.type, c.flow.id!]));
    mirror.onResync(resyncs);
    f.eventsKernel.reply(lost());
    await f.eventsKernel.idle();
    expect(mirror.stale).toBe(true);
    expect(f.dumps).toHaveLength(1);
    // Another loss while the dump runs is coalesced into one follow-up.
    f.eventsKernel.reply(lost(), lost(), event('new', { id: 5, sport: 5 }));
    await f.eventsKernel.idle();
    expect(changes).toEqual([]); // buffered
    // 1 vanished, 2 unchanged (a different timeout is not a change), 3 re-marked, 4 appeared.
    f.answer([
      { id: 2, sport: 2, timeout: 99 },
      { id: 3, sport: 3, mark: 2 },
      { id: 4, sport: 4 },
    ]);
    await f.dumpKernel.idle();
    expect(resyncs).toHaveBeenCalledWith({ added: 1, updated: 1, removed: 1 });
    expect(changes).toEqual([
      ['remove', 1],
      ['update', 3],
      ['add', 4],
      ['add', 5],
    ]);
    // Losses during that dump: one more pass, not two.
    expect(mirror.stale).toBe(true);
    await f.dumpKernel.waitForSent(2);
    expect(f.dumps).toHaveLength(1);
    f.answer([
      { id: 2, sport: 2 },
      { id: 3, sport: 3, mark: 2 },
      { id: 4, sport: 4 },
      { id: 5, sport: 5 },
    ]);
    await f.dumpKernel.idle();
    expect(resyncs).toHaveBeenCalledTimes(2);
    expect(resyncs).toHaveBeenLastCalledWith({ added: 0, updated: 0, removed: 0 });
    expect(mirror.stale).toBe(false);
    expect(ids(mirror)).toEqual([2, 3, 4, 5]);
    await f.dumpKernel.idle();
    expect(f.dumps).toHaveLength(0);
    expect(mirror.counters).toMatchObject({ resyncs: 2, lost: 3 });
  });

  it('resync() calls made while one runs share one follow-up', async () => {
    const f = mirrorSetup();
    const started = ConntrackMirror.start({ events: f.events, conntrack: f.conntrack });
    await f.dumpKernel.waitForSent(1);
    f.answer([]);
    const mirror = await started;
    opened.push(mirror);
    const a = mirror.resync();
    const b = mirror.resync();
    const c = mirror.resync();
    expect(b).toBe(c);
    await f.dumpKernel.waitForSent(2);
    f.answer([{ id: 1 }]);
    expect(await a).toEqual({ added: 1, updated: 0, removed: 0 });
    await f.dumpKernel.waitForSent(3);
    f.answer([{ id: 1 }]);
    expect(await b).toEqual({ added: 0, updated: 0, removed: 0 });
    expect(f.dumpKernel.sentMessages).toHaveLength(3);
  });

  it('a full dump buffer drops events and schedules another pass', async () => {
    const f = mirrorSetup();
    const started = ConntrackMirror.start({
      events: f.events,
      conntrack: f.conntrack,
      maxBuffered: 2,
    });
    await f.dumpKernel.waitForSent(1);
    f.eventsKernel.reply(event('new', { id: 1 }), event('new', { id: 2 }), event('new', { id: 3 }));
    await f.eventsKernel.idle();
    f.answer([]);
    const mirror = await started;
    opened.push(mirror);
    expect(mirror.counters.overflowed).toBe(1);
    expect(ids(mirror)).toEqual([1, 2]);
    expect(mirror.stale).toBe(true);
    await f.dumpKernel.waitForSent(2);
    f.answer([{ id: 1 }, { id: 2 }, { id: 3 }]);
    await f.dumpKernel.idle();
    expect(ids(mirror)).toEqual([1, 2, 3]);
    expect(mirror.stale).toBe(false);
  });

  it("ignores an iterator's overflow, and goes stale when the event socket fails", async () => {
    const f = mirrorSetup();
    const started = ConntrackMirror.start({ events: f.events, conntrack: f.conntrack });
    await f.dumpKernel.waitForSent(1);
    f.answer([]);
    const mirror = await started;
    opened.push(mirror);
    const errors: Error[] = [];
    mirror.onError((e) => errors.push(e));
    const it = f.events.iterate({ maxQueued: 1 });
    f.eventsKernel.reply(event('new', { id: 1 }), event('new', { id: 2 }));
    await f.eventsKernel.idle();
    expect(it.dropped).toBe(1);
    expect(mirror.counters.lost).toBe(0);
    expect(f.dumpKernel.sentMessages).toHaveLength(1);
    expect(ids(mirror)).toEqual([1, 2]);
    expect(mirror.stale).toBe(false);
    const failure = new Error('EBADF, recvmmsg');
    f.eventsKernel.reply(readError(failure));
    await f.eventsKernel.idle();
    expect(errors).toEqual([failure]);
    expect(mirror.stale).toBe(true);
  });

  it('a failed resync is reported and the buffered events still applied', async () => {
    const f = mirrorSetup();
    const started = ConntrackMirror.start({ events: f.events, conntrack: f.conntrack });
    await f.dumpKernel.waitForSent(1);
    f.answer([{ id: 1 }]);
    const mirror = await started;
    opened.push(mirror);
    const resync = mirror.resync();
    await f.dumpKernel.waitForSent(2);
    f.eventsKernel.reply(event('new', { id: 2 }));
    await f.eventsKernel.idle();
    const req = f.dumps.shift()!;
    f.dumpKernel.reply(datagram(doneMessage(req, { errno: 12 /* ENOMEM */ })));
    await expect(resync).rejects.toMatchObject({ code: 'ENOMEM' });
    expect(ids(mirror)).toEqual([1, 2]);
  });

  it('keys flows without CTA_ID by family, tuple and zone', () => {
    const base: Flow = {
      family: 'ipv4',
      orig: { src: '198.18.0.1', dst: '198.18.0.2', proto: 17, srcPort: 1, dstPort: 2 },
      reply: { src: '198.18.0.2', dst: '198.18.0.1', proto: 17, srcPort: 2, dstPort: 1 },
      status: 8,
      statusFlags: ['CONFIRMED'],
    };
    expect(flowKey({ ...base, id: 5 })).toBe('id:5');
    expect(flowKey(base)).not.toBe(flowKey({ ...base, zone: 1 }));
    expect(flowKey(base)).toBe(flowKey({ ...base, mark: 3 }));
    expect(flowChanged(base, { ...base, timeout: 3 })).toBe(false);
    expect(flowChanged(base, { ...base, mark: 3 })).toBe(true);
    expect(
      flowChanged({ ...base, labels: Uint8Array.of(1) }, { ...base, labels: Uint8Array.of(1) }),
    ).toBe(false);
    expect(
      flowChanged(
        { ...base, countersOrig: { packets: 1n, bytes: 2n } },
        { ...base, countersOrig: { packets: 2n, bytes: 2n } },
      ),
    ).toBe(true);
  });
});

/** A native binding double that records what the sockets were opened with. */
function fakeBinding(opens: NativeOpenOptions[], calls: string[] = []): NativeBinding {
  class FakeSocket extends StubNativeSocket {
    constructor(protocol: number, options?: NativeOpenOptions) {
      super(protocol, options);
      opens.push(options ?? {});
    }
    override ref() {
      calls.push('ref');
    }
    override unref() {
      calls.push('unref');
    }
    override close() {
      if (!this.closed) calls.push('close');
      this.closed = true;
    }
  }
  return bindingWith(FakeSocket);
}
