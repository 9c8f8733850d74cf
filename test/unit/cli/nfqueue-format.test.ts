import { describe, expect, it } from 'vitest';
import {
  clockTime,
  formatQueueStatsTable,
  packetJsonLine,
  packetLine,
  queueStatsJsonLine,
  summarizeQueued,
  type QueuedPacketView,
} from '../../../helper/cli/nfqueue-format.js';
import { recomputeChecksums } from '../../../helper/packet/checksum.js';

const AT = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

function ipv4(proto: number, l4: Uint8Array, src = [10, 0, 0, 1], dst = [10, 0, 0, 2]): Uint8Array {
  const b = new Uint8Array(20 + l4.length);
  const v = new DataView(b.buffer);
  b[0] = 0x45;
  v.setUint16(2, b.length);
  b[8] = 64;
  b[9] = proto;
  b.set(src, 12);
  b.set(dst, 16);
  b.set(l4, 20);
  recomputeChecksums(b);
  return b;
}

function ipv6(proto: number, l4: Uint8Array): Uint8Array {
  const b = new Uint8Array(40 + l4.length);
  const v = new DataView(b.buffer);
  b[0] = 0x60;
  v.setUint16(4, l4.length);
  b[6] = proto;
  b[7] = 64;
  b[23] = 1; // ::1
  b[39] = 1;
  b.set(l4, 40);
  recomputeChecksums(b);
  return b;
}

function udp(sport: number, dport: number, data: string): Uint8Array {
  const d = Buffer.from(data);
  const b = new Uint8Array(8 + d.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, b.length);
  b.set(d, 8);
  return b;
}

function tcp(sport: number, dport: number, flags: number, data = ''): Uint8Array {
  const d = Buffer.from(data);
  const b = new Uint8Array(20 + d.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint32(4, 1000);
  b[12] = 5 << 4;
  b[13] = flags;
  v.setUint16(14, 65535);
  b.set(d, 20);
  return b;
}

function icmpEcho(): Uint8Array {
  return Uint8Array.from([8, 0, 0, 0, 0, 1, 0, 2, 0xaa, 0xbb]);
}

function packet(payload: Uint8Array | undefined, extra: Partial<QueuedPacketView> = {}) {
  return {
    queueNumber: 7,
    family: 2,
    id: 12,
    hook: 3,
    outdev: 1,
    payload,
    ...extra,
  } satisfies QueuedPacketView;
}

describe('summarizeQueued + packetJsonLine (the --json schema)', () => {
  it('a UDP datagram on LOCAL_OUT, keys in schema order, absent ones left out', () => {
    const s = summarizeQueued(
      packet(ipv4(17, udp(40000, 9000, 'hello'), [127, 0, 0, 1], [127, 0, 0, 1]), {
        mark: 0x11,
        uid: 0,
        gid: 0,
      }),
      'accept',
      AT,
    );
    const line = packetJsonLine(s);
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.split('\n')).toHaveLength(2);
    const o = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(o)).toEqual([
      'time',
      'timeSource',
      'queue',
      'id',
      'family',
      'hook',
      'outdev',
      'mark',
      'uid',
      'gid',
      'protocol',
      'protocolNumber',
      'src',
      'dst',
      'sport',
      'dport',
      'length',
      'payloadLength',
      'verdict',
    ]);
    expect(o).toEqual({
      time: '2025-01-02T03:04:05.678Z',
      timeSource: 'received',
      queue: 7,
      id: 12,
      family: 'ipv4',
      hook: 'LOCAL_OUT',
      outdev: 1,
      mark: 0x11,
      uid: 0,
      gid: 0,
      protocol: 'udp',
      protocolNumber: 17,
      src: '127.0.0.1',
      dst: '127.0.0.1',
      sport: 40000,
      dport: 9000,
      length: 33,
      payloadLength: 5,
      verdict: 'accept',
    });
  });

  it('takes the kernel timestamp when there is one, and the input interfaces', () => {
    const s = summarizeQueued(
      packet(ipv4(17, udp(1, 2, '')), {
        hook: 1,
        outdev: undefined,
        indev: 4,
        physindev: 5,
        timestamp: { ms: 1_700_000_000_123 },
      }),
      'drop',
      AT,
    );
    expect(s).toMatchObject({
      time: '2023-11-14T22:13:20.123Z',
      timeSource: 'kernel',
      hook: 'LOCAL_IN',
      indev: 4,
      physindev: 5,
      payloadLength: 0,
      verdict: 'drop',
    });
    expect(s.outdev).toBeUndefined();
  });

  it('TCP over IPv6 with flags', () => {
    const s = summarizeQueued(
      packet(ipv6(6, tcp(5000, 443, 0x12, 'abc')), { family: 10 }),
      'accept',
      AT,
    );
    expect(s).toMatchObject({
      family: 'ipv6',
      protocol: 'tcp',
      protocolNumber: 6,
      src: '::1',
      dst: '::1',
      sport: 5000,
      dport: 443,
      length: 63,
      payloadLength: 3,
      tcpFlags: ['SYN', 'ACK'],
    });
    expect(packetLine(s)).toMatch(
      / tcp \[::1\]:5000 -> \[::1\]:443 flags=SYN,ACK length=63 payload=3 accept\n$/,
    );
    const none = summarizeQueued(packet(ipv4(6, tcp(1, 2, 0))), 'accept', AT);
    expect(none.tcpFlags).toEqual([]);
    expect(packetLine(none)).toMatch(/ flags=- /);
  });

  it('ICMP, unknown protocols, fragments, truncated and malformed packets', () => {
    const icmp = summarizeQueued(packet(ipv4(1, icmpEcho())), 'accept', AT);
    expect(icmp).toMatchObject({
      protocol: 'icmp',
      icmpType: 8,
      icmpCode: 0,
      icmpName: 'echo-request',
    });
    expect(icmp.sport).toBeUndefined();
    expect(icmp.payloadLength).toBeUndefined();
    expect(packetLine(icmp)).toMatch(
      / icmp 10\.0\.0\.1 -> 10\.0\.0\.2 echo-request code=0 length=30 accept\n$/,
    );

    const gre = summarizeQueued(packet(ipv4(47, new Uint8Array(4))), 'accept', AT);
    expect(gre).toMatchObject({ protocol: '47', protocolNumber: 47, length: 24 });
    expect(packetLine(gre)).toMatch(/ proto=47 10\.0\.0\.1 -> 10\.0\.0\.2 length=24 accept\n$/);

    const frag = ipv4(17, udp(1, 2, 'xyz'));
    new DataView(frag.buffer).setUint16(6, 100); // fragment offset 800
    const f = summarizeQueued(packet(frag), 'accept', AT);
    expect(f).toMatchObject({ protocol: 'udp', fragment: true });
    expect(f.sport).toBeUndefined();
    expect(packetLine(f)).toMatch(/ udp 10\.0\.0\.1 -> 10\.0\.0\.2 fragment length=31 accept/);

    const full = ipv4(17, udp(1, 2, 'x'.repeat(100)));
    const cut = summarizeQueued(
      packet(full.subarray(0, 40), { capLen: full.length }),
      'accept',
      AT,
    );
    expect(cut).toMatchObject({ length: 128, payloadLength: 12, truncated: true });
    expect(packetLine(cut)).toMatch(/ length=128 payload=12 truncated accept\n$/);

    const bad = summarizeQueued(packet(Uint8Array.from([0x75, 1, 2])), 'drop', AT);
    expect(bad.error).toMatch(/version 7/);
    expect(bad.protocol).toBeUndefined();
    expect(bad.length).toBe(3);
    expect(packetLine(bad)).toMatch(/ malformed \(.*version 7.*\) length=3 drop\n$/);

    const empty = summarizeQueued(packet(undefined), 'accept', AT);
    expect(empty).toMatchObject({ error: 'no payload copied', length: 0 });
  });

  it('names unknown hooks and families by number', () => {
    const s = summarizeQueued(
      packet(ipv4(17, udp(1, 2, '')), { hook: 9, family: 99 }),
      'accept',
      AT,
    );
    expect(s).toMatchObject({ hook: '9', family: '99' });
  });
});

