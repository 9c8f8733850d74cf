import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsCache, DnsSnooper, type SnoopedMapping } from '../../../helper/dns/index.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import * as L from '../../../helper/nflog/constants.js';
import { NFULNL_PACKET_TYPE } from '../../../helper/nflog/decode.js';
import { NFULNL_CONFIG_TYPE } from '../../../helper/nflog/encode.js';
import { ackMessage, datagram, FakeKernel, lost } from '../../support/fake-kernel.js';

const u16 = (n: number): number[] => [n >> 8, n & 0xff];
const u32 = (n: number): number[] => [n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
function name(text: string): number[] {
  const out: number[] = [];
  for (const l of text.split('.')) out.push(l.length, ...Buffer.from(l));
  return [...out, 0];
}

/** A response to `qname` (type A or AAAA) with address answers owned by the question. */
function response(
  qname: string,
  addresses: { type: 1 | 28; rdata: number[]; ttl: number }[],
  flags = 0x8180,
): number[] {
  const out = [...u16(7), ...u16(flags), ...u16(1), ...u16(addresses.length), 0, 0, 0, 0];
  out.push(...name(qname), ...u16(addresses[0]?.type ?? 1), ...u16(1));
  for (const a of addresses) {
    out.push(0xc0, 12, ...u16(a.type), ...u16(1), ...u32(a.ttl), ...u16(a.rdata.length));
    out.push(...a.rdata);
  }
  return out;
}

function ipv4(src: number[], dst: number[], protocol: number, l4: number[]): Uint8Array {
  const total = 20 + l4.length;
  return Uint8Array.from([
    ...[0x45, 0, ...u16(total), 0, 0, 0x40, 0, 64, protocol, 0, 0],
    ...src,
    ...dst,
    ...l4,
  ]);
}

function ipv6(src: number[], dst: number[], protocol: number, l4: number[]): Uint8Array {
  return Uint8Array.from([0x60, 0, 0, 0, ...u16(l4.length), protocol, 64, ...src, ...dst, ...l4]);
}

const udp = (sport: number, dport: number, data: number[]): number[] => [
  ...u16(sport),
  ...u16(dport),
  ...u16(8 + data.length),
  0,
  0,
  ...data,
];
const tcp = (sport: number, dport: number, data: number[]): number[] => [
  ...u16(sport),
  ...u16(dport),
  ...u32(1),
  ...u32(1),
  0x50,
  0x18,
  ...u16(65535),
  0,
  0,
  0,
  0,
  ...data,
];

const SERVER = [198, 18, 0, 53];
const CLIENT = [198, 18, 0, 2];
const A = (a: number, b: number, c: number, d: number, ttl = 300) => ({
  type: 1 as const,
  rdata: [a, b, c, d],
  ttl,
});

const snoopers: DnsSnooper[] = [];
function snooper(options: ConstructorParameters<typeof DnsSnooper>[0] = {}): DnsSnooper {
  const s = new DnsSnooper(options);
  snoopers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(snoopers.splice(0).map((s) => s.close()));
});

