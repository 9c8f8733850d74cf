import { describe, expect, it, vi } from 'vitest';
import type {
  ConntrackMirror,
  Flow as CtFlow,
  MirrorChange,
} from '../../../helper/conntrack/index.js';
import { NetlinkError } from '../../../helper/netlink/errors.js';
import { FlowTable, toModelFlow } from '../../../helper/daemon/flows.js';
import type { FlowDelta } from '../../../helper/daemon/ports.js';
import { silentLogger } from '../../../helper/daemon/log.js';
import { requestTuple, tupleKey } from '../../../helper/daemon/request.js';
import type { DecisionRecord } from '../../../helper/daemon/ports.js';
import type { Flow, ProcessInfo } from '../../../helper/protocol/model.js';
import * as v from 'valibot';
import { Flow as FlowSchema } from '../../../helper/protocol/model.js';
import { SockDiag } from '../../../helper/attribution/sock-diag.js';
import { SOCK_DESTROY } from '../../../helper/attribution/constants.js';
import { Conntrack } from '../../../helper/conntrack/client.js';
import { SockDiagDestroyer } from '../../../helper/daemon/adapters.js';
import type { Logger } from '../../../helper/daemon/log.js';
import { datagram, errorMessage, FakeKernel } from '../../support/fake-kernel.js';
import { FakeConntrackTable } from '../../support/fake-conntrack.js';
import { methods } from '../../../helper/protocol/messages.js';

function tcpFlow(id: number, sport: number): CtFlow {
  return {
    family: 'ipv4',
    orig: { src: '198.18.0.1', dst: '198.18.0.2', proto: 6, srcPort: sport, dstPort: 8080 },
    // SNAT on the reply side, so reply fields are not just the swapped original.
    reply: { src: '198.18.0.2', dst: '203.0.113.7', proto: 6, srcPort: 8080, dstPort: 61000 },
    status: 0x18e,
    statusFlags: [
      'SEEN_REPLY',
      'ASSURED',
      'CONFIRMED',
      'SRC_NAT',
    ] as unknown as CtFlow['statusFlags'],
    timeout: 431999,
    mark: 1,
    id,
    tcp: { state: 'ESTABLISHED', stateNumber: 3 },
    countersOrig: { packets: 5n, bytes: 300n },
    countersReply: { packets: 4n, bytes: 9_007_199_254_740_993n },
    timestampStart: 1_700_000_000_123_456_789n,
    labels: Uint8Array.from([0b101, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]),
  };
}

const PROC: ProcessInfo = {
  pid: 42,
  ppid: 1,
  startTime: 99,
  comm: 'curl',
  exe: '/usr/bin/curl',
  cmdline: ['curl', 'http://198.18.0.2:8080/'],
  uid: 1000,
  gid: 1000,
  user: 'alice',
  unit: null,
  container: null,
  appId: null,
};

describe('toModelFlow', () => {
  it('maps every field, valid against the protocol schema', () => {
    const f = toModelFlow(tcpFlow(77, 40000), { host: 'example.test', process: PROC });
    expect(f).toEqual({
      id: 77,
      family: 'ipv4',
      protocol: 'tcp',
      protocolNumber: 6,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      sport: 40000,
      dport: 8080,
      replySrc: '198.18.0.2',
      replyDst: '203.0.113.7',
      replySport: 8080,
      replyDport: 61000,
      state: 'ESTABLISHED',
      status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'SRC_NAT'],
      mark: 1,
      zone: null,
      labels: [0, 2, 127],
      timeout: 431999,
      start: 1_700_000_000_123,
      bytesOut: 300,
      bytesIn: Number.MAX_SAFE_INTEGER, // clamped: the model's counts are safe integers
      packetsOut: 5,
      packetsIn: 4,
      host: 'example.test',
      process: PROC,
    });
    expect(v.safeParse(FlowSchema, f).success).toBe(true);
  });

  it('stateless protocols and missing attributes give nulls; no CTA_ID gives null', () => {
    const udp: CtFlow = {
      family: 'ipv6',
      orig: { src: '2001:db8::1', dst: '2001:db8::2', proto: 17, srcPort: 1, dstPort: 53 },
      reply: { src: '2001:db8::2', dst: '2001:db8::1', proto: 17, srcPort: 53, dstPort: 1 },
      status: 0,
      statusFlags: [],
      id: 5,
      zone: 3,
    };
    expect(toModelFlow(udp, undefined)).toMatchObject({
      protocol: 'udp',
      state: null,
      mark: 0,
      zone: 3,
      labels: [],
      timeout: null,
      start: null,
      bytesOut: null,
      host: null,
      process: null,
    });
    const { id: _id, ...noId } = udp;
    expect(toModelFlow(noId, undefined)).toBeNull();
  });
});

