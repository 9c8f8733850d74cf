/**
 * The protocol extensions of conntrack-tools 1.4.7 (libct_proto_*.c): the
 * options that exist only after `-p PROTO`, their legality per command, and
 * the messages for a half-given couple.
 */
import { IPPROTO } from '../../conntrack/constants.js';
import type { LegalityRows } from './args.js';
import type { LongOption } from './option-table.js';

/** Protocol extensions: options that exist only after `-p <proto>`. */
export interface ProtoExt {
  name: string;
  options: LongOption[];
  /** Option names for messages, in the extension's bit order. */
  flags: readonly string[];
  /** The token key of each of those options. */
  keys: readonly string[];
  /** Legality per command, in the option order of `flags`. */
  matrix: LegalityRows;
  /** The same for the expect table (EXP_* rows); a missing row: every option illegal. */
  expMatrix: LegalityRows;
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
const TCP_MATRIX: LegalityRows = {
  L: [2,2,2,2,0,0,2,0,0], I: [3,3,3,3,0,0,1,0,0], A: [3,3,3,3,0,0,1,0,0],
  U: [2,2,2,2,0,0,2,0,0], D: [2,2,2,2,0,0,2,0,0], G: [3,3,3,3,0,0,0,0,0],
  E: [2,2,2,2,0,0,2,0,0],
};
// prettier-ignore
const UDP_MATRIX: LegalityRows = {
  L: [2,2,2,2,0,0,0,0,0], I: [3,3,3,3,0,0,0,0,0], A: [3,3,3,3,0,0,0,0,0],
  U: [2,2,2,2,0,0,0,0,0], D: [2,2,2,2,0,0,0,0,0], G: [3,3,3,3,0,0,0,0,0],
  E: [2,2,2,2,0,0,0,0,0],
};
// The EXP_GET and EXP_DELETE rows of tcp.c/udp.c make both the original
// and the reply ports compulsory, although the expectation is looked up by
// the original tuple only: the reply ports are demanded and then unused.
// prettier-ignore
const PORT_EXP_MATRIX: LegalityRows = {
  L: [0,0,0,0,0,0,0,0,0], I: [1,1,0,0,1,1,0,1,1],
  D: [1,1,1,1,0,0,0,0,0], G: [1,1,1,1,0,0,0,0,0], E: [0,0,0,0,0,0,0,0,0],
};
const ICMP_FLAGS = ['icmp-type', 'icmp-code', 'icmp-id'] as const;
// prettier-ignore
const ICMP_MATRIX: LegalityRows = {
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
const SCTP_MATRIX: LegalityRows = {
  L: [2,2,2,2,0,0,2,0,0,0,0], I: [3,3,3,3,0,0,1,0,0,1,1], A: [3,3,3,3,0,0,1,0,0,1,1],
  U: [2,2,2,2,0,0,2,0,0,2,2], D: [2,2,2,2,0,0,2,0,0,0,0], G: [3,3,3,3,0,0,2,0,0,2,2],
  E: [2,2,2,2,0,0,2,0,0,0,0],
};
// prettier-ignore
const SCTP_EXP_MATRIX: LegalityRows = {
  I: [1,1,0,0,1,1,0,1,1,1,1], D: [1,1,1,1,0,0,0,0,0,0,0], G: [1,1,1,1,0,0,0,0,0,0,0],
};
// libct_proto_dccp.c: the port options, --state and --role (compulsory at -I/-A).
const DCCP_FLAGS = [...PORT_FLAGS, 'role'] as const;
// prettier-ignore
const DCCP_MATRIX: LegalityRows = {
  L: [2,2,2,2,0,0,2,0,0,0], I: [3,3,3,3,0,0,1,0,0,1], A: [3,3,3,3,0,0,1,0,0,1],
  U: [2,2,2,2,0,0,2,0,0,0], D: [2,2,2,2,0,0,2,0,0,0], G: [3,3,3,3,0,0,2,0,0,0],
  E: [2,2,2,2,0,0,2,0,0,0],
};
// prettier-ignore
const DCCP_EXP_MATRIX: LegalityRows = {
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
const GRE_MATRIX: LegalityRows = {
  L: [2,2,2,2,0,0,0,0], I: [3,3,3,3,0,0,0,0], A: [3,3,3,3,0,0,0,0], U: [2,2,2,2,0,0,0,0],
  D: [2,2,2,2,0,0,0,0], G: [3,3,3,3,0,0,0,0], E: [2,2,2,2,0,0,0,0],
};
// prettier-ignore
const GRE_EXP_MATRIX: LegalityRows = {
  I: [1,1,1,1,1,1,1,1], D: [1,1,1,1,0,0,0,0], G: [1,1,1,1,0,0,0,0],
};
const required = (name: string, key = name): LongOption => ({ name, arg: 'required', key });

export const EXTENSIONS: Record<number, ProtoExt> = {
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
