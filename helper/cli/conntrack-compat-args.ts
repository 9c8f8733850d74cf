/**
 * conntrack-tools 1.4.7 command-line syntax (`portcullis conntrack -L -p tcp
 * ...`): a getopt_long emulation with the same option table, the same
 * per-command legality matrix, the same value parsing (including its
 * lenient atoi/strtoul quirks) and the same error messages. Pure: no
 * kernel access. Errors are CompatUsageError (printed as conntrack-tools
 * prints PARAMETER_PROBLEM, exit status 2).
 */
import {
  DCCP_STATES,
  IPPROTO,
  STATUS_BITS,
  TCP_STATES,
  type DccpState,
  type SctpState,
  type TcpState,
} from '../conntrack/constants.js';

/** sctp_states[] of libct_proto_sctp.c (without the kernel's HEARTBEAT states). */
const SCTP_STATE_NAMES = [
  'NONE',
  'CLOSED',
  'COOKIE_WAIT',
  'COOKIE_ECHOED',
  'ESTABLISHED',
  'SHUTDOWN_SENT',
  'SHUTDOWN_RECD',
  'SHUTDOWN_ACK_SENT',
] as const;
import { canonicalIP, parseIPv6 } from '../conntrack/ip.js';
import type { Family, Tuple } from '../conntrack/types.js';

export const COMPAT_PREFIX = 'conntrack v1.4.7 (conntrack-tools): ';
export const TRY_HELP = "Try `conntrack -h' or 'conntrack --help' for more information.\n";

/** A conntrack-tools PARAMETER_PROBLEM: message, the "Try" line, exit 2. */
export class CompatUsageError extends Error {
  override readonly name = 'CompatUsageError';
  /** 2 (PARAMETER_PROBLEM, with the "Try" line) or 1 (OTHER_PROBLEM, without). */
  constructor(
    message: string,
    readonly exitStatus: 1 | 2 = 2,
  ) {
    super(message);
  }
}

/** A connlabel.conf: label names to bits, and the name printed for each bit. */
export interface LabelMap {
  bits: ReadonlyMap<string, number>;
  names: ReadonlyMap<number, string>;
}

/**
 * libnetfilter_conntrack's reading of connlabel.conf: lines starting with
 * '#' are skipped; otherwise a strtoul (base 0) bit number, then the name
 * (the rest of the line, trimmed). The first name of a bit is the one printed;
 * a name given twice keeps its first bit.
 */
export function parseLabelMap(text: string): LabelMap {
  const bits = new Map<string, number>();
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const { value, end } = strtoul(line);
    if (end === 0) continue;
    const name = line.slice(end).trim();
    if (!name || bits.has(name)) continue;
    bits.set(name, value);
    if (!names.has(value)) names.set(value, name);
  }
  return { bits, names };
}

/** How the parser gets the label map (once, when an option first needs it). */
export interface CompatParseOptions {
  /** conntrack-tools' labelmap_init(): the map, or undefined when it cannot be read. */
  loadLabelMap?: () => LabelMap | undefined;
  /** Where a warning goes at once (`-a`: 1.4.7 warns and ignores it). */
  warn?: (text: string) => void;
}

export type CompatCommand = 'L' | 'I' | 'U' | 'D' | 'G' | 'F' | 'E' | 'A' | 'C' | 'S' | 'V' | 'h';
export type CompatTable = 'conntrack' | 'expect' | 'dying' | 'unconfirmed';
export type OutputFlag =
  'xml' | 'extended' | 'timestamp' | 'id' | 'ktimestamp' | 'labels' | 'userspace' | 'save';

/** The generic options, in conntrack-tools' bit order (CT_OPT_*). */
export const OPTION_NAMES = [
  'src',
  'dst',
  'reply-src',
  'reply-dst',
  'protonum',
  'timeout',
  'status',
  'zero',
  'event-mask',
  'tuple-src',
  'tuple-dst',
  'mask-src',
  'mask-dst',
  'nat-range',
  'mark',
  'id',
  'family',
  'src-nat',
  'dst-nat',
  'output',
  'secmark',
  'buffer-size',
  'any-nat',
  'zone',
  'label',
  'label-add',
  'label-del',
  'orig-zone',
  'reply-zone',
] as const;
export type OptionName = (typeof OPTION_NAMES)[number];

// 0 illegal, 1 compulsory, 2 optional, 3 coupled (src+dst or reply-src+reply-dst).
// prettier-ignore
const MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  /*     s d r q p t u z e [ ] { } a m i f n g o c b j w l < > ( ) */
  L: [2,2,2,2,2,0,2,2,0,0,0,2,2,0,2,0,2,2,2,2,2,0,2,2,2,0,0,2,2],
  I: [3,3,3,3,1,1,2,0,0,0,0,0,0,2,2,0,0,2,2,0,0,0,0,2,0,2,0,2,2],
  U: [2,2,2,2,2,2,2,0,0,0,0,2,2,0,2,2,2,2,2,2,0,0,0,0,2,2,2,0,0],
  D: [2,2,2,2,2,2,2,0,0,0,0,2,2,0,2,2,2,2,2,2,0,0,0,2,2,0,0,2,2],
  G: [3,3,3,3,1,0,0,0,0,0,0,0,0,0,0,2,0,0,0,2,0,0,0,0,2,0,0,0,0],
  F: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0],
  E: [2,2,2,2,2,0,0,0,2,0,0,2,2,0,2,0,2,2,2,2,2,2,2,2,2,0,0,2,2],
  A: [3,3,3,3,1,1,2,0,0,0,0,0,0,2,2,0,0,2,2,0,0,0,0,2,0,2,0,2,2],
};

