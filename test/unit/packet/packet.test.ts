import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fold16,
  internetChecksum,
  ipv4HeaderChecksum,
  recomputeChecksums,
  sum16,
  verifyChecksums,
} from '../../../helper/packet/checksum.js';
import { PacketParseError } from '../../../helper/packet/errors.js';
import { parseIcmp, parseIcmpv6 } from '../../../helper/packet/icmp.js';
import { parseIPv4 } from '../../../helper/packet/ipv4.js';
import { parseIPv6 } from '../../../helper/packet/ipv6.js';
import { parsePacket, summarizePacket } from '../../../helper/packet/parse.js';
import { parseTcp, tcpFlagsText, type TcpHeader } from '../../../helper/packet/tcp.js';
import { parseUdp } from '../../../helper/packet/udp.js';
import { parseQueueProcStats } from '../../../helper/nfqueue/stats.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// IPv4 header from RFC 791 examples as usually quoted (Wikipedia "IPv4 header checksum").
const WIKI_IPV4 = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');

/** IPv4/UDP 127.0.0.1:53557 -> 127.0.0.1:9000 "hello", as NFQUEUE delivered it on lo
 * (UDP checksum only partial there: CHECKSUM_PARTIAL). */
const UDP4_FROM_LO = hex('45000021ba5e40004011826b7f0000017f000001d1352328000dfe2068656c6c6f');

function ipv4(
  protocol: number,
  l4: Uint8Array,
  src = [10, 0, 0, 1],
  dst = [10, 0, 0, 2],
): Uint8Array {
  const p = new Uint8Array(20 + l4.length);
  p.set([
    0x45,
    0,
    (p.length >> 8) & 0xff,
    p.length & 0xff,
    0x1c,
    0x46,
    0x40,
    0,
    64,
    protocol,
    0,
    0,
    ...src,
    ...dst,
  ]);
  p.set(l4, 20);
  return p;
}

function ipv6(nextHeader: number, rest: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + rest.length);
  p.set([0x60, 0x01, 0x23, 0x45, (rest.length >> 8) & 0xff, rest.length & 0xff, nextHeader, 64]);
  p[23] = 1; // ::1
  p[39] = 1; // ::1
  p.set(rest, 40);
  return p;
}

const TCP_SYN = hex(
  '9c40 01bb 01020304 00000000 a002 faf0 0000 0000 020405b4 0402 080a0000000100000000 01 030307',
);

