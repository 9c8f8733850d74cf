/**
 * The Connections table's view of the flow table: filter, sort and group.
 * Pure functions over plain arrays so they are tested with 100,000 flows in
 * Node and stay fast: sort keys are computed once per flow (decorate, sort,
 * undecorate) and compared with < instead of localeCompare.
 */
import type { Flow, Protocol } from '../../../src-main/common/api.js';

export const SORT_KEYS = [
  'process',
  'user',
  'protocol',
  'source',
  'destination',
  'sport',
  'dport',
  'state',
  'age',
  'bytesOut',
  'bytesIn',
  'packetsOut',
  'packetsIn',
  'mark',
] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type SortDirection = 'asc' | 'desc';

export interface SortSpec {
  key: SortKey;
  direction: SortDirection;
}

export interface FlowFilter {
  /** '' for every protocol. */
  protocol: Protocol | '';
  /** '' for every state; '-' for flows without a state (UDP, ICMP). */
  state: string;
  /** Substring of the process name or executable path. */
  process: string;
  /** Substring of the host name or either address. */
  host: string;
  /** Words that must each appear in some shown field. */
  text: string;
}

export const EMPTY_FILTER: FlowFilter = {
  protocol: '',
  state: '',
  process: '',
  host: '',
  text: '',
};

export interface FlowGroupRow {
  kind: 'group';
  key: string;
  label: string;
  count: number;
  bytesIn: number;
  bytesOut: number;
  collapsed: boolean;
}

export interface FlowItemRow {
  kind: 'flow';
  /** The flow as it was when the view was computed; the table shows the live one by id. */
  flow: Flow;
}

export type FlowRow = FlowGroupRow | FlowItemRow;

type Key = number | string;

/** Sort key of a flow for a column. Ages sort by start time: newest first is "ascending age". */
export function sortKey(flow: Flow, key: SortKey): Key {
  switch (key) {
    case 'process':
      return (flow.process?.comm ?? '').toLowerCase();
    case 'user':
      return (flow.process?.user ?? '').toLowerCase();
    case 'protocol':
      return flow.protocol;
    case 'source':
      return flow.src;
    case 'destination':
      return (flow.host ?? flow.dst).toLowerCase();
    case 'sport':
      return flow.sport ?? -1;
    case 'dport':
      return flow.dport ?? -1;
    case 'state':
      return flow.state ?? '';
    case 'age':
      return flow.start === null ? Number.NEGATIVE_INFINITY : -flow.start;
    case 'bytesOut':
      return flow.bytesOut ?? -1;
    case 'bytesIn':
      return flow.bytesIn ?? -1;
    case 'packetsOut':
      return flow.packetsOut ?? -1;
    case 'packetsIn':
      return flow.packetsIn ?? -1;
    case 'mark':
      return flow.mark;
  }
}

/** What a sort needs, in transferable form: one key and one id per flow. */
export interface SortInput {
  /** All numbers (sent as a Float64Array) or all strings. */
  keys: Float64Array | string[];
  ids: Float64Array;
  sign: 1 | -1;
}

export function sortInput(flows: Flow[], sort: SortSpec): SortInput {
  const n = flows.length;
  const ids = new Float64Array(n);
  const raw = new Array<Key>(n);
  let numeric = true;
  for (let i = 0; i < n; i++) {
    const flow = flows[i] as Flow;
    const k = sortKey(flow, sort.key);
    raw[i] = k;
    ids[i] = flow.id;
    if (typeof k !== 'number') numeric = false;
  }
  const keys = numeric ? Float64Array.from(raw as number[]) : (raw as string[]);
  return { keys, ids, sign: sort.direction === 'asc' ? 1 : -1 };
}

/**
 * The sorted order of `input` as indexes, by id on ties so rows do not
 * shuffle between refreshes. Pure and DOM-free: it also runs in the sort worker.
 */
export function sortOrder({ keys, ids, sign }: SortInput): Uint32Array {
  const n = ids.length;
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => {
    const ka = keys[a] as Key;
    const kb = keys[b] as Key;
    if (ka < kb) return -sign;
    if (ka > kb) return sign;
    return (ids[a] as number) - (ids[b] as number);
  });
  return Uint32Array.from(order);
}

/** `flows` reordered by `order` (from sortOrder), in place. */
export function applyOrder(flows: Flow[], order: Uint32Array): Flow[] {
  const copy = flows.slice();
  for (let i = 0; i < order.length; i++) flows[i] = copy[order[i] as number] as Flow;
  return flows;
}

/**
 * Sorts in place. Keys and ids go to parallel arrays and an index array is
 * sorted: no object per flow, so a re-sort of 100,000 flows leaves little garbage.
 */
export function sortFlows(flows: Flow[], sort: SortSpec): Flow[] {
  return applyOrder(flows, sortOrder(sortInput(flows, sort)));
}

// Flows are replaced, never mutated, on update: caching by object is exact.
const textCache = new WeakMap<Flow, string>();

