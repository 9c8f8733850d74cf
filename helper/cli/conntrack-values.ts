/**
 * The values of `portcullis conntrack` options (numbers, marks, protocols,
 * status flags, labels, families, addresses, states), each parsed on its own;
 * how they combine is conntrack-args.ts's job. Every mistake is a CliUsageError.
 */
import {
  DCCP_STATES,
  IPPROTO,
  SCTP_STATES,
  STATUS_BITS,
  TCP_STATES,
  type StatusFlag,
} from '../conntrack/constants.js';
import { canonicalIP, parseIP } from '../common/ip.js';
import type { Family } from '../conntrack/types.js';
import { CliUsageError } from './command.js';

/** An unsigned integer in decimal or 0x-hexadecimal, at most `max`. */
export function parseUnsigned(text: string, max: number, what: string): number {
  const t = text.trim();
  let v: number;
  if (/^[0-9]+$/.test(t)) v = Number(t);
  else if (/^0[xX][0-9a-fA-F]+$/.test(t)) v = parseInt(t.slice(2), 16);
  else throw new CliUsageError(`${what}: '${text}' is not a number`);
  if (!Number.isSafeInteger(v) || v > max) {
    throw new CliUsageError(`${what}: ${text} is out of range 0..${max}`);
  }
  return v;
}

/** `VALUE[/MASK]`, each decimal or 0x-hex, 32 bits. */
export function parseMark(text: string): { value: number; mask?: number } {
  const parts = text.split('/');
  if (parts.length > 2) throw new CliUsageError(`mark: '${text}' is not VALUE[/MASK]`);
  const value = parseUnsigned(parts[0]!, 0xffffffff, 'mark');
  if (parts.length === 1) return { value };
  return { value, mask: parseUnsigned(parts[1]!, 0xffffffff, 'mark mask') };
}

const PROTO_ALIASES: Record<string, number> = { ...IPPROTO, 'ipv6-icmp': IPPROTO.icmpv6 };

/** A protocol name (tcp udp udplite icmp icmpv6 sctp dccp gre) or number 0..255. */
export function parseProto(text: string): number {
  const name = text.trim().toLowerCase();
  const known = PROTO_ALIASES[name];
  if (known !== undefined) return known;
  if (/^[0-9]+$/.test(name) || /^0x[0-9a-f]+$/.test(name)) {
    return parseUnsigned(name, 255, 'protocol');
  }
  throw new CliUsageError(
    `protocol: unknown '${text}' (tcp, udp, udplite, icmp, icmpv6, sctp, dccp, gre or 0..255)`,
  );
}

export function protoName(proto: number): string | undefined {
  for (const [name, n] of Object.entries(IPPROTO)) if (n === proto) return name;
  return undefined;
}

/** Comma-separated IPS_* names (case-insensitive, IPS_ prefix optional). */
export function parseStatus(texts: readonly string[]): StatusFlag[] {
  const out: StatusFlag[] = [];
  for (const text of texts) {
    for (const part of text.split(',')) {
      const name = part.trim().toUpperCase().replace(/^IPS_/, '');
      if (!(name in STATUS_BITS)) {
        throw new CliUsageError(
          `status: unknown flag '${part}' (one of ${Object.keys(STATUS_BITS).join(', ')})`,
        );
      }
      if (!out.includes(name as StatusFlag)) out.push(name as StatusFlag);
    }
  }
  return out;
}

/** Comma-separated connlabel bit numbers 0..127. */
export function parseLabels(texts: readonly string[]): number[] {
  const out = new Set<number>();
  for (const text of texts) {
    for (const part of text.split(',')) {
      if (part.trim() === '') throw new CliUsageError(`label: empty label in '${text}'`);
      out.add(parseUnsigned(part, 127, 'label'));
    }
  }
  return [...out].sort((a, b) => a - b);
}

export function parseFamily(text: string): Family {
  const t = text.trim().toLowerCase();
  if (t === 'ipv4' || t === 'inet' || t === '4') return 'ipv4';
  if (t === 'ipv6' || t === 'inet6' || t === '6') return 'ipv6';
  throw new CliUsageError(`family: '${text}' is not ipv4 or ipv6`);
}

export function parseAddress(text: string, what: string): { text: string; family: Family } {
  const canonical = canonicalIP(text.trim());
  const bytes = parseIP(text.trim());
  if (canonical === undefined || bytes === undefined) {
    throw new CliUsageError(`${what}: '${text}' is not an IPv4 or IPv6 address`);
  }
  return { text: canonical, family: bytes.length === 4 ? 'ipv4' : 'ipv6' };
}

export const PORT_PROTOS: readonly number[] = [
  IPPROTO.tcp,
  IPPROTO.udp,
  IPPROTO.udplite,
  IPPROTO.sctp,
  IPPROTO.dccp,
  IPPROTO.gre,
];
export const isIcmpProto = (p: number | undefined) => p === IPPROTO.icmp || p === IPPROTO.icmpv6;

/** A protocol state name (case-insensitive) valid for the protocol. */
export function parseState(text: string, proto: number, settable = false): string {
  const name = text.trim().toUpperCase();
  const table: readonly string[] | undefined =
    proto === IPPROTO.tcp
      ? TCP_STATES
      : proto === IPPROTO.sctp
        ? SCTP_STATES
        : proto === IPPROTO.dccp && !settable
          ? DCCP_STATES
          : undefined;
  if (!table) {
    throw new CliUsageError(
      settable ? '--state needs -p tcp or -p sctp' : '--state needs -p tcp, sctp or dccp',
    );
  }
  if (!table.includes(name)) {
    throw new CliUsageError(
      `state: unknown ${protoName(proto)} state '${text}' (one of ${table.join(', ')})`,
    );
  }
  return name;
}