// The same for the expect table (EXP_*_BIT rows).
// prettier-ignore
const EXP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  /*     s d r q p t u z e [ ] { } a m i f n g o c b j w l < > ( ) */
  L: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,2,0,0,0,0,0,0,0,0,0],
  I: [1,1,2,2,1,1,2,0,0,1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
  D: [1,1,2,2,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
  G: [1,1,2,2,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
  E: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0],
};

type ArgKind = 'none' | 'required' | 'optional';
interface LongOption {
  name: string;
  arg: ArgKind;
  /** A command letter, a generic option, a protocol option, or one of ours. */
  key: string;
}

const COMMAND_OPTIONS: LongOption[] = [
  { name: 'dump', arg: 'optional', key: 'L' },
  { name: 'create', arg: 'optional', key: 'I' },
  { name: 'add', arg: 'optional', key: 'A' },
  { name: 'delete', arg: 'optional', key: 'D' },
  { name: 'update', arg: 'optional', key: 'U' },
  { name: 'get', arg: 'optional', key: 'G' },
  { name: 'flush', arg: 'optional', key: 'F' },
  { name: 'event', arg: 'optional', key: 'E' },
  { name: 'counter', arg: 'optional', key: 'C' },
  { name: 'stats', arg: 'none', key: 'S' },
  { name: 'version', arg: 'none', key: 'V' },
  { name: 'help', arg: 'none', key: 'h' },
];

const GENERIC_LONG: LongOption[] = [
  { name: 'orig-src', arg: 'required', key: 'src' },
  { name: 'src', arg: 'required', key: 'src' },
  { name: 'orig-dst', arg: 'required', key: 'dst' },
  { name: 'dst', arg: 'required', key: 'dst' },
  { name: 'reply-src', arg: 'required', key: 'reply-src' },
  { name: 'reply-dst', arg: 'required', key: 'reply-dst' },
  { name: 'protonum', arg: 'required', key: 'protonum' },
  { name: 'timeout', arg: 'required', key: 'timeout' },
  { name: 'status', arg: 'required', key: 'status' },
  { name: 'zero', arg: 'none', key: 'zero' },
  { name: 'event-mask', arg: 'required', key: 'event-mask' },
  { name: 'tuple-src', arg: 'required', key: 'tuple-src' },
  { name: 'tuple-dst', arg: 'required', key: 'tuple-dst' },
  { name: 'mask-src', arg: 'required', key: 'mask-src' },
  { name: 'mask-dst', arg: 'required', key: 'mask-dst' },
  { name: 'nat-range', arg: 'required', key: 'nat-range' },
  { name: 'mark', arg: 'required', key: 'mark' },
  { name: 'secmark', arg: 'required', key: 'secmark' },
  { name: 'id', arg: 'optional', key: 'id' },
  { name: 'family', arg: 'required', key: 'family' },
  { name: 'src-nat', arg: 'optional', key: 'src-nat' },
  { name: 'dst-nat', arg: 'optional', key: 'dst-nat' },
  { name: 'output', arg: 'required', key: 'output' },
  { name: 'buffer-size', arg: 'required', key: 'buffer-size' },
  { name: 'any-nat', arg: 'optional', key: 'any-nat' },
  { name: 'zone', arg: 'required', key: 'zone' },
  { name: 'label', arg: 'required', key: 'label' },
  { name: 'label-add', arg: 'required', key: 'label-add' },
  { name: 'label-del', arg: 'optional', key: 'label-del' },
  { name: 'orig-zone', arg: 'required', key: 'orig-zone' },
  { name: 'reply-zone', arg: 'required', key: 'reply-zone' },
  // Portcullis additions.
  { name: 'json', arg: 'none', key: 'json' },
  { name: 'netns', arg: 'required', key: 'netns' },
];

/** getopt_str ":LIUDGEFAhVs:d:r:q:p:t:u:e:a:z[:]:{:}:m:i:f:o:n::g::c:b:C::Sj::w:l:<:>::(:):" */
const SHORT: Record<string, { key: string; arg: ArgKind }> = {
  L: { key: 'L', arg: 'none' },
  I: { key: 'I', arg: 'none' },
  U: { key: 'U', arg: 'none' },
  D: { key: 'D', arg: 'none' },
  G: { key: 'G', arg: 'none' },
  E: { key: 'E', arg: 'none' },
  F: { key: 'F', arg: 'none' },
  A: { key: 'A', arg: 'none' },
  h: { key: 'h', arg: 'none' },
  V: { key: 'V', arg: 'none' },
  C: { key: 'C', arg: 'optional' },
  S: { key: 'S', arg: 'none' },
  s: { key: 'src', arg: 'required' },
  d: { key: 'dst', arg: 'required' },
  r: { key: 'reply-src', arg: 'required' },
  q: { key: 'reply-dst', arg: 'required' },
  p: { key: 'protonum', arg: 'required' },
  t: { key: 'timeout', arg: 'required' },
  u: { key: 'status', arg: 'required' },
  e: { key: 'event-mask', arg: 'required' },
  a: { key: 'nat-range', arg: 'required' },
  z: { key: 'zero', arg: 'none' },
  m: { key: 'mark', arg: 'required' },
  i: { key: 'id', arg: 'required' },
  f: { key: 'family', arg: 'required' },
  o: { key: 'output', arg: 'required' },
  n: { key: 'src-nat', arg: 'optional' },
  g: { key: 'dst-nat', arg: 'optional' },
  c: { key: 'secmark', arg: 'required' },
  b: { key: 'buffer-size', arg: 'required' },
  j: { key: 'any-nat', arg: 'optional' },
  w: { key: 'zone', arg: 'required' },
  l: { key: 'label', arg: 'required' },
};

/** Protocol extensions: options that exist only after `-p <proto>`. */
interface ProtoExt {
  name: string;
  options: LongOption[];
  /** Option names for messages, in the extension's bit order. */
  flags: readonly string[];
  /** The token key of each of those options. */
  keys: readonly string[];
  /** Legality per command (same key as MATRIX). */
  matrix: Partial<Record<CompatCommand, readonly number[]>>;
  /** The same for the expect table (EXP_* rows); a missing row: every option illegal. */
  expMatrix: Partial<Record<CompatCommand, readonly number[]>>;
  /**
   * The coupled options (original, then reply) of rows with a 3, and the
   * message for each partial match (final_check(); typos included).
   */
  couples?: readonly [readonly [string, string], readonly [string, string]];
  coupleMessages?: readonly [string, string];
}

const PORT_COUPLES = [
  ['sport', 'dport'],
  ['reply-port-src', 'reply-port-dst'],
] as const;
const PORT_COUPLE_MESSAGES = [
  "you have to specify `--sport' and `--dport'",
  "you have to specify `--reply-src-port' and `--reply-dst-port'",
] as const;

const PORT_OPTIONS: LongOption[] = [
  { name: 'orig-port-src', arg: 'required', key: 'sport' },
  { name: 'orig-port-dst', arg: 'required', key: 'dport' },
  { name: 'reply-port-src', arg: 'required', key: 'reply-port-src' },
  { name: 'reply-port-dst', arg: 'required', key: 'reply-port-dst' },
  { name: 'mask-port-src', arg: 'required', key: 'mask-port-src' },
  { name: 'mask-port-dst', arg: 'required', key: 'mask-port-dst' },
  { name: 'tuple-port-src', arg: 'required', key: 'tuple-port-src' },
  { name: 'tuple-port-dst', arg: 'required', key: 'tuple-port-dst' },
  { name: 'sport', arg: 'required', key: 'sport' },
  { name: 'dport', arg: 'required', key: 'dport' },
];
const PORT_FLAGS = [
  'sport',
  'dport',
  'reply-port-src',
  'reply-port-dst',
  'mask-port-src',
  'mask-port-dst',
  'state',
  'tuple-port-src',
  'tuple-port-dst',
] as const;
// prettier-ignore
const TCP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  L: [2,2,2,2,0,0,2,0,0], I: [3,3,3,3,0,0,1,0,0], A: [3,3,3,3,0,0,1,0,0],
  U: [2,2,2,2,0,0,2,0,0], D: [2,2,2,2,0,0,2,0,0], G: [3,3,3,3,0,0,0,0,0],
  E: [2,2,2,2,0,0,2,0,0],
};
// prettier-ignore
const UDP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  L: [2,2,2,2,0,0,0,0,0], I: [3,3,3,3,0,0,0,0,0], A: [3,3,3,3,0,0,0,0,0],
  U: [2,2,2,2,0,0,0,0,0], D: [2,2,2,2,0,0,0,0,0], G: [3,3,3,3,0,0,0,0,0],
  E: [2,2,2,2,0,0,0,0,0],
};
// The EXP_GET and EXP_DELETE rows of tcp.c/udp.c make both the original
// and the reply ports compulsory, although the expectation is looked up by
// the original tuple only: the reply ports are demanded and then unused.
// prettier-ignore
const PORT_EXP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  L: [0,0,0,0,0,0,0,0,0], I: [1,1,0,0,1,1,0,1,1],
  D: [1,1,1,1,0,0,0,0,0], G: [1,1,1,1,0,0,0,0,0], E: [0,0,0,0,0,0,0,0,0],
};
const ICMP_FLAGS = ['icmp-type', 'icmp-code', 'icmp-id'] as const;
// prettier-ignore
const ICMP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  L: [2,2,2], I: [1,1,2], A: [1,1,2], U: [2,2,2], D: [2,2,2], G: [1,1,2], E: [2,2,2],
};

