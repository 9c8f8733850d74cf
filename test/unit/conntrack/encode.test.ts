import { describe, expect, it } from 'vitest';
import * as C from '../../../helper/conntrack/constants.js';
import { decodeTuple } from '../../../helper/conntrack/decode.js';
import {
  ConntrackArgumentError,
  filterFlags,
  invertTuple,
  labelsBytes,
  statusBits,
  tupleFamily,
  writeTuple,
} from '../../../helper/conntrack/encode.js';
import { AttributeReader } from '../../../helper/netlink/attributes.js';
import { NLA_F_NESTED } from '../../../helper/netlink/constants.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import type { Tuple } from '../../../helper/conntrack/types.js';

function roundTrip(t: Partial<Tuple>): { tuple: Tuple; raw: Uint8Array } {
  const w = new NetlinkWriter().beginMessage(0x100, 0);
  writeTuple(w, C.CTA_TUPLE_ORIG, t, tupleFamily(t));
  const raw = w.endMessage().finish();
  const ad = new AttributeReader(
    new DataView(raw.buffer, raw.byteOffset, raw.byteLength),
    16,
    raw.length,
  );
  ad.next();
  expect(ad.rawType).toBe(C.CTA_TUPLE_ORIG | NLA_F_NESTED);
  return { tuple: decodeTuple(ad.nested()), raw };
}

describe('tuple encoding', () => {
  it('round-trips TCP, UDP over IPv6, ICMP and ICMPv6 tuples through the decoder', () => {
    const cases: Tuple[] = [
      { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, srcPort: 1, dstPort: 65535 },
      { src: '2001:db8::1', dst: '2001:db8::2', proto: 17, srcPort: 53, dstPort: 5353, zone: 9 },
      { src: '192.0.2.1', dst: '192.0.2.2', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 7 },
      { src: 'fe80::1', dst: 'ff02::1', proto: 58, icmpType: 128, icmpCode: 0, icmpId: 65535 },
    ];
    for (const t of cases) expect(roundTrip(t).tuple).toEqual(t);
  });

  it('writes only what a partial (filter) tuple sets', () => {
    const { tuple } = roundTrip({ proto: 6, dstPort: 443 });
    expect(tuple).toEqual({ src: '', dst: '', proto: 6, dstPort: 443 });
  });

  it('rejects bad addresses, ports, mixed families and family mismatches', () => {
    const w = new NetlinkWriter().beginMessage(0x100, 0);
    expect(() => writeTuple(w, 1, { src: '300.1.1.1' }, undefined)).toThrow(ConntrackArgumentError);
    expect(() => writeTuple(w, 1, { src: '::1' }, 'ipv4')).toThrow(/not IPv4/);
    expect(() => writeTuple(w, 1, { proto: 6, srcPort: 70000 }, undefined)).toThrow(/out of range/);
    expect(() => writeTuple(w, 1, { proto: 256 }, undefined)).toThrow(/out of range/);
    expect(() => tupleFamily({ src: '10.0.0.1', dst: '::1' })).toThrow(/different families/);
  });
});

describe('filter flags', () => {
  it('sets one CTA_FILTER flag per field, per protocol kind', () => {
    expect(filterFlags({ src: '10.0.0.1', proto: 6, dstPort: 80 })).toBe(
      C.CTA_FILTER_FLAG_CTA_IP_SRC |
        C.CTA_FILTER_FLAG_CTA_PROTO_NUM |
        C.CTA_FILTER_FLAG_CTA_PROTO_DST_PORT,
    );
    expect(filterFlags({ proto: 1, icmpType: 8, icmpId: 1 })).toBe(
      C.CTA_FILTER_FLAG_CTA_PROTO_NUM |
        C.CTA_FILTER_FLAG_CTA_PROTO_ICMP_TYPE |
        C.CTA_FILTER_FLAG_CTA_PROTO_ICMP_ID,
    );
    expect(filterFlags({ proto: 58, icmpCode: 0 })).toBe(
      C.CTA_FILTER_FLAG_CTA_PROTO_NUM | C.CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_CODE,
    );
    expect(filterFlags({ dst: '::1', zone: 3 })).toBe(
      C.CTA_FILTER_FLAG_CTA_IP_DST | C.CTA_FILTER_FLAG_CTA_TUPLE_ZONE,
    );
    expect(filterFlags({})).toBe(0);
  });
});

describe('helpers', () => {
  it('inverts a tuple for the reply direction, echo request to echo reply', () => {
    expect(invertTuple({ src: 'a', dst: 'b', proto: 6, srcPort: 1, dstPort: 2 })).toEqual({
      src: 'b',
      dst: 'a',
      proto: 6,
      srcPort: 2,
      dstPort: 1,
    });
    expect(
      invertTuple({ src: 'a', dst: 'b', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 5 }),
    ).toMatchObject({ icmpType: 0, icmpId: 5 });
    expect(
      invertTuple({ src: 'a', dst: 'b', proto: 58, icmpType: 128, icmpCode: 0, icmpId: 5 }),
    ).toMatchObject({ icmpType: 129 });
  });

  it('turns status names into bits and rejects unknown names', () => {
    expect(statusBits(['ASSURED', 'SEEN_REPLY'])).toBe(0b110);
    expect(statusBits(0x80000000)).toBe(0x80000000);
    expect(() => statusBits(['NOPE' as C.StatusFlag])).toThrow(ConntrackArgumentError);
  });

  it('builds the 128-bit label bitmap from bit numbers', () => {
    const b = labelsBytes([0, 9, 127]);
    expect(Array.from(b)).toEqual([1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    expect(() => labelsBytes([128])).toThrow(ConntrackArgumentError);
    expect(() => labelsBytes(new Uint8Array(8))).toThrow(/16 bytes/);
  });
});

describe('filter validation', () => {
  it('refuses port or ICMP filters without a protocol, as the kernel would (EINVAL)', () => {
    expect(() => filterFlags({ dstPort: 80 })).toThrow(ConntrackArgumentError);
    expect(() => filterFlags({ icmpType: 8 })).toThrow(/needs a protocol/);
  });
});
