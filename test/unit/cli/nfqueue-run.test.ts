/** The accept/watch loops over the fake kernel: verdicts, --count, batching, stop, summary. */
import { describe, expect, it } from 'vitest';
import { nfAttributes, type NetlinkMessage } from '../../../helper/netlink/message.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import * as Q from '../../../helper/nfqueue/constants.js';
import { NFQNL_PACKET_TYPE } from '../../../helper/nfqueue/decode.js';
import {
  NFQNL_CONFIG_TYPE,
  NFQNL_VERDICT_BATCH_TYPE,
  NFQNL_VERDICT_TYPE,
} from '../../../helper/nfqueue/encode.js';
import { runNfqueue } from '../../../helper/cli/nfqueue.js';
import { recomputeChecksums } from '../../../helper/packet/checksum.js';
import { ackMessage, datagram, FakeKernel, lost } from '../../support/fake-kernel.js';

interface Config {
  cmd?: number;
  maxlen?: number;
  mask?: number;
  flags?: number;
}

function readConfig(msg: NetlinkMessage): Config {
  const c: Config = {};
  const ad = nfAttributes(msg);
  while (ad.next()) {
    if (ad.type === Q.NFQA_CFG_CMD) c.cmd = ad.view.getUint8(ad.valueOffset);
    else if (ad.type === Q.NFQA_CFG_QUEUE_MAXLEN) c.maxlen = ad.u32be();
    else if (ad.type === Q.NFQA_CFG_MASK) c.mask = ad.u32be();
    else if (ad.type === Q.NFQA_CFG_FLAGS) c.flags = ad.u32be();
  }
  return c;
}

function kernel(datagramsPerWakeup = 1) {
  const configs: Config[] = [];
  const k = new FakeKernel({
    datagramsPerWakeup,
    slotSize: 80 * 1024,
    handler: (req) => {
      if (req.type !== NFQNL_CONFIG_TYPE) return [];
      configs.push(readConfig(req));
      return [ackMessage(req)];
    },
  });
  return { k, configs };
}

/** An IPv4 UDP datagram 127.0.0.1:sport -> 127.0.0.1:9000. */
function udpPacket(sport: number, data: string): Uint8Array {
  const d = Buffer.from(data);
  const b = new Uint8Array(28 + d.length);
  const v = new DataView(b.buffer);
  b[0] = 0x45;
  v.setUint16(2, b.length);
  b[8] = 64;
  b[9] = 17;
  b.set([127, 0, 0, 1], 12);
  b.set([127, 0, 0, 1], 16);
  v.setUint16(20, sport);
  v.setUint16(22, 9000);
  v.setUint16(24, 8 + d.length);
  b.set(d, 28);
  recomputeChecksums(b);
  return b;
}

function packetMessage(id: number, payload: Uint8Array, queue = 5): Uint8Array {
  const hdr = new Uint8Array(7);
  new DataView(hdr.buffer).setUint32(0, id, false);
  new DataView(hdr.buffer).setUint16(4, 0x0800, false);
  hdr[6] = Q.NF_INET_LOCAL_OUT;
  const w = new NetlinkWriter();
  w.beginMessage(NFQNL_PACKET_TYPE, 0, 0, 0).nfgenmsg(2, 0, queue);
  w.bytes(Q.NFQA_PACKET_HDR, hdr);
  w.u32be(Q.NFQA_IFINDEX_OUTDEV, 1);
  w.u32be(Q.NFQA_UID, 1000);
  w.u32be(Q.NFQA_GID, 1000);
  w.bytes(Q.NFQA_PAYLOAD, payload);
  return w.endMessage().finish();
}

