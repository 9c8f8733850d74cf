import { describe, expect, it } from 'vitest';
import * as C from '../../../helper/attribution/constants.js';
import {
  AttributionArgumentError,
  decodeDiagMessage,
  encodeDiagRequest,
} from '../../../helper/attribution/diag-codec.js';
import { exactSockId, matchScore } from '../../../helper/attribution/sock-diag.js';
import type { SocketInfo, SocketTuple } from '../../../helper/attribution/types.js';
import { NetlinkDecodeError } from '../../../helper/netlink/errors.js';
import { parseMessages } from '../../../helper/netlink/message.js';
import { diagReply } from '../../support/diag-reply.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const zeros = (n: number) => '00'.repeat(n);

const tcp4: SocketTuple = {
  family: 'ipv4',
  protocol: 'tcp',
  src: '192.0.2.1',
  sport: 40000,
  dst: '198.51.100.7',
  dport: 443,
};

describe('inet_diag_req_v2 encoding (linux/inet_diag.h layout, little-endian host)', () => {
  it('writes an exact IPv4 TCP lookup: local end in src, no cookie check', () => {
    const bytes = encodeDiagRequest(C.SOCK_DIAG_BY_FAMILY, {
      family: 'ipv4',
      protocol: 'tcp',
      states: C.ALL_STATES,
      id: exactSockId(tcp4, 'lookup'),
    });
    expect(hex(bytes)).toBe(
      // nlmsghdr: len 72, type 20 (SOCK_DIAG_BY_FAMILY), flags 0, seq 0, port 0
      '48000000' +
        '1400' +
        '0000' +
        zeros(8) +
        // family AF_INET, IPPROTO_TCP, ext 0, pad 0, states all
        '02060000' +
        'ffffffff' +
        // sport 40000, dport 443 (big endian)
        '9c40' +
        '01bb' +
        // src 192.0.2.1, dst 198.51.100.7 (16 bytes each)
        'c0000201' +
        zeros(12) +
        'c6336407' +
        zeros(12) +
        // interface 0, cookie INET_DIAG_NOCOOKIE
        zeros(4) +
        'ffffffffffffffff',
    );
    expect(bytes.byteLength).toBe(16 + C.INET_DIAG_REQ_V2_LEN);
  });

  it('swaps the ends for a UDP lookup (the kernel takes src as the remote end) but not for a destroy', () => {
    const udp = { ...tcp4, protocol: 'udp' as const };
    const lookup = exactSockId(udp, 'lookup');
    expect([hex(lookup.src), lookup.sport, hex(lookup.dst), lookup.dport]).toEqual([
      'c6336407',
      443,
      'c0000201',
      40000,
    ]);
    const destroy = exactSockId(udp, 'destroy');
    expect([hex(destroy.src), destroy.sport]).toEqual(['c0000201', 40000]);
    expect(exactSockId({ ...udp, protocol: 'udplite' }, 'lookup').sport).toBe(443);
    expect(exactSockId(tcp4, 'destroy').sport).toBe(40000);
  });

  it('writes IPv6, the cookie as two host-order words (low first), ext bits and the raw protocol', () => {
    const bytes = encodeDiagRequest(C.SOCK_DESTROY, {
      family: 'ipv6',
      protocol: 'raw',
      rawProtocol: 58,
      ext: C.diagExtBit(C.INET_DIAG_TOS) | C.diagExtBit(C.INET_DIAG_CONG),
      states: C.stateMask(['ESTABLISHED', 'LISTEN']),
      id: {
        ...exactSockId(
          {
            family: 'ipv6',
            protocol: 'raw',
            src: '2001:db8::1',
            sport: 0,
            dst: '::ffff:10.0.0.1',
            dport: 0,
          },
          'destroy',
        ),
        cookie: 0x1122334455667788n,
        interface: 3,
      },
    });
    const h = hex(bytes);
    expect(h.slice(8, 12)).toBe('1500'); // SOCK_DESTROY
    expect(h.slice(32, 48)).toBe(
      '0a' + 'ff' + '18' + '3a' + '02040000', // AF_INET6, IPPROTO_RAW, TOS|CONG, proto 58; states bits 1 and 10
    );
    expect(h.slice(56, 88)).toBe('20010db8' + zeros(11) + '01');
    expect(h.slice(88, 120)).toBe(zeros(10) + 'ffff' + '0a000001');
    expect(h.slice(120, 128)).toBe('03000000');
    expect(h.slice(128, 144)).toBe('8877665544332211');
  });

  it('maps IPv4 text into an IPv6 request and rejects bad arguments before sending', () => {
    const id = exactSockId({ ...tcp4, family: 'ipv6' }, 'lookup');
    expect(hex(id.src)).toBe(zeros(10) + 'ffff' + 'c0000201');
    expect(() => exactSockId({ ...tcp4, src: '2001:db8::1' }, 'lookup')).toThrow(
      AttributionArgumentError,
    );
    expect(() => exactSockId({ ...tcp4, src: 'host' }, 'lookup')).toThrow(AttributionArgumentError);
    expect(() => exactSockId({ ...tcp4, sport: 70000 }, 'lookup')).toThrow(
      AttributionArgumentError,
    );
    expect(() => exactSockId({ ...tcp4, dport: 1.5 }, 'lookup')).toThrow(AttributionArgumentError);
    expect(() =>
      encodeDiagRequest(C.SOCK_DIAG_BY_FAMILY, {
        family: 'ipv4',
        protocol: 'sctp' as 'tcp',
        states: 0,
        id: exactSockId(tcp4, 'lookup'),
      }),
    ).toThrow(AttributionArgumentError);
    expect(() => C.stateMask(['NOPE' as 'LISTEN'])).toThrow(RangeError);
  });
});

