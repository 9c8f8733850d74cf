/**
 * What the options of `portcullis conntrack <subcommand>` say: conntrack-tools
 * spellings read into one record, each value parsed and checked against the
 * others (address families, ports and ICMP fields against the protocol).
 * conntrack-args.ts shapes that record for each subcommand.
 */
import { IPPROTO, type StatusFlag } from '../conntrack/constants.js';
import type { Family, Tuple } from '../conntrack/types.js';
import { CliUsageError, optionTokens } from './command.js';
import {
  PORT_PROTOS,
  isIcmpProto,
  parseAddress,
  parseFamily,
  parseLabels,
  parseMark,
  parseProto,
  parseState,
  parseStatus,
  parseUnsigned,
  protoName,
} from './conntrack-values.js';

/** Options every conntrack subcommand understands. */
export interface CommonOptions {
  netns?: string;
  json: boolean;
}

export const SUBCOMMANDS = [
  'list',
  'get',
  'create',
  'update',
  'delete',
  'flush',
  'stats',
  'count',
] as const;
export type Subcommand = (typeof SUBCOMMANDS)[number];

// ---------------------------------------------------------------------------
// Option table

export type OptionName =
  | 'netns'
  | 'json'
  | 'family'
  | 'proto'
  | 'src'
  | 'dst'
  | 'reply-src'
  | 'reply-dst'
  | 'sport'
  | 'dport'
  | 'reply-sport'
  | 'reply-dport'
  | 'icmp-type'
  | 'icmp-code'
  | 'icmp-id'
  | 'mark'
  | 'zone'
  | 'status'
  | 'state'
  | 'timeout'
  | 'label'
  | 'label-add'
  | 'label-del'
  | 'all-matching';

interface OptionDef {
  /** The canonical option this spelling stands for. */
  canonical: OptionName;
  type: 'string' | 'boolean';
  short?: string;
  /** May be given more than once (values are combined). */
  repeatable?: boolean;
}

/** Every accepted spelling; aliases are the conntrack-tools long names. */
const SPELLINGS: Record<string, OptionDef> = {
  netns: { canonical: 'netns', type: 'string' },
  json: { canonical: 'json', type: 'boolean' },
  family: { canonical: 'family', type: 'string', short: 'f' },
  proto: { canonical: 'proto', type: 'string', short: 'p' },
  src: { canonical: 'src', type: 'string', short: 's' },
  'orig-src': { canonical: 'src', type: 'string' },
  dst: { canonical: 'dst', type: 'string', short: 'd' },
  'orig-dst': { canonical: 'dst', type: 'string' },
  'reply-src': { canonical: 'reply-src', type: 'string', short: 'r' },
  'reply-dst': { canonical: 'reply-dst', type: 'string', short: 'q' },
  sport: { canonical: 'sport', type: 'string' },
  'orig-port-src': { canonical: 'sport', type: 'string' },
  dport: { canonical: 'dport', type: 'string' },
  'orig-port-dst': { canonical: 'dport', type: 'string' },
  'reply-sport': { canonical: 'reply-sport', type: 'string' },
  'reply-port-src': { canonical: 'reply-sport', type: 'string' },
  'reply-dport': { canonical: 'reply-dport', type: 'string' },
  'reply-port-dst': { canonical: 'reply-dport', type: 'string' },
  'icmp-type': { canonical: 'icmp-type', type: 'string' },
  'icmpv6-type': { canonical: 'icmp-type', type: 'string' },
  'icmp-code': { canonical: 'icmp-code', type: 'string' },
  'icmpv6-code': { canonical: 'icmp-code', type: 'string' },
  'icmp-id': { canonical: 'icmp-id', type: 'string' },
  'icmpv6-id': { canonical: 'icmp-id', type: 'string' },
  mark: { canonical: 'mark', type: 'string', short: 'm' },
  zone: { canonical: 'zone', type: 'string', short: 'w' },
  status: { canonical: 'status', type: 'string', short: 'u', repeatable: true },
  state: { canonical: 'state', type: 'string' },
  timeout: { canonical: 'timeout', type: 'string', short: 't' },
  label: { canonical: 'label', type: 'string', short: 'l', repeatable: true },
  'label-add': { canonical: 'label-add', type: 'string', repeatable: true },
  'label-del': { canonical: 'label-del', type: 'string', repeatable: true },
  'all-matching': { canonical: 'all-matching', type: 'boolean' },
};