/** Every shown field of a flow in lower case, for the free-text filter. */
function flowText(flow: Flow): string {
  let text = textCache.get(flow);
  if (text === undefined) {
    const p = flow.process;
    text = [
      p?.comm,
      p?.exe,
      p?.user,
      p?.pid,
      flow.protocol,
      flow.src,
      flow.dst,
      flow.host,
      flow.sport,
      flow.dport,
      flow.state,
      flow.mark === 0 ? null : `0x${flow.mark.toString(16)}`,
    ]
      .filter((x) => x !== null && x !== undefined)
      .join(' ')
      .toLowerCase();
    textCache.set(flow, text);
  }
  return text;
}

/** A predicate for the filter, or null when the filter lets everything through. */
export function flowPredicate(filter: FlowFilter): ((flow: Flow) => boolean) | null {
  const process = filter.process.trim().toLowerCase();
  const host = filter.host.trim().toLowerCase();
  // Free text: every word must appear somewhere ("firefox 443" finds Firefox on port 443).
  const terms = filter.text
    .trim()
    .toLowerCase()
    .split(/\s+/u)
    .filter((t) => t !== '');
  const { protocol, state } = filter;
  if (!protocol && !state && !process && !host && terms.length === 0) return null;
  return (flow) => {
    if (protocol && flow.protocol !== protocol) return false;
    if (state && (state === '-' ? flow.state !== null : flow.state !== state)) return false;
    if (process) {
      const p = flow.process;
      if (!p) return false;
      if (!p.comm.toLowerCase().includes(process) && !(p.exe ?? '').toLowerCase().includes(process))
        return false;
    }
    if (host) {
      const name = (flow.host ?? '').toLowerCase();
      if (!name.includes(host) && !flow.dst.includes(host) && !flow.src.includes(host))
        return false;
    }
    if (terms.length > 0) {
      const text = flowText(flow);
      for (const term of terms) if (!text.includes(term)) return false;
    }
    return true;
  };
}

export function filterFlows(flows: Iterable<Flow>, filter: FlowFilter): Flow[] {
  const keep = flowPredicate(filter);
  const out: Flow[] = [];
  for (const flow of flows) if (keep === null || keep(flow)) out.push(flow);
  return out;
}

/** The group a flow belongs to when grouping by process. */
export function processKey(flow: Flow): string {
  const p = flow.process;
  return p ? (p.exe ?? p.comm) : '';
}

function processLabel(flow: Flow): string {
  return flow.process?.comm ?? 'unknown process';
}

/**
 * Group rows by process: one header per process (ordered by name), its flows
 * below in the given (sorted) order, unless the group is collapsed.
 */
export function groupRows(sorted: Flow[], collapsed: ReadonlySet<string>): FlowRow[] {
  const groups = new Map<
    string,
    { label: string; flows: Flow[]; bytesIn: number; bytesOut: number }
  >();
  for (const flow of sorted) {
    const key = processKey(flow);
    let g = groups.get(key);
    if (!g) {
      g = { label: processLabel(flow), flows: [], bytesIn: 0, bytesOut: 0 };
      groups.set(key, g);
    }
    g.flows.push(flow);
    g.bytesIn += flow.bytesIn ?? 0;
    g.bytesOut += flow.bytesOut ?? 0;
  }
  const keys = [...groups.keys()].sort((a, b) => {
    const la = (groups.get(a) as { label: string }).label.toLowerCase();
    const lb = (groups.get(b) as { label: string }).label.toLowerCase();
    return la < lb ? -1 : la > lb ? 1 : a < b ? -1 : a > b ? 1 : 0;
  });
  const rows: FlowRow[] = [];
  for (const key of keys) {
    const g = groups.get(key) as {
      label: string;
      flows: Flow[];
      bytesIn: number;
      bytesOut: number;
    };
    const isCollapsed = collapsed.has(key);
    rows.push({
      kind: 'group',
      key,
      label: g.label,
      count: g.flows.length,
      bytesIn: g.bytesIn,
      bytesOut: g.bytesOut,
      collapsed: isCollapsed,
    });
    if (!isCollapsed) for (const flow of g.flows) rows.push({ kind: 'flow', flow });
  }
  return rows;
}

export interface ViewOptions {
  filter: FlowFilter;
  sort: SortSpec;
  groupByProcess: boolean;
  collapsed: ReadonlySet<string>;
}

/** The table's rows for the current flows and view options. */
export function buildRows(flows: Iterable<Flow>, options: ViewOptions): FlowRow[] {
  return rowsFromSorted(sortFlows(filterFlows(flows, options.filter), options.sort), options);
}

/** Rows from flows already filtered and sorted (by buildRows or the sort worker). */
export function rowsFromSorted(sorted: Flow[], options: ViewOptions): FlowRow[] {
  if (options.groupByProcess) return groupRows(sorted, options.collapsed);
  return sorted.map((flow) => ({ kind: 'flow', flow }));
}
