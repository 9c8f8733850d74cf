import { describe, expect, it } from 'vitest';
import { flowJsonLine, flowToJson, labelsHex } from '../../../helper/cli/conntrack-json.js';
import { formatFlowTable, formatTuple } from '../../../helper/cli/conntrack-table.js';
import type { Flow } from '../../../helper/conntrack/types.js';

/** A flow with every attribute the decoder can produce. */
function everything(): Flow {
  const labels = new Uint8Array(16);
  labels[0] = 0b0000_1001; // bits 0 and 3
  labels[8] = 0b0000_0001; // bit 64
  labels[15] = 0b1000_0000; // bit 127
  return {
    family: 'ipv6',
    orig: {
      src: '2001:db8::1',
      dst: '2001:db8::2',
      proto: 6,
      srcPort: 40000,
      dstPort: 443,
      zone: 3,
    },
    reply: { src: '2001:db8::2', dst: '2001:db8::1', proto: 6, srcPort: 443, dstPort: 40000 },
    status: 0x1ce,
    statusFlags: [
      'SEEN_REPLY',
      'ASSURED',
      'CONFIRMED',
      'SEQ_ADJUST',
      'SRC_NAT_DONE',
      'DST_NAT_DONE',
    ],
    timeout: 431999,
    mark: 0xdeadbeef,
    zone: 7,
    id: 4294967295,
    use: 2,
    tcp: {
      state: 'ESTABLISHED',
      stateNumber: 3,
      wscaleOrig: 7,
      wscaleReply: 9,
      flagsOrig: { flags: 0x23, mask: 0 },
      flagsReply: { flags: 0x27, mask: 0x01 },
    },
    sctp: { state: 'COOKIE_WAIT', stateNumber: 2, vtagOrig: 0xfffffffe, vtagReply: 1 },
    dccp: { state: 'UNKNOWN_42', stateNumber: 42, role: 1, handshakeSeq: 0xffff_ffff_ffffn },
    countersOrig: { packets: 18446744073709551615n, bytes: 9007199254740993n },
    countersReply: { packets: 0n, bytes: 1n },
    timestampStart: 1795624016430022475n,
    timestampStop: 1795624016930022475n,
    labels,
    helper: { name: 'ftp', info: new Uint8Array([0xde, 0xad, 0x00]) },
    secctx: 'system_u:object_r:unlabeled_t:s0',
    secmark: 12,
    natSrc: { minIp: '2001:db8::9', maxIp: '2001:db8::a', minPort: 1024, maxPort: 2048 },
    natDst: { minIp: '2001:db8::b' },
    seqAdjOrig: { correctionPos: 100, offsetBefore: -4, offsetAfter: 8 },
    seqAdjReply: { correctionPos: 0, offsetBefore: 0, offsetAfter: 0 },
    master: {
      src: '2001:db8::1',
      dst: '2001:db8::2',
      proto: 6,
      srcPort: 40001,
      dstPort: 21,
    },
    synproxy: { isn: 1, its: 2, tsoff: 3 },
    unknown: [
      { type: 99, nested: false, value: new Uint8Array([1, 2, 0xff]) },
      { type: 100, nested: true, value: new Uint8Array([]) },
    ],
  };
}

