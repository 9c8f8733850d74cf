import { describe, expect, it } from 'vitest';
import { PacketParseError } from '../../../helper/packet/index.js';
import { DaemonError } from '../../../helper/daemon/errors.js';
import {
  buildRequest,
  directionOf,
  protocolName,
  requestTuple,
  tupleKey,
} from '../../../helper/daemon/request.js';
import { remoteAddress } from '../../../helper/protocol/rules.js';
import { conntrackTuple } from '../../../helper/daemon/flows.js';
import type { Flow as CtFlow } from '../../../helper/conntrack/index.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

// Captured from NFQUEUE (LOCAL_OUT, out=3) in a test namespace with helper/nfqueue:
// a TCP SYN 198.18.0.1:49336 -> 198.18.0.9:443 (MSS, SACK, timestamps, wscale)...
const TCP_SYN_V4 = hex(
  '4500003c358040004006790dc6120001c6120009c0b801bb53c4a2b200000000a002faf0ad330000020405b40402080a9752c36c000000000103030a',
);
// ... a UDP datagram [2001:db8::1]:40000 -> [2001:db8::9]:53 "ping" ...
const UDP_V6 = hex(
  '600909bb000c114020010db800000000000000000000000120010db80000000000000000000000099c400035000c291470696e67',
);
// ... an ICMP echo request 198.18.0.1 -> 198.18.0.9 ...
const ICMP_ECHO_V4 = hex('4500001c7197400040013d1bc6120001c61200090800f7fe00010000');
// ... and an ICMPv6 echo request 2001:db8::1 -> 2001:db8::9.
const ICMPV6_ECHO = hex(
  '600c8c4d00083a4020010db800000000000000000000000120010db80000000000000000000000098000243900070001',
);

const OUT = { hook: 3, outdev: 3 };

describe('buildRequest on captured packets', () => {
  it('TCP SYN over IPv4: outbound, ports, interfaces, nothing attributed yet', () => {
    expect(buildRequest(OUT, TCP_SYN_V4, 1234)).toEqual({
      time: 1234,
      direction: 'outbound',
      family: 'ipv4',
      protocol: 'tcp',
      protocolNumber: 6,
      src: '198.18.0.1',
      dst: '198.18.0.9',
      sport: 49336,
      dport: 443,
      icmpType: null,
      icmpCode: null,
      inIfindex: null,
      outIfindex: 3,
      host: null,
      uid: null,
      process: null,
    });
  });

  it('UDP over IPv6: compressed addresses and ports', () => {
    expect(buildRequest(OUT, UDP_V6, 0)).toMatchObject({
      family: 'ipv6',
      protocol: 'udp',
      protocolNumber: 17,
      src: '2001:db8::1',
      dst: '2001:db8::9',
      sport: 40000,
      dport: 53,
      icmpType: null,
    });
  });

  it('ICMP and ICMPv6: type and code, no ports', () => {
    expect(buildRequest(OUT, ICMP_ECHO_V4, 0)).toMatchObject({
      protocol: 'icmp',
      protocolNumber: 1,
      sport: null,
      dport: null,
      icmpType: 8,
      icmpCode: 0,
    });
    expect(buildRequest(OUT, ICMPV6_ECHO, 0)).toMatchObject({
      protocol: 'icmpv6',
      protocolNumber: 58,
      family: 'ipv6',
      icmpType: 128,
      icmpCode: 0,
    });
  });

  it('SCTP, DCCP, UDP-Lite: the ports are read from the first 4 header bytes', () => {
    for (const [proto, name] of [
      [132, 'sctp'],
      [33, 'dccp'],
      [136, 'udplite'],
    ] as const) {
      const p = TCP_SYN_V4.slice();
      p[9] = proto; // the IPv4 protocol field; the header checksum is not checked
      expect(buildRequest(OUT, p, 0)).toMatchObject({
        protocol: name,
        protocolNumber: proto,
        sport: 49336,
        dport: 443,
      });
    }
    const gre = TCP_SYN_V4.slice();
    gre[9] = 47;
    expect(buildRequest(OUT, gre, 0)).toMatchObject({ protocol: 'gre', sport: null, dport: null });
    const other = TCP_SYN_V4.slice();
    other[9] = 253;
    expect(buildRequest(OUT, other, 0)).toMatchObject({ protocol: 'other', protocolNumber: 253 });
  });

  it('inbound from LOCAL_IN with the input interface', () => {
    expect(buildRequest({ hook: 1, indev: 5 }, TCP_SYN_V4, 0)).toMatchObject({
      direction: 'inbound',
      inIfindex: 5,
      outIfindex: null,
    });
  });

  it('typed errors: other hooks, no payload, malformed bytes (cause kept)', () => {
    expect(() => buildRequest({ hook: 2 }, TCP_SYN_V4, 0)).toThrow(
      expect.objectContaining({ name: 'DaemonError', code: 'UNSUPPORTED_HOOK' }),
    );
    expect(() => buildRequest(OUT, undefined, 0)).toThrow(
      expect.objectContaining({ code: 'MALFORMED_PACKET' }),
    );
    let caught: unknown;
    try {
      buildRequest(OUT, TCP_SYN_V4.subarray(0, 30), 0);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DaemonError);
    expect((caught as DaemonError).code).toBe('MALFORMED_PACKET');
    expect((caught as DaemonError).cause).toBeInstanceOf(PacketParseError);
  });
});

describe('request helpers', () => {
  it('directions and protocol names', () => {
    expect([0, 1, 3, 4].map(directionOf)).toEqual(['inbound', 'inbound', 'outbound', 'outbound']);
    expect(protocolName(6)).toBe('tcp');
    expect(protocolName(200)).toBe('other');
  });

  it('a request and the conntrack entry of its flow give the same tuple key', () => {
    const r = buildRequest(OUT, TCP_SYN_V4, 0);
    const ct: CtFlow = {
      family: 'ipv4',
      orig: { src: '198.18.0.1', dst: '198.18.0.9', proto: 6, srcPort: 49336, dstPort: 443 },
      reply: { src: '198.18.0.9', dst: '198.18.0.1', proto: 6, srcPort: 443, dstPort: 49336 },
      status: 0,
      statusFlags: [],
      id: 1,
    };
    expect(tupleKey(requestTuple(r))).toBe(tupleKey(conntrackTuple(ct)));
    const other = { ...ct, orig: { ...ct.orig, srcPort: 49337 } };
    expect(tupleKey(requestTuple(r))).not.toBe(tupleKey(conntrackTuple(other)));
    const icmp = buildRequest(OUT, ICMP_ECHO_V4, 0);
    expect(tupleKey(requestTuple(icmp))).toBe(
      tupleKey(
        conntrackTuple({
          ...ct,
          orig: {
            src: '198.18.0.1',
            dst: '198.18.0.9',
            proto: 1,
            icmpType: 8,
            icmpCode: 0,
            icmpId: 1,
          },
        }),
      ),
    );
  });

  it('the remote end is the destination outbound, the source inbound', () => {
    expect(remoteAddress(buildRequest(OUT, TCP_SYN_V4, 0))).toBe('198.18.0.9');
    expect(remoteAddress(buildRequest({ hook: 1 }, TCP_SYN_V4, 0))).toBe('198.18.0.1');
  });
});
