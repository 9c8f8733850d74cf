/**
 * The entries a command line selects (-L, -G, -D, -U, -E): the options
 * conntrack-tools compares (CT_COMPARISON, filter_nat, filter_label,
 * filter_network), as a filter for the conntrack library.
 */
import type { ListOptions } from '../../conntrack/client.js';
import { STATUS_BITS } from '../../conntrack/constants.js';
import { labelBits } from '../../conntrack/decode.js';
import { parseIP } from '../../common/ip.js';
import type { Flow, Tuple } from '../../conntrack/types.js';
import type { CompatArgs } from './args.js';
import { CompatUsageError } from './errors.js';

/** (address & mask) == (network & mask), for addresses of one family. */
function inNetwork(address: string, network: string, mask: string): boolean {
  const a = parseIP(address);
  const n = parseIP(network);
  const m = parseIP(mask);
  if (!a || !n || !m || a.length !== n.length || m.length !== a.length) return false;
  return a.every((byte, i) => (byte & m[i]!) === (n[i]! & m[i]!));
}

/**
 * nfct_filter_init(): --mask-src / --mask-dst need the address they mask
 * (-L, -U, -D, -E check it when they start, as 1.4.7).
 */
export function filterInit(a: CompatArgs): void {
  if (a.options.has('mask-src') && a.orig.src === undefined) {
    throw new CompatUsageError("Can't use --mask-src without --src");
  }
  if (a.options.has('mask-dst') && a.orig.dst === undefined) {
    throw new CompatUsageError("Can't use --mask-dst without --dst");
  }
}

/**
 * filter_nat(): --src-nat / --dst-nat / --any-nat [ADDR[:PORT]]. An entry is
 * SNATed when SRC_NAT_DONE is set and its reply destination differs from the
 * original source (the port likewise); with an address, the reply address
 * must be that address (IPv4 only, as 1.4.7 reads ATTR_SNAT_IPV4 alone),
 * with a port, the reply port. -n and -g together: both; -j: either.
 */
function natMatcher(a: CompatArgs): ((flow: Flow) => boolean) | undefined {
  const any = a.options.has('any-nat');
  const checkSrc = any || a.options.has('src-nat');
  const checkDst = any || a.options.has('dst-nat');
  if (!checkSrc && !checkDst) return undefined;
  return (flow) => {
    const src = checkSrc && natted(flow, 'src', a.natSrc);
    const dst = checkDst && natted(flow, 'dst', a.natDst);
    if (any) return src || dst;
    if (checkSrc && checkDst) return src && dst;
    return checkSrc ? src : dst;
  };
}

/**
 * One side of filter_nat(): SNAT compares the reply's destination with the
 * original source, DNAT the reply's source with the original destination.
 */
function natted(flow: Flow, side: 'src' | 'dst', nat: CompatArgs['natSrc']): boolean {
  const snat = side === 'src';
  const doneBit = snat ? STATUS_BITS.SRC_NAT_DONE : STATUS_BITS.DST_NAT_DONE;
  const natIp = snat ? flow.reply.dst : flow.reply.src;
  const origIp = snat ? flow.orig.src : flow.orig.dst;
  const natPort = (snat ? flow.reply.dstPort : flow.reply.srcPort) ?? 0;
  const origPort = (snat ? flow.orig.srcPort : flow.orig.dstPort) ?? 0;
  const done = (flow.status & doneBit) !== 0;
  const isNat = done && natIp !== origIp;
  const isPat = done && natPort !== origPort;
  let result = false;
  const checkAddress = nat !== undefined && !nat.ip.includes(':');
  if (checkAddress) result = isNat && nat.ip === natIp;
  if (nat?.port !== undefined) {
    const ret = isPat && nat.port === natPort;
    if (checkAddress && result && !ret) result = false;
    if (!checkAddress && ret) result = true;
  } else if (!checkAddress) result = isNat || isPat;
  return result;
}

type Check = (flow: Flow) => boolean;

/**
 * The filter of -L, -D, -U and -E: every option conntrack-tools compares.
 * `tupleOnly` (-U): mark, status, zone and state are what -U sets, not filters.
 */
