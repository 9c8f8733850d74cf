/**
 * Addresses and ports on conntrack-tools' command line: inet_aton() and
 * inet_pton() forms, /prefix netmasks, and NAT's ADDR[:PORT].
 */
import { canonicalIP, parseIPv6 } from '../../common/ip.js';
import type { Family } from '../../conntrack/types.js';
import { CompatUsageError } from './errors.js';

/** inet_aton(): 1 to 4 parts, each decimal, 0-octal or 0x-hex; the last fills the rest. */
export function inetAton(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const p of parts) {
    if (!/^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$/.test(p)) return undefined;
    const v = /^0[xX]/.test(p)
      ? parseInt(p.slice(2) || '0', 16)
      : p.startsWith('0')
        ? parseInt(p, 8)
        : Number(p);
    values.push(v);
  }
  const last = values.pop()!;
  if (values.some((v) => v > 255)) return undefined;
  if (last >= 2 ** (8 * (4 - values.length))) return undefined;
  const out = new Uint8Array(4);
  values.forEach((v, i) => (out[i] = v));
  for (let i = 3; i >= values.length; i--) out[i] = Math.floor(last / 2 ** (8 * (3 - i))) & 0xff;
  return out;
}

function addressText(bytes: Uint8Array): string {
  return canonicalIP(bytes.length === 4 ? bytes.join('.') : v6Text(bytes))!;
}

function v6Text(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
}

/**
 * parse_addr() + nfct_parse_addr_from_opt(): an address with an optional
 * /prefix. `noCidr`: the long option name when this option takes no prefix
 * (`CIDR notation unavailable for --NAME`).
 */
export function parseAddr(
  text: string,
  noCidr?: string,
): { family: Family; text: string; prefix?: number } {
  let addr = text.slice(0, 45); // INET6_ADDRSTRLEN - 1
  let prefix: number | undefined;
  const slash = addr.indexOf('/');
  if (slash >= 0) {
    // strtol(): blanks, a sign, digits, and nothing after them ("" reads as 0).
    const rest = addr.slice(slash + 1);
    const m = /^\s*[+-]?\d+$/.exec(rest);
    prefix = rest === '' ? 0 : m ? Number(rest.trim()) : -2;
    if (prefix < 0) prefix = -2;
    addr = addr.slice(0, slash);
  }
  const v4 = inetAton(addr);
  const v6 = v4 ? undefined : parseIPv6(addr);
  if (!v4 && !v6) throw new CompatUsageError(`Invalid IP address \`${text}'`);
  const family: Family = v4 ? 'ipv4' : 'ipv6';
  const full = v4 ? 32 : 128;
  if (prefix !== undefined && prefix > full) prefix = -2;
  if (prefix !== undefined && noCidr !== undefined) {
    throw new CompatUsageError(`CIDR notation unavailable for \`--${noCidr}'`);
  }
  if (prefix === -2) throw new CompatUsageError('Invalid netmask');
  return {
    family,
    text: addressText((v4 ?? v6)!),
    ...(prefix !== undefined && prefix < full ? { prefix } : {}),
  };
}

/** The netmask of a prefix length, as an address. */
export function prefixMask(prefix: number, family: Family): string {
  const bytes = new Uint8Array(family === 'ipv4' ? 4 : 16);
  for (let bit = 0; bit < prefix; bit++) bytes[bit >> 3]! |= 0x80 >> (bit % 8);
  return addressText(bytes);
}

/** valid_port(): digits only, at most 65535. */
function validPort(text: string): boolean {
  return /^\d+$/.test(text) && Number(text) <= 0xffff;
}

/** split_address_and_port(): `[v6]:port`, `v4:port` (one colon), or an address. */
export function splitAddressAndPort(arg: string): { addr: string; port?: string } {
  let address: string | undefined;
  let cursor = -1;
  const open = arg.indexOf('[');
  if (open >= 0) {
    const start = open + 1;
    const close = arg.indexOf(']', start);
    if (close === start) throw new CompatUsageError('No IPv6 address specified');
    if (close < 0) throw new CompatUsageError("No closing ']' around IPv6 address");
    cursor = arg.indexOf(':', close);
    if (cursor >= 0) address = arg.slice(start, close);
  } else {
    const colon = arg.indexOf(':');
    if (colon >= 0 && arg.indexOf(':', colon + 1) < 0) {
      address = arg.slice(0, colon);
      cursor = colon;
    }
  }
  if (cursor < 0) return { addr: arg };
  const port = arg.slice(cursor + 1);
  if (port === '') throw new CompatUsageError("No port specified after `:'");
  if (!validPort(port)) throw new CompatUsageError(`Invalid port \`${port}'`);
  return { addr: address!, port };
}