function icmpExt(name: string, prefix: string): ProtoExt {
  return {
    name,
    options: ['type', 'code', 'id'].map((f) => ({
      name: `${prefix}-${f}`,
      arg: 'required' as const,
      key: `icmp-${f}`,
    })),
    flags: ICMP_FLAGS.map((f) => f.replace('icmp', prefix)),
    keys: ICMP_FLAGS,
    matrix: ICMP_MATRIX,
    expMatrix: {},
  };
}

const STATE_OPTION: LongOption = { name: 'state', arg: 'required', key: 'state' };
const portExt = (name: string, options: LongOption[], matrix: ProtoExt['matrix']): ProtoExt => ({
  name,
  options,
  flags: PORT_FLAGS,
  keys: PORT_FLAGS,
  matrix,
  expMatrix: PORT_EXP_MATRIX,
  couples: PORT_COUPLES,
  coupleMessages: PORT_COUPLE_MESSAGES,
});

// libct_proto_sctp.c: the port options, --state, and the verification tags
// (compulsory at -I/-A with --state).
const SCTP_FLAGS = [...PORT_FLAGS, 'orig-vtag', 'reply-vtag'] as const;
// prettier-ignore
const SCTP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  L: [2,2,2,2,0,0,2,0,0,0,0], I: [3,3,3,3,0,0,1,0,0,1,1], A: [3,3,3,3,0,0,1,0,0,1,1],
  U: [2,2,2,2,0,0,2,0,0,2,2], D: [2,2,2,2,0,0,2,0,0,0,0], G: [3,3,3,3,0,0,2,0,0,2,2],
  E: [2,2,2,2,0,0,2,0,0,0,0],
};
// prettier-ignore
const SCTP_EXP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  I: [1,1,0,0,1,1,0,1,1,1,1], D: [1,1,1,1,0,0,0,0,0,0,0], G: [1,1,1,1,0,0,0,0,0,0,0],
};
// libct_proto_dccp.c: the port options, --state and --role (compulsory at -I/-A).
const DCCP_FLAGS = [...PORT_FLAGS, 'role'] as const;
// prettier-ignore
const DCCP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  L: [2,2,2,2,0,0,2,0,0,0], I: [3,3,3,3,0,0,1,0,0,1], A: [3,3,3,3,0,0,1,0,0,1],
  U: [2,2,2,2,0,0,2,0,0,0], D: [2,2,2,2,0,0,2,0,0,0], G: [3,3,3,3,0,0,2,0,0,0],
  E: [2,2,2,2,0,0,2,0,0,0],
};
// prettier-ignore
const DCCP_EXP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  I: [1,1,0,0,1,1,0,1,1,1], D: [1,1,1,1,0,0,0,0,0,0], G: [1,1,1,1,0,0,0,0,0,0],
};
// libct_proto_gre.c: keys, read with strtoul() (base 0), 16 bits.
const GRE_FLAGS = [
  'srckey',
  'dstkey',
  'reply-key-src',
  'reply-key-dst',
  'mask-key-src',
  'mask-key-dst',
  'tuple-key-src',
  'tuple-key-dst',
] as const;
// prettier-ignore
const GRE_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  L: [2,2,2,2,0,0,0,0], I: [3,3,3,3,0,0,0,0], A: [3,3,3,3,0,0,0,0], U: [2,2,2,2,0,0,0,0],
  D: [2,2,2,2,0,0,0,0], G: [3,3,3,3,0,0,0,0], E: [2,2,2,2,0,0,0,0],
};
// prettier-ignore
const GRE_EXP_MATRIX: Partial<Record<CompatCommand, readonly number[]>> = {
  I: [1,1,1,1,1,1,1,1], D: [1,1,1,1,0,0,0,0], G: [1,1,1,1,0,0,0,0],
};
const required = (name: string, key = name): LongOption => ({ name, arg: 'required', key });