describe('inet_diag_msg decoding', () => {
  it('reads the header fields, host-order cookie and interface, network-order ports', () => {
    const bytes = diagReply(
      {
        src: '10.1.2.3',
        sport: 5353,
        dst: '10.9.8.7',
        dport: 53,
        interface: 7,
        cookie: 0xabcdef0123456789n,
        uid: 1000,
        inode: 424242,
        stateNo: 10,
        rqueue: 5,
        wqueue: 6,
        expires: 99,
        timer: 1,
        retrans: 2,
      },
      (w) => {
        w.u8(C.INET_DIAG_SHUTDOWN, 3);
        w.u32(C.INET_DIAG_MARK, 0x10);
        w.u64(C.INET_DIAG_CGROUP_ID, 1234n);
        w.u8(C.INET_DIAG_SKV6ONLY, 1);
        w.u8(C.INET_DIAG_TOS, 0x10);
        w.string(C.INET_DIAG_CONG, 'cubic');
        w.bytes(C.INET_DIAG_SOCKOPT, new Uint8Array(2));
      },
    );
    const [msg] = parseMessages(bytes);
    expect(decodeDiagMessage(msg!, 'udp')).toEqual({
      family: 'ipv4',
      protocol: 'udp',
      state: 'LISTEN',
      timer: 1,
      retrans: 2,
      src: '10.1.2.3',
      sport: 5353,
      dst: '10.9.8.7',
      dport: 53,
      interface: 7,
      cookie: 0xabcdef0123456789n,
      expires: 99,
      rqueue: 5,
      wqueue: 6,
      uid: 1000,
      inode: 424242,
      shutdown: 3,
      mark: 0x10,
      cgroupId: 1234n,
      v6only: true,
      tos: 0x10,
      congestion: 'cubic',
    });
  });

  it('formats IPv6 addresses canonically and names unknown states', () => {
    const [msg] = parseMessages(
      diagReply({ family: 'ipv6', src: '2001:db8::a', dst: '::1', stateNo: 200 }),
    );
    const s = decodeDiagMessage(msg!, 'tcp');
    expect([s.family, s.src, s.dst, s.state]).toEqual(['ipv6', '2001:db8::a', '::1', 'UNKNOWN']);
  });

  it('throws NetlinkDecodeError on a short header, a foreign family or a bad attribute', () => {
    const good = diagReply({ src: '1.2.3.4' });
    const short = good.slice(0, 16 + 40);
    new DataView(short.buffer).setUint32(0, short.byteLength, true);
    expect(() => decodeDiagMessage(parseMessages(short)[0]!, 'tcp')).toThrow(NetlinkDecodeError);
    const [foreign] = parseMessages(diagReply({ familyNo: 1 }));
    expect(() => decodeDiagMessage(foreign!, 'tcp')).toThrow(NetlinkDecodeError);
    const [badAttr] = parseMessages(diagReply({}, (w) => w.u16(C.INET_DIAG_MARK, 1)));
    expect(() => decodeDiagMessage(badAttr!, 'tcp')).toThrow(NetlinkDecodeError);
  });
});

describe('matchScore (the fallback dump picks the most specific socket)', () => {
  const base = { family: 'ipv4', sport: 5000, dport: 0, src: '0.0.0.0', dst: '0.0.0.0' } as const;
  const tuple: SocketTuple = {
    family: 'ipv4',
    protocol: 'udp',
    src: '10.0.0.1',
    sport: 5000,
    dst: '10.0.0.2',
    dport: 53,
  };
  const score = (s: Partial<SocketInfo>) => matchScore({ ...base, ...s } as SocketInfo, tuple);
  it('ranks connected over bound over wildcard, own family over dual-stack, and rejects misfits', () => {
    const wildcard = score({});
    const bound = score({ src: '10.0.0.1' });
    const connected = score({ src: '10.0.0.1', dst: '10.0.0.2', dport: 53 });
    const dual = score({ family: 'ipv6', src: '::' });
    const mapped = score({ family: 'ipv6', src: '::ffff:10.0.0.1' });
    expect(connected).toBeGreaterThan(bound);
    expect(bound).toBeGreaterThan(wildcard);
    expect(wildcard).toBeGreaterThan(dual);
    expect(mapped).toBeGreaterThan(dual);
    expect(score({ sport: 5001 })).toBe(-1);
    expect(score({ src: '10.0.0.9' })).toBe(-1);
    expect(score({ dst: '10.0.0.3', dport: 53 })).toBe(-1);
  });
});
