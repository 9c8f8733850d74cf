/**
 * What each option does to the parsed command line, as a table: options
 * that set one number (of a tuple or of the command), then those with more
 * to do. Options in none of them (-z) are only recorded as given.
 */
import { parseAddr, prefixMask, splitAddressAndPort } from './addresses.js';
import type { CompatArgs } from './args.js';
import { atoi, strtoul } from './c-numbers.js';
import { CompatUsageError } from './errors.js';
import type { Token } from './getopt.js';
import type { ParseState } from './parse-state.js';
import { EXTENSIONS } from './proto-extensions.js';
import {
  EVENT_NAMES,
  OUTPUT_NAMES,
  STATUS_NAMES,
  dccpRole,
  dccpState,
  findProto,
  parseMark,
  parseParameter,
  sctpState,
  tcpState,
} from './values.js';

const atoi8 = (v: string): number => atoi(v) & 0xff;
const atoi16 = (v: string): number => atoi(v) & 0xffff;
const atoi32 = (v: string): number => atoi(v) >>> 0;
const strtoul16 = (v: string): number => strtoul(v).value & 0xffff;
const strtoul32 = (v: string): number => strtoul(v).value >>> 0;

type TupleNumber = 'srcPort' | 'dstPort' | 'icmpType' | 'icmpCode' | 'icmpId';
type TupleOf = 'orig' | 'reply' | 'expTuple' | 'expMask';

type Reader = (v: string) => number;

/** The eight numbers the port options (and GRE's key options) set, in the order of their names. */
const PORT_SLOTS = [
  ['orig', 'srcPort'],
  ['orig', 'dstPort'],
  ['reply', 'srcPort'],
  ['reply', 'dstPort'],
  ['expTuple', 'srcPort'],
  ['expTuple', 'dstPort'],
  ['expMask', 'srcPort'],
  ['expMask', 'dstPort'],
] as const;

/** The options `names` (one per port slot), each setting its slot with `read`. */
function portOptions(names: readonly string[], read: Reader) {
  return Object.fromEntries(names.map((name, n) => [name, [...PORT_SLOTS[n]!, read] as const]));
}

/** Options that set one number of a tuple: which tuple, which field, how it is read. */
const TUPLE_NUMBERS: Record<string, readonly [TupleOf, TupleNumber, Reader]> = {
  ...portOptions(
    [
      'sport',
      'dport',
      'reply-port-src',
      'reply-port-dst',
      'tuple-port-src',
      'tuple-port-dst',
      'mask-port-src',
      'mask-port-dst',
    ],
    atoi16,
  ),
  // GRE keys: strtoul() (base 0), 16 bits, where the ports go.
  ...portOptions(
    [
      'srckey',
      'dstkey',
      'reply-key-src',
      'reply-key-dst',
      'tuple-key-src',
      'tuple-key-dst',
      'mask-key-src',
      'mask-key-dst',
    ],
    strtoul16,
  ),
  'icmp-type': ['orig', 'icmpType', atoi8],
  'icmp-code': ['orig', 'icmpCode', atoi8],
  'icmp-id': ['orig', 'icmpId', atoi16],
};

type ArgsNumber =
  | 'origZone'
  | 'replyZone'
  | 'id'
  | 'secmark'
  | 'timeout'
  | 'zone'
  | 'bufferSize'
  | 'vtagOrig'
  | 'vtagReply';

/** Options that set one number of the command: which, and how it is read. */
const NUMBERS: Record<string, readonly [ArgsNumber, Reader]> = {
  'orig-zone': ['origZone', strtoul16],
  'reply-zone': ['replyZone', strtoul16],
  // --id takes an optional argument in 1.4.7's table; without one, 0 here.
  id: ['id', strtoul32],
  secmark: ['secmark', strtoul32],
  timeout: ['timeout', atoi32],
  zone: ['zone', strtoul16],
  'buffer-size': ['bufferSize', atoi32],
  'orig-vtag': ['vtagOrig', atoi32],
  'reply-vtag': ['vtagReply', atoi32],
};

type Handler = (s: ParseState, v: string, t: Token) => void;

/**
 * -s / -d (the original tuple) and --tuple-src / --tuple-dst (-I expect's
 * expected tuple): a prefix is --mask-src / --mask-dst (CT_OPT_MASK_*, as
 * 1.4.7 sets it; opt2maskopt for the expected tuple).
 */
function addressOrNetwork(into: 'orig' | 'expTuple', side: 'src' | 'dst'): Handler {
  return (s, v) => {
    const a = parseAddr(v);
    s.setFamily(a.family);
    s.r[into][side] = a.text;
    if (a.prefix === undefined) return;
    s.r.options.add(side === 'src' ? 'mask-src' : 'mask-dst');
    s.r[side === 'src' ? 'srcMask' : 'dstMask'] = prefixMask(a.prefix, a.family);
  };
}