const EXTENSIONS: Record<number, ProtoExt> = {
  [IPPROTO.tcp]: portExt('tcp', [...PORT_OPTIONS, STATE_OPTION], TCP_MATRIX),
  [IPPROTO.udp]: portExt('udp', PORT_OPTIONS, UDP_MATRIX),
  [IPPROTO.udplite]: portExt('udplite', PORT_OPTIONS, UDP_MATRIX),
  [IPPROTO.icmp]: icmpExt('icmp', 'icmp'),
  [IPPROTO.icmpv6]: icmpExt('icmpv6', 'icmpv6'),
  [IPPROTO.sctp]: {
    name: 'sctp',
    options: [
      ...PORT_OPTIONS.slice(0, 8),
      STATE_OPTION,
      required('orig-vtag'),
      required('reply-vtag'),
      ...PORT_OPTIONS.slice(8),
    ],
    flags: SCTP_FLAGS,
    keys: SCTP_FLAGS,
    matrix: SCTP_MATRIX,
    expMatrix: SCTP_EXP_MATRIX,
    couples: PORT_COUPLES,
    coupleMessages: PORT_COUPLE_MESSAGES,
  },
  [IPPROTO.dccp]: {
    name: 'dccp',
    options: [...PORT_OPTIONS, STATE_OPTION, required('role')],
    flags: DCCP_FLAGS,
    keys: DCCP_FLAGS,
    matrix: DCCP_MATRIX,
    expMatrix: DCCP_EXP_MATRIX,
    couples: PORT_COUPLES,
    coupleMessages: [
      "you have to specify `--sport' and `--dport'",
      "you have to specify `--reply-port-src' and `--report-port-dst'",
    ],
  },
  [IPPROTO.gre]: {
    name: 'gre',
    options: [
      required('orig-key-src', 'srckey'),
      required('srckey'),
      required('orig-key-dst', 'dstkey'),
      required('dstkey'),
      ...GRE_FLAGS.slice(2).map((f) => required(f)),
    ],
    flags: GRE_FLAGS,
    keys: GRE_FLAGS,
    matrix: GRE_MATRIX,
    expMatrix: GRE_EXP_MATRIX,
    couples: [
      ['srckey', 'dstkey'],
      ['reply-key-src', 'reply-key-dst'],
    ],
    coupleMessages: [
      "you have to specify `--srckey' and `--dstkey'",
      "you have to specify `--reply-src-key' and `--reply-dst-key'",
    ],
  },
};

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

/** Everything the command line says, checked as conntrack-tools checks it. */
export interface CompatArgs {
  command: CompatCommand;
  table: CompatTable;
  /** Generic options given (CT_OPT_* names). */
  options: Set<OptionName>;
  /** Protocol options given (sport, dport, state, icmp-type, ...). */
  protoOptions: Set<string>;
  family?: Family;
  proto?: number;
  orig: Partial<Tuple>;
  reply: Partial<Tuple>;
  /** --mask-src / --mask-dst, or the netmask of a -s / -d prefix (the last one given wins). */
  srcMask?: string;
  dstMask?: string;
  /** --orig-zone / --reply-zone (CTA_TUPLE_ZONE of one direction). */
  origZone?: number;
  replyZone?: number;
  /** -I expect: --tuple-src/--tuple-dst and the tuple's ports; --mask-port-src/-dst. */
  expTuple: Partial<Tuple>;
  expMask: Partial<Tuple>;
  /** -i / --id (CTA_ID). */
  id?: number;
  /** -c / --secmark. */
  secmark?: number;
  timeout?: number;
  status?: number;
  /** -u as a filter: (status & statusMask) == status (see the parser). */
  statusMask?: number;
  mark?: { value: number; mask: number };
  zone?: number;
  state?: TcpState;
  /** --state of -p sctp / -p dccp, and their own options. */
  sctpState?: SctpState;
  dccpState?: DccpState;
  vtagOrig?: number;
  vtagReply?: number;
  dccpRole?: 'client' | 'server';
  output: Set<OutputFlag>;
  /** -e: the event types to follow (-E); all three when absent. */
  eventMask?: Set<EventKind>;
  /** -b: the netlink socket buffer size asked for (-E). */
  bufferSize?: number;
  json: boolean;
  netns?: string;
  /** -l: label bits an entry must all have (several -l add up). */
  labels?: number[];
  /** --label-add / --label-del bits; --label-del without names: undefined (all). */
  labelModify?: number[];
  /** --src-nat / --dst-nat ADDR[:PORT] (without an address: nothing to set). */
  natSrc?: { ip: string; port?: number };
  natDst?: { ip: string; port?: number };
  /** The label map, once an option loaded it (-l, --label-add/-del, -o labels); entries then print their labels. */
  labelMap?: LabelMap;
  /** An option asked for the label map (whether or not it could be read). */
  labelMapLoaded?: boolean;
  /** No command was given (command is then 'h'): -R names it `unknown'. */
  noCommand?: boolean;
}

