/**
 * The in-memory API's rule matching for dry runs and imports: the semantics of
 * helper/decisions/matcher.ts (docs/rules.md) in the plain form a test double
 * needs, which answers false where the helper's compiled matcher would throw,
 * and refuses a bad match with the helper's wording.
 */
import type { ConnectionRequest, RuleMatch } from '../../src-main/common/api.js';
import { remoteAddress } from '../../helper/protocol/rules.js';

export function hostMatches(pattern: string, host: string | null): boolean {
  if (host === null) return false;
  const p = pattern.toLowerCase();
  const h = host.toLowerCase().replace(/\.$/u, '');
  if (p.startsWith('*.')) return h.endsWith(p.slice(1));
  return h === p;
}

/** An address as a bigint and its bit width, or null when it does not parse. */
function parseAddress(text: string): { value: bigint; bits: number } | null {
  if (text.includes(':')) {
    const [head = '', tail, ...rest] = text.split('::');
    if (rest.length > 0) return null;
    const left = head === '' ? [] : head.split(':');
    const right = tail === undefined || tail === '' ? [] : tail.split(':');
    const missing = 8 - left.length - right.length;
    if (tail === undefined ? missing !== 0 : missing < 1) return null;
    const groups = [
      ...left,
      ...Array<string>(tail === undefined ? 0 : missing).fill('0'),
      ...right,
    ];
    let value = 0n;
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/u.test(g)) return null;
      value = (value << 16n) | BigInt(parseInt(g, 16));
    }
    return { value, bits: 128 };
  }
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const p of parts) {
    const n = Number(p);
    if (!/^\d{1,3}$/u.test(p) || n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return { value, bits: 32 };
}

/** "192.0.2.1" or "198.18.0.0/15" against an address. */
export function addressMatches(pattern: string, address: string): boolean {
  const [base = '', prefixText] = pattern.split('/');
  const net = parseAddress(base);
  const addr = parseAddress(address);
  if (!net || !addr || net.bits !== addr.bits) return false;
  const prefix = prefixText === undefined ? net.bits : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > net.bits) return false;
  const shift = BigInt(net.bits - prefix);
  return net.value >> shift === addr.value >> shift;
}

const DNS_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/u;

/**
 * Why the helper would refuse this match (a bad address or prefix, a reversed
 * port range, a host that is not a name or `*.` + a name), or null.
 */
export function matchProblem(match: RuleMatch): string | null {
  if (match.address !== undefined) {
    const [base = '', prefixText, ...rest] = match.address.split('/');
    const net = parseAddress(base);
    if (!net || rest.length > 0) return `"${base}" is not an IPv4 or IPv6 address`;
    if (
      prefixText !== undefined &&
      (!/^\d{1,3}$/u.test(prefixText) || Number(prefixText) > net.bits)
    ) {
      return `prefix /${prefixText} is out of range`;
    }
  }
  if (match.port !== undefined && match.port.from > match.port.to) return 'port range from > to';
  if (match.host !== undefined) {
    const host = match.host.toLowerCase().replace(/\.$/u, '');
    const name = host.startsWith('*.') ? host.slice(2) : host;
    if (name.length > 253 || !DNS_NAME.test(name)) {
      return `host "${match.host}" is not a DNS name or *. and a DNS name`;
    }
  }
  return null;
}

/** Every present field must match (AND); absent fields match anything. */
export function requestMatches(match: RuleMatch, request: ConnectionRequest): boolean {
  const proc = request.process;
  if (match.exe !== undefined && proc?.exe !== match.exe) return false;
  if (match.appId !== undefined && proc?.appId !== match.appId) return false;
  if (match.unit !== undefined && proc?.unit !== match.unit) return false;
  if (match.uid !== undefined && (proc?.uid ?? request.uid) !== match.uid) return false;
  if (match.host !== undefined && !hostMatches(match.host, request.host)) return false;
  if (match.address !== undefined && !addressMatches(match.address, remoteAddress(request))) {
    return false;
  }
  if (match.port !== undefined) {
    if (request.dport === null) return false;
    if (request.dport < match.port.from || request.dport > match.port.to) return false;
  }
  if (match.protocol !== undefined && request.protocol !== match.protocol) return false;
  if (match.direction !== undefined && request.direction !== match.direction) return false;
  return true;
}
