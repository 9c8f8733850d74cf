import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DnsParseError,
  extractMappings,
  parseDnsMessage,
  readName,
  splitTcpDns,
  type DnsMessage,
} from '../../../helper/dns/index.js';

/** Bytes of a name without compression: length-prefixed labels, then 0. */
function name(text: string): number[] {
  const out: number[] = [];
  for (const l of text.split('.').filter((x) => x !== '')) out.push(l.length, ...Buffer.from(l));
  return [...out, 0];
}
const u16 = (n: number): number[] => [n >> 8, n & 0xff];
const u32 = (n: number): number[] => [n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const ptr = (offset: number): number[] => [0xc0 | (offset >> 8), offset & 0xff];

/** A response header: id, flags (QR RD RA by default), counts. */
function header(qd: number, an: number, ns = 0, ar = 0, flags = 0x8180, id = 0x1234): number[] {
  return [...u16(id), ...u16(flags), ...u16(qd), ...u16(an), ...u16(ns), ...u16(ar)];
}
const question = (owner: number[], type = 1): number[] => [...owner, ...u16(type), ...u16(1)];
function rr(owner: number[], type: number, ttl: number, rdata: number[], cls = 1): number[] {
  return [...owner, ...u16(type), ...u16(cls), ...u32(ttl), ...u16(rdata.length), ...rdata];
}

/**
 * www.example.com A?  ->  www.example.com CNAME edge.cdn.net (ttl 300)
 *                          edge.cdn.net    CNAME e1.cdn.net   (ttl 30)
 *                          e1.cdn.net      A 198.18.0.10      (ttl 600)
 *                          e1.cdn.net      A 198.18.0.11      (ttl 20)
 * with compression pointers back into earlier names.
 */
function cnameChainResponse(): Uint8Array {
  const bytes: number[] = header(1, 4);
  const qname = bytes.length; // 12
  bytes.push(...question(name('www.example.com')));
  // Answer 1: owner = pointer to the question name; target edge.cdn.net written in full.
  const a1 = [...ptr(qname), ...u16(5), ...u16(1), ...u32(300)];
  const target1 = bytes.length + a1.length + 2;
  const t1 = name('edge.cdn.net');
  bytes.push(...a1, ...u16(t1.length), ...t1);
  const cdnNet = target1 + 5; // "cdn.net" inside edge.cdn.net
  // Answer 2: owner edge.cdn.net (pointer), target "e1" + pointer to cdn.net.
  const t2 = [2, ...Buffer.from('e1'), ...ptr(cdnNet)];
  const owner2 = ptr(target1);
  const target2 = bytes.length + owner2.length + 10;
  bytes.push(...rr(owner2, 5, 30, t2));
  bytes.push(...rr(ptr(target2), 1, 600, [198, 18, 0, 10]));
  bytes.push(...rr(ptr(target2), 1, 20, [198, 18, 0, 11]));
  return Uint8Array.from(bytes);
}

describe('parseDnsMessage', () => {
  it('header flags, question, CNAME chain with compression pointers, A records', () => {
    const m = parseDnsMessage(cnameChainResponse());
    expect(m).toMatchObject({
      id: 0x1234,
      response: true,
      opcode: 0,
      recursionDesired: true,
      recursionAvailable: true,
      truncated: false,
      rcode: 0,
      questions: [{ name: 'www.example.com', type: 1, class: 1 }],
    });
    expect(m.answers).toEqual([
      {
        name: 'www.example.com',
        type: 5,
        class: 1,
        ttl: 300,
        data: { kind: 'cname', target: 'edge.cdn.net' },
      },
      {
        name: 'edge.cdn.net',
        type: 5,
        class: 1,
        ttl: 30,
        data: { kind: 'cname', target: 'e1.cdn.net' },
      },
      {
        name: 'e1.cdn.net',
        type: 1,
        class: 1,
        ttl: 600,
        data: { kind: 'a', address: '198.18.0.10' },
      },
      {
        name: 'e1.cdn.net',
        type: 1,
        class: 1,
        ttl: 20,
        data: { kind: 'a', address: '198.18.0.11' },
      },
    ]);
  });

  it('AAAA (RFC 5952 text), other types skipped with their length, all sections, mDNS class bit', () => {
    const bytes = [
      ...header(1, 2, 1, 1, 0x8400),
      ...question(name('Host.Example'), 28),
      ...rr(ptr(12), 28, 60, [0xfd, 0, ...new Array<number>(13).fill(0), 1]),
      ...rr(ptr(12), 16, 60, [3, 0x61, 0x62, 0x63]), // TXT "abc"
      ...rr(name('example'), 2, 60, name('ns.example')), // NS in authority
      ...rr(name('ns.example'), 1, 60, [198, 19, 0, 1], 0x8001), // cache-flush bit set
    ];
    const m = parseDnsMessage(Uint8Array.from(bytes));
    expect(m.authoritative).toBe(true);
    expect(m.questions[0]!.name).toBe('host.example'); // lower case
    expect(m.answers.map((a) => a.data)).toEqual([
      { kind: 'aaaa', address: 'fd00::1' },
      { kind: 'other', length: 4 },
    ]);
    expect(m.authorities[0]).toMatchObject({ type: 2, data: { kind: 'other' } });
    expect(m.additionals[0]).toMatchObject({
      class: 1,
      data: { kind: 'a', address: '198.19.0.1' },
    });
  });

  it('TTLs with the top bit set read as 0 (RFC 2181 8); odd label bytes are escaped', () => {
    const bytes = [
      ...header(0, 1),
      ...rr([3, 0x61, 0x2e, 0x07, 0], 1, 0x80000000, [198, 18, 0, 1]),
    ];
    const m = parseDnsMessage(Uint8Array.from(bytes));
    expect(m.answers[0]).toMatchObject({ name: 'a\\.\\007', ttl: 0 });
  });

  it('truncation anywhere is a typed error, never a RangeError', () => {
    const full = cnameChainResponse();
    for (let n = 0; n < full.length; n++) {
      let error: unknown;
      try {
        parseDnsMessage(full, 0, n);
      } catch (e) {
        error = e;
      }
      expect(error, `cut at ${n}`).toBeInstanceOf(DnsParseError);
      expect((error as DnsParseError).code).toBe('TRUNCATED');
    }
    // A sub-range of a larger buffer is honoured: no reads past `length`.
    const padded = new Uint8Array(full.length + 10);
    padded.set(full, 5);
    expect(parseDnsMessage(padded, 5, full.length).answers).toHaveLength(4);
  });

  it('pointer loops, forward and self pointers are refused; so are bad labels and long names', () => {
    const loopTo = (target: number) => [...header(1, 0), ...ptr(target), ...u16(1), ...u16(1)];
    // A pointer to itself, and a forward pointer.
    expect(() => parseDnsMessage(Uint8Array.from(loopTo(12)))).toThrow(
      expect.objectContaining({ code: 'BAD_POINTER' }),
    );
    expect(() => parseDnsMessage(Uint8Array.from(loopTo(14)))).toThrow(
      expect.objectContaining({ code: 'BAD_POINTER' }),
    );
    // Two names pointing at each other: a at 12 = "x" + ptr(17); b at 17 = ptr(12).
    const loop = [...header(2, 0), 1, 0x78, ...ptr(17), ...u16(1), ...u16(1)];
    loop.push(...ptr(12), ...u16(1), ...u16(1));
    expect(() => parseDnsMessage(Uint8Array.from(loop))).toThrow(
      expect.objectContaining({ code: 'BAD_POINTER' }),
    );
    // A label that points back into itself from further on ("a" + ptr to the "a").
    const inner = [...header(1, 0), 1, 0x61, ...ptr(12), ...u16(1), ...u16(1)];
    expect(() => parseDnsMessage(Uint8Array.from(inner))).toThrow(
      expect.objectContaining({ code: 'BAD_POINTER' }),
    );
    const extended = [...header(1, 0), 0x41, 0, ...u16(1), ...u16(1)];
    expect(() => parseDnsMessage(Uint8Array.from(extended))).toThrow(
      expect.objectContaining({ code: 'BAD_LABEL' }),
    );
    const long = [...header(1, 0), ...name(Array(5).fill('a'.repeat(60)).join('.'))];
    expect(() => parseDnsMessage(Uint8Array.from([...long, 0, 1, 0, 1]))).toThrow(
      expect.objectContaining({ code: 'NAME_TOO_LONG' }),
    );
  });

  it('rdata of the wrong size and a CNAME that does not fill its rdata are BAD_RDATA', () => {
    const shortA = [...header(0, 1), ...rr(name('a'), 1, 60, [1, 2, 3])];
    expect(() => parseDnsMessage(Uint8Array.from(shortA))).toThrow(
      expect.objectContaining({ code: 'BAD_RDATA' }),
    );
    const loose = [...header(0, 1), ...rr(name('a'), 5, 60, [...name('b'), 0xff])];
    expect(() => parseDnsMessage(Uint8Array.from(loose))).toThrow(
      expect.objectContaining({ code: 'BAD_RDATA' }),
    );
  });

  it('readName follows a chain of backward pointers', () => {
    // "c" at 0, "b"+ptr(0) at 3, "a"+ptr(3) at 7.
    const bytes = Uint8Array.from([1, 0x63, 0, 1, 0x62, ...ptr(0), 1, 0x61, ...ptr(3)]);
    expect(readName(bytes, 7, 0, bytes.length)).toEqual({ name: 'a.b.c', next: 11 });
  });

  it('fuzz: random bytes and mutated responses only ever throw DnsParseError', () => {
    const base = cnameChainResponse();
    const check = (bytes: Uint8Array) => {
      try {
        const m = parseDnsMessage(bytes);
        extractMappings(m);
      } catch (e) {
        if (!(e instanceof DnsParseError)) throw e;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => check(bytes)),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        (edits) => {
          const bytes = base.slice();
          for (const [at, value] of edits) bytes[at] = value;
          check(bytes);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('splitTcpDns', () => {
  it('whole messages with 2-byte length prefixes; a partial one is incomplete', () => {
    const msg = cnameChainResponse();
    const two = Uint8Array.from([...u16(msg.length), ...msg, ...u16(msg.length), ...msg]);
    expect(splitTcpDns(two)).toEqual({
      messages: [
        { offset: 2, length: msg.length },
        { offset: msg.length + 4, length: msg.length },
      ],
      incomplete: false,
    });
    const cut = two.subarray(0, msg.length + 10);
    expect(splitTcpDns(cut)).toEqual({
      messages: [{ offset: 2, length: msg.length }],
      incomplete: true,
    });
    expect(splitTcpDns(Uint8Array.of(0))).toEqual({ messages: [], incomplete: true });
  });
});

describe('extractMappings', () => {
  const message = (over: Partial<DnsMessage>): DnsMessage => ({
    id: 1,
    response: true,
    opcode: 0,
    authoritative: false,
    truncated: false,
    recursionDesired: true,
    recursionAvailable: true,
    authenticData: false,
    checkingDisabled: false,
    rcode: 0,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    ...over,
  });

  it('a CNAME chain: every address to the question, intermediate and final names, min TTL', () => {
    const { mappings, unrelated } = extractMappings(parseDnsMessage(cnameChainResponse()));
    expect(unrelated).toBe(0);
    expect(mappings).toEqual([
      { ip: '198.18.0.10', name: 'e1.cdn.net', ttl: 600, queried: false },
      { ip: '198.18.0.10', name: 'edge.cdn.net', ttl: 30, queried: false },
      { ip: '198.18.0.10', name: 'www.example.com', ttl: 30, queried: true },
      { ip: '198.18.0.11', name: 'e1.cdn.net', ttl: 20, queried: false },
      { ip: '198.18.0.11', name: 'edge.cdn.net', ttl: 20, queried: false },
      { ip: '198.18.0.11', name: 'www.example.com', ttl: 20, queried: true },
    ]);
  });

  it('addresses no question leads to are counted, not mapped; CNAME loops end', () => {
    const rec = (name: string, data: DnsMessage['answers'][number]['data'], ttl = 60) => ({
      name,
      type: data.kind === 'cname' ? 5 : 1,
      class: 1,
      ttl,
      data,
    });
    const m = message({
      questions: [{ name: 'a.test', type: 1, class: 1 }],
      answers: [
        rec('a.test', { kind: 'cname', target: 'b.test' }),
        rec('b.test', { kind: 'cname', target: 'a.test' }),
        rec('b.test', { kind: 'a', address: '198.18.1.1' }),
        rec('evil.test', { kind: 'a', address: '198.18.6.6' }),
      ],
    });
    const out = extractMappings(m);
    expect(out.unrelated).toBe(1);
    expect(out.mappings.map((x) => `${x.ip} ${x.name} ${x.queried}`)).toEqual([
      '198.18.1.1 b.test false',
      '198.18.1.1 a.test true',
    ]);
  });

  it('mDNS (no questions): answer and additional address records map to their owners', () => {
    const m = message({
      answers: [
        {
          name: 'printer.local',
          type: 1,
          class: 1,
          ttl: 120,
          data: { kind: 'a', address: '198.18.2.2' },
        },
      ],
      additionals: [
        {
          name: 'printer.local',
          type: 28,
          class: 1,
          ttl: 120,
          data: { kind: 'aaaa', address: 'fd00::2' },
        },
      ],
    });
    expect(extractMappings(m).mappings).toEqual([
      { ip: '198.18.2.2', name: 'printer.local', ttl: 120, queried: false },
      { ip: 'fd00::2', name: 'printer.local', ttl: 120, queried: false },
    ]);
  });
});