/** --mask-src / --mask-dst, --reply-src / --reply-dst: an address without a prefix. */
function plainAddress(set: (r: CompatArgs, text: string) => void): Handler {
  return (s, v, t) => {
    const a = parseAddr(v, t.key);
    s.setFamily(a.family);
    set(s.r, a.text);
  };
}

/** -l, --label-add, --label-del [NAMES]. */
const label: Handler = (s, _v, t) => {
  s.labelMapInit();
  if (s.r.options.has('label-add') && s.r.options.has('label-del')) {
    throw new CompatUsageError('cannot use --label-add and --label-del at the same time', 1);
  }
  let text = t.value;
  if (t.key === 'label-del') {
    text ??= s.cursor.optionalArg();
    if (text === undefined) return; // delete all labels
  }
  const bits = s.parseLabels(text ?? '');
  if (t.key === 'label') s.r.labels = [...new Set([...(s.r.labels ?? []), ...bits])];
  else s.r.labelModify = [...new Set([...(s.r.labelModify ?? []), ...bits])];
};

/** --src-nat, --dst-nat, --any-nat [ADDR[:PORT]]. */
const nat: Handler = (s, _v, t) => {
  const text = t.value ?? s.cursor.optionalArg();
  if (text === undefined) return;
  const { addr, port } = splitAddressAndPort(text);
  const a = parseAddr(addr, t.key);
  s.setFamily(a.family);
  const nat = { ip: a.text, ...(port !== undefined ? { port: atoi(port) & 0xffff } : {}) };
  if (t.key !== 'dst-nat') s.r.natSrc = nat;
  if (t.key !== 'src-nat') s.r.natDst = nat;
};

const HANDLERS: Record<string, Handler> = {
  src: addressOrNetwork('orig', 'src'),
  dst: addressOrNetwork('orig', 'dst'),
  'tuple-src': addressOrNetwork('expTuple', 'src'),
  'tuple-dst': addressOrNetwork('expTuple', 'dst'),
  'mask-src': plainAddress((r, text) => (r.srcMask = text)),
  'mask-dst': plainAddress((r, text) => (r.dstMask = text)),
  'reply-src': plainAddress((r, text) => (r.reply.src = text)),
  'reply-dst': plainAddress((r, text) => (r.reply.dst = text)),
  protonum: (s, v) => {
    const p = findProto(v);
    if (p === undefined) throw new CompatUsageError(`\`${v}' unsupported protocol`);
    s.r.proto = p;
    s.ext = EXTENSIONS[p];
  },
  family: (s, v) => {
    if (v === 'ipv4') s.setFamily('ipv4');
    else if (v === 'ipv6') s.setFamily('ipv6');
    else throw new CompatUsageError(`\`${v}' unsupported protocol`);
  },
  status: ({ r }, v) => {
    r.status = parseParameter(v, STATUS_NAMES).reduce((a, b) => a | b, r.status ?? 0);
    // 1.4.7 keeps the kernel filter's mask (used by -L) from the first -u that
    // sets a bit, while the value gathers every -u: `-L -u ASSURED -u
    // SEEN_REPLY` matches nothing.
    if (!r.statusMask) r.statusMask = r.status;
  },
  mark: ({ r }, v) => {
    r.mark = parseMark(v);
  },
  'event-mask': ({ r }, v) => {
    const kinds = parseParameter(v, EVENT_NAMES).flat();
    r.eventMask = new Set([...(r.eventMask ?? []), ...kinds]);
  },
  output: (s, v) => {
    const output = s.r.output;
    for (const o of parseParameter(v, OUTPUT_NAMES)) output.add(o);
    if (output.has('labels')) s.labelMapInit();
    if (output.has('save') && [...output].some((o) => o !== 'save' && o !== 'userspace')) {
      throw new CompatUsageError(
        'cannot combine save output with any other output type, use -o save only',
        1,
      );
    }
  },
  label,
  'label-add': label,
  'label-del': label,
  'src-nat': nat,
  'dst-nat': nat,
  'any-nat': nat,
  state: (s, v) => {
    if (s.ext?.name === 'sctp') s.r.sctpState = sctpState(v);
    else if (s.ext?.name === 'dccp') s.r.dccpState = dccpState(v);
    else s.r.state = tcpState(v);
  },
  role: ({ r }, v) => {
    r.dccpRole = dccpRole(v);
  },
};

/** Carries out one option (not a command, nor one of Portcullis' own). */
export function applyOption(s: ParseState, t: Token): void {
  const v = t.value ?? '';
  const tupleNumber = TUPLE_NUMBERS[t.key];
  if (tupleNumber) {
    const [tuple, field, read] = tupleNumber;
    s.r[tuple][field] = read(v);
    return;
  }
  const number = NUMBERS[t.key];
  if (number) {
    s.r[number[0]] = number[1](v);
    return;
  }
  HANDLERS[t.key]?.(s, v, t);
}
