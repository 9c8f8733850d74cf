/** Display formatting shared by the renderer's views. Pure functions: no DOM, no Node. */
import type { ConntrackAccounting, KillResult } from '../../../src-main/common/api.js';

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB". Accepts bigint counters as conntrack reports them. */
/**
 * What a kill did, in words: the tracking entry goes even when the kernel cannot close
 * the program's socket (no SOCK_DESTROY), and the user is told so rather than "killed".
 */
export function killMessage(id: number, r: KillResult): string {
  if (r.socketError !== undefined) {
    const entry = r.conntrackDeleted ? 'its tracking entry is deleted' : 'it had no tracking entry';
    return `Connection ${id}: ${entry}, but its socket could not be closed (${r.socketError}).`;
  }
  if (!r.conntrackDeleted) return `Connection ${id} had ended already.`;
  return `Connection ${id} killed.`;
}

export function formatBytes(value: number | bigint): string {
  let n = typeof value === 'bigint' ? Number(value) : value;
  if (!Number.isFinite(n) || n < 0) return '–';
  let unit = 0;
  while (n >= 1024 && unit < BYTE_UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${BYTE_UNITS[unit]}`;
}

/** Seconds -> "45s", "3m 05s", "2h 07m", "3d 04h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  const pad = (v: number) => String(v).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** An address and port as people write them: "10.0.0.1:443", "[fe80::1]:443". */
export function formatEndpoint(address: string, port?: number): string {
  if (port === undefined) return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

// One formatter for every cell: Number#toLocaleString builds a new one per call,
// which costs more than the rest of a table row's rendering.
const INTEGER = new Intl.NumberFormat('en-US');

/** A possibly unknown counter: null -> "–"; 12345 -> "12,345". */
export function formatCount(value: number | null): string {
  return value === null ? '–' : INTEGER.format(value);
}

/** A possibly unknown byte counter. */
export function formatBytesOrNone(value: number | null): string {
  return value === null ? '–' : formatBytes(value);
}

/** Age of something that started at `start` (epoch ms), at `now`. */
export function formatAge(start: number | null, now: number): string {
  return start === null ? '–' : formatDuration(Math.max(0, (now - start) / 1000));
}

/** A conntrack mark as people set it with iptables: "0x7". 0 shows as "". */
export function formatMark(mark: number): string {
  return mark === 0 ? '' : `0x${mark.toString(16)}`;
}

/** "0x1f", "31" -> 31; null when it is not a u32. */
export function parseMark(text: string): number | null {
  const t = text.trim();
  const n = /^0x[0-9a-f]+$/iu.test(t)
    ? parseInt(t.slice(2), 16)
    : /^\d+$/u.test(t)
      ? Number(t)
      : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : null;
}

/** "1, 5 7" -> [1, 5, 7]; null when a label is not in 0..127. */
export function parseLabels(text: string): number[] | null {
  const parts = text.split(/[\s,]+/u).filter((p) => p !== '');
  const labels = parts.map((p) => (/^\d+$/u.test(p) ? Number(p) : NaN));
  if (labels.some((l) => !Number.isInteger(l) || l > 127)) return null;
  return [...new Set(labels)].sort((a, b) => a - b);
}

/** Seconds left until a deadline, never negative, rounded up (a countdown shows 1 until 0). */
export function secondsLeft(deadline: number, now: number): number {
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

/** Local date and time for tables: "2026-11-25 18:44:06". */
export function formatTime(epochMs: number): string {
  const d = new Date(epochMs);
  const pad = (v: number) => String(v).padStart(2, '0');
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/**
 * HelperState.conntrack for Settings: whether flows get byte/packet counters and start
 * times, and why not when they do not (docs/helper.md, conntrack accounting).
 */
export function describeAccounting(c: ConntrackAccounting): string {
  const state = (v: boolean | null): string => (v === null ? 'unknown' : v ? 'on' : 'off');
  const parts = `byte and packet counters ${state(c.accounting)}, flow start times ${state(c.timestamps)}`;
  if (c.accounting === true && c.timestamps === true) {
    return c.enabledByHelper ? `${parts} (turned on by the helper; set back when it stops)` : parts;
  }
  if (c.optOut) return `${parts} (the helper runs with --no-conntrack-accounting)`;
  return `${parts} (the helper could not turn them on; see its log)`;
}
