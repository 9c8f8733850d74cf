import type { Conntrack } from '../conntrack/client.js';
import { labelBits } from '../conntrack/decode.js';
import { ConntrackArgumentError, statusBits } from '../conntrack/encode.js';
import type { CpuStats } from '../conntrack/stats.js';
import type { Flow } from '../conntrack/types.js';
import { NetlinkError } from '../netlink/errors.js';
import { type ConntrackCommandArgs, parseConntrackArgs } from './conntrack-args.js';
import { type CommonOptions, SUBCOMMANDS } from './conntrack-options.js';
import { namesCompatCommand } from './conntrack-compat/option-table.js';
import { flowJsonLine } from './conntrack-json.js';
import { formatFlowTable } from './conntrack-table.js';
import { CliUsageError, isSubcommand, printHelp, type CliCommand, type CliIo } from './command.js';
import { runEvents, runExpect } from './conntrack-events.js';
import { openConntrack, type ConntrackRunOptions } from './conntrack-compat/open-table.js';
import { runConntrackCompat } from './conntrack-compat/run.js';

export const HELP = `Usage: portcullis conntrack <subcommand> [options]

Subcommands:
  list     list entries (all, or those matching the filters)
  get      show one entry, identified by its original tuple
  create   create an entry (needs the original tuple and -t)
  update   change the mark, labels, timeout, status or TCP state of one entry
  delete   delete one entry, or every entry matching filters (--all-matching)
  flush    delete every entry (of one family, or with a mark)
  events   follow new/update/destroy events (until Ctrl-C or --count N)
           -e, --event new,update,destroy   which events; list filters apply too
  expect list   the expectation table (-f ipv4|ipv6)
  stats    per-CPU connection tracking counters
  count    number of entries in the table (and the table's maximum)

Filters (list, delete --all-matching) and key fields (get, update, delete):
  -p, --proto NAME|NUM     tcp udp udplite icmp icmpv6 sctp dccp gre, or 0..255
  -s, --src ADDR           original source address      (alias --orig-src)
  -d, --dst ADDR           original destination address (alias --orig-dst)
  -r, --reply-src ADDR     reply source address (filters, create)
  -q, --reply-dst ADDR     reply destination address (filters, create)
      --sport N, --dport N          original ports (need -p with ports)
      --reply-sport N, --reply-dport N   reply ports (filters, create)
      --icmp-type N, --icmp-code N, --icmp-id N   ICMP/ICMPv6 fields (need -p icmp|icmpv6)
  -f, --family ipv4|ipv6   one address family
  -m, --mark V[/M]         entries with (mark & M) == V; V and M decimal or 0x-hex
  -w, --zone N             conntrack zone (0..65535); part of the key of zoned entries
  -u, --status FLAG[,FLAG] entries with all these status flags (ASSURED, SEEN_REPLY, ...)
      --state STATE        protocol state (TCP by default; SCTP/DCCP with -p sctp|dccp)
  -l, --label N[,N]        entries with all these connlabel bits (0..127)
  get, update and delete need -p, -s, -d and both ports (or ICMP type, code and id).

create:  -p -s -d --sport --dport (or ICMP fields) -t SECONDS
         [--reply-src --reply-dst --reply-sport --reply-dport] (default: the inverse)
         [--mark V] [--label N[,N]] [--zone N] [--status FLAG[,FLAG]] [--state STATE]
update:  key fields, then any of: --mark V[/M] (new = (old & ~M) ^ V), --timeout N,
         --label N[,N] (exactly these), --label-add N[,N], --label-del N[,N],
         --status FLAG[,FLAG] (adds these flags), --state TCPSTATE
delete:  key fields; or --all-matching with filters (prints how many were deleted)
flush:   [-f ipv4|ipv6] [--mark V[/M]]

Options:
  --netns NAME   act inside the network namespace NAME (ip netns) or a netns path
  --json         one JSON object per line (schema: docs/conntrack-json.md)
  -h, --help     show this help

Exit status: 0 on success, 1 on kernel errors (and when get/update/delete find
no entry), 2 on bad arguments.
`;

