/**
 * Option values that are names or numbers: statuses, event types, output
 * formats, marks, protocols, protocol states and the DCCP role, read as
 * conntrack-tools 1.4.7 reads them, with its messages.
 */
import {
  DCCP_STATES,
  IPPROTO,
  SCTP_STATES,
  STATUS_BITS,
  TCP_STATES,
  type DccpState,
  type SctpState,
  type TcpState,
} from '../../conntrack/constants.js';
import type { EventKind, OutputFlag } from './args.js';
import { strtoul } from './c-numbers.js';
import { CompatUsageError } from './errors.js';

export const STATUS_NAMES: [string, number][] = [
  ['ASSURED', STATUS_BITS.ASSURED],
  ['SEEN_REPLY', STATUS_BITS.SEEN_REPLY],
  ['UNSET', 0],
  ['FIXED_TIMEOUT', STATUS_BITS.FIXED_TIMEOUT],
  ['EXPECTED', STATUS_BITS.EXPECTED],
  ['OFFLOAD', STATUS_BITS.OFFLOAD],
  ['HW_OFFLOAD', STATUS_BITS.HW_OFFLOAD],
];

export const OUTPUT_NAMES: [string, OutputFlag][] = [
  ['xml', 'xml'],
  ['extended', 'extended'],
  ['timestamp', 'timestamp'],
  ['id', 'id'],
  ['ktimestamp', 'ktimestamp'],
  ['labels', 'labels'],
  ['userspace', 'userspace'],
  ['save', 'save'],
];

export const EVENT_NAMES: [string, EventKind[]][] = [
  ['ALL', ['new', 'update', 'destroy']],
  ['NEW', ['new']],
  ['UPDATES', ['update']],
  ['DESTROY', ['destroy']],
];

/** parse_parameter(): comma-separated names, each a case-insensitive prefix of a known name. */
export function parseParameter<T>(arg: string, table: [string, T][]): T[] {
  const out: T[] = [];
  let rest = arg;
  for (;;) {
    const comma = rest.indexOf(',');
    const word = comma >= 0 ? rest.slice(0, comma) : rest;
    const hit =
      word.length === 0
        ? undefined
        : table.find(([name]) => name.toLowerCase().startsWith(word.toLowerCase()));
    if (!hit) throw new CompatUsageError(`Bad parameter \`${rest}'`);
    out.push(hit[1]);
    if (comma < 0) return out;
    rest = rest.slice(comma + 1);
  }
}

/** -m VALUE[/MASK]. */
export function parseMark(arg: string): { value: number; mask: number } {
  // conntrack-tools 1.4.7 does not check: garbage reads as 0.
  const { value, end } = strtoul(arg);
  if (arg[end] === '/') return { value, mask: strtoul(arg.slice(end + 1)).value };
  return { value, mask: 0xffffffff };
}

const PROTO_BY_NAME: Record<string, number> = {
  tcp: IPPROTO.tcp,
  udp: IPPROTO.udp,
  udplite: IPPROTO.udplite,
  icmp: IPPROTO.icmp,
  icmpv6: IPPROTO.icmpv6,
  sctp: IPPROTO.sctp,
  dccp: IPPROTO.dccp,
  gre: IPPROTO.gre,
  // getprotobyname() names from /etc/protocols that scripts commonly use.
  ip: 0,
  igmp: 2,
  ipip: 4,
  esp: 50,
  ah: 51,
  'ipv6-icmp': IPPROTO.icmpv6,
  ospf: 89,
  vrrp: 112,
  l2tp: 115,
};

/** -p NAME or -p NUMBER (0 to 255); undefined when it is neither. */
export function findProto(text: string): number | undefined {
  const known = PROTO_BY_NAME[text.toLowerCase()];
  if (known !== undefined) return known;
  const { value, end } = strtoul(text);
  if (end === 0 || end !== text.length || value > 255) return undefined;
  return value;
}

/** sctp_states[] of libct_proto_sctp.c: the kernel's states without its HEARTBEAT ones. */
const SCTP_STATE_NAMES: readonly string[] = SCTP_STATES.filter((s) => !s.startsWith('HEARTBEAT'));

/** --state of -p sctp. */
export function sctpState(v: string): SctpState {
  if (!SCTP_STATE_NAMES.includes(v)) {
    throw new CompatUsageError(`unknown SCTP state \`${v}'`);
  }
  return v as SctpState;
}

/** --state of -p dccp. */
export function dccpState(v: string): DccpState {
  if (!(DCCP_STATES as readonly string[]).includes(v)) {
    throw new CompatUsageError(`Unknown DCCP state \`${v}'`);
  }
  return v as DccpState;
}

/** --state of -p tcp (LISTEN is the kernel's SYN_SENT2). */
export function tcpState(v: string): TcpState {
  const name = v === 'LISTEN' ? 'SYN_SENT2' : v;
  if (!(TCP_STATES as readonly string[]).includes(name)) {
    throw new CompatUsageError(`unknown TCP state \`${v}'`);
  }
  return name as TcpState;
}

/** --role of -p dccp. */
export function dccpRole(v: string): 'client' | 'server' {
  // strncasecmp(arg, "client", strlen(arg)): a prefix, "" included.
  if ('client'.startsWith(v.toLowerCase())) return 'client';
  if ('server'.startsWith(v.toLowerCase())) return 'server';
  throw new CompatUsageError(`Unknown DCCP role \`${v}'`);
}