describe('packetLine (text)', () => {
  it('prints time, ids, hook, interfaces, mark, owner, addresses, lengths and verdict', () => {
    const s = summarizeQueued(
      packet(ipv4(17, udp(40000, 9000, 'hello'), [127, 0, 0, 1], [127, 0, 0, 1]), {
        mark: 0x11,
        uid: 1000,
        gid: 100,
      }),
      'accept',
      AT,
    );
    expect(packetLine(s)).toBe(
      `${clockTime(s.time)} q=7 id=12 LOCAL_OUT in=- out=1 mark=0x11 uid=1000 gid=100 udp 127.0.0.1:40000 -> 127.0.0.1:9000 length=33 payload=5 accept\n`,
    );
  });

  it('clockTime is local HH:MM:SS.mmm', () => {
    const d = new Date(AT);
    const t = clockTime(d.toISOString());
    expect(t).toMatch(/^\d\d:\d\d:\d\d\.678$/);
    expect(t.startsWith(`${String(d.getHours()).padStart(2, '0')}:04:05`)).toBe(true);
  });
});

describe('nfqueue stats formatting', () => {
  const rows = [
    {
      queue: 7,
      portId: 3456789,
      queueTotal: 2,
      copyMode: 2,
      copyRange: 65531,
      queueDropped: 10,
      userDropped: 0,
      lastId: 123456,
    },
    {
      queue: 65535,
      portId: 1,
      queueTotal: 0,
      copyMode: 1,
      copyRange: 0,
      queueDropped: 0,
      userDropped: 4,
      lastId: 9,
    },
  ];

  it('JSON lines name the copy mode', () => {
    expect(queueStatsJsonLine(rows[0]!)).toBe(
      '{"queue":7,"portId":3456789,"queueTotal":2,"copyMode":"packet","copyRange":65531,"queueDropped":10,"userDropped":0,"lastId":123456}\n',
    );
    expect(JSON.parse(queueStatsJsonLine(rows[1]!))).toMatchObject({ copyMode: 'meta' });
  });

  it('the table has a header and aligned columns', () => {
    expect(formatQueueStatsTable(rows)).toBe(
      [
        'queue  port_id  queue_total  copy_mode  copy_range  queue_dropped  user_dropped  last_id',
        '    7  3456789            2  packet          65531             10             0   123456',
        '65535        1            0  meta                0              0             4        9',
        '',
      ].join('\n'),
    );
    expect(formatQueueStatsTable([])).toBe(
      'queue  port_id  queue_total  copy_mode  copy_range  queue_dropped  user_dropped  last_id\n',
    );
  });
});
