import { describe, expect, it } from 'vitest';
import { KernelOwners, refusalReason } from '../../../helper/attribution/ebpf/kernel-owners.js';
import {
  EXEC_SIZE,
  FLOW_KEY_SIZE,
  OWNER_SIZE,
  decodeExec,
  decodeOwner,
  encodeFlowKey,
  nsToTicks,
} from '../../../helper/attribution/ebpf/records.js';
import type { SocketTuple } from '../../../helper/attribution/types.js';

const udp4: SocketTuple = {
  family: 'ipv4',
  protocol: 'udp',
  src: '10.0.0.1',
  sport: 40000,
  dst: '192.0.2.7',
  dport: 53,
};

describe('eBPF owner records (native/bpf/owners.h layouts)', () => {
  it('keys a flow by netns, protocol, family, local port, remote address and port', () => {
    const key = encodeFlowKey(udp4, 0x1122334455667788n)!;
    expect(key.length).toBe(FLOW_KEY_SIZE);
    const view = new DataView(key.buffer);
    expect(view.getBigUint64(0, true)).toBe(0x1122334455667788n);
    expect([key[8], key[9]]).toEqual([17, 2]);
    expect(view.getUint16(10, true)).toBe(40000);
    expect(view.getUint16(12, true)).toBe(53);
    expect([...key.subarray(16)]).toEqual([192, 0, 2, 7, ...new Array<number>(12).fill(0)]);
  });

  it('keys an IPv4-mapped destination as IPv4, as the programs record it', () => {
    const mapped = encodeFlowKey({ ...udp4, family: 'ipv6', dst: '::ffff:192.0.2.7' }, 1n)!;
    expect([...mapped]).toEqual([...encodeFlowKey(udp4, 1n)!]);
    const v6 = encodeFlowKey({ ...udp4, family: 'ipv6', dst: '2001:db8::1' }, 1n)!;
    expect(v6[9]).toBe(10);
    expect(v6[16]).toBe(0x20);
  });

  it('has no key for raw sockets and refuses bad ports and addresses', () => {
    expect(encodeFlowKey({ ...udp4, protocol: 'raw' }, 1n)).toBeNull();
    expect(() => encodeFlowKey({ ...udp4, sport: 70000 }, 1n)).toThrow(/sport/);
    expect(() => encodeFlowKey({ ...udp4, dst: 'nope' }, 1n)).toThrow(/dst/);
  });

  it('decodes owner and exec records', () => {
    const o = new Uint8Array(OWNER_SIZE);
    const ov = new DataView(o.buffer);
    ov.setBigUint64(0, 123_456_789_000n, true);
    ov.setBigUint64(8, 4242n, true);
    [1000, 1001, 65534, 65533, 1].forEach((n, i) => ov.setUint32(16 + 4 * i, n, true));
    o[36] = 6;
    o.set(Buffer.from('curl\0'), 40);
    expect(decodeOwner(o)).toEqual({
      startNs: 123_456_789_000n,
      cgroupId: 4242n,
      tgid: 1000,
      tid: 1001,
      uid: 65534,
      gid: 65533,
      ppid: 1,
      hook: 'connect-tracepoint',
      comm: 'curl',
    });
    o[36] = 99;
    expect(() => decodeOwner(o)).toThrow(/hook/);

    const e = new Uint8Array(EXEC_SIZE);
    const ev = new DataView(e.buffer);
    ev.setBigUint64(0, 2n, true);
    ev.setBigUint64(8, 1n, true);
    ev.setUint32(16, 77, true);
    e.set(Buffer.from('sh\0'), 24);
    e.set(Buffer.from('./run me\0'), 40);
    expect(decodeExec(e)).toMatchObject({
      execNs: 2n,
      startNs: 1n,
      ppid: 77,
      comm: 'sh',
      path: './run me',
    });
  });

  it('converts start_boottime to clock ticks as /proc/PID/stat does (truncating)', () => {
    expect(nsToTicks(123_459_999_999n)).toBe(12345);
    expect(nsToTicks(123_460_000_000n)).toBe(12346);
  });
});

describe('KernelOwners.open without eBPF', () => {
  it('returns a procfs source with the reason when the addon cannot load', () => {
    const source = KernelOwners.open({
      binding: () => {
        throw new Error('libbpf.so.1: cannot open shared object file');
      },
    });
    expect(source.status).toEqual({
      mode: 'procfs',
      reason: 'eBPF unavailable: libbpf.so.1: cannot open shared object file',
    });
    expect(source.ownerOf(udp4)).toBeNull();
    expect(source.stats()).toEqual({ lookups: 1, hits: 0, records: 0 });
    source.close();
  });

  it('says what to do about EPERM', () => {
    const error = Object.assign(new Error('EPERM: operation not permitted, bpf_object__load'), {
      code: 'EPERM',
    });
    expect(refusalReason(error)).toMatch(/needs root with CAP_BPF and CAP_SYS_ADMIN/);
  });
});