describe('checksums: known values', () => {
  it('RFC 1071 example and the classic IPv4 header', () => {
    const rfc = hex('0001 f203 f4f5 f6f7');
    expect(fold16(sum16(rfc))).toBe(0xddf2);
    expect(internetChecksum(rfc)).toBe(0x220d);
    expect(ipv4HeaderChecksum(WIKI_IPV4)).toBe(0xb861);
    expect(verifyChecksums(WIKI_IPV4.slice(0, 20)).ipv4Header).toBe(true);
    expect(ipv4HeaderChecksum(UDP4_FROM_LO)).toBe(0x826b); // as the kernel computed it
    expect(internetChecksum(hex('01'))).toBe(0xfeff); // odd length: zero padded
  });

  it('UDP over IPv4 (independently computed value), including the partial checksum from lo', () => {
    const p = UDP4_FROM_LO.slice();
    expect(verifyChecksums(p)).toEqual({ ipv4Header: true, transport: false });
    const r = recomputeChecksums(p);
    expect(r).toEqual({ transport: 0xc9a1, ipv4Header: 0x826b });
    expect(verifyChecksums(p)).toEqual({ ipv4Header: true, transport: true });
  });

  it('TCP SYN with options, ICMP echo, UDP/ICMPv6 over IPv6', () => {
    const tcp = ipv4(6, TCP_SYN);
    expect(recomputeChecksums(tcp)).toEqual({ transport: 0x970a, ipv4Header: 0x0a74 });
    const icmp = ipv4(1, hex('0800 0000 1234 0001 61626364'));
    expect(recomputeChecksums(icmp).transport).toBe(0x2104);
    const udp6 = ipv6(17, hex('9c40 2328 000c 0000 70696e67'));
    expect(recomputeChecksums(udp6)).toEqual({ transport: 0x619b });
    const icmp6 = ipv6(58, hex('8000 0000 1234 0001 61626364'));
    expect(recomputeChecksums(icmp6)).toEqual({ transport: 0xa8bb });
    for (const p of [tcp, icmp, udp6, icmp6]) expect(verifyChecksums(p).transport).toBe(true);
  });

  it('recompute fixes lengths after the payload changed size; a computed UDP 0 is sent as 0xffff', () => {
    const p = UDP4_FROM_LO.slice();
    const bigger = new Uint8Array(p.length + 3);
    bigger.set(p);
    bigger.set([0x21, 0x21, 0x21], p.length);
    recomputeChecksums(bigger);
    const parsed = parsePacket(bigger);
    expect(parsed.ip).toMatchObject({ version: 4, totalLength: 36 });
    expect(parsed.udp).toMatchObject({ length: 16, payloadLength: 8 });
    expect(verifyChecksums(bigger)).toEqual({ ipv4Header: true, transport: true });
    // Find a UDP payload whose checksum comes out as 0, then check it is sent as 0xffff.
    const base = ipv4(17, hex('0001 0002 000a 0000 0000'));
    let found = false;
    for (let x = 0; x < 0x10000 && !found; x++) {
      base[28] = x >> 8;
      base[29] = x & 0xff;
      base[26] = 0;
      base[27] = 0;
      const sum = internetChecksum(base, 20, 30, sum16(base, 12, 20) + 17 + 10);
      if (sum === 0) {
        expect(recomputeChecksums(base).transport).toBe(0xffff);
        expect(verifyChecksums(base).transport).toBe(true);
        found = true;
      }
    }
    expect(found).toBe(true);
  });

  it('leaves fragments alone and refuses truncated packets', () => {
    const frag = ipv4(17, hex('0001 0002 000c 1234 61626364'));
    frag[6] = 0x20; // MF
    expect(recomputeChecksums(frag)).toMatchObject({ skipped: 'fragment' });
    expect(frag[26]).toBe(0x12); // untouched
    const cut = UDP4_FROM_LO.slice(0, 30);
    expect(() => recomputeChecksums(cut, { fixLengths: false })).toThrow(PacketParseError);
    expect(recomputeChecksums(ipv4(47, hex('00000800')))).toMatchObject({ skipped: 'protocol' });
  });

  it('uses the final destination of an IPv6 routing header in the pseudo-header', () => {
    // Routing header type 0 with one address (2001:db8::9) and segments left 1, then UDP.
    const rh = new Uint8Array(24);
    rh.set([17, 2, 0, 1]);
    rh.set([0x20, 0x01, 0x0d, 0xb8], 8);
    rh[23] = 9;
    const udp = hex('9c40 2328 000c 0000 70696e67');
    const p = ipv6(43, Uint8Array.from([...rh, ...udp]));
    recomputeChecksums(p);
    const got = (p[64 + 6]! << 8) | p[64 + 7]!;
    // Same datagram addressed directly to the final destination.
    const direct = ipv6(17, udp);
    direct.set(rh.subarray(8, 24), 24);
    recomputeChecksums(direct);
    expect(got).toBe((direct[46]! << 8) | direct[47]!);
  });
});