const KEY: OptionName[] = [
  'family',
  'proto',
  'src',
  'dst',
  'sport',
  'dport',
  'icmp-type',
  'icmp-code',
  'icmp-id',
  'zone',
];
export const REPLY: OptionName[] = ['reply-src', 'reply-dst', 'reply-sport', 'reply-dport'];
const FILTERS: OptionName[] = [...KEY, ...REPLY, 'mark', 'status', 'state', 'label'];

/** Which options each subcommand accepts (besides --netns and -h). */
const ALLOWED: Record<Subcommand, readonly OptionName[]> = {
  list: ['json', ...FILTERS],
  get: ['json', ...KEY],
  create: [...KEY, ...REPLY, 'timeout', 'mark', 'label', 'status', 'state'],
  update: [...KEY, 'timeout', 'mark', 'label', 'label-add', 'label-del', 'status', 'state'],
  delete: ['json', ...FILTERS, 'all-matching'],
  flush: ['family', 'mark'],
  stats: ['json'],
  count: ['json'],
};

/** Values by canonical option, in the order given; `flags` maps each to how it was spelled. */
interface RawOptions {
  values: Map<OptionName, string[]>;
  spelled: Map<OptionName, string>;
}

function tokenize(sub: Subcommand, argv: string[]): RawOptions {
  const tokens = optionTokens(argv, SPELLINGS);
  const values = new Map<OptionName, string[]>();
  const spelled = new Map<OptionName, string>();
  const allowed = ALLOWED[sub];
  for (const token of tokens) {
    const def = SPELLINGS[token.name]!;
    const name = def.canonical;
    if (name !== 'netns' && !allowed.includes(name)) {
      throw new CliUsageError(
        `option ${token.rawName} is not valid with 'conntrack ${sub}' (valid: ${describeAllowed(allowed)})`,
      );
    }
    const previous = values.get(name);
    if (previous && !def.repeatable) {
      throw new CliUsageError(`option ${token.rawName} given more than once`);
    }
    const value = token.value ?? '';
    if (def.type === 'string' && value.length === 0) {
      throw new CliUsageError(`option ${token.rawName} needs a value`);
    }
    values.set(name, [...(previous ?? []), value]);
    if (!spelled.has(name)) spelled.set(name, token.rawName);
  }
  return { values, spelled };
}

function describeAllowed(allowed: readonly OptionName[]): string {
  return ['--netns', ...allowed.map((o) => `--${o}`)].join(' ');
}

// ---------------------------------------------------------------------------
// Interpretation

/** What the options say, checked for consistency, before it is shaped for a subcommand. */
export interface Interpreted {
  common: CommonOptions;
  family?: Family;
  proto?: number;
  orig: Partial<Tuple>;
  reply: Partial<Tuple>;
  mark?: { value: number; mask?: number };
  zone?: number;
  status?: StatusFlag[];
  state?: string;
  timeout?: number;
  label?: number[];
  labelAdd?: number[];
  labelDel?: number[];
  allMatching: boolean;
  has(name: OptionName): boolean;
  spelling(name: OptionName): string;
}

/** Reads the tokenized options: the first value of an option, and how the user spelled it. */
interface OptionReader {
  one(name: OptionName): string | undefined;
  spelling(name: OptionName): string;
}

export function interpret(sub: Subcommand, argv: string[]): Interpreted {
  const { values, spelled } = tokenize(sub, argv);
  const read: OptionReader = {
    one: (name) => values.get(name)?.[0],
    spelling: (name) => spelled.get(name) ?? `--${name}`,
  };
  const { one, spelling } = read;
  const netns = one('netns');
  const common: CommonOptions = {
    json: values.has('json'),
    ...(netns !== undefined ? { netns } : {}),
  };
  const r: Interpreted = {
    common,
    orig: {},
    reply: {},
    allMatching: values.has('all-matching'),
    has: (name) => values.has(name),
    spelling,
  };

  const family = one('family');
  if (family !== undefined) r.family = parseFamily(family);
  const proto = one('proto');
  if (proto !== undefined) r.proto = parseProto(proto);
  interpretAddresses(r, read);
  interpretLayer4(r, read);

  const mark = one('mark');
  if (mark !== undefined) r.mark = parseMark(mark);
  const zone = one('zone');
  if (zone !== undefined) r.zone = parseUnsigned(zone, 65535, spelling('zone'));
  const status = values.get('status');
  if (status) r.status = parseStatus(status);
  const timeout = one('timeout');
  if (timeout !== undefined) r.timeout = parseUnsigned(timeout, 0xffffffff, spelling('timeout'));
  const label = values.get('label');
  if (label) r.label = parseLabels(label);
  const labelAdd = values.get('label-add');
  if (labelAdd) r.labelAdd = parseLabels(labelAdd);
  const labelDel = values.get('label-del');
  if (labelDel) r.labelDel = parseLabels(labelDel);

  const state = one('state');
  if (state !== undefined) {
    // Without -p, a state is a TCP state (and implies -p tcp).
    if (r.proto === undefined) {
      r.proto = IPPROTO.tcp;
      r.orig.proto = IPPROTO.tcp;
    }
    r.state = parseState(state, r.proto, sub === 'create' || sub === 'update');
  }
  if (netns !== undefined && netns.length === 0) throw new CliUsageError('--netns needs a name');
  return r;
}

