/**
 * Does one rule's match apply to one connection request, and which of two
 * rules is more specific? Both questions are answered on pre-compiled forms
 * (lower-cased hosts, parsed CIDRs) so that a lookup does no parsing per rule.
 * The semantics are documented in docs/rules.md; keep the two in step.
 */
import { parseIP } from '../common/ip.js';
import type { ConnectionRequest, Direction, Protocol, Rule, RuleMatch } from '../protocol/model.js';
import { normalizeHost, remoteAddress } from '../protocol/rules.js';
import { DecisionsError } from './errors.js';

/** A request reduced to what rules look at, computed once per lookup. */
export interface RequestView {
  readonly exe: string | null;
  readonly appId: string | null;
  readonly unit: string | null;
  readonly uid: number | null;
  /** Lower case, without a trailing dot; null when DNS snooping gave no name. */
  readonly host: string | null;
  /** The remote address (dst outbound, src inbound), 4 or 16 bytes; IPv4-mapped IPv6 as 4. */
  readonly address: Uint8Array | null;
  /** The service port: dport in both directions (the local port of an inbound connection). */
  readonly port: number | null;
  readonly protocol: Protocol;
  readonly direction: Direction;
}

function toV4IfMapped(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 16) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return bytes;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return bytes;
  return bytes.slice(12);
}

export function requestView(request: ConnectionRequest): RequestView {
  const p = request.process;
  const bytes = parseIP(remoteAddress(request));
  return {
    exe: p?.exe ?? null,
    appId: p?.appId ?? null,
    unit: p?.unit ?? null,
    // The socket owner from sock_diag first: it is what the kernel knows even
    // when the process has exited; the process's uid otherwise.
    uid: request.uid ?? p?.uid ?? null,
    host: request.host !== null && request.host !== '' ? normalizeHost(request.host) : null,
    address: bytes ? toV4IfMapped(bytes) : null,
    port: request.dport,
    protocol: request.protocol,
    direction: request.direction,
  };
}

/** A RuleMatch with its values parsed, plus the ranks precedence compares. */
export interface CompiledMatch {
  readonly exe: string | undefined;
  readonly appId: string | undefined;
  readonly unit: string | undefined;
  readonly uid: number | undefined;
  /** Exact host (normalized), or undefined. */
  readonly hostExact: string | undefined;
  /** For "*.example.com": "example.com"; matches names ending in ".example.com". */
  readonly hostSuffix: string | undefined;
  /** Network bytes already masked to the prefix (4 or 16 bytes). */
  readonly network: Uint8Array | undefined;
  readonly prefix: number;
  readonly portFrom: number;
  readonly portTo: number;
  readonly hasPort: boolean;
  readonly protocol: Protocol | undefined;
  readonly direction: Direction | undefined;
  readonly rank: Rank;
}

/**
 * What precedence compares, most significant first (docs/rules.md):
 * the number of fields, then the fineness of host, address and port.
 */
export interface Rank {
  readonly fields: number;
  /** 0 none; 1 + labels of a wildcard's suffix; EXACT_HOST for an exact name. */
  readonly host: number;
  /** 0 none; 1 + prefix length on a 128-bit scale (an IPv4 /n counts as /n+96). */
  readonly address: number;
  /** 0 none; 65536 - (to - from): a narrower range ranks higher. */
  readonly port: number;
}

const EXACT_HOST = 1000;

function invalid(match: RuleMatch, why: string): DecisionsError {
  return new DecisionsError('INVALID_RULE', `invalid rule match ${JSON.stringify(match)}: ${why}`);
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/u;

function checkName(match: RuleMatch, name: string): void {
  if (name === '' || name.length > 253) throw invalid(match, 'host name is empty or too long');
  for (const label of name.split('.')) {
    if (label.length > 63 || !LABEL.test(label)) {
      throw invalid(match, `host label "${label}" is not a DNS label`);
    }
  }
}

function compileAddress(match: RuleMatch, text: string): { network: Uint8Array; prefix: number } {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const parsed = parseIP(addrText);
  if (!parsed) throw invalid(match, `"${addrText}" is not an IPv4 or IPv6 address`);
  // parseIP shares recent results: copy before masking.
  const bytes = toV4IfMapped(parsed).slice();
  const bits = bytes.length * 8;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    prefix = /^\d{1,3}$/u.test(p) ? Number(p) : -1;
    if (prefix < 0 || prefix > bits) throw invalid(match, `prefix /${p} is out of range`);
  }
  // Host bits beyond the prefix are ignored ("192.0.2.7/24" is 192.0.2.0/24).
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return { network: bytes, prefix };
}