describe('header parsing', () => {
  it('IPv4 with options', () => {
    // IHL 7: NOP, Record Route (type 7, len 7, pointer 4, one address)
    const p = hex(
      '4700 0024 abcd 2000 4011 0000 0a000001 0a000002 01 07 07 04 0a000009 0001 0002 0008 0000',
    );
    const h = parseIPv4(p);
    expect(h).toMatchObject({
      headerLength: 28,
      totalLength: 36,
      identification: 0xabcd,
      moreFragments: true,
      dontFragment: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 17,
      src: '10.0.0.1',
      dst: '10.0.0.2',
      payloadOffset: 28,
      payloadLength: 8,
    });
    expect(h.options.map((o) => [o.type, o.length])).toEqual([
      [1, 1],
      [7, 7],
    ]);
    const eol = parseIPv4(hex('4600 0018 0000 0000 4011 0000 0a000001 0a000002 00 ff ff ff'));
    expect(eol.options.map((o) => o.type)).toEqual([0]); // the rest is padding
    expect(Array.from(h.options[1]!.data)).toEqual([4, 10, 0, 0, 9]);
    expect(() =>
      parseIPv4(hex('4600 0018 0000 0000 4011 0000 0a000001 0a000002 0709 0000')),
    ).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => parseIPv4(hex('4400 0014 0000 0000 4011 0000 0a000001 0a000002'))).toThrow(
      expect.objectContaining({ code: 'BAD_HEADER_LENGTH' }),
    );
    expect(() => parseIPv4(hex('4500 0010 0000 0000 4011 0000 0a000001 0a000002'))).toThrow(
      expect.objectContaining({ code: 'BAD_LENGTH' }),
    );
    expect(() => parseIPv4(hex('6500'))).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
    const truncated = parseIPv4(UDP4_FROM_LO.slice(0, 24));
    expect(truncated).toMatchObject({ truncated: true, payloadLength: 4 });
  });

  it('IPv6 extension headers: hop-by-hop, destination, routing, AH, fragment', () => {
    const hbh = hex('3c00 c2 04 00010000'); // next: dest opts; jumbo option type c2 (data ignored here)
    const dst = hex('2b00 01 04 00000000'); // next: routing; PadN
    const rt = hex('3300 04 00 00000000'); // next: AH; SRH type 4, segments left 0
    const ah = hex('2c01 0000 00001234 00000007 aabbccdd'); // next: fragment; (1+2)*4 = 12? -> len byte 1 = 12 bytes
    const frag = hex('1100 0001 cafebabe'); // next: UDP, offset 0, M set
    const udp = hex('9c40 2328 000c 0000 70696e67');
    const p = ipv6(
      0,
      Uint8Array.from([...hbh, ...dst, ...rt, ...ah.subarray(0, 12), ...frag, ...udp]),
    );
    const h = parseIPv6(p);
    expect(h.extensions.map((e) => [e.name, e.length, e.nextHeader])).toEqual([
      ['hop-by-hop', 8, 60],
      ['destination', 8, 43],
      ['routing', 8, 51],
      ['ah', 12, 44],
      ['fragment', 8, 17],
    ]);
    expect(h.extensions[0]!.options).toEqual([
      { type: 0xc2, offset: 42, data: Uint8Array.from([0, 1, 0, 0]) },
    ]);
    expect(h.extensions[3]!.ah).toEqual({ spi: 0x1234, sequence: 7, icv: new Uint8Array(0) });
    expect(h.extensions[4]!.fragment).toEqual({
      offset: 0,
      more: true,
      identification: 0xcafebabe,
    });
    expect(h).toMatchObject({
      protocol: 17,
      payloadOffset: 84,
      payloadLength: 12,
      laterFragment: false,
      flowLabel: 0x12345,
      trafficClass: 0,
    });
    expect(parsePacket(p).udp).toMatchObject({ srcPort: 40000, dstPort: 9000 });
    // A later fragment: no upper-layer header to parse.
    const later = ipv6(44, Uint8Array.from([...hex('1100 0008 00000001'), ...udp]));
    expect(parseIPv6(later)).toMatchObject({ laterFragment: true, protocol: 17 });
    expect(parsePacket(later).udp).toBeUndefined();
    // A header length that overruns the packet.
    expect(() => parseIPv6(ipv6(0, hex('3b05 0000 0000 0000')))).toThrow(
      expect.objectContaining({ code: 'BAD_OPTION' }),
    );
  });

  it('TCP flags, ports, options and data offset bounds', () => {
    const t = parseTcp(TCP_SYN);
    expect(t).toMatchObject({
      srcPort: 40000,
      dstPort: 443,
      seq: 0x01020304,
      ack: 0,
      headerLength: 40,
      window: 64240,
      mss: 1460,
      sackPermitted: true,
      windowScale: 7,
      timestamp: { value: 1, echo: 0 },
      payloadLength: 0,
    });
    expect(t.flags.syn && !t.flags.ack).toBe(true);
    expect(tcpFlagsText(0x012)).toBe('SYN,ACK');
    expect(tcpFlagsText(0x1c1)).toBe('FIN,ECE,CWR,AE');
    const bad = TCP_SYN.slice();
    bad[12] = 0x40;
    expect(() => parseTcp(bad)).toThrow(expect.objectContaining({ code: 'BAD_HEADER_LENGTH' }));
    bad[12] = 0xf0; // 60 bytes > 40 present
    expect(() => parseTcp(bad)).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
    const badOpt = TCP_SYN.slice();
    badOpt[21] = 40; // MSS length overruns
    expect(() => parseTcp(badOpt)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    // Options left out: ports and flags without the option objects, and no option checks.
    const lite = parseTcp(badOpt, 0, badOpt.length, { options: false });
    expect(lite).toMatchObject({ srcPort: 40000, dstPort: 443, headerLength: 40, options: [] });
    expect(lite.mss).toBeUndefined();
    expect(lite.flags.syn).toBe(true);
  });

  it('UDP length checks, ICMP and ICMPv6', () => {
    expect(() => parseUdp(hex('0001 0002 0004 0000'))).toThrow(
      expect.objectContaining({ code: 'BAD_LENGTH' }),
    );
    expect(() => parseUdp(hex('0001 0002 0010 0000'))).toThrow(
      expect.objectContaining({ code: 'BAD_LENGTH' }),
    );
    expect(parseUdp(hex('0001 0002 0010 0000'), 0, 8, true)).toMatchObject({
      truncated: true,
      payloadLength: 0,
    });
    expect(parseIcmp(hex('0800 2104 1234 0001 61626364'))).toMatchObject({
      name: 'echo-request',
      echo: { id: 0x1234, seq: 1 },
    });
    expect(parseIcmp(hex('0304 0000 0000 05dc 4500'))).toMatchObject({
      name: 'destination-unreachable',
      mtu: 1500,
      embeddedOffset: 8,
    });
    expect(parseIcmp(hex('0500 0000 0a000001'))).toMatchObject({ gateway: '10.0.0.1' });
    expect(parseIcmpv6(hex('8700 0000 00000000 fe800000000000000000000000000001'))).toMatchObject({
      name: 'neighbor-solicitation',
      target: 'fe80::1',
    });
    expect(() => parseIcmpv6(hex('8700 0000 00000000'))).toThrow(PacketParseError);
    expect(parseIcmpv6(hex('0200 0000 000005dc'))).toMatchObject({
      name: 'packet-too-big',
      mtu: 1500,
    });
  });

  it('summaries for display never throw', () => {
    expect(summarizePacket(UDP4_FROM_LO)).toBe('udp 127.0.0.1:53557 -> 127.0.0.1:9000 len 5');
    expect(summarizePacket(ipv4(6, TCP_SYN))).toBe('tcp 10.0.0.1:40000 -> 10.0.0.2:443 SYN len 0');
    expect(summarizePacket(ipv6(58, hex('8000 0000 1234 0001')))).toBe(
      'icmpv6 ::1 -> ::1 echo-request code 0',
    );
    expect(summarizePacket(hex('ff'))).toMatch(/^malformed packet/);
  });
});

