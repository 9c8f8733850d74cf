import type { TestNetns } from './netns.js';
import { run } from './netns.js';

export interface VethOptions {
  /** The two interface names (default pa<suffix> in `a`, pb<suffix> in `b`). */
  names?: [string, string];
  /** The /24 both ends share, as its first three octets: `a` gets .1, `b` .2 (default 198.18.0). */
  v4?: string;
  /** A /64 prefix ending in "::" (e.g. "2001:db8:3::"): `a` gets ::1, `b` ::2, without DAD. */
  v6?: string;
  /**
   * Keep the kernel's IPv6 link-local addresses (default false: their MLD reports would
   * be queued as new ICMPv6 "connections" at unpredictable times and upset packet counts).
   */
  linkLocal?: boolean;
}

export interface Veth {
  /** IPv4 addresses of the two ends. */
  a: string;
  b: string;
  /** IPv6 addresses, with options.v6. */
  a6?: string;
  b6?: string;
  names: [string, string];
}

/**
 * Two namespaces the test made, joined by a veth pair, with addresses only inside them
 * (198.18.0.0/15, the range reserved for benchmarks and tests, by default).
 */
export function vethPair(a: TestNetns, b: TestNetns, options: VethOptions = {}): Veth {
  const suffix = a.name.slice(-6);
  const [va, vb] = options.names ?? [`pa${suffix}`, `pb${suffix}`];
  const v4 = options.v4 ?? '198.18.0';
  run('ip', ['-n', a.name, 'link', 'add', va, 'type', 'veth', 'peer', 'name', vb, 'netns', b.name]);
  if (!options.linkLocal) {
    run('ip', ['-n', a.name, 'link', 'set', va, 'addrgenmode', 'none']);
    run('ip', ['-n', b.name, 'link', 'set', vb, 'addrgenmode', 'none']);
  }
  const out: Veth = { a: `${v4}.1`, b: `${v4}.2`, names: [va, vb] };
  run('ip', ['-n', a.name, 'addr', 'add', `${out.a}/24`, 'dev', va]);
  run('ip', ['-n', b.name, 'addr', 'add', `${out.b}/24`, 'dev', vb]);
  if (options.v6 !== undefined) {
    out.a6 = `${options.v6}1`;
    out.b6 = `${options.v6}2`;
    run('ip', ['-n', a.name, '-6', 'addr', 'add', `${out.a6}/64`, 'dev', va, 'nodad']);
    run('ip', ['-n', b.name, '-6', 'addr', 'add', `${out.b6}/64`, 'dev', vb, 'nodad']);
  }
  run('ip', ['-n', a.name, 'link', 'set', va, 'up']);
  run('ip', ['-n', b.name, 'link', 'set', vb, 'up']);
  return out;
}