function verdicts(k: FakeKernel) {
  return k.sentMessages
    .filter((m) => m.type === NFQNL_VERDICT_TYPE || m.type === NFQNL_VERDICT_BATCH_TYPE)
    .map((m) => {
      const ad = nfAttributes(m);
      let verdict = -1;
      let id = -1;
      while (ad.next()) {
        if (ad.type === Q.NFQA_VERDICT_HDR) {
          verdict = ad.view.getUint32(ad.valueOffset, false);
          id = ad.view.getUint32(ad.valueOffset + 4, false);
        }
      }
      return { batch: m.type === NFQNL_VERDICT_BATCH_TYPE, verdict, id };
    });
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

describe('nfqueue watch over a fake kernel', () => {
  it('prints --count JSON lines, gives the verdict, then unbinds and summarizes', async () => {
    const { k, configs } = kernel();
    const c = capture();
    const run = runNfqueue(
      [
        'watch',
        '--queue',
        '5',
        '--json',
        '--count',
        '2',
        '--verdict',
        'drop',
        '--uid-gid',
        '--fail-open',
      ],
      c.io,
      { transport: k },
    );
    await until(() => c.err().includes('watching queue 5'));
    k.reply(
      datagram(packetMessage(1, udpPacket(40001, 'a'))),
      datagram(packetMessage(2, udpPacket(40002, 'bb'))),
      datagram(packetMessage(3, udpPacket(40003, 'ccc'))),
    );
    expect(await run).toBe(0);
    const lines = c
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.id, l.sport, l.dport, l.payloadLength, l.uid, l.verdict])).toEqual([
      [1, 40001, 9000, 1, 1000, 'drop'],
      [2, 40002, 9000, 2, 1000, 'drop'],
    ]);
    expect(lines[0]).toMatchObject({ queue: 5, hook: 'LOCAL_OUT', outdev: 1, protocol: 'udp' });
    // The third packet arrived while closing: the same verdict (drop), by close().
    expect(verdicts(k).every((v) => v.verdict === Q.NF_DROP)).toBe(true);
    expect(configs[0]).toEqual({ cmd: Q.NFQNL_CFG_CMD_BIND });
    const flags = configs.find((x) => x.mask !== undefined);
    expect(flags).toMatchObject({
      mask: Q.NFQA_CFG_F_FAIL_OPEN | Q.NFQA_CFG_F_UID_GID,
      flags: Q.NFQA_CFG_F_FAIL_OPEN | Q.NFQA_CFG_F_UID_GID,
    });
    // No conntrack glue probe for the CLI.
    expect(configs.filter((x) => (x.mask ?? 0) & Q.NFQA_CFG_F_CONNTRACK)).toEqual([]);
    expect(configs.at(-1)).toEqual({ cmd: Q.NFQNL_CFG_CMD_UNBIND });
    expect(c.err()).toMatch(
      /queue 5: 2 packets shown, received=\d+ verdicts=\d+ accepted=0 dropped=\d+\n$/,
    );
  });

  it('prints text lines by default and stops on the abort signal', async () => {
    const { k, configs } = kernel();
    const c = capture();
    const stop = new AbortController();
    const run = runNfqueue(['watch', '-q', '5'], c.io, { transport: k, signal: stop.signal });
    await until(() => c.err().includes('watching queue 5'));
    k.reply(datagram(packetMessage(9, udpPacket(40009, 'hello'))));
    await until(() => c.out().length > 0);
    stop.abort();
    expect(await run).toBe(0);
    expect(c.out()).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} q=5 id=9 LOCAL_OUT in=- out=1 uid=1000 gid=1000 udp 127\.0\.0\.1:40009 -> 127\.0\.0\.1:9000 length=33 payload=5 accept\n$/,
    );
    expect(verdicts(k)).toEqual([{ batch: false, verdict: Q.NF_ACCEPT, id: 9 }]);
    expect(configs.at(-1)).toEqual({ cmd: Q.NFQNL_CFG_CMD_UNBIND });
    expect(c.err()).toMatch(/1 packet shown, received=1 verdicts=1 accepted=1 dropped=0\n$/);
  });
});

describe('nfqueue accept over a fake kernel', () => {
  it('--batch: one batch verdict for the packets of one wakeup; --max-len configures the queue', async () => {
    const { k, configs } = kernel(4);
    const c = capture();
    const run = runNfqueue(
      ['accept', '--queue', '5', '--batch', '--count', '4', '--max-len', '4096'],
      c.io,
      {
        transport: k,
      },
    );
    await until(() => c.err().includes('accepting every packet of queue 5'));
    k.reply(...[1, 2, 3, 4].map((id) => datagram(packetMessage(id, udpPacket(40000 + id, 'x')))));
    expect(await run).toBe(0);
    expect(configs[0]).toMatchObject({ cmd: Q.NFQNL_CFG_CMD_BIND, maxlen: 4096 });
    expect(verdicts(k)).toEqual([{ batch: true, verdict: Q.NF_ACCEPT, id: 4 }]);
    expect(c.out()).toBe('');
    expect(c.err()).toMatch(
      /queue 5: received=4 verdicts=4 accepted=4 messages=1 batch_messages=1 datagrams=1 enobufs=0\n$/,
    );
  });

  it('without --batch: one verdict message per packet', async () => {
    const { k, configs } = kernel(3);
    const c = capture();
    const run = runNfqueue(['accept', '--queue', '5', '--count', '3'], c.io, { transport: k });
    await until(() => c.err().includes('one verdict per packet'));
    k.reply(...[7, 8, 9].map((id) => datagram(packetMessage(id, udpPacket(40000 + id, 'x')))));
    expect(await run).toBe(0);
    expect(configs[1]!.maxlen).toBeUndefined();
    expect(verdicts(k)).toEqual(
      [7, 8, 9].map((id) => ({ batch: false, verdict: Q.NF_ACCEPT, id })),
    );
    expect(c.err()).toMatch(
      /received=3 verdicts=3 accepted=3 messages=3 batch_messages=0 datagrams=1 /,
    );
  });

  it('runs until stopped, reporting kernel-side losses once', async () => {
    const { k } = kernel();
    const c = capture();
    const stop = new AbortController();
    const run = runNfqueue(['accept', '--queue', '5'], c.io, { transport: k, signal: stop.signal });
    await until(() => c.err().includes('accepting'));
    k.reply(lost(), lost(), datagram(packetMessage(1, udpPacket(1, 'x'))));
    await until(() => verdicts(k).length === 1);
    stop.abort();
    expect(await run).toBe(0);
    expect(c.err().match(/\[LOST; repeats are counted\]/g)).toHaveLength(1);
    expect(c.err()).toMatch(/received=1 verdicts=1 .*enobufs=2 errors=LOST:2\n$/);
  });
});