/** A TCP header as parsed with `options: false`: the option fields left out. */
function withoutTcpOptions(t: TcpHeader): TcpHeader {
  const copy: TcpHeader = { ...t, options: [] };
  delete copy.mss;
  delete copy.windowScale;
  delete copy.sackPermitted;
  delete copy.sack;
  delete copy.timestamp;
  return copy;
}

describe('fuzz', () => {
  it('an IPv6 AH header shorter than its 12-byte fixed part is refused, not read past (a fuzz find)', () => {
    // 40-byte IPv6 header, next header 51 (AH), then an AH whose length field says 8 bytes.
    const bytes = Uint8Array.from([
      96,
      1,
      35,
      69,
      0,
      12,
      51,
      64,
      ...new Array<number>(15).fill(0),
      1,
      ...new Array<number>(15).fill(0),
      1,
      128,
      0,
      0,
      0,
      18,
      52,
      0,
      1,
      97,
      98,
      99,
      100,
    ]);
    expect(() => parseIPv6(bytes)).toThrow(PacketParseError);
  });

  const onlyParseErrors = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof PacketParseError)) throw e;
    }
  };

  it('random and mutated bytes throw only PacketParseError', () => {
    const seeds = [
      UDP4_FROM_LO,
      ipv4(6, TCP_SYN),
      ipv6(58, hex('8000 0000 1234 0001 61626364')),
      ipv6(
        0,
        Uint8Array.from([...hex('1100 0104 00000000'), ...hex('9c40 2328 000c 0000 70696e67')]),
      ),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(200), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(120),
        (seed, edits, cut) => {
          const b = seed.slice(0, Math.max(1, Math.min(seed.length, cut)));
          for (const [at, v] of edits) b[at % b.length] = v;
          onlyParseErrors(() => parsePacket(b));
          // Without TCP options: the same packet, or an error only where the options
          // were at fault (a full parse that succeeds must agree on everything else).
          let full: ReturnType<typeof parsePacket> | undefined;
          try {
            full = parsePacket(b);
          } catch {
            full = undefined;
          }
          if (full) {
            const lite = parsePacket(b, 0, { tcpOptions: false });
            if (full.tcp) {
              expect({ ...lite, tcp: undefined }).toEqual({ ...full, tcp: undefined });
              expect(lite.tcp).toEqual(withoutTcpOptions(full.tcp));
            } else {
              expect(lite).toEqual(full);
            }
          } else {
            onlyParseErrors(() => parsePacket(b, 0, { tcpOptions: false }));
          }
          onlyParseErrors(() => verifyChecksums(b));
          onlyParseErrors(() => recomputeChecksums(b.slice()));
          expect(typeof summarizePacket(b)).toBe('string');
        },
      ),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 100 }), fc.nat(10), (b, off) => {
        onlyParseErrors(() => parseIPv4(b, off));
        onlyParseErrors(() => parseIPv6(b, off));
        onlyParseErrors(() => parseTcp(b, off));
        onlyParseErrors(() => parseUdp(b, off));
        onlyParseErrors(() => parseIcmp(b, off));
        onlyParseErrors(() => parseIcmpv6(b, off));
      }),
      { numRuns: 5000 },
    );
  });

  it('property: built packets parse back and recomputed checksums verify', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.constantFrom(6, 17, 1, 58),
        fc.uint8Array({ maxLength: 64 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (v6, proto, data, sport, dport) => {
          if (proto === 1 && v6) proto = 58;
          if (proto === 58 && !v6) proto = 1;
          let l4: Uint8Array;
          if (proto === 6) {
            l4 = new Uint8Array(20 + data.length);
            l4.set([
              sport >> 8,
              sport & 255,
              dport >> 8,
              dport & 255,
              0,
              0,
              0,
              1,
              0,
              0,
              0,
              0,
              0x50,
              0x18,
              1,
              0,
            ]);
          } else if (proto === 17) {
            l4 = new Uint8Array(8 + data.length);
            l4.set([sport >> 8, sport & 255, dport >> 8, dport & 255]);
          } else {
            l4 = new Uint8Array(8 + data.length);
            l4.set([proto === 1 ? 8 : 128, 0, 0, 0, sport >> 8, sport & 255, 0, 1]);
          }
          l4.set(data, l4.length - data.length);
          const p = v6 ? ipv6(proto, l4) : ipv4(proto, l4);
          recomputeChecksums(p);
          const check = verifyChecksums(p);
          expect(check.transport).toBe(true);
          if (!v6) expect(check.ipv4Header).toBe(true);
          const parsed = parsePacket(p);
          expect(parsed.protocol).toBe(proto);
          const l = parsed.tcp ?? parsed.udp;
          if (l)
            expect([l.srcPort, l.dstPort, l.payloadLength]).toEqual([sport, dport, data.length]);
          // Flipping any bit of the transport part breaks the checksum.
          if (data.length > 0) {
            p[p.length - 1]! ^= 0x01;
            expect(verifyChecksums(p).transport).toBe(false);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('/proc/net/netfilter/nfnetlink_queue', () => {
  it('parses the kernel format and skips junk', () => {
    const text =
      '    5   8439     0 2 65531     0     0        1  1\n 1000 4294967295  12 1     0     3     4 4294967295  1\nbogus line\n';
    expect(parseQueueProcStats(text)).toEqual([
      {
        queue: 5,
        portId: 8439,
        queueTotal: 0,
        copyMode: 2,
        copyRange: 65531,
        queueDropped: 0,
        userDropped: 0,
        lastId: 1,
      },
      {
        queue: 1000,
        portId: 4294967295,
        queueTotal: 12,
        copyMode: 1,
        copyRange: 0,
        queueDropped: 3,
        userDropped: 4,
        lastId: 4294967295,
      },
    ]);
  });
});