/** A stand-in for ConntrackMirror: a map, change listeners and a conntrack with delete/update
 * (or a real one, `real`). */
function fakeMirror(initial: CtFlow[] = [], real?: Conntrack) {
  const flows = new Map<string, CtFlow>(initial.map((f) => [`id:${f.id}`, f]));
  const listeners = new Set<(c: MirrorChange) => void>();
  const conntrack = { delete: vi.fn(async () => undefined), update: vi.fn(async () => undefined) };
  const mirror = {
    flows,
    get size() {
      return flows.size;
    },
    get: (k: string) => flows.get(k),
    onChange: (l: (c: MirrorChange) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    onError: () => () => undefined,
    conntrack: real ?? conntrack,
    close: vi.fn(),
  };
  const emit = (type: MirrorChange['type'], flow: CtFlow): void => {
    if (type === 'remove') flows.delete(`id:${flow.id}`);
    else flows.set(`id:${flow.id}`, flow);
    for (const l of listeners) l({ type, flow });
  };
  return { mirror: mirror as unknown as ConntrackMirror, conntrack, emit };
}

function decision(sport: number, host: string, action: 'allow' | 'deny' = 'allow'): DecisionRecord {
  return {
    request: {
      time: 0,
      direction: 'outbound',
      family: 'ipv4',
      protocol: 'tcp',
      protocolNumber: 6,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      sport,
      dport: 8080,
      icmpType: null,
      icmpCode: null,
      inIfindex: null,
      outIfindex: 2,
      host,
      uid: 1000,
      process: PROC,
    },
    action,
    reason: 'no-gui',
    ruleId: null,
    decidedAt: 0,
  };
}

describe('FlowTable', () => {
  it('publishes a snapshot, then deltas enriched from the decision of the same tuple', async () => {
    const { mirror, emit } = fakeMirror([tcpFlow(1, 1000)]);
    const events: FlowDelta[] = [];
    const ended: Flow[] = [];
    const endKeys: string[] = [];
    const table = await FlowTable.start({
      mirror,
      log: silentLogger,
      onEnded: (f, key) => {
        ended.push(f);
        endKeys.push(key);
      },
      publisher: { publish: (topic, data) => topic === 'flows' && events.push(data as FlowDelta) },
    });
    expect(events).toEqual([
      { kind: 'snapshot', flows: [expect.objectContaining({ id: 1, host: null })] },
    ]);
    table.record(decision(2000, 'b.test'));
    table.record(decision(3000, 'denied.test', 'deny'));
    emit('add', tcpFlow(2, 2000));
    emit('add', tcpFlow(3, 3000));
    expect(events[1]).toEqual({
      kind: 'added',
      flow: expect.objectContaining({ id: 2, sport: 2000, host: 'b.test', process: PROC }),
    });
    // A denied decision never names a flow.
    expect(events[2]).toEqual({
      kind: 'added',
      flow: expect.objectContaining({ id: 3, host: null }),
    });
    emit('update', { ...tcpFlow(2, 2000), mark: 2 });
    expect(events[3]).toEqual({
      kind: 'updated',
      flow: expect.objectContaining({ id: 2, mark: 2, host: 'b.test' }),
    });
    // A decision that comes after its flow appeared updates it at once.
    table.record(decision(1000, 'late.test'));
    expect(events[4]).toEqual({
      kind: 'updated',
      flow: expect.objectContaining({ id: 1, host: 'late.test' }),
    });
    emit('remove', tcpFlow(2, 2000));
    expect(events[5]).toEqual({ kind: 'removed', id: 2 });
    // The last state, with its counters and the decision's names, for the history.
    expect(ended).toEqual([
      expect.objectContaining({ id: 2, bytesOut: 300, host: 'b.test', mark: 1 }),
    ]);
    // With the key its decision was recorded under (the history finds the entry by it).
    expect(endKeys).toEqual([tupleKey(requestTuple(decision(2000, 'b.test').request))]);
    expect(table.snapshot().map((f) => f.id)).toEqual([1, 3]);
    expect(table.get(1)?.host).toBe('late.test');
    table.close();
  });

  it('keeps at most maxPending decisions waiting for their flow (oldest dropped)', async () => {
    const { mirror, emit } = fakeMirror();
    const table = await FlowTable.start({ mirror, log: silentLogger, maxPending: 2 });
    table.record(decision(1, 'one.test'));
    table.record(decision(2, 'two.test'));
    table.record(decision(3, 'three.test'));
    emit('add', tcpFlow(11, 1));
    emit('add', tcpFlow(12, 2));
    emit('add', tcpFlow(13, 3));
    expect(table.snapshot().map((f) => f.host)).toEqual([null, 'two.test', 'three.test']);
  });

  it('kill destroys the TCP socket, then deletes the entry by tuple and id; ENOENT is not an error', async () => {
    const { mirror, conntrack } = fakeMirror([tcpFlow(9, 4000)]);
    const destroy = vi.fn(async () => 1);
    const table = await FlowTable.start({
      mirror,
      log: silentLogger,
      socketDestroyer: { destroy },
    });
    await expect(table.kill(9)).resolves.toEqual({ conntrackDeleted: true, socketsDestroyed: 1 });
    expect(destroy).toHaveBeenCalledWith({
      family: 'ipv4',
      protocol: 6,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      sport: 4000,
      dport: 8080,
    });
    expect(conntrack.delete).toHaveBeenCalledWith({
      orig: tcpFlow(9, 4000).orig,
      family: 'ipv4',
      id: 9,
    });
    conntrack.delete.mockRejectedValueOnce(new NetlinkError(2, 'conntrack delete'));
    await expect(table.kill(9)).resolves.toEqual({ conntrackDeleted: false, socketsDestroyed: 1 });
    conntrack.delete.mockRejectedValueOnce(new NetlinkError(1, 'conntrack delete'));
    await expect(table.kill(9)).rejects.toMatchObject({ code: 'EPERM' });
    await expect(table.kill(10)).rejects.toMatchObject({
      name: 'DaemonError',
      code: 'UNKNOWN_FLOW',
    });
  });

  it('kill deletes the entry even when the kernel cannot destroy sockets (EOPNOTSUPP), and says why', async () => {
    const flow = tcpFlow(9, 4000);
    const table = new FakeConntrackTable([
      { family: 'ipv4', orig: flow.orig, reply: flow.reply, status: flow.status, id: 9 },
    ]);
    const ct = Conntrack.open({ transport: table.transport() });
    // A kernel without CONFIG_INET_DIAG_DESTROY answers SOCK_DESTROY with EOPNOTSUPP.
    const destroys: number[] = [];
    const diag = SockDiag.open({
      transport: new FakeKernel((req) => {
        destroys.push(req.type);
        return [datagram(errorMessage(req, 95))];
      }),
    });
    const warnings: string[] = [];
    const log: Logger = {
      ...silentLogger,
      warn: (_c, message, fields) => void warnings.push(`${message} ${String(fields?.reason)}`),
    };
    const { mirror } = fakeMirror([flow], ct);
    const flows = await FlowTable.start({
      mirror,
      log,
      socketDestroyer: new SockDiagDestroyer(diag),
    });
    try {
      const result = await flows.kill(9);
      expect(destroys).toEqual([SOCK_DESTROY]);
      expect(result).toMatchObject({ conntrackDeleted: true, socketsDestroyed: null });
      expect(result.socketError).toMatch(/^EOPNOTSUPP: .*CONFIG_INET_DIAG_DESTROY/);
      expect(table.ids()).toEqual([]);
      // What the UI gets back from flows.kill.
      expect(v.parse(methods['flows.kill'].result, result)).toEqual(result);
      expect(warnings).toEqual([
        `flow 9: the local socket could not be destroyed ${result.socketError}`,
      ]);
    } finally {
      flows.close();
      diag.close();
      ct.close();
    }
  });

  it('setMark and setLabels update by key with masks', async () => {
    const { mirror, conntrack } = fakeMirror([tcpFlow(9, 4000)]);
    const table = await FlowTable.start({ mirror, log: silentLogger });
    await table.setMark(9, 0x2, 0x3);
    expect(conntrack.update).toHaveBeenLastCalledWith(
      expect.objectContaining({ id: 9, mark: 0x2, markMask: 0x3 }),
    );
    await table.setLabels(9, [1, 5]);
    const call = conntrack.update.mock.calls.at(-1) as unknown as [
      { labels: number[]; labelsMask: number[] },
    ];
    expect(call[0].labels).toEqual([1, 5]);
    expect(call[0].labelsMask).toHaveLength(128);
    await expect(table.setMark(8, 1)).rejects.toMatchObject({ code: 'UNKNOWN_FLOW' });
  });
});

describe('FlowTable.attributeExisting', () => {
  it('names the flows no decision named, within its bounds, and publishes them', async () => {
    const published: FlowDelta[] = [];
    const { mirror } = fakeMirror([tcpFlow(1, 40001), tcpFlow(2, 40002), tcpFlow(3, 40003)]);
    const table = await FlowTable.start({
      mirror,
      log: silentLogger,
      publisher: {
        publish: (topic, data) => topic === 'flows' && published.push(data as FlowDelta),
      },
    });
    // Flow 1 was named by a decision of this helper: it is not asked about again.
    table.record(decision(40001, 'one.test'));
    const asked: number[] = [];
    const attributor = {
      attribute: async (t: { sport: number | null; inbound?: boolean }) => {
        asked.push(t.sport ?? -1);
        // Flow 2's owner is found; flow 3 fails once (counted) and has none inbound.
        if (t.sport === 40003 && !t.inbound) throw new Error('EIO');
        return { uid: 1000, process: t.sport === 40002 ? PROC : null };
      },
    };
    const r = await table.attributeExisting(attributor, { max: 10, deadlineMs: 60_000 });
    expect(r).toEqual({ flows: 3, tried: 2, named: 1, failed: 1 });
    expect(asked).toEqual([40002, 40003, 40003]);
    expect(table.get(2)?.process).toEqual(PROC);
    expect(table.get(3)?.process).toBeNull();
    expect(published.at(-1)).toMatchObject({ kind: 'updated', flow: { id: 2, process: PROC } });
    // The count bound: at most `max` flows are asked about.
    const { mirror: big } = fakeMirror([tcpFlow(5, 40005), tcpFlow(6, 40006)]);
    const other = await FlowTable.start({ mirror: big, log: silentLogger });
    const once = await other.attributeExisting(
      { attribute: async () => ({ uid: null, process: null }) },
      { max: 1, deadlineMs: 60_000 },
    );
    expect(once.tried).toBe(1);
    table.close();
    other.close();
  });
});