describe('DnsSnooper.handlePacket', () => {
  it('UDP over IPv4: the response fills the cache; the mapping names server and client', () => {
    const s = snooper();
    const seen: SnoopedMapping[] = [];
    s.onMapping((m) => seen.push(m));
    const r = s.handlePacket(
      ipv4(SERVER, CLIENT, 17, udp(53, 40000, response('one.test', [A(198, 18, 1, 1, 120)]))),
    );
    expect(r.accepted).toBe(true);
    expect(seen).toEqual([
      {
        ip: '198.18.1.1',
        name: 'one.test',
        ttl: 120,
        queried: true,
        server: '198.18.0.53',
        client: '198.18.0.2',
      },
    ]);
    expect(s.lookup('198.18.1.1')?.name).toBe('one.test');
    expect(s.counters).toMatchObject({ packets: 1, parsed: 1, responses: 1, mappings: 1 });
  });

  it('AAAA over IPv6, and TCP with two length-prefixed messages in one segment', () => {
    const s = snooper();
    const fd = (last: number) => [0xfd, 0x53, ...new Array<number>(13).fill(0), last];
    const six = response('six.test', [{ type: 28, rdata: fd(0x10), ttl: 60 }]);
    expect(s.handlePacket(ipv6(fd(1), fd(2), 17, udp(53, 5000, six))).accepted).toBe(true);
    expect(s.lookup('fd53::10')?.name).toBe('six.test');

    const m1 = response('t1.test', [A(198, 18, 5, 1)]);
    const m2 = response('t2.test', [A(198, 18, 5, 2)]);
    const segment = [...u16(m1.length), ...m1, ...u16(m2.length), ...m2];
    const r = s.handlePacket(ipv4(SERVER, CLIENT, 6, tcp(53, 41000, segment)));
    expect(r).toMatchObject({
      accepted: true,
      mappings: [{ name: 't1.test' }, { name: 't2.test' }],
    });
    expect(s.lookup('198.18.5.2')?.name).toBe('t2.test');
  });

  it('counts every rejection by reason and never throws', () => {
    const s = snooper({ mdns: false });
    const ok = response('x.test', [A(198, 18, 9, 9)]);
    const cases: [Uint8Array, string][] = [
      [Uint8Array.of(0x45, 0), 'notIp'],
      [ipv4(SERVER, CLIENT, 17, udp(5353, 5353, ok)), 'notDnsPort'],
      [ipv4(SERVER, CLIENT, 17, udp(53, 40000, [])), 'noPayload'],
      [ipv4(SERVER, CLIENT, 6, tcp(53, 40000, [])), 'noPayload'],
      [ipv4(SERVER, CLIENT, 6, tcp(53, 40000, [...u16(ok.length + 5), ...ok])), 'tcpIncomplete'],
      [ipv4(SERVER, CLIENT, 17, udp(53, 40000, [1, 2, 3])), 'malformed'],
      [ipv4(SERVER, CLIENT, 17, udp(53, 40000, response('q.test', [], 0x0100))), 'notResponse'],
      [ipv4(SERVER, CLIENT, 17, udp(53, 40000, response('q.test', [], 0xa980))), 'notQuery'],
      [ipv4(SERVER, CLIENT, 17, udp(53, 40000, response('q.test', [], 0x8183))), 'rcode'],
    ];
    // A copy range that cut the packet: total length says more than there is.
    const cut = ipv4(SERVER, CLIENT, 17, udp(53, 40000, ok)).slice(0, 40);
    cases.push([cut, 'captureTruncated']);
    // A later fragment: offset 185 * 8.
    const frag = ipv4(SERVER, CLIENT, 17, udp(53, 40000, ok));
    frag[6] = 0;
    frag[7] = 185;
    cases.push([frag, 'fragment']);
    for (const [bytes, reason] of cases) {
      expect(s.handlePacket(bytes), reason).toMatchObject({ accepted: false, reason });
    }
    expect(s.counters.rejected).toBe(cases.length);
    expect(s.counters.responses).toBe(0);
    expect(s.cache.size).toBe(0);
    for (const [, reason] of cases) {
      expect(s.counters.reasons[reason as keyof typeof s.counters.reasons]).toBeGreaterThan(0);
    }
  });

  it('mDNS (source port 5353) only when asked; its answers carry no question', () => {
    const announce = [...u16(0), ...u16(0x8400), 0, 0, ...u16(1), 0, 0, 0, 0];
    announce.push(...name('printer.local'), ...u16(1), ...u16(0x8001), ...u32(120), ...u16(4));
    announce.push(198, 18, 7, 7);
    const packet = ipv4([198, 18, 0, 9], [224, 0, 0, 251], 17, udp(5353, 5353, announce));
    expect(snooper().handlePacket(packet)).toMatchObject({ reason: 'notDnsPort' });
    const s = snooper({ mdns: true });
    expect(s.handlePacket(packet).accepted).toBe(true);
    expect(s.lookup('198.18.7.7')).toMatchObject({ name: 'printer.local' });
  });

  it('fuzz: random packets and random DNS payloads never throw, every packet is accounted for', () => {
    const s = snooper();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 120 }),
        fc.boolean(),
        fc.boolean(),
        (data, v6, overTcp) => {
          const l4 = overTcp ? tcp(53, 1000, [...data]) : udp(53, 1000, [...data]);
          const proto = overTcp ? 6 : 17;
          const addr6 = [0xfd, ...new Array<number>(15).fill(1)];
          s.handlePacket(v6 ? ipv6(addr6, addr6, proto, l4) : ipv4(SERVER, CLIENT, proto, l4));
          s.handlePacket(data);
        },
      ),
      { numRuns: 3000 },
    );
    const c = s.counters;
    expect(c.packets).toBe(6000);
    expect(c.responses + c.reasons.notIp + c.reasons.malformed).toBeGreaterThan(0);
  });

  it('shares a cache given to it', () => {
    const cache = new DnsCache({ maxAddresses: 10 });
    const s = snooper({ cache });
    s.handlePacket(ipv4(SERVER, CLIENT, 17, udp(53, 1, response('s.test', [A(198, 18, 8, 8)]))));
    expect(cache.lookup('198.18.8.8')?.name).toBe('s.test');
  });
});

describe('DnsSnooper.open over a fake NFLOG kernel', () => {
  it('binds the group with qthresh 1, snoops logged packets, counts lost ones', async () => {
    const configs: number[][] = [];
    const kernel = new FakeKernel({
      slotSize: 80 * 1024,
      handler: (req) => {
        if (req.type === NFULNL_CONFIG_TYPE) configs.push([req.length]);
        return [ackMessage(req)];
      },
    });
    const s = await DnsSnooper.open({ group: 9, nflog: { transport: kernel } });
    snoopers.push(s);
    expect(configs).toHaveLength(1);
    const logged = (payload: Uint8Array) => {
      const w = new NetlinkWriter();
      w.beginMessage(NFULNL_PACKET_TYPE, 0).nfgenmsg(2, 0, 9);
      w.bytes(L.NFULA_PACKET_HDR, Uint8Array.of(8, 0, 1, 0));
      w.bytes(L.NFULA_PAYLOAD, payload);
      return w.endMessage().finish();
    };
    kernel.reply(
      datagram(
        logged(ipv4(SERVER, CLIENT, 17, udp(53, 1, response('nf.test', [A(198, 18, 3, 3)])))),
      ),
      lost(),
    );
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
    expect(s.lookup('198.18.3.3')?.name).toBe('nf.test');
    expect(s.counters).toMatchObject({ packets: 1, responses: 1, lost: 1 });
    expect(s.nflog?.counters.received).toBe(1);
    await s.close();
    expect(kernel.closed).toBe(true);
    // The cache outlives the snooper.
    expect(s.lookup('198.18.3.3')?.name).toBe('nf.test');
  });
});
