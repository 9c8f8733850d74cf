import { describe, expect, it } from 'vitest';
import { flowMatcher } from '../../../helper/conntrack/filter.js';
import type { Flow } from '../../../helper/conntrack/types.js';

const base: Flow = {
  family: 'ipv6',
  orig: { src: '2001:db8::1', dst: '2001:db8::2', proto: 6, srcPort: 1000, dstPort: 443 },
  reply: { src: '2001:db8::2', dst: '2001:db8::1', proto: 6, srcPort: 443, dstPort: 1000 },
  status: 0b1110,
  statusFlags: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'],
  mark: 0x1234,
  zone: 3,
};

describe('flowMatcher', () => {
  it('matches each filter field with the kernel filter semantics', () => {
    const yes = [
      {},
      { family: 'ipv6' as const },
      { mark: 0x34, markMask: 0xff },
      { status: ['ASSURED' as const] },
      { status: 0b0100, statusMask: 0b0101 },
      { zone: 3 },
      { orig: { src: '2001:DB8:0::1', proto: 6, dstPort: 443 } },
      { reply: { srcPort: 443, proto: 6 } },
      { where: (f: Flow) => f.orig.srcPort === 1000 },
    ];
    for (const f of yes) expect(flowMatcher(f)(base), JSON.stringify(f)).toBe(true);
    const no = [
      { family: 'ipv4' as const },
      { mark: 0x1234, markMask: 0xf0ff },
      { status: ['DYING' as const] },
      { zone: 0 },
      { orig: { dst: '2001:db8::9' } },
      { orig: { proto: 17 } },
      { reply: { dstPort: 1 } },
      { where: () => false },
    ];
    for (const f of no) expect(flowMatcher(f)(base), JSON.stringify(f)).toBe(false);
  });

  it('treats a missing zone and mark as 0', () => {
    const { zone: _z, mark: _m, ...bare } = base;
    expect(flowMatcher({ zone: 0, mark: 0 })(bare)).toBe(true);
  });
});
