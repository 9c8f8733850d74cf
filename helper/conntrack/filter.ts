import { statusBits } from './encode.js';
import { canonicalIP } from '../common/ip.js';
import type { Flow, FlowFilter, Tuple } from './types.js';

/**
 * A predicate with the meaning of a FlowFilter, for flows the kernel did not
 * filter (events, mirrors). Built once; addresses are canonicalised once.
 */
export function flowMatcher(filter: FlowFilter): (flow: Flow) => boolean {
  const checks: ((flow: Flow) => boolean)[] = [];
  const { family, mark, markMask, status, statusMask, zone, where } = filter;
  if (family !== undefined) checks.push((f) => f.family === family);
  if (mark !== undefined || markMask !== undefined) {
    const m = (markMask ?? 0xffffffff) >>> 0;
    const v = (mark ?? 0) >>> 0;
    checks.push((f) => ((f.mark ?? 0) & m) >>> 0 === v);
  }
  if (status !== undefined) {
    const v = statusBits(status);
    const m = statusMask === undefined ? v : statusBits(statusMask);
    checks.push((f) => (f.status & m) >>> 0 === v);
  }
  if (zone !== undefined) checks.push((f) => (f.zone ?? 0) === zone);
  for (const dir of ['orig', 'reply'] as const) {
    const t = filter[dir];
    if (t) checks.push(tupleMatcher(dir, t));
  }
  if (where) checks.push(where);
  return (flow) => checks.every((c) => c(flow));
}

function tupleMatcher(dir: 'orig' | 'reply', t: Partial<Tuple>): (flow: Flow) => boolean {
  const src = t.src !== undefined ? (canonicalIP(t.src) ?? t.src) : undefined;
  const dst = t.dst !== undefined ? (canonicalIP(t.dst) ?? t.dst) : undefined;
  const fields = (
    ['proto', 'srcPort', 'dstPort', 'icmpType', 'icmpCode', 'icmpId', 'zone'] as const
  ).filter((k) => t[k] !== undefined);
  return (flow) => {
    const x = flow[dir];
    if (src !== undefined && x.src !== src) return false;
    if (dst !== undefined && x.dst !== dst) return false;
    for (const k of fields) if (x[k] !== t[k]) return false;
    return true;
  };
}