/** Addresses: every one must be of the same family, and agree with -f and -p. */
function interpretAddresses(r: Interpreted, { one, spelling }: OptionReader): void {
  const addressOptions: [OptionName, 'orig' | 'reply', 'src' | 'dst'][] = [
    ['src', 'orig', 'src'],
    ['dst', 'orig', 'dst'],
    ['reply-src', 'reply', 'src'],
    ['reply-dst', 'reply', 'dst'],
  ];
  let addressFamily: { family: Family; option: string } | undefined;
  for (const [name, dir, field] of addressOptions) {
    const text = one(name);
    if (text === undefined) continue;
    const a = parseAddress(text, spelling(name));
    if (addressFamily && addressFamily.family !== a.family) {
      throw new CliUsageError(
        `address families differ: ${addressFamily.option} is ${addressFamily.family}, ${spelling(name)} is ${a.family}`,
      );
    }
    addressFamily ??= { family: a.family, option: spelling(name) };
    r[dir][field] = a.text;
  }
  if (addressFamily && r.family && addressFamily.family !== r.family) {
    throw new CliUsageError(
      `${addressFamily.option} is an ${addressFamily.family} address but the family is ${r.family}`,
    );
  }
  const effectiveFamily = r.family ?? addressFamily?.family;
  if (r.proto === IPPROTO.icmp && effectiveFamily === 'ipv6') {
    throw new CliUsageError('protocol icmp is IPv4 only; use -p icmpv6 with IPv6');
  }
  if (r.proto === IPPROTO.icmpv6 && effectiveFamily === 'ipv4') {
    throw new CliUsageError('protocol icmpv6 is IPv6 only; use -p icmp with IPv4');
  }
}

/** Layer 4 fields: ports need a protocol with ports, ICMP fields need ICMP. */
function interpretLayer4(r: Interpreted, { one, spelling }: OptionReader): void {
  const ports: [OptionName, 'orig' | 'reply', 'srcPort' | 'dstPort'][] = [
    ['sport', 'orig', 'srcPort'],
    ['dport', 'orig', 'dstPort'],
    ['reply-sport', 'reply', 'srcPort'],
    ['reply-dport', 'reply', 'dstPort'],
  ];
  for (const [name, dir, field] of ports) {
    const text = one(name);
    if (text === undefined) continue;
    if (r.proto === undefined || !PORT_PROTOS.includes(r.proto)) {
      throw new CliUsageError(
        `${spelling(name)} needs -p tcp, udp, udplite, sctp, dccp or gre` +
          (r.proto === undefined ? '' : ` (protocol is ${protoName(r.proto) ?? r.proto})`),
      );
    }
    r[dir][field] = parseUnsigned(text, 65535, spelling(name));
  }
  const icmp: [OptionName, 'icmpType' | 'icmpCode' | 'icmpId', number][] = [
    ['icmp-type', 'icmpType', 255],
    ['icmp-code', 'icmpCode', 255],
    ['icmp-id', 'icmpId', 65535],
  ];
  for (const [name, field, max] of icmp) {
    const text = one(name);
    if (text === undefined) continue;
    if (!isIcmpProto(r.proto)) {
      throw new CliUsageError(`${spelling(name)} needs -p icmp or -p icmpv6`);
    }
    r.orig[field] = parseUnsigned(text, max, spelling(name));
  }
  if (r.proto !== undefined) {
    r.orig.proto = r.proto;
    if (Object.keys(r.reply).some((k) => k === 'srcPort' || k === 'dstPort')) {
      r.reply.proto = r.proto;
    }
  }
}
