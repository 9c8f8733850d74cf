/** `portcullis conntrack events` and `portcullis conntrack expect list`. */
import { ConntrackEvents } from '../conntrack/events.js';
import { Conntrack } from '../conntrack/client.js';
import type { ConntrackEventType } from '../conntrack/types.js';
import { flowMatcher } from '../conntrack/filter.js';
import { parseConntrackArgs } from './conntrack-args.js';
import { flowToJson } from './conntrack-json.js';
import { expectationJsonLine } from './conntrack-compat/format-json.js';
import { formatTuple } from './conntrack-table.js';
import { CliUsageError, type CliIo } from './command.js';

const EVENT_TYPES: readonly ConntrackEventType[] = ['new', 'update', 'destroy'];

/** Takes `-e/--event TYPES` and `--count N` out of argv; the rest are list filters. */
function extractEventOptions(argv: string[]): {
  rest: string[];
  types: ConntrackEventType[];
  count?: number;
} {
  const rest: string[] = [];
  let types: ConntrackEventType[] = [...EVENT_TYPES];
  let count: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [name, inline] =
      a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (name === '-e' || name === '--event' || name === '--count') {
      const value = inline ?? argv[++i];
      if (value === undefined || value === '') throw new CliUsageError(`${name} needs a value`);
      if (name === '--count') {
        if (!/^\d+$/.test(value) || Number(value) < 1)
          throw new CliUsageError(`--count: '${value}' is not a positive integer`);
        count = Number(value);
      } else {
        const wanted = value.toLowerCase().split(',');
        const bad = wanted.find((t) => !(EVENT_TYPES as readonly string[]).includes(t));
        if (bad !== undefined)
          throw new CliUsageError(`-e: unknown event type '${bad}' (new, update, destroy)`);
        types = wanted as ConntrackEventType[];
      }
    } else rest.push(a);
  }
  return { rest, types, ...(count !== undefined ? { count } : {}) };
}

/** Follows events until SIGINT/SIGTERM, `--count` events, or `signal`. */
export async function runEvents(argv: string[], io: CliIo, signal?: AbortSignal): Promise<number> {
  const { rest, types, count } = extractEventOptions(argv);
  const parsed = parseConntrackArgs('list', rest);
  if (parsed.sub !== 'list') throw new CliUsageError('events takes list filters');
  const { common, filter } = parsed;
  const matches = flowMatcher(filter);
  const events = ConntrackEvents.open({
    events: types,
    ...(common.netns !== undefined ? { netns: common.netns } : {}),
  });
  let shown = 0;
  let lost = 0;
  return new Promise<number>((resolve) => {
    const stop = (code: number) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      signal?.removeEventListener('abort', onAbort);
      events.close();
      io.stderr(
        `conntrack: ${shown} event${shown === 1 ? '' : 's'} shown${lost ? `, ${lost} losses (ENOBUFS)` : ''}\n`,
      );
      resolve(code);
    };
    const onSignal = () => stop(0);
    const onAbort = () => stop(0);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    signal?.addEventListener('abort', onAbort, { once: true });
    events.onEvent(({ type, flow }) => {
      if (!matches(flow)) return;
      shown++;
      if (common.json) io.stdout(JSON.stringify({ event: type, ...flowToJson(flow) }) + '\n');
      else {
        const st = flow.tcp?.state ?? flow.sctp?.state ?? '';
        io.stdout(
          `[${type.toUpperCase()}] ${flow.family} proto=${flow.orig.proto}${st ? ` ${st}` : ''} ${formatTuple(flow.orig)}` +
            ` reply ${formatTuple(flow.reply)}${flow.mark ? ` mark=${flow.mark}` : ''}${flow.id !== undefined ? ` id=${flow.id}` : ''}\n`,
        );
      }
      if (count !== undefined && shown >= count) stop(0);
    });
    events.onLost(() => {
      lost++;
      io.stderr('portcullis: WARNING: the kernel dropped events (ENOBUFS)\n');
    });
    events.onError((error) => io.stderr(`portcullis: ${error.message}\n`));
  });
}

/** `conntrack expect list [-f FAMILY] [--netns NAME] [--json]`. */
export async function runExpect(argv: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action !== 'list') throw new CliUsageError(`unknown expect action '${action ?? ''}' (list)`);
  const parsed = parseConntrackArgs('list', rest);
  if (parsed.sub !== 'list') throw new CliUsageError('expect list takes -f, --netns and --json');
  const { common, filter } = parsed;
  const extra = Object.keys(filter).filter((k) => k !== 'family');
  if (extra.length)
    throw new CliUsageError(`expect list: only -f filters expectations (got ${extra.join(', ')})`);
  const ct = Conntrack.open(common.netns !== undefined ? { netns: common.netns } : {});
  try {
    const list = await ct.expectations.listAll(filter.family ? { family: filter.family } : {});
    for (const e of list) {
      if (common.json) io.stdout(expectationJsonLine(e));
      else
        io.stdout(
          `${e.timeout ?? '-'} proto=${e.tuple.proto} ${formatTuple(e.tuple)} master ${formatTuple(e.master)}` +
            `${e.helper ? ` helper=${e.helper}` : ''}${e.id !== undefined ? ` id=${e.id}` : ''}\n`,
        );
    }
    io.stderr(`conntrack: ${list.length} expectation${list.length === 1 ? '' : 's'} shown\n`);
    return 0;
  } finally {
    ct.close();
  }
}
