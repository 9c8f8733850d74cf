import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NfQueue, type NfQueueOptions, type NfQueuePacket } from '../../helper/nfqueue/queue.js';
import { NfQueueGroup } from '../../helper/nfqueue/group.js';
import { Conntrack } from '../../helper/conntrack/client.js';
import { labelBits } from '../../helper/conntrack/decode.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NF_INET_LOCAL_OUT } from '../../helper/nfqueue/constants.js';
import { parsePacket } from '../../helper/packet/parse.js';
import { recomputeChecksums, verifyChecksums } from '../../helper/packet/checksum.js';
import { kernelHas } from '../support/kernel.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { Agent, sleep } from '../support/udp-agent.js';
import { vethPair } from '../support/veth.js';

function missing(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  for (const bin of ['iptables', 'ip6tables', 'iptables-legacy']) {
    if (spawnSync(bin, ['-V']).error) return `${bin} is not installed`;
  }
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping NFQUEUE root tests: ${skip}`);

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** Packet counters of the rules of a chain, in order (iptables -L -v -x). */
function ruleCounters(ns: TestNetns, bin: string, table: string, chain: string): number[] {
  const text = ns.exec(bin, ['-t', table, '-L', chain, '-v', '-x', '-n']);
  return text
    .split('\n')
    .slice(2)
    .filter((l) => l.trim() !== '')
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

function udpInCsumErrors(ns: TestNetns, v6 = false): number {
  if (v6) {
    const line = ns
      .exec('cat', ['/proc/net/snmp6'])
      .split('\n')
      .find((l) => l.startsWith('Udp6InCsumErrors'));
    return Number(line?.trim().split(/\s+/)[1] ?? 0);
  }
  const lines = ns
    .exec('cat', ['/proc/net/snmp'])
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const [names, values] = [lines[0]!.split(/\s+/), lines[1]!.split(/\s+/)];
  return Number(values[names.indexOf('InCsumErrors')]);
}

/** Replaces the UDP data of an IP packet and fixes lengths and checksums. */
function withUdpData(packet: Uint8Array, data: string): Uint8Array {
  const p = parsePacket(packet);
  const head = packet.subarray(0, p.udp!.payloadOffset);
  const out = new Uint8Array(head.length + Buffer.byteLength(data));
  out.set(head);
  out.set(Buffer.from(data), head.length);
  recomputeChecksums(out);
  return out;
}

describe.skipIf(skip)('NFQUEUE with iptables (nft backend), IPv4 and IPv6 over loopback', () => {
  let ns: TestNetns;
  let agent: Agent;
  const queues: NfQueue[] = [];

  const openQueue = async (options: Omit<NfQueueOptions, 'netns'>): Promise<NfQueue> => {
    const q = await NfQueue.open({ netns: ns.name, ...options });
    queues.push(q);
    return q;
  };
  const ipt = (...args: string[]) => ns.exec('iptables', args);
  const ip6t = (...args: string[]) => ns.exec('ip6tables', args);

  beforeAll(async () => {
    ns = new TestNetns('pcl-nfq');
    agent = new Agent(ns);
    await agent.ready();
  });
  afterEach(async () => {
    for (const q of queues.splice(0)) await q.close();
    for (const bin of ['iptables', 'ip6tables']) {
      for (const table of ['filter', 'mangle']) ns.exec(bin, ['-t', table, '-F']);
    }
  });
  afterAll(() => {
    agent?.stop();
    ns?.delete();
  });

  it('delivers every attribute this kernel sends for a locally generated UDP packet; accept lets it through', async () => {
    await agent.listen('ipv4', 9000);
    ipt(
      '-t',
      'mangle',
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9000',
      '-j',
      'MARK',
      '--set-mark',
      '0x11',
    );
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9000', '-j', 'NFQUEUE', '--queue-num', '1');
    const q = await openQueue({ queue: 1, flags: { uidGid: true, secctx: true, gso: true } });
    expect(q.flagReport.refused).toEqual([]);
    const seen: ReturnType<NfQueuePacket['toObject']>[] = [];
    q.onPacket((p) => {
      seen.push(p.toObject());
      p.accept();
    });
    await agent.send('ipv4', 9000, 'hello');
    await until(() => agent.received('ipv4', 9000).length === 1);
    expect(agent.received('ipv4', 9000)).toEqual(['hello']);
    expect(seen).toHaveLength(1);
    const p = seen[0]!;
    const loIndex = Number(/^(\d+):/.exec(ns.exec('ip', ['-o', 'link', 'show', 'lo']))![1]);
    expect(p).toMatchObject({
      queue: 1,
      family: NFPROTO_IPV4,
      hwProtocol: 0x0800,
      hook: NF_INET_LOCAL_OUT,
      outdev: loIndex,
      mark: 0x11,
      uid: 0,
      gid: 0,
    });
    expect(p.indev).toBeUndefined();
    // This kernel: no timestamp on LOCAL_OUT (skb->tstamp is 0), no hwaddr without an input device,
    // no secctx without an LSM label, CAP_LEN absent when nothing was cut; lo leaves the checksum partial.
    expect(p.timestamp).toBeUndefined();
    expect(p.hwaddr).toBeUndefined();
    expect(p.secctx).toBeUndefined();
    expect(p.skbInfo?.csumNotReady).toBe(true);
    const parsed = parsePacket(p.payload!);
    expect(parsed.ip).toMatchObject({ src: '127.0.0.1', dst: '127.0.0.1', protocol: 17 });
    expect(parsed.udp).toMatchObject({ dstPort: 9000, payloadLength: 5 });
    expect(Buffer.from(p.payload!.subarray(parsed.udp!.payloadOffset)).toString()).toBe('hello');
    const stats = await q.procStats();
    expect(stats).toMatchObject({ queue: 1, copyMode: 2, copyRange: 65531, queueTotal: 0 });
    expect(stats!.lastId).toBeGreaterThanOrEqual(1);
    expect(q.counters).toMatchObject({ received: 1, accepted: 1 });
  });

  it('drop stops the datagram', async () => {
    await agent.listen('ipv4', 9002);
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9002', '-j', 'NFQUEUE', '--queue-num', '2');
    const q = await openQueue({ queue: 2 });
    q.onPacket((p) =>
      Buffer.from(p.payload!).toString().endsWith('keep') ? p.accept() : p.drop(),
    );
    await agent.send('ipv4', 9002, 'please drop', 'keep');
    await until(() => agent.received('ipv4', 9002).length === 1);
    await sleep(200);
    expect(agent.received('ipv4', 9002)).toEqual(['keep']);
    expect(q.counters).toMatchObject({ received: 2, accepted: 1, dropped: 1 });
  });

  it('a mark given with the verdict is seen by a later -m mark rule', async () => {
    await agent.listen('ipv4', 9003);
    ipt(
      '-t',
      'mangle',
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9003',
      '-j',
      'MARK',
      '--set-mark',
      '0x11',
    );
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9003', '-j', 'NFQUEUE', '--queue-num', '3');
    ipt(
      '-t',
      'mangle',
      '-A',
      'POSTROUTING',
      '-p',
      'udp',
      '--dport',
      '9003',
      '-m',
      'mark',
      '--mark',
      '0x22',
    );
    ipt(
      '-t',
      'mangle',
      '-A',
      'POSTROUTING',
      '-p',
      'udp',
      '--dport',
      '9003',
      '-m',
      'mark',
      '--mark',
      '0x11',
    );
    ipt('-A', 'INPUT', '-p', 'udp', '--dport', '9003', '-m', 'mark', '--mark', '0x22');
    const q = await openQueue({ queue: 3 });
    q.onPacket((p) => {
      expect(p.mark).toBe(0x11);
      p.accept({ mark: 0x22 });
    });
    await agent.send('ipv4', 9003, 'marked');
    await until(() => agent.received('ipv4', 9003).length === 1);
    expect(ruleCounters(ns, 'iptables', 'mangle', 'POSTROUTING')).toEqual([1, 0]);
    expect(ruleCounters(ns, 'iptables', 'filter', 'INPUT')).toEqual([1]); // the mark survives lo
  });

  it('a modified UDP payload arrives changed with a valid checksum; a broken checksum is dropped by UDP', async () => {
    await agent.listen('ipv4', 9004);
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9004', '-j', 'NFQUEUE', '--queue-num', '4');
    const q = await openQueue({ queue: 4 });
    let broken = 0;
    q.onPacket((p) => {
      const text = Buffer.from(p.payload!.subarray(28)).toString();
      const changed = withUdpData(p.payload!, text === 'hello' ? 'HELLO, WORLD!' : 'bad sum');
      expect(verifyChecksums(changed)).toEqual({ ipv4Header: true, transport: true });
      if (text !== 'hello') {
        changed[changed.length - 1]! ^= 0xff; // corrupt the data after checksumming
        broken++;
      }
      p.accept({ payload: changed });
    });
    const before = udpInCsumErrors(ns);
    await agent.send('ipv4', 9004, 'hello');
    await until(() => agent.received('ipv4', 9004).length === 1);
    expect(agent.received('ipv4', 9004)).toEqual(['HELLO, WORLD!']);
    await agent.send('ipv4', 9004, 'corrupt me');
    await until(() => udpInCsumErrors(ns) === before + 1);
    expect(broken).toBe(1);
    expect(agent.received('ipv4', 9004)).toEqual(['HELLO, WORLD!']);
  });

  it('the deadline gives the default verdict when nobody answers', async () => {
    await agent.listen('ipv4', 9005);
    await agent.listen('ipv4', 9006);
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9005', '-j', 'NFQUEUE', '--queue-num', '5');
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9006', '-j', 'NFQUEUE', '--queue-num', '6');
    const dropper = await openQueue({ queue: 5, deadlineMs: 150, defaultVerdict: 'drop' });
    const accepter = await openQueue({ queue: 6, deadlineMs: 150, defaultVerdict: 'accept' });
    const t0 = Date.now();
    await agent.send('ipv4', 9005, 'ignored, then dropped');
    await agent.send('ipv4', 9006, 'ignored, then accepted');
    await until(() => agent.received('ipv4', 9006).length === 1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    await until(() => dropper.counters.deadline === 1);
    await sleep(100);
    expect(agent.received('ipv4', 9005)).toEqual([]);
    expect(dropper.counters).toMatchObject({ deadline: 1, dropped: 1 });
    expect(accepter.counters).toMatchObject({ deadline: 1, accepted: 1 });
    expect((await dropper.procStats())?.queueTotal).toBe(0);
  });

  it('--queue-bypass passes traffic when no listener is bound; without it the kernel drops', async () => {
    await agent.listen('ipv4', 9007);
    await agent.listen('ipv4', 9008);
    ipt(
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9007',
      '-j',
      'NFQUEUE',
      '--queue-num',
      '70',
      '--queue-bypass',
    );
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9008', '-j', 'NFQUEUE', '--queue-num', '71');
    await agent.send('ipv4', 9007, 'bypassed');
    await agent.send('ipv4', 9008, 'lost');
    await until(() => agent.received('ipv4', 9007).length === 1);
    await sleep(150);
    expect(agent.received('ipv4', 9008)).toEqual([]);
  });

  it('repeat re-runs the hook (the queue rule skips the new mark); queue(n) hands the packet to another queue', async () => {
    await agent.listen('ipv4', 9009);
    await agent.listen('ipv4', 9010);
    ipt(
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9009',
      '-m',
      'mark',
      '!',
      '--mark',
      '0x33',
      '-j',
      'NFQUEUE',
      '--queue-num',
      '9',
    );
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9010', '-j', 'NFQUEUE', '--queue-num', '10');
    const q9 = await openQueue({ queue: 9 });
    let repeats = 0;
    q9.onPacket((p) => {
      repeats++;
      p.repeat({ mark: 0x33 });
    });
    const q10 = await openQueue({ queue: 10 });
    const q11 = await openQueue({ queue: 11 });
    q10.onPacket((p) => p.queue(11));
    const at11: string[] = [];
    q11.onPacket((p) => {
      at11.push(Buffer.from(p.payload!.subarray(28)).toString());
      p.accept();
    });
    await agent.send('ipv4', 9009, 'again');
    await agent.send('ipv4', 9010, 'moved');
    await until(
      () => agent.received('ipv4', 9009).length === 1 && agent.received('ipv4', 9010).length === 1,
    );
    expect(repeats).toBe(1);
    expect(at11).toEqual(['moved']);
    expect(q10.counters.queued).toBe(1);
  });

  it('batches mixing accept and drop give each packet its own verdict', async () => {
    await agent.listen('ipv4', 9011);
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9011', '-j', 'NFQUEUE', '--queue-num', '12');
    const q = await openQueue({ queue: 12, batchVerdicts: true });
    const held: NfQueuePacket[] = [];
    q.onPacket((p) => held.push(p.copy()));
    const texts = ['a1', 'a2', 'd3', 'a4', 'a5', 'd6', 'd7', 'a8'];
    await agent.send('ipv4', 9011, ...texts);
    await until(() => held.length === texts.length);
    for (const p of held) {
      const text = Buffer.from(p.payload!.subarray(28)).toString();
      if (text.startsWith('a')) p.accept();
      else p.drop();
    }
    await until(() => agent.received('ipv4', 9011).length === 5);
    await sleep(100);
    expect(agent.received('ipv4', 9011).sort()).toEqual(['a1', 'a2', 'a4', 'a5', 'a8']);
    expect(q.counters).toMatchObject({ accepted: 5, dropped: 3, kernelErrors: 0 });
    expect(q.counters.batchMessages).toBeGreaterThanOrEqual(2); // [a1 a2] [d6 d7] at least
    expect(q.counters.verdictMessages).toBeLessThan(8);
  });

  it('FAIL_OPEN accepts packets beyond a full queue; without it the kernel drops them', async () => {
    await agent.listen('ipv4', 9012);
    await agent.listen('ipv4', 9013);
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9012', '-j', 'NFQUEUE', '--queue-num', '13');
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9013', '-j', 'NFQUEUE', '--queue-num', '14');
    const open = await openQueue({
      queue: 13,
      maxQueueLength: 1,
      flags: { failOpen: true },
      deadlineMs: 60_000,
    });
    const closed = await openQueue({
      queue: 14,
      maxQueueLength: 1,
      flags: { failOpen: false },
      deadlineMs: 60_000,
    });
    expect(open.flagReport.applied).toEqual(['failOpen']);
    await agent.send('ipv4', 9012, 'o1', 'o2', 'o3', 'o4');
    await agent.send('ipv4', 9013, 'c1', 'c2', 'c3', 'c4');
    await until(() => agent.received('ipv4', 9012).length === 3);
    await sleep(100);
    expect(agent.received('ipv4', 9012)).toEqual(['o2', 'o3', 'o4']); // o1 waits in the queue
    expect(agent.received('ipv4', 9013)).toEqual([]);
    expect(await closed.procStats()).toMatchObject({ queueTotal: 1, queueDropped: 3 });
    expect(await open.procStats()).toMatchObject({ queueTotal: 1, queueDropped: 0 });
    await open.close({ verdict: 'accept' });
    await closed.close({ verdict: 'accept' });
    await until(
      () => agent.received('ipv4', 9012).length === 4 && agent.received('ipv4', 9013).length === 1,
    );
  });

  it('the CONNTRACK flag: NFQA_CT and connmark/label verdicts where the kernel has the glue; a clear refusal where not', async () => {
    const glue = kernelHas('CONFIG_NETFILTER_NETLINK_GLUE_CT');
    await agent.listen('ipv4', 9014);
    // A connlabel rule makes the namespace keep labels, and a conntrack match makes it
    // track connections at all (the kernel attaches no entry until some rule needs one).
    ipt(
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9014',
      '-m',
      'connlabel',
      '--label',
      '5',
      '-j',
      'ACCEPT',
    );
    ipt(
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9014',
      '-m',
      'conntrack',
      '--ctstate',
      'NEW',
      '-j',
      'NFQUEUE',
      '--queue-num',
      '15',
    );
    const q = await openQueue({ queue: 15, flags: { conntrack: true, uidGid: true } });
    const refused = q.flagReport.refused.find((r) => r.flag === 'conntrack');
    console.info(
      `NFQUEUE: kernel config has the conntrack glue: ${glue}; the queue: ${
        refused ? `refuses NFQA_CFG_F_CONNTRACK (${refused.code})` : 'CONNTRACK flag applied'
      }`,
    );
    expect(q.conntrackGlue).toBe(glue);
    if (glue) expect(q.flagReport.applied).toEqual(expect.arrayContaining(['conntrack', 'uidGid']));
    else {
      expect(refused?.code).toBe('EOPNOTSUPP');
      expect(q.flagReport.applied).toEqual(['uidGid']);
    }
    const seen: { ct?: { dport?: number; mark?: number; id?: number }; error?: unknown }[] = [];
    q.onPacket((p) => {
      const ct = p.ct ? { dport: p.ct.orig.dstPort, mark: p.ct.mark ?? 0, id: p.ct.id } : undefined;
      let error: unknown;
      try {
        const labels = new Uint8Array(16);
        labels[0] = 1 << 5; // label bit 5: the bitmap is host-endian, bit 5 is in byte 0
        p.accept({ connmark: 5, connlabels: { labels } });
      } catch (e) {
        error = e;
        p.accept();
      }
      seen.push({ ...(ct ? { ct } : {}), ...(error !== undefined ? { error } : {}) });
    });
    await agent.send('ipv4', 9014, 'tracked?');
    await until(() => agent.received('ipv4', 9014).length === 1);
    expect(seen).toHaveLength(1);
    if (!glue) {
      expect(seen[0]!.ct).toBeUndefined();
      expect(seen[0]!.error).toMatchObject({ code: 'UNSUPPORTED' });
      return;
    }
    // NFQA_CT decoded from a real packet: the new entry of this very flow.
    expect(seen[0]!.error).toBeUndefined();
    expect(seen[0]!.ct).toMatchObject({ dport: 9014, mark: 0 });
    // The verdict's connmark and label are on that entry.
    const ct = Conntrack.open({ netns: ns.name });
    try {
      const flows = [];
      for await (const f of ct.list({ orig: { proto: 17 } })) {
        if (f.orig.dstPort === 9014) flows.push(f);
      }
      expect(flows).toHaveLength(1);
      expect(flows[0]!.id).toBe(seen[0]!.ct!.id);
      expect(flows[0]!.mark).toBe(5);
      expect(labelBits(flows[0]!.labels!)).toEqual([5]);
    } finally {
      ct.close();
    }
  });

  it('copy range cuts the payload and reports the full length in capLen; copy mode meta sends none', async () => {
    await agent.listen('ipv4', 9016);
    await agent.listen('ipv4', 9017);
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9016', '-j', 'NFQUEUE', '--queue-num', '18');
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9017', '-j', 'NFQUEUE', '--queue-num', '19');
    const cut = await openQueue({ queue: 18, copyRange: 24 });
    const meta = await openQueue({ queue: 19, copyMode: 'meta' });
    const got: { len?: number; capLen?: number; queue: number }[] = [];
    for (const q of [cut, meta]) {
      q.onPacket((p) => {
        got.push({ len: p.payload?.length, capLen: p.capLen, queue: p.queueNumber });
        p.accept();
      });
    }
    await agent.send('ipv4', 9016, 'twenty bytes of text');
    await agent.send('ipv4', 9017, 'meta only');
    await until(
      () => agent.received('ipv4', 9016).length === 1 && agent.received('ipv4', 9017).length === 1,
    );
    expect(got).toEqual([
      { len: 24, capLen: 48, queue: 18 },
      { len: undefined, capLen: undefined, queue: 19 }, // this kernel sends CAP_LEN only with a cut payload
    ]);
    expect(await cut.procStats()).toMatchObject({ copyMode: 2, copyRange: 24 });
    expect(await meta.procStats()).toMatchObject({ copyMode: 1, copyRange: 0 });
  });

  it('a second socket cannot bind a queue that is taken', async () => {
    await openQueue({ queue: 16 });
    await expect(NfQueue.open({ queue: 16, netns: ns.name })).rejects.toMatchObject({
      code: 'CONFIG_FAILED',
      details: { errnoName: 'EPERM' },
    });
  });

  it('a missing namespace is a typed error', async () => {
    await expect(NfQueue.open({ queue: 1, netns: 'pcl-no-such-netns' })).rejects.toMatchObject({
      name: 'NfQueueError',
      code: 'CONFIG_FAILED',
      details: { errnoName: 'ENOENT' },
    });
  });

  it('packets as an async iterator', async () => {
    await agent.listen('ipv4', 9015);
    ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '9015', '-j', 'NFQUEUE', '--queue-num', '17');
    const q = await openQueue({ queue: 17 });
    const consumer = (async () => {
      const got: string[] = [];
      for await (const p of q) {
        await sleep(1); // an asynchronous decision
        got.push(Buffer.from(p.payload!.subarray(28)).toString());
        p.accept();
        if (got.length === 3) break;
      }
      return got;
    })();
    await agent.send('ipv4', 9015, 'x', 'y', 'z');
    expect(await consumer).toEqual(['x', 'y', 'z']);
    await until(() => agent.received('ipv4', 9015).length === 3);
  });

  it('fan-out: --queue-balance over three queues delivers every packet exactly once', async () => {
    await agent.listen('ipv4', 9020, '0.0.0.0');
    ipt(
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9020',
      '-j',
      'NFQUEUE',
      '--queue-balance',
      '21:23',
    );
    const group = await NfQueueGroup.open({ queues: { from: 21, to: 23 }, netns: ns.name });
    try {
      const byQueue = new Map<number, string[]>();
      group.onPacket((p) => {
        const text = Buffer.from(p.payload!.subarray(28)).toString();
        byQueue.set(p.queueNumber, [...(byQueue.get(p.queueNumber) ?? []), text]);
        p.accept();
      });
      // The balance hash covers addresses and protocol only: spread over destinations in 127/8.
      const texts: string[] = [];
      for (let i = 1; i <= 12; i++) {
        texts.push(`to ${i}`);
        await agent.sendTo('ipv4', `127.0.0.${i}`, 9020, `to ${i}`);
      }
      await until(() => agent.received('ipv4', 9020).length === 12);
      const all = [...byQueue.values()].flat();
      expect(all.sort()).toEqual([...texts].sort());
      expect(byQueue.size).toBeGreaterThanOrEqual(2);
      expect([...byQueue.keys()].every((q) => q >= 21 && q <= 23)).toBe(true);
      expect(group.counters).toMatchObject({ received: 12, accepted: 12 });
      expect((await group.procStats()).map((s) => s?.queue)).toEqual([21, 22, 23]);
    } finally {
      await group.close();
    }
  });

  it('TCP: the SYN is queued with its flags and options; accept lets the connection through', async () => {
    await agent.tcpListen('ipv4', 9300);
    ipt(
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '--dport',
      '9300',
      '--syn',
      '-j',
      'NFQUEUE',
      '--queue-num',
      '24',
    );
    const q = await openQueue({ queue: 24, flags: { uidGid: true } });
    const seen: ReturnType<typeof parsePacket>[] = [];
    q.onPacket((p) => {
      seen.push(parsePacket(p.copyPayload()!));
      p.accept();
    });
    await agent.tcpSend('ipv4', 9300, 'over tcp');
    await until(() => agent.tcpReceived('ipv4', 9300).length === 1);
    expect(agent.tcpReceived('ipv4', 9300)).toEqual(['over tcp']);
    expect(seen).toHaveLength(1); // only the SYN
    const tcp = seen[0]!.tcp!;
    expect(tcp).toMatchObject({ dstPort: 9300, flags: { syn: true, ack: false } });
    expect(tcp.mss).toBeGreaterThan(0);
    expect(tcp.sackPermitted).toBe(true);
    expect(tcp.timestamp).toBeDefined();
  });

  it('ICMP and ICMPv6 errors the kernel sends are queued and parse with the offending datagram', async () => {
    ipt('-A', 'OUTPUT', '-p', 'icmp', '-j', 'NFQUEUE', '--queue-num', '25');
    ip6t(
      '-A',
      'OUTPUT',
      '-p',
      'icmpv6',
      '--icmpv6-type',
      'destination-unreachable',
      '-j',
      'NFQUEUE',
      '--queue-num',
      '25',
    );
    const q = await openQueue({ queue: 25 });
    const seen: { v: number; type: number; code: number; embeddedDport: number }[] = [];
    q.onPacket((p) => {
      const parsed = parsePacket(p.payload!);
      const icmp = (parsed.icmp ?? parsed.icmpv6)!;
      const inner = parsePacket(p.payload!.subarray(icmp.embeddedOffset!));
      seen.push({
        v: parsed.ip.version,
        type: icmp.type,
        code: icmp.code,
        embeddedDport: inner.udp!.dstPort,
      });
      p.accept();
    });
    await agent.send('ipv4', 9399, 'nobody listens');
    await agent.send('ipv6', 9399, 'nobody listens');
    await until(() => seen.length === 2);
    expect(seen).toEqual([
      { v: 4, type: 3, code: 3, embeddedDport: 9399 },
      { v: 6, type: 1, code: 4, embeddedDport: 9399 },
    ]);
  });

  it('IPv6 over ::1 with ip6tables: attributes, accept, drop and a modified payload', async () => {
    await agent.listen('ipv6', 9100);
    ip6t(
      '-t',
      'mangle',
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9100',
      '-j',
      'MARK',
      '--set-mark',
      '0x66',
    );
    ip6t('-A', 'OUTPUT', '-p', 'udp', '--dport', '9100', '-j', 'NFQUEUE', '--queue-num', '20');
    const q = await openQueue({ queue: 20, flags: { uidGid: true } });
    const seen: {
      family: number;
      hw: number;
      mark?: number;
      uid?: number;
      src: string;
      sport: number;
    }[] = [];
    q.onPacket((p) => {
      const parsed = parsePacket(p.payload!);
      seen.push({
        family: p.family,
        hw: p.hwProtocol,
        mark: p.mark,
        uid: p.uid,
        src: parsed.ip.src,
        sport: parsed.udp!.srcPort,
      });
      const text = Buffer.from(p.payload!.subarray(parsed.udp!.payloadOffset)).toString();
      if (text === 'drop6') p.drop();
      else if (text === 'change6')
        p.accept({ payload: withUdpData(p.payload!, 'changed over IPv6') });
      else p.accept();
    });
    const before = udpInCsumErrors(ns, true);
    await agent.send('ipv6', 9100, 'plain6', 'drop6', 'change6');
    await until(() => agent.received('ipv6', 9100).length === 2);
    await sleep(100);
    expect(agent.received('ipv6', 9100)).toEqual(['plain6', 'changed over IPv6']);
    expect(udpInCsumErrors(ns, true)).toBe(before);
    expect(seen).toHaveLength(3);
    expect(seen[0]).toMatchObject({
      family: NFPROTO_IPV6,
      hw: 0x86dd,
      mark: 0x66,
      uid: 0,
      src: '::1',
    });
  });
});

describe.skipIf(skip)('NFQUEUE with iptables-legacy', () => {
  let ns: TestNetns;
  let agent: Agent;

  beforeAll(async () => {
    ns = new TestNetns('pcl-nfql');
    agent = new Agent(ns);
    await agent.ready();
  });
  afterAll(() => {
    agent?.stop();
    ns?.delete();
  });

  it('accept, drop and mark through a legacy xt NFQUEUE rule', async () => {
    const legacy = (...args: string[]) => ns.exec('iptables-legacy', args);
    await agent.listen('ipv4', 9200);
    legacy('-A', 'OUTPUT', '-p', 'udp', '--dport', '9200', '-j', 'NFQUEUE', '--queue-num', '30');
    legacy(
      '-t',
      'mangle',
      '-A',
      'POSTROUTING',
      '-p',
      'udp',
      '--dport',
      '9200',
      '-m',
      'mark',
      '--mark',
      '0x44',
    );
    const q = await NfQueue.open({ queue: 30, netns: ns.name });
    try {
      q.onPacket((p) => {
        const text = Buffer.from(p.payload!.subarray(28)).toString();
        if (text === 'drop') p.drop();
        else p.accept({ mark: 0x44 });
      });
      await agent.send('ipv4', 9200, 'keep', 'drop', 'keep too');
      await until(() => agent.received('ipv4', 9200).length === 2);
      await sleep(100);
      expect(agent.received('ipv4', 9200)).toEqual(['keep', 'keep too']);
      expect(ruleCounters(ns, 'iptables-legacy', 'mangle', 'POSTROUTING')).toEqual([2]);
      expect(ruleCounters(ns, 'iptables-legacy', 'filter', 'OUTPUT')).toEqual([3]);
    } finally {
      await q.close();
      legacy('-F');
      legacy('-t', 'mangle', '-F');
    }
  });
});

describe.skipIf(skip)('NFQUEUE on a veth pair between two namespaces (198.18.0.0/15)', () => {
  let a: TestNetns;
  let b: TestNetns;
  let agentA: Agent;
  let agentB: Agent;
  const vethA = 'pclqa0';
  const vethB = 'pclqb0';

  beforeAll(async () => {
    a = new TestNetns('pcl-nfqa');
    b = new TestNetns('pcl-nfqb');
    vethPair(a, b, { names: [vethA, vethB], linkLocal: true });
    agentA = new Agent(a);
    agentB = new Agent(b);
    await Promise.all([agentA.ready(), agentB.ready()]);
  });
  afterAll(() => {
    agentA?.stop();
    agentB?.stop();
    a?.delete(); // deleting the namespace deletes the veth pair
    b?.delete();
  });

  it('an incoming packet carries indev, the sender hardware address and is accepted', async () => {
    const macA = JSON.parse(a.exec('ip', ['-j', 'link', 'show', vethA]))[0].address as string;
    const indexB = JSON.parse(b.exec('ip', ['-j', 'link', 'show', vethB]))[0].ifindex as number;
    await agentB.listen('ipv4', 9400, '198.18.0.2');
    b.exec('iptables', [
      '-A',
      'INPUT',
      '-p',
      'udp',
      '--dport',
      '9400',
      '-j',
      'NFQUEUE',
      '--queue-num',
      '40',
    ]);
    const q = await NfQueue.open({ queue: 40, netns: b.name });
    try {
      const seen: ReturnType<NfQueuePacket['toObject']>[] = [];
      q.onPacket((p) => {
        seen.push(p.toObject());
        p.accept();
      });
      await agentA.sendTo('ipv4', '198.18.0.2', 9400, 'across the veth');
      await until(() => agentB.received('ipv4', 9400).length === 1, 5000);
      expect(seen).toHaveLength(1);
      const p = seen[0]!;
      expect(p).toMatchObject({ hook: 1, indev: indexB, hwaddr: { length: 6, text: macA } });
      expect(p.outdev).toBeUndefined();
      expect(parsePacket(p.payload!).ip).toMatchObject({ src: '198.18.0.1', dst: '198.18.0.2' });
      console.info(
        `NFQUEUE on LOCAL_IN over veth: timestamp ${p.timestamp ? 'present' : 'absent'}, skb info ${JSON.stringify(p.skbInfo)}`,
      );
    } finally {
      await q.close();
    }
  });
});
