/** `--json` lines of the conntrack-tools syntax: one JSON object a line, numbers that may exceed 2^53 as strings. */
import type { Expectation } from '../../conntrack/expect-decode.js';
import type { CpuStats } from '../../conntrack/stats.js';
import type { Flow } from '../../conntrack/types.js';
import { flowToJson } from '../conntrack-json.js';

/** `--json` form of an expectation (with the event type for -E expect). */
export function expectationJsonLine(e: Expectation, event?: string): string {
  return (
    JSON.stringify({ ...(event !== undefined ? { event } : {}), ...e }, (_k, v: unknown) =>
      typeof v === 'bigint'
        ? v.toString()
        : v instanceof Uint8Array
          ? Buffer.from(v).toString('hex')
          : v,
    ) + '\n'
  );
}

/** `-E --json`: an event, without the newline. */
export function flowEventJson(type: string, flow: Flow): string {
  return JSON.stringify({ event: type, ...flowToJson(flow) }, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v,
  );
}

/** `-C --json`. */
export function counterJsonLine(entries: number, maxEntries?: number): string {
  return (
    JSON.stringify({
      entries: String(entries),
      ...(maxEntries !== undefined ? { maxEntries: String(maxEntries) } : {}),
    }) + '\n'
  );
}

/** `-S --json`: one CPU's line. */
export function statsJsonLine(row: CpuStats): string {
  return JSON.stringify(row, (_k, v: unknown) => (typeof v === 'number' ? String(v) : v)) + '\n';
}
