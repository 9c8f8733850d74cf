/** Display formatting shared by the renderer's views. Pure functions: no DOM, no Node. */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB". Accepts bigint counters as conntrack reports them. */
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