function statsTable(rows: CpuStats[]): string {
  const keys = [
    'found',
    'invalid',
    'insert',
    'insertFailed',
    'drop',
    'earlyDrop',
    'error',
    'searchRestart',
    'clashResolve',
    'chainTooLong',
  ] as const;
  return (
    rows
      .map(
        (r) =>
          `cpu=${String(r.cpu).padEnd(4)}` +
          keys
            .filter((k) => r[k] !== undefined)
            .map((k) => ` ${k}=${r[k]}`)
            .join(''),
      )
      .join('\n') + '\n'
  );
}

async function withConntrack<T>(
  common: CommonOptions,
  seams: ConntrackRunOptions,
  fn: (ct: Conntrack) => Promise<T>,
): Promise<T> {
  const ct = openConntrack(common.netns, seams);
  try {
    return await fn(ct);
  } catch (error) {
    // The library's own argument checks are usage errors too.
    if (error instanceof ConntrackArgumentError) throw new CliUsageError(error.message);
    throw error;
  } finally {
    ct.close();
  }
}

const LABELS_HINT =
  'labels are stored only when something in the network namespace uses connlabel, ' +
  'e.g. iptables -A OUTPUT -m connlabel --label 0';

/** ENOENT from get/update/delete: the entry does not exist. */
function isMissing(error: unknown): boolean {
  return error instanceof NetlinkError && error.code === 'ENOENT';
}

function printFlows(flows: Flow[], common: CommonOptions, io: CliIo): void {
  if (common.json) for (const f of flows) io.stdout(flowJsonLine(f));
  else io.stdout(formatFlowTable(flows));
}

type Args<S extends ConntrackCommandArgs['sub']> = Extract<ConntrackCommandArgs, { sub: S }>;

async function run(
  sub: string,
  argv: string[],
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  if (sub === 'events') return runEvents(argv, io);
  if (sub === 'expect') return runExpect(argv, io);
  const args = parseConntrackArgs(sub, argv);
  switch (args.sub) {
    case 'stats':
      return runStats(args.common, io, seams);
    case 'count':
      return runCount(args.common, io, seams);
    case 'list':
      return runList(args, io, seams);
    case 'get':
      return runGet(args, io, seams);
    case 'create':
      return runCreate(args, io, seams);
    case 'update':
    case 'delete':
      return runChange(args, io, seams);
    case 'delete-matching':
      return runDeleteMatching(args, io, seams);
    case 'flush':
      return runFlush(args, io, seams);
  }
}

async function runStats(
  common: CommonOptions,
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  const rows = await withConntrack(common, seams, (ct) => ct.stats());
  if (common.json) {
    for (const r of rows)
      io.stdout(
        JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' ? String(v) : v)) + '\n',
      );
  } else io.stdout(statsTable(rows));
  return 0;
}

async function runCount(
  common: CommonOptions,
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  const g = await withConntrack(common, seams, (ct) => ct.globalStats());
  if (common.json) {
    io.stdout(
      JSON.stringify({
        entries: String(g.entries),
        maxEntries: g.maxEntries === undefined ? undefined : String(g.maxEntries),
      }) + '\n',
    );
  } else io.stdout(`${g.entries}\n`);
  return 0;
}

async function runList(args: Args<'list'>, io: CliIo, seams: ConntrackRunOptions): Promise<number> {
  const { common } = args;
  if (common.json) {
    // Streamed: a large table never sits in memory at once; lines are
    // written in chunks of about 64 KiB rather than one write each.
    await withConntrack(common, seams, async (ct) => {
      let chunk = '';
      for await (const flow of ct.list(args.filter)) {
        chunk += flowJsonLine(flow);
        if (chunk.length >= 65536) {
          io.stdout(chunk);
          chunk = '';
        }
      }
      if (chunk) io.stdout(chunk);
    });
  } else {
    const flows = await withConntrack(common, seams, (ct) => ct.listAll(args.filter));
    io.stdout(formatFlowTable(flows));
  }
  return 0;
}

async function runGet(args: Args<'get'>, io: CliIo, seams: ConntrackRunOptions): Promise<number> {
  try {
    const flow = await withConntrack(args.common, seams, (ct) => ct.get(args.key));
    printFlows([flow], args.common, io);
    return 0;
  } catch (error) {
    if (!isMissing(error)) throw error;
    io.stderr(`portcullis: conntrack get: no such entry (ENOENT)\n`);
    return 1;
  }
}

