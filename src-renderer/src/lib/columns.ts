/** The Connections table's columns: header, width, sort key and cell text. */
import type { Flow } from '../../../src-main/common/api.js';
import type { SortKey } from './flow-view.js';
import { formatAge, formatBytesOrNone, formatCount, formatMark } from './format.js';

export interface FlowColumn {
  key: SortKey;
  label: string;
  /** Accessible name when the label is a symbol. */
  title: string;
  /** CSS grid track: fixed pixels, so a row's layout never depends on its content. */
  width: string;
  numeric: boolean;
  text(flow: Flow, now: number): string;
}

function ports(flow: Flow): string {
  if (flow.sport === null && flow.dport === null) return '';
  return `${flow.sport ?? '*'} → ${flow.dport ?? '*'}`;
}

export const FLOW_COLUMNS: readonly FlowColumn[] = [
  {
    key: 'process',
    label: 'Process',
    title: 'Process',
    width: '150px',
    numeric: false,
    text: (f) => f.process?.comm ?? '?',
  },
  {
    key: 'user',
    label: 'User',
    title: 'User',
    width: '80px',
    numeric: false,
    text: (f) => f.process?.user ?? (f.process ? String(f.process.uid) : ''),
  },
  {
    key: 'protocol',
    label: 'Proto',
    title: 'Protocol',
    width: '56px',
    numeric: false,
    text: (f) => f.protocol,
  },
  {
    key: 'source',
    label: 'Source',
    title: 'Source address',
    width: '170px',
    numeric: false,
    text: (f) => f.src,
  },
  {
    key: 'destination',
    label: 'Destination',
    title: 'Destination host and address',
    width: '280px',
    numeric: false,
    text: (f) => (f.host ? `${f.host} (${f.dst})` : f.dst),
  },
  {
    key: 'dport',
    label: 'Ports',
    title: 'Source and destination ports',
    width: '112px',
    numeric: false,
    text: ports,
  },
  {
    key: 'state',
    label: 'State',
    title: 'State',
    width: '100px',
    numeric: false,
    text: (f) => f.state ?? '',
  },
  {
    key: 'age',
    label: 'Age',
    title: 'Age',
    width: '72px',
    numeric: true,
    text: (f, now) => formatAge(f.start, now),
  },
  {
    key: 'bytesOut',
    label: '↑ Bytes',
    title: 'Bytes sent',
    width: '80px',
    numeric: true,
    text: (f) => formatBytesOrNone(f.bytesOut),
  },
  {
    key: 'bytesIn',
    label: '↓ Bytes',
    title: 'Bytes received',
    width: '80px',
    numeric: true,
    text: (f) => formatBytesOrNone(f.bytesIn),
  },
  {
    key: 'packetsOut',
    label: '↑ Pkts',
    title: 'Packets sent',
    width: '70px',
    numeric: true,
    text: (f) => formatCount(f.packetsOut),
  },
  {
    key: 'packetsIn',
    label: '↓ Pkts',
    title: 'Packets received',
    width: '70px',
    numeric: true,
    text: (f) => formatCount(f.packetsIn),
  },
  {
    key: 'mark',
    label: 'Mark',
    title: 'Conntrack mark',
    width: '64px',
    numeric: true,
    text: (f) => formatMark(f.mark),
  },
];

export const FLOW_GRID_TEMPLATE = FLOW_COLUMNS.map((c) => c.width).join(' ');
