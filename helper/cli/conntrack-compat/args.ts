/** What a conntrack-tools command line says, once parsed (parse.ts) and checked. */
import type { DccpState, SctpState, TcpState } from '../../conntrack/constants.js';
import type { Family, Tuple } from '../../conntrack/types.js';
import type { LabelMap } from './label-map.js';

export type CompatCommand = 'L' | 'I' | 'U' | 'D' | 'G' | 'F' | 'E' | 'A' | 'C' | 'S' | 'V' | 'h';
/**
 * Per command, one number per option: 0 illegal, 1 compulsory, 2 optional,
 * 3 coupled (src+dst or reply-src+reply-dst, or the protocol's couples).
 */
export type LegalityRows = Partial<Record<CompatCommand, readonly number[]>>;
export type CompatTable = 'conntrack' | 'expect' | 'dying' | 'unconfirmed';
export type OutputFlag =
  'xml' | 'extended' | 'timestamp' | 'id' | 'ktimestamp' | 'labels' | 'userspace' | 'save';
export type EventKind = 'new' | 'update' | 'destroy';

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
  /** -u as a filter: (status & statusMask) == status (see the -u option). */
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