async function runCreate(
  args: Args<'create'>,
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  const { spec } = args;
  const stored = await withConntrack(args.common, seams, async (ct) => {
    await ct.create(spec);
    if (spec.labels === undefined || spec.labels.length === 0) return true;
    // The kernel accepts labels at create but drops them when nothing in
    // the namespace uses connlabel: check that they are really there.
    const flow = await ct.get({
      orig: spec.orig,
      ...(spec.zone !== undefined ? { zone: spec.zone } : {}),
    });
    const have = flow.labels ? labelBits(flow.labels) : [];
    return [...spec.labels].every((b) => have.includes(b));
  });
  io.stderr('conntrack: 1 entry created\n');
  if (!stored) {
    io.stderr(
      `portcullis: conntrack create: the kernel did not store the labels; ${LABELS_HINT}\n`,
    );
    return 1;
  }
  return 0;
}

/** update and delete: one entry, named by its key, that may be missing. */
async function runChange(
  args: Args<'update' | 'delete'>,
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  try {
    await withConntrack(args.common, seams, async (ct) => {
      if (args.sub === 'delete') return ct.delete(args.key);
      const spec = { ...args.spec };
      if (spec.status !== undefined) {
        // Flags are added, as conntrack -U -u does: the kernel refuses
        // (EBUSY) a status that would clear SEEN_REPLY or ASSURED.
        const current = await ct.get(args.spec);
        spec.status = (current.status | statusBits(spec.status)) >>> 0;
      }
      return ct.update(spec);
    });
  } catch (error) {
    if (
      args.sub === 'update' &&
      (args.spec.labels !== undefined || args.spec.labelsMask !== undefined) &&
      error instanceof NetlinkError &&
      error.code === 'ENOSPC'
    ) {
      io.stderr(`portcullis: ${error.message} (${LABELS_HINT})\n`);
      return 1;
    }
    if (!isMissing(error)) throw error;
    io.stderr(`portcullis: conntrack ${args.sub}: no such entry (ENOENT)\n`);
    return 1;
  }
  io.stderr(`conntrack: 1 entry ${args.sub === 'update' ? 'updated' : 'deleted'}\n`);
  return 0;
}

async function runDeleteMatching(
  args: Args<'delete-matching'>,
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  const n = await withConntrack(args.common, seams, (ct) => ct.deleteWhere(args.filter));
  io.stdout(
    args.common.json
      ? JSON.stringify({ deleted: n }) + '\n'
      : `${n} ${n === 1 ? 'entry' : 'entries'} deleted\n`,
  );
  return 0;
}

async function runFlush(
  args: Args<'flush'>,
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  await withConntrack(args.common, seams, (ct) => ct.flush(args.options));
  const which = [
    args.options.family ? `${args.options.family} ` : '',
    args.options.mark !== undefined ? 'marked ' : '',
  ].join('');
  io.stderr(`conntrack: ${which ? `${which}entries flushed` : 'table flushed'}\n`);
  return 0;
}

const NAMED = new Set<string>([...SUBCOMMANDS, 'events', 'expect']);

/** `portcullis conntrack ARGV`, with test seams. */
export async function runConntrack(
  argv: string[],
  io: CliIo,
  seams: ConntrackRunOptions = {},
): Promise<number> {
  const [sub, ...rest] = argv;
  if (!isSubcommand(sub)) return printHelp(sub, HELP, io);
  // conntrack-tools syntax (`conntrack -L -p tcp`): docs/conntrack-cli.md. 1.4.7
  // ignores words that are not options, so scripts that build `conntrack
  // conntrack -L` work there: a first word that is no subcommand, followed by
  // a conntrack-tools command, is such a word.
  if (sub.startsWith('-') || (!NAMED.has(sub) && rest.some(namesCompatCommand))) {
    return runConntrackCompat(argv, io, seams);
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    io.stdout(HELP);
    return 0;
  }
  return run(sub, rest, io, seams);
}

export const conntrackCommand: CliCommand = {
  name: 'conntrack',
  summary: 'inspect and change the kernel connection tracking table',
  run: (argv, io) => runConntrack(argv, io),
};
