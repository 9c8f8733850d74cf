import { describe, expect, it } from 'vitest';
import { DnsCache, type DnsMapping } from '../../../helper/dns/index.js';

function clock(start = 1000): { now: () => number; advance: (s: number) => void } {
  let t = start;
  return { now: () => t, advance: (s) => (t += s * 1000) };
}

const m = (ip: string, name: string, ttl: number, queried = true): DnsMapping => ({
  ip,
  name,
  ttl,
  queried,
});

describe('DnsCache', () => {
  it('per-name TTL expiry on an injected clock, clamped to [minTtl, maxTtl]', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, minTtl: 10, maxTtl: 100 });
    cache.add(m('198.18.0.1', 'short.test', 0)); // clamped up to 10 s
    cache.add(m('198.18.0.1', 'long.test', 5000)); // clamped down to 100 s
    cache.add(m('198.18.0.1', 'mid.test', 50));
    expect(cache.lookup('198.18.0.1')?.entries.map((e) => [e.name, e.expiresAt])).toEqual([
      ['mid.test', 1000 + 50_000],
      ['long.test', 1000 + 100_000],
      ['short.test', 1000 + 10_000],
    ]);
    c.advance(10);
    expect(cache.lookup('198.18.0.1')?.names).toEqual(['mid.test', 'long.test']);
    c.advance(40);
    expect(cache.lookup('198.18.0.1')?.names).toEqual(['long.test']);
    c.advance(50);
    expect(cache.lookup('198.18.0.1')).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.stats.expired).toBe(3);
  });

  it('best name: the most recent queried name, ahead of later CNAME targets', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now });
    cache.add(m('198.18.0.2', 'first.test', 300));
    c.advance(1);
    cache.add(m('198.18.0.2', 'cdn.test', 300, false));
    cache.add(m('198.18.0.2', 'second.test', 300));
    cache.add(m('198.18.0.2', 'edge.test', 300, false));
    const hit = cache.lookup('198.18.0.2')!;
    expect(hit.name).toBe('second.test');
    expect(hit.names).toEqual(['second.test', 'edge.test', 'cdn.test', 'first.test']);
    // A name seen only through CNAMEs is still found.
    cache.add(m('198.18.0.3', 'only-cname.test', 300, false));
    expect(cache.lookup('198.18.0.3')?.name).toBe('only-cname.test');
    // Asking again for an older name makes it the best one.
    c.advance(1);
    cache.add(m('198.18.0.2', 'first.test', 300));
    expect(cache.lookup('198.18.0.2')?.name).toBe('first.test');
  });

  it('a later, shorter TTL does not cut an earlier grant; a queried name stays queried', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, minTtl: 0 });
    cache.add(m('198.18.0.4', 'a.test', 300));
    c.advance(10);
    cache.add(m('198.18.0.4', 'a.test', 5, false));
    const [e] = cache.lookup('198.18.0.4')!.entries;
    expect(e).toMatchObject({ expiresAt: 1000 + 300_000, queried: true, seenAt: 11_000 });
  });

  it('LRU: the least recently used address is evicted; a lookup counts as a use', () => {
    const cache = new DnsCache({ now: clock().now, maxAddresses: 3 });
    for (const i of [1, 2, 3]) cache.add(m(`198.18.1.${i}`, `h${i}.test`, 300));
    expect(cache.lookup('198.18.1.1')?.name).toBe('h1.test'); // 1 is now the most recent
    cache.add(m('198.18.1.4', 'h4.test', 300)); // evicts 2
    expect(cache.lookup('198.18.1.2')).toBeUndefined();
    expect(['198.18.1.1', '198.18.1.3', '198.18.1.4'].map((ip) => cache.lookup(ip)?.name)).toEqual([
      'h1.test',
      'h3.test',
      'h4.test',
    ]);
    expect(cache.stats).toMatchObject({ addresses: 3, evicted: 1 });
  });

  it('names per address are bounded: the least recently seen goes', () => {
    const cache = new DnsCache({ now: clock().now, maxNamesPerAddress: 2 });
    cache.add(m('198.18.2.1', 'a.test', 300));
    cache.add(m('198.18.2.1', 'b.test', 300));
    cache.add(m('198.18.2.1', 'a.test', 300)); // refreshes a
    cache.add(m('198.18.2.1', 'c.test', 300)); // drops b
    expect(cache.lookup('198.18.2.1')?.names.sort()).toEqual(['a.test', 'c.test']);
    expect(cache.stats.namesEvicted).toBe(1);
  });

  it('addresses in any spelling; IPv4-mapped IPv6 is the IPv4 address; names lower case', () => {
    const cache = new DnsCache({ now: clock().now });
    cache.add(m('FD00:0:0::0A', 'Six.Test', 300));
    cache.add(m('198.18.3.1', 'four.test', 300));
    expect(cache.lookup('fd00::a')?.name).toBe('six.test');
    expect(cache.lookup('::ffff:198.18.3.1')?.name).toBe('four.test');
    expect(cache.lookup('not-an-ip')).toBeUndefined();
    expect(() => cache.add(m('nope', 'x', 1))).toThrow(RangeError);
    expect(cache.delete('fd00::a')).toBe(true);
    expect(cache.lookup('fd00::a')).toBeUndefined();
  });

  it('prune drops expired names without a lookup', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, minTtl: 1 });
    cache.add(m('198.18.4.1', 'a.test', 1));
    cache.add(m('198.18.4.2', 'b.test', 100));
    c.advance(2);
    expect(cache.prune()).toBe(1);
    expect(cache.size).toBe(1);
  });

  it('rejects impossible options', () => {
    expect(() => new DnsCache({ maxAddresses: 0 })).toThrow(RangeError);
    expect(() => new DnsCache({ minTtl: 10, maxTtl: 5 })).toThrow(RangeError);
  });
});