/** Parses and checks a RuleMatch; throws DecisionsError INVALID_RULE. */
export function compileMatch(match: RuleMatch): CompiledMatch {
  let fields = 0;
  let hostExact: string | undefined;
  let hostSuffix: string | undefined;
  let hostRank = 0;
  if (match.host !== undefined) {
    fields++;
    const host = normalizeHost(match.host);
    if (host.startsWith('*.')) {
      hostSuffix = host.slice(2);
      checkName(match, hostSuffix);
      hostRank = 1 + hostSuffix.split('.').length;
    } else {
      checkName(match, host);
      hostExact = host;
      hostRank = EXACT_HOST;
    }
  }
  let network: Uint8Array | undefined;
  let prefix = 0;
  let addressRank = 0;
  if (match.address !== undefined) {
    fields++;
    ({ network, prefix } = compileAddress(match, match.address));
    addressRank = 1 + prefix + (network.length === 4 ? 96 : 0);
  }
  let portRank = 0;
  if (match.port !== undefined) {
    fields++;
    if (match.port.from > match.port.to) throw invalid(match, 'port range from > to');
    portRank = 65536 - (match.port.to - match.port.from);
  }
  for (const key of ['exe', 'appId', 'unit', 'uid', 'protocol', 'direction'] as const) {
    if (match[key] !== undefined) fields++;
  }
  return {
    exe: match.exe,
    appId: match.appId,
    unit: match.unit,
    uid: match.uid,
    hostExact,
    hostSuffix,
    network,
    prefix,
    portFrom: match.port?.from ?? 0,
    portTo: match.port?.to ?? 65535,
    hasPort: match.port !== undefined,
    protocol: match.protocol,
    direction: match.direction,
    rank: { fields, host: hostRank, address: addressRank, port: portRank },
  };
}

function addressMatches(c: CompiledMatch, network: Uint8Array, addr: Uint8Array | null): boolean {
  if (addr === null || addr.length !== network.length) return false;
  const full = c.prefix >> 3;
  for (let i = 0; i < full; i++) if (addr[i] !== network[i]) return false;
  const rest = c.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[full]! & mask) === network[full];
}

/** Every present field must match (AND); an absent field matches anything. */
export function matchesView(c: CompiledMatch, r: RequestView): boolean {
  if (c.exe !== undefined && c.exe !== r.exe) return false;
  if (c.appId !== undefined && c.appId !== r.appId) return false;
  if (c.direction !== undefined && c.direction !== r.direction) return false;
  if (c.protocol !== undefined && c.protocol !== r.protocol) return false;
  if (c.hasPort && (r.port === null || r.port < c.portFrom || r.port > c.portTo)) return false;
  if (c.uid !== undefined && c.uid !== r.uid) return false;
  if (c.unit !== undefined && c.unit !== r.unit) return false;
  if (c.hostExact !== undefined && c.hostExact !== r.host) return false;
  if (c.hostSuffix !== undefined) {
    const h = r.host;
    if (h === null || h.length <= c.hostSuffix.length + 1) return false;
    if (!h.endsWith(c.hostSuffix) || h.charCodeAt(h.length - c.hostSuffix.length - 1) !== 46) {
      return false;
    }
  }
  if (c.network !== undefined && !addressMatches(c, c.network, r.address)) return false;
  return true;
}

/** Convenience for one-off checks (dry runs, tests): compiles and matches. */
export function ruleMatches(match: RuleMatch, request: ConnectionRequest): boolean {
  return matchesView(compileMatch(match), requestView(request));
}

/**
 * Orders two matches by specificity alone: negative when `a` is more specific.
 * Fields are compared in a fixed order so that the order is total.
 */
export function compareRank(a: Rank, b: Rank): number {
  return b.fields - a.fields || b.host - a.host || b.address - a.address || b.port - a.port;
}

/**
 * The full precedence between two rules: negative when `a` wins. After
 * specificity, deny beats allow; then the newer rule, then the smaller id, so
 * that the order is total and every lookup is deterministic.
 */
export function comparePrecedence(
  a: { readonly rule: Rule; readonly compiled: CompiledMatch },
  b: { readonly rule: Rule; readonly compiled: CompiledMatch },
): number {
  const byRank = compareRank(a.compiled.rank, b.compiled.rank);
  if (byRank !== 0) return byRank;
  if (a.rule.action !== b.rule.action) return a.rule.action === 'deny' ? -1 : 1;
  if (a.rule.created !== b.rule.created) return b.rule.created - a.rule.created;
  return a.rule.id < b.rule.id ? -1 : a.rule.id > b.rule.id ? 1 : 0;
}
