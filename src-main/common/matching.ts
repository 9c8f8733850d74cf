/**
 * Rule matches as the UI builds and previews them. The match a prompt answer
 * keeps comes from the protocol module, the same function the helper saves
 * with, so the card's preview is the rule that gets saved.
 */
import type { ConnectionRequest, Flow, RuleMatch } from './api.js';

export { matchForScope, remoteAddress } from '../../helper/protocol/rules.js';

/** "Create rule from this flow": the flow's process, destination, port and protocol. */
export function matchForFlow(flow: Flow): RuleMatch {
  const match: RuleMatch = { protocol: flow.protocol };
  if (flow.process?.appId) match.appId = flow.process.appId;
  else if (flow.process?.exe) match.exe = flow.process.exe;
  if (flow.host) match.host = flow.host;
  else match.address = flow.dst;
  if (flow.dport !== null) match.port = { from: flow.dport, to: flow.dport };
  return match;
}

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
 * port range, a host that is not a name or `*.` + a name), or null. The
 * in-memory API refuses what the helper refuses.
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
  if (match.address !== undefined && !addressMatches(match.address, request.dst)) return false;
  if (match.port !== undefined) {
    if (request.dport === null) return false;
    if (request.dport < match.port.from || request.dport > match.port.to) return false;
  }
  if (match.protocol !== undefined && request.protocol !== match.protocol) return false;
  if (match.direction !== undefined && request.direction !== match.direction) return false;
  return true;
}

/** A one-line description of a match, for lists and previews. */
export function describeMatch(match: RuleMatch): string {
  const parts: string[] = [];
  if (match.appId !== undefined) parts.push(`app ${match.appId}`);
  if (match.exe !== undefined) parts.push(match.exe);
  if (match.unit !== undefined) parts.push(`unit ${match.unit}`);
  if (match.uid !== undefined) parts.push(`uid ${match.uid}`);
  if (match.direction !== undefined) parts.push(match.direction === 'outbound' ? 'to' : 'from');
  if (match.host !== undefined) parts.push(match.host);
  if (match.address !== undefined) parts.push(match.address);
  if (match.host === undefined && match.address === undefined) parts.push('any host');
  if (match.port !== undefined) {
    const { from, to } = match.port;
    parts.push(from === to ? `port ${from}` : `ports ${from}-${to}`);
  }
  if (match.protocol !== undefined) parts.push(match.protocol);
  return parts.join(' ');
}