describe('conntrack --json serialisation', () => {
  it('serialises every attribute of a Flow, 64-bit values as decimal strings', () => {
    expect(flowToJson(everything())).toEqual({
      family: 'ipv6',
      orig: {
        src: '2001:db8::1',
        dst: '2001:db8::2',
        proto: 6,
        protoName: 'tcp',
        srcPort: 40000,
        dstPort: 443,
        zone: 3,
      },
      reply: {
        src: '2001:db8::2',
        dst: '2001:db8::1',
        proto: 6,
        protoName: 'tcp',
        srcPort: 443,
        dstPort: 40000,
      },
      status: 0x1ce,
      statusFlags: [
        'SEEN_REPLY',
        'ASSURED',
        'CONFIRMED',
        'SEQ_ADJUST',
        'SRC_NAT_DONE',
        'DST_NAT_DONE',
      ],
      timeout: 431999,
      mark: 3735928559,
      zone: 7,
      id: 4294967295,
      use: 2,
      tcp: {
        state: 'ESTABLISHED',
        stateNumber: 3,
        wscaleOrig: 7,
        wscaleReply: 9,
        flagsOrig: { flags: 35, mask: 0 },
        flagsReply: { flags: 39, mask: 1 },
      },
      sctp: { state: 'COOKIE_WAIT', stateNumber: 2, vtagOrig: 4294967294, vtagReply: 1 },
      dccp: { state: 'UNKNOWN_42', stateNumber: 42, role: 1, handshakeSeq: '281474976710655' },
      countersOrig: { packets: '18446744073709551615', bytes: '9007199254740993' },
      countersReply: { packets: '0', bytes: '1' },
      timestampStart: '1795624016430022475',
      timestampStop: '1795624016930022475',
      labels: { bits: [0, 3, 64, 127], hex: '0x80000000000000010000000000000009' },
      helper: { name: 'ftp', info: 'dead00' },
      secctx: 'system_u:object_r:unlabeled_t:s0',
      secmark: 12,
      natSrc: { minIp: '2001:db8::9', maxIp: '2001:db8::a', minPort: 1024, maxPort: 2048 },
      natDst: { minIp: '2001:db8::b' },
      seqAdjOrig: { correctionPos: 100, offsetBefore: -4, offsetAfter: 8 },
      seqAdjReply: { correctionPos: 0, offsetBefore: 0, offsetAfter: 0 },
      master: {
        src: '2001:db8::1',
        dst: '2001:db8::2',
        proto: 6,
        protoName: 'tcp',
        srcPort: 40001,
        dstPort: 21,
      },
      synproxy: { isn: 1, its: 2, tsoff: 3 },
      unknown: [
        { type: 99, nested: false, hex: '0102ff' },
        { type: 100, nested: true, hex: '' },
      ],
    });
  });

  it('writes one line of valid JSON with a fixed key order and no bigint', () => {
    const line = flowJsonLine(everything());
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual([
      'family',
      'orig',
      'reply',
      'status',
      'statusFlags',
      'timeout',
      'mark',
      'zone',
      'id',
      'use',
      'tcp',
      'sctp',
      'dccp',
      'countersOrig',
      'countersReply',
      'timestampStart',
      'timestampStop',
      'labels',
      'helper',
      'secctx',
      'secmark',
      'natSrc',
      'natDst',
      'seqAdjOrig',
      'seqAdjReply',
      'master',
      'synproxy',
      'unknown',
    ]);
    // Stable: the same flow always gives the same bytes.
    expect(flowJsonLine(everything())).toBe(line);
  });

  it('leaves out what the kernel did not send', () => {
    const minimal: Flow = {
      family: 'ipv4',
      orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 7 },
      reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 1, icmpType: 0, icmpCode: 0, icmpId: 7 },
      status: 0,
      statusFlags: [],
      unknown: [],
    };
    expect(flowToJson(minimal)).toEqual({
      family: 'ipv4',
      orig: {
        src: '10.0.0.1',
        dst: '10.0.0.2',
        proto: 1,
        protoName: 'icmp',
        icmpType: 8,
        icmpCode: 0,
        icmpId: 7,
      },
      reply: {
        src: '10.0.0.2',
        dst: '10.0.0.1',
        proto: 1,
        protoName: 'icmp',
        icmpType: 0,
        icmpCode: 0,
        icmpId: 7,
      },
      status: 0,
      statusFlags: [],
    });
    const odd: Flow = { ...minimal, orig: { src: '::1', dst: '::2', proto: 253 } };
    expect(flowToJson(odd).orig).toEqual({ src: '::1', dst: '::2', proto: 253 });
  });

  it('writes labels as set bits and a 128-bit hex number', () => {
    expect(labelsHex(new Uint8Array(16))).toBe('0x' + '0'.repeat(32));
    const one = new Uint8Array(16);
    one[1] = 0x80; // bit 15
    expect(labelsHex(one)).toBe('0x' + '0'.repeat(28) + '8000');
    expect(flowToJson({ ...everything(), labels: one }).labels).toEqual({
      bits: [15],
      hex: '0x00000000000000000000000000008000',
    });
  });
});

describe('conntrack table', () => {
  it('formats tuples with ports, brackets for IPv6, and ICMP fields', () => {
    const f = everything();
    expect(formatTuple(f.reply)).toBe('[2001:db8::2]:443 -> [2001:db8::1]:40000');
    expect(formatTuple({ src: '1.1.1.1', dst: '2.2.2.2', proto: 17, srcPort: 5, dstPort: 6 })).toBe(
      '1.1.1.1:5 -> 2.2.2.2:6',
    );
    expect(
      formatTuple({
        src: '1.1.1.1',
        dst: '2.2.2.2',
        proto: 1,
        icmpType: 8,
        icmpCode: 0,
        icmpId: 9,
      }),
    ).toBe('1.1.1.1 -> 2.2.2.2 type=8 code=0 id=9');
    expect(formatTuple({ src: '::1', dst: '::2', proto: 47 })).toBe('::1 -> ::2');
  });

  it('aligns columns and shows counters and labels only when present', () => {
    const a = everything();
    const b: Flow = {
      family: 'ipv4',
      orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 17, srcPort: 5, dstPort: 6 },
      reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 17, srcPort: 6, dstPort: 5 },
      status: 8,
      statusFlags: ['CONFIRMED'],
      timeout: 30,
      id: 1,
    };
    const plain = formatFlowTable([b]).split('\n');
    expect(plain[0]).toMatch(
      /^PROTO\s+STATE\s+ORIGINAL\s+REPLY\s+FLAGS\s+MARK\s+ZONE\s+TIMEOUT\s+ID$/,
    );
    expect(plain[1]).toMatch(
      /^udp\s+-\s+10\.0\.0\.1:5 -> 10\.0\.0\.2:6\s+10\.0\.0\.2:6 -> 10\.0\.0\.1:5\s+-\s+-\s+-\s+30\s+1$/,
    );
    const both = formatFlowTable([a, b]).trimEnd().split('\n');
    expect(both).toHaveLength(3);
    expect(both[0]).toMatch(/TIMEOUT\s+PACKETS\s+BYTES\s+LABELS\s+ID$/);
    expect(both[1]).toContain('ESTABLISHED');
    expect(both[1]).toContain('SEEN_REPLY,ASSURED,SEQ_ADJUST,SRC_NAT_DONE,DST_NAT_DONE');
    expect(both[1]).not.toContain('CONFIRMED');
    expect(both[1]).toContain('18446744073709551615/0');
    expect(both[1]).toContain('0,3,64,127');
    // Every row's ID column ends at the same place (right-aligned).
    expect(new Set(both.map((l) => l.length)).size).toBe(1);
    expect(formatFlowTable([])).toMatch(/^PROTO/);
  });
});