export function listFilter(a: CompatArgs, tupleOnly = false): ListOptions {
  const f: ListOptions = {};
  if (a.family) f.family = a.family;
  const checks = tupleChecks(a, f);
  const nat = natMatcher(a);
  if (nat) checks.push(nat);
  if (a.labels !== undefined) {
    // filter_label(): every bit asked for must be set; no labels, no match.
    const wanted = a.labels;
    checks.push((flow) => {
      if (!flow.labels) return false;
      const have = new Set(labelBits(flow.labels));
      return wanted.every((b) => have.has(b));
    });
  }
  if (a.id !== undefined) {
    const id = a.id;
    checks.push((flow) => flow.id === id);
  }
  if (!tupleOnly) checks.push(...entryChecks(a, f));
  if (checks.length) f.where = (flow) => checks.every((c) => c(flow));
  return f;
}

/**
 * The tuples' part: the addresses and ports of -s/-d/-r/-q and the protocol
 * options go to the kernel's filter (`f.orig`, `f.reply`); what it cannot
 * compare as 1.4.7 does comes back as checks.
 */
function tupleChecks(a: CompatArgs, f: ListOptions): Check[] {
  const orig: Partial<Tuple> = { ...a.orig };
  const checks: Check[] = [];
  for (const [key, mask] of [
    ['src', a.options.has('mask-src') ? a.srcMask : undefined],
    ['dst', a.options.has('mask-dst') ? a.dstMask : undefined],
  ] as const) {
    const net = orig[key];
    if (mask === undefined || net === undefined) continue;
    // filter_network(): the family of the mask, then the masked address.
    const family = a.family;
    delete orig[key];
    checks.push((flow) => flow.family === family && inNetwork(flow.orig[key], net, mask));
  }
  if (Object.keys(orig).length) f.orig = orig;
  if (Object.keys(a.reply).length) f.reply = { ...a.reply };
  // nfct_cmp(): a port (or ICMP field) asked for must be in the entry; the
  // kernel's tuple filter lets entries of protocols without ports through
  // (DCCP when the kernel has no DCCP tracker).
  for (const dir of ['orig', 'reply'] as const) {
    const t = f[dir];
    if (!t) continue;
    const fields = (['srcPort', 'dstPort', 'icmpType', 'icmpCode', 'icmpId'] as const).filter(
      (k) => t[k] !== undefined,
    );
    if (fields.length) checks.push((flow) => fields.every((k) => flow[dir][k] === t[k]));
  }
  return checks;
}

/** What -U sets and the other commands compare: mark, status, zones, states, secmark. */
function entryChecks(a: CompatArgs, f: ListOptions): Check[] {
  const checks: Check[] = [];
  if (a.mark) {
    f.mark = a.mark.value;
    f.markMask = a.mark.mask;
  }
  if (a.status !== undefined) {
    f.status = a.status;
    // Only -L of the main table hands the kernel 1.4.7's status filter, with
    // its mask from the first -u (see the -u option); -D and -E compare all flags.
    f.statusMask =
      a.command === 'L' && a.table === 'conntrack' ? (a.statusMask ?? a.status) : a.status;
  }
  if (a.zone !== undefined) f.zone = a.zone;
  if (a.state !== undefined) {
    const state = a.state;
    checks.push((flow) => flow.tcp?.state === state);
  }
  if (a.sctpState !== undefined) {
    const state = a.sctpState;
    checks.push((flow) => flow.sctp?.state === state);
  }
  if (a.dccpState !== undefined) {
    const state = a.dccpState;
    checks.push((flow) => flow.dccp?.state === state);
  }
  // nfct_cmp(): an entry without a secmark matches any -c (the kernel does
  // not dump CTA_SECMARK); a direction without a zone is zone 0.
  if (a.secmark !== undefined) {
    const secmark = a.secmark;
    checks.push((flow) => flow.secmark === undefined || flow.secmark === secmark);
  }
  // In user space: the kernel's tuple filter compares a zone whatever its direction.
  if (a.origZone !== undefined) {
    const zone = a.origZone;
    checks.push((flow) => (flow.orig.zone ?? 0) === zone);
  }
  if (a.replyZone !== undefined) {
    const zone = a.replyZone;
    checks.push((flow) => (flow.reply.zone ?? 0) === zone);
  }
  return checks;
}