export type EventKind = 'new' | 'update' | 'destroy';

// ---------------------------------------------------------------------------
// C library number parsing, as conntrack-tools uses it.

/** strtoul(s, &end, base 0): the value of the longest valid prefix, and where it ends. */
export function strtoul(text: string): { value: number; end: number } {
  let i = 0;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') {
    negative = text[i] === '-';
    i++;
  }
  let base = 10;
  if (
    text[i] === '0' &&
    (text[i + 1] === 'x' || text[i + 1] === 'X') &&
    /[0-9a-f]/i.test(text[i + 2] ?? '')
  ) {
    base = 16;
    i += 2;
  } else if (text[i] === '0') base = 8;
  const start = i;
  let value = 0n;
  for (; i < text.length; i++) {
    const d = parseInt(text[i]!, base);
    if (Number.isNaN(d)) break;
    value = value * BigInt(base) + BigInt(d);
  }
  if (i === start && base !== 8) return { value: 0, end: 0 };
  const max = 0xffffffffffffffffn;
  if (value > max) value = max;
  if (negative) value = (max + 1n - value) & max;
  // Values above 2^53 lose precision here; callers truncate to 32 bits or less.
  return { value: Number(value & 0xffffffffn), end: i };
}

/** atoi(): leading decimal digits (with sign), 0 when there are none. */
export function atoi(text: string): number {
  const m = /^\s*([+-]?)(\d+)/.exec(text);
  if (!m) return 0;
  const v = Number(m[2]!.slice(-12)) | 0;
  return m[1] === '-' ? -v : v;
}

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
function parseAddr(
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
function prefixMask(prefix: number, family: Family): string {
  const bytes = new Uint8Array(family === 'ipv4' ? 4 : 16);
  for (let bit = 0; bit < prefix; bit++) bytes[bit >> 3]! |= 0x80 >> (bit % 8);
  return addressText(bytes);
}

/** valid_port(): digits only, at most 65535. */
function validPort(text: string): boolean {
  return /^\d+$/.test(text) && Number(text) <= 0xffff;
}

/** split_address_and_port(): `[v6]:port`, `v4:port` (one colon), or an address. */
function splitAddressAndPort(arg: string): { addr: string; port?: string } {
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

const STATUS_NAMES: [string, number][] = [
  ['ASSURED', STATUS_BITS.ASSURED],
  ['SEEN_REPLY', STATUS_BITS.SEEN_REPLY],
  ['UNSET', 0],
  ['FIXED_TIMEOUT', STATUS_BITS.FIXED_TIMEOUT],
  ['EXPECTED', STATUS_BITS.EXPECTED],
  ['OFFLOAD', STATUS_BITS.OFFLOAD],
  ['HW_OFFLOAD', STATUS_BITS.HW_OFFLOAD],
];
const OUTPUT_NAMES: [string, OutputFlag][] = [
  ['xml', 'xml'],
  ['extended', 'extended'],
  ['timestamp', 'timestamp'],
  ['id', 'id'],
  ['ktimestamp', 'ktimestamp'],
  ['labels', 'labels'],
  ['userspace', 'userspace'],
  ['save', 'save'],
];

const EVENT_NAMES: [string, EventKind[]][] = [
  ['ALL', ['new', 'update', 'destroy']],
  ['NEW', ['new']],
  ['UPDATES', ['update']],
  ['DESTROY', ['destroy']],
];

/** parse_parameter(): comma-separated names, each a case-insensitive prefix of a known name. */
function parseParameter<T>(arg: string, table: [string, T][]): T[] {
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

function parseMark(arg: string): { value: number; mask: number } {
  // conntrack-tools 1.4.7 does not check: garbage reads as 0.
  const { value, end } = strtoul(arg);
  if (arg[end] === '/') return { value, mask: strtoul(arg.slice(end + 1)).value };
  return { value, mask: 0xffffffff };
}

function findProto(text: string): number | undefined {
  const known = PROTO_BY_NAME[text.toLowerCase()];
  if (known !== undefined) return known;
  const { value, end } = strtoul(text);
  if (end === 0 || end !== text.length || value > 255) return undefined;
  return value;
}

// ---------------------------------------------------------------------------

interface Token {
  key: string;
  value?: string;
  /** The option as written, for messages. */
  raw: string;
}

function matchLong(name: string, options: readonly LongOption[]): LongOption | undefined {
  const exact = options.find((o) => o.name === name);
  if (exact) return exact;
  const prefixed = options.filter((o) => o.name.startsWith(name));
  const keys = new Set(prefixed.map((o) => `${o.key}/${o.arg}`));
  return keys.size === 1 ? prefixed[0] : undefined;
}

/** Parses `conntrack <argv>` as conntrack-tools 1.4.7 does. */
export function parseCompatArgs(
  argv: readonly string[],
  parseOptions: CompatParseOptions = {},
): CompatArgs {
  let command: CompatCommand | undefined;
  let table: CompatTable = 'conntrack';
  const options = new Set<OptionName>();
  const protoOptions = new Set<string>();
  let ext: ProtoExt | undefined;
  let familyOf: Family | undefined;
  const r: CompatArgs = {
    command: 'L',
    table,
    options,
    protoOptions,
    orig: {},
    reply: {},
    expTuple: {},
    expMask: {},
    output: new Set(),
    json: false,
  };
  const labelMapInit = (): void => {
    if (r.labelMapLoaded) return;
    r.labelMapLoaded = true;
    const map = parseOptions.loadLabelMap?.();
    if (map) r.labelMap = map;
  };
  /** parse_label_get_max() + parse_label(): comma-separated names, each known. */
  const parseLabels = (text: string): number[] =>
    text.split(',').map((name) => {
      const bit = r.labelMap?.bits.get(name);
      if (bit === undefined) throw new CompatUsageError(`unknown label '${name}'`);
      return bit;
    });
  const setFamily = (f: Family) => {
    if (familyOf !== undefined && familyOf !== f) {
      throw new CompatUsageError('mismatched address family');
    }
    familyOf = f;
  };

  let i = 0;
  /** get_optional_arg(): the next word, unless it starts with '-' or '!'. */
  const optionalArg = (): string | undefined => {
    const next = argv[i];
    if (next !== undefined && !next.startsWith('-') && !next.startsWith('!')) {
      i++;
      return next;
    }
    return undefined;
  };

  while (i < argv.length) {
    const word = argv[i++]!;
    const tokens: Token[] = [];
    if (word.startsWith('--') && word.length > 2) {
      const eq = word.indexOf('=');
      const name = eq >= 0 ? word.slice(2, eq) : word.slice(2);
      const all = [...COMMAND_OPTIONS, ...GENERIC_LONG, ...(ext?.options ?? [])];
      const opt = matchLong(name, all);
      if (!opt) throw new CompatUsageError(`unknown option \`${word}'`);
      let value: string | undefined = eq >= 0 ? word.slice(eq + 1) : undefined;
      if (opt.arg === 'required' && value === undefined) {
        value = argv[i++];
        if (value === undefined) {
          throw new CompatUsageError(`option \`${word}' requires an argument`);
        }
      }
      tokens.push({ key: opt.key, raw: word, ...(value !== undefined ? { value } : {}) });
    } else if (word.startsWith('-') && word.length > 1 && word !== '--') {
      // A cluster of short options: "-Lp tcp" or "-ptcp".
      for (let j = 1; j < word.length; j++) {
        const c = word[j]!;
        const def = SHORT[c];
        if (!def) throw new CompatUsageError(`unknown option \`${word}'`);
        if (def.arg === 'none') {
          tokens.push({ key: def.key, raw: `-${c}` });
          continue;
        }
        let value: string | undefined = word.slice(j + 1) || undefined;
        if (value === undefined && def.arg === 'required') {
          value = argv[i++];
          if (value === undefined) {
            throw new CompatUsageError(`option \`-${c}' requires an argument`);
          }
        }
        tokens.push({ key: def.key, raw: `-${c}`, ...(value !== undefined ? { value } : {}) });
        break;
      }
    } else {
      // getopt permutes non-options to the end; conntrack-tools then ignores them.
      continue;
    }

    for (const t of tokens) {
      const v = t.value ?? '';
      if (/^[LIUDGEFACSVh]$/.test(t.key)) {
        if (command !== undefined) throw new CompatUsageError('Invalid commands combination');
        command = t.key as CompatCommand;
        if (command !== 'S' && command !== 'V' && command !== 'h') {
          const name = t.value ?? optionalArg();
          if (name !== undefined) table = checkTable(name);
          if (command !== 'L' && (table === 'dying' || table === 'unconfirmed')) {
            throw new CompatUsageError(
              "Can't do that command with tables `dying' and `unconfirmed'",
            );
          }
          if (table === 'expect' && (command === 'U' || command === 'A')) {
            // cmd2type[] has no expectation form of them.
            const long = command === 'U' ? 'update' : 'add';
            throw new CompatUsageError(`Can't do --${long} on expectations`);
          }
        }
        continue;
      }
      if (t.key === 'json') {
        r.json = true;
        continue;
      }
      if (t.key === 'netns') {
        r.netns = v;
        continue;
      }
      if (t.key === 'nat-range') {
        // Deprecated: a warning, and not an option the command is checked against.
        parseOptions.warn?.('WARNING: ignoring -a, deprecated option.\n');
        continue;
      }
      if ((OPTION_NAMES as readonly string[]).includes(t.key)) {
        options.add(t.key as OptionName);
      } else {
        protoOptions.add(t.key);
      }
      switch (t.key) {
        case 'src':
        case 'dst': {
          const a = parseAddr(v);
          setFamily(a.family);
          r.orig[t.key] = a.text;
          // A prefix is --mask-src / --mask-dst (CT_OPT_MASK_*), as 1.4.7 sets it.
          if (a.prefix !== undefined) {
            const mask = t.key === 'src' ? 'mask-src' : 'mask-dst';
            options.add(mask);
            r[t.key === 'src' ? 'srcMask' : 'dstMask'] = prefixMask(a.prefix, a.family);
          }
          break;
        }
        case 'tuple-src':
        case 'tuple-dst': {
          // -I expect: the expected tuple; a prefix is the mask (opt2maskopt).
          const a = parseAddr(v);
          setFamily(a.family);
          const src = t.key === 'tuple-src';
          r.expTuple[src ? 'src' : 'dst'] = a.text;
          if (a.prefix !== undefined) {
            options.add(src ? 'mask-src' : 'mask-dst');
            r[src ? 'srcMask' : 'dstMask'] = prefixMask(a.prefix, a.family);
          }
          break;
        }
        case 'tuple-port-src':
          r.expTuple.srcPort = atoi(v) & 0xffff;
          break;
        case 'tuple-port-dst':
          r.expTuple.dstPort = atoi(v) & 0xffff;
          break;
        case 'mask-port-src':
          r.expMask.srcPort = atoi(v) & 0xffff;
          break;
        case 'mask-port-dst':
          r.expMask.dstPort = atoi(v) & 0xffff;
          break;
        case 'tuple-key-src':
          r.expTuple.srcPort = strtoul(v).value & 0xffff;
          break;
        case 'tuple-key-dst':
          r.expTuple.dstPort = strtoul(v).value & 0xffff;
          break;
        case 'mask-key-src':
          r.expMask.srcPort = strtoul(v).value & 0xffff;
          break;
        case 'mask-key-dst':
          r.expMask.dstPort = strtoul(v).value & 0xffff;
          break;
        case 'mask-src':
        case 'mask-dst': {
          const a = parseAddr(v, t.key);
          setFamily(a.family);
          r[t.key === 'mask-src' ? 'srcMask' : 'dstMask'] = a.text;
          break;
        }
        case 'reply-src':
        case 'reply-dst': {
          const a = parseAddr(v, t.key);
          setFamily(a.family);
          r.reply[t.key === 'reply-src' ? 'src' : 'dst'] = a.text;
          break;
        }
        case 'orig-zone':
          r.origZone = strtoul(v).value & 0xffff;
          break;
        case 'reply-zone':
          r.replyZone = strtoul(v).value & 0xffff;
          break;
        case 'id':
          // --id takes an optional argument in 1.4.7's table; without one, 0 here.
          r.id = strtoul(v).value >>> 0;
          break;
        case 'secmark':
          r.secmark = strtoul(v).value >>> 0;
          break;
        case 'protonum': {
          const p = findProto(v);
          if (p === undefined) throw new CompatUsageError(`\`${v}' unsupported protocol`);
          r.proto = p;
          ext = EXTENSIONS[p];
          break;
        }
        case 'family': {
          if (v === 'ipv4') setFamily('ipv4');
          else if (v === 'ipv6') setFamily('ipv6');
          else throw new CompatUsageError(`\`${v}' unsupported protocol`);
          break;
        }
        case 'timeout':
          r.timeout = atoi(v) >>> 0;
          break;
        case 'status':
          r.status = parseParameter(v, STATUS_NAMES).reduce((a, b) => a | b, r.status ?? 0);
          // 1.4.7 keeps the kernel filter's mask (used by -L) from the first -u that
          // sets a bit, while the value gathers every -u: `-L -u ASSURED -u
          // SEEN_REPLY` matches nothing.
          if (!r.statusMask) r.statusMask = r.status;
          break;
        case 'mark':
          r.mark = parseMark(v);
          break;
        case 'zone':
          r.zone = strtoul(v).value & 0xffff;
          break;
        case 'event-mask': {
          const kinds = parseParameter(v, EVENT_NAMES).flat();
          r.eventMask = new Set([...(r.eventMask ?? []), ...kinds]);
          break;
        }
        case 'buffer-size':
          r.bufferSize = atoi(v) >>> 0;
          break;
        case 'output':
          for (const o of parseParameter(v, OUTPUT_NAMES)) r.output.add(o);
          if (r.output.has('labels')) labelMapInit();
          if (
            r.output.has('save') &&
            [...r.output].some((o) => o !== 'save' && o !== 'userspace')
          ) {
            throw new CompatUsageError(
              'cannot combine save output with any other output type, use -o save only',
              1,
            );
          }
          break;
        case 'label':
        case 'label-add':
        case 'label-del': {
          labelMapInit();
          if (options.has('label-add') && options.has('label-del')) {
            throw new CompatUsageError(
              'cannot use --label-add and --label-del at the same time',
              1,
            );
          }
          let text = t.value;
          if (t.key === 'label-del') {
            text ??= optionalArg();
            if (text === undefined) break; // delete all labels
          }
          const bits = parseLabels(text ?? '');
          if (t.key === 'label') r.labels = [...new Set([...(r.labels ?? []), ...bits])];
          else r.labelModify = [...new Set([...(r.labelModify ?? []), ...bits])];
          break;
        }
        case 'src-nat':
        case 'dst-nat':
        case 'any-nat': {
          const text = t.value ?? optionalArg();
          if (text === undefined) break;
          const { addr, port } = splitAddressAndPort(text);
          const a = parseAddr(addr, t.key);
          setFamily(a.family);
          const nat = { ip: a.text, ...(port !== undefined ? { port: atoi(port) & 0xffff } : {}) };
          if (t.key !== 'dst-nat') r.natSrc = nat;
          if (t.key !== 'src-nat') r.natDst = nat;
          break;
        }
        case 'sport':
          r.orig.srcPort = atoi(v) & 0xffff;
          break;
        case 'dport':
          r.orig.dstPort = atoi(v) & 0xffff;
          break;
        case 'reply-port-src':
          r.reply.srcPort = atoi(v) & 0xffff;
          break;
        case 'reply-port-dst':
          r.reply.dstPort = atoi(v) & 0xffff;
          break;
        case 'state': {
          if (ext?.name === 'sctp') {
            if (!(SCTP_STATE_NAMES as readonly string[]).includes(v)) {
              throw new CompatUsageError(`unknown SCTP state \`${v}'`);
            }
            r.sctpState = v as SctpState;
          } else if (ext?.name === 'dccp') {
            if (!(DCCP_STATES as readonly string[]).includes(v)) {
              throw new CompatUsageError(`Unknown DCCP state \`${v}'`);
            }
            r.dccpState = v as DccpState;
          } else {
            const name = v === 'LISTEN' ? 'SYN_SENT2' : v;
            if (!(TCP_STATES as readonly string[]).includes(name)) {
              throw new CompatUsageError(`unknown TCP state \`${v}'`);
            }
            r.state = name as TcpState;
          }
          break;
        }
        case 'orig-vtag':
          r.vtagOrig = atoi(v) >>> 0;
          break;
        case 'reply-vtag':
          r.vtagReply = atoi(v) >>> 0;
          break;
        case 'role':
          // strncasecmp(arg, "client", strlen(arg)): a prefix, "" included.
          if ('client'.startsWith(v.toLowerCase())) r.dccpRole = 'client';
          else if ('server'.startsWith(v.toLowerCase())) r.dccpRole = 'server';
          else throw new CompatUsageError(`Unknown DCCP role \`${v}'`);
          break;
        case 'srckey':
          r.orig.srcPort = strtoul(v).value & 0xffff;
          break;
        case 'dstkey':
          r.orig.dstPort = strtoul(v).value & 0xffff;
          break;
        case 'reply-key-src':
          r.reply.srcPort = strtoul(v).value & 0xffff;
          break;
        case 'reply-key-dst':
          r.reply.dstPort = strtoul(v).value & 0xffff;
          break;
        case 'icmp-type':
          r.orig.icmpType = atoi(v) & 0xff;
          break;
        case 'icmp-code':
          r.orig.icmpCode = atoi(v) & 0xff;
          break;
        case 'icmp-id':
          r.orig.icmpId = atoi(v) & 0xffff;
          break;
        default:
          // Accepted by the syntax; whether the command allows it is checked
          // below, and what is not implemented yet is refused at run time.
          break;
      }
    }
  }

  if (options.has('any-nat') && (options.has('src-nat') || options.has('dst-nat'))) {
    throw new CompatUsageError("cannot specify `--src-nat' or `--dst-nat' with `--any-nat'");
  }
  if (command === undefined) {
    // conntrack-tools checks the options against an empty row: the first is illegal.
    const first = OPTION_NAMES.find((o) => options.has(o));
    if (first) throw new CompatUsageError(`Illegal option \`--${first}' with this command`);
    command = 'h';
    r.noCommand = true;
  }
  r.command = command;
  r.table = table;
  if (familyOf) r.family = familyOf;
  if (r.proto !== undefined) {
    r.orig.proto = r.proto;
    if (Object.keys(r.reply).length) r.reply.proto = r.proto;
  }

  const filtering: readonly OptionName[] = [
    'src',
    'dst',
    'reply-src',
    'reply-dst',
    'protonum',
    'mark',
    'status',
    'zone',
    'label',
    'orig-zone',
    'reply-zone',
    'secmark',
    'id',
  ];
  if (command === 'L' && options.has('zero') && filtering.some((o) => options.has(o))) {
    throw new CompatUsageError("Can't use -z with filtering parameters");
  }
  // generic_opt_check(): per-command legality, then the address couples.
  const matrix = table === 'expect' ? EXP_MATRIX : MATRIX;
  const row = matrix[command] ?? (Array(OPTION_NAMES.length).fill(0) as number[]);
  if (table === 'conntrack' || table === 'expect' || command === 'L') {
    checkRow(row, OPTION_NAMES, options);
  }
  if (row.slice(0, 4).includes(3)) {
    const orig = options.has('src') && options.has('dst');
    const reply = options.has('reply-src') && options.has('reply-dst');
    if (!orig && !reply) {
      if (
        !options.has('src') &&
        !options.has('dst') &&
        (options.has('reply-src') || options.has('reply-dst'))
      ) {
        throw new CompatUsageError("you have to specify `--reply-src' and `--reply-dst'");
      }
      throw new CompatUsageError("you have to specify `--src' and `--dst'");
    }
  }
  // The protocol extension's own checks.
  if (ext) {
    const extRow =
      table === 'expect'
        ? (ext.expMatrix[command] ?? (Array(ext.flags.length).fill(0) as number[]))
        : ext.matrix[command];
    if (extRow) {
      const keys = ext.keys;
      const given = new Set(ext.flags.filter((_f, n) => protoOptions.has(keys[n]!)));
      checkRow(extRow, ext.flags, given);
      if (extRow.includes(3) && ext.couples && ext.coupleMessages) {
        // generic_opt_check(): an exact couple, else the first partial one.
        const couples = ext.couples;
        if (!couples.some(([x, y]) => protoOptions.has(x) && protoOptions.has(y))) {
          const partial = couples.findIndex(([x, y]) => protoOptions.has(x) || protoOptions.has(y));
          throw new CompatUsageError(ext.coupleMessages[partial === 1 ? 1 : 0]);
        }
      }
    }
  }
  return r;
}

/**
 * Whether a word is a conntrack-tools command (-L, -Dp, --dump, -R...): what
 * tells `portcullis conntrack WORD -L` (1.4.7 ignores the stray WORD) from a
 * mistyped subcommand (`portcullis conntrack lsit -p tcp`).
 */
export function namesCompatCommand(word: string): boolean {
  if (word.startsWith('--')) {
    const name = word.slice(2).split('=')[0]!;
    if (name === 'load-file') return true;
    return name.length > 0 && COMMAND_OPTIONS.some((o) => o === matchLong(name, COMMAND_OPTIONS));
  }
  return /^-[LIUDGEFACSVhR]/.test(word);
}

function checkRow(
  row: readonly number[],
  names: readonly string[],
  given: ReadonlySet<string>,
): void {
  for (let n = 0; n < names.length; n++) {
    const has = given.has(names[n]!);
    if (!has && row[n] === 1) {
      throw new CompatUsageError(`You need to supply the \`--${names[n]}' option for this command`);
    }
    if (has && row[n] === 0) {
      throw new CompatUsageError(`Illegal option \`--${names[n]}' with this command`);
    }
  }
}

function checkTable(name: string): CompatTable {
  for (const t of ['expect', 'conntrack', 'dying', 'unconfirmed'] as const) {
    if (t.startsWith(name)) return t;
  }
  throw new CompatUsageError(`unknown type \`${name}'`);
}
