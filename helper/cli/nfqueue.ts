/** `portcullis nfqueue accept|watch|stats`. */
import type { NetlinkTransport } from '../netlink/socket.js';
import type { NfQueueError } from '../nfqueue/errors.js';
import {
  NfQueue,
  type NfQueueCounters,
  type NfQueueOptions,
  type NfQueuePacket,
} from '../nfqueue/queue.js';
import { readQueueStats } from '../nfqueue/stats.js';
import { CliUsageError, isSubcommand, printHelp, type CliCommand, type CliIo } from './command.js';
import { parseNfqueueArgs, type AcceptArgs, type WatchArgs } from './nfqueue-args.js';
import {
  formatQueueStatsTable,
  packetJsonLine,
  packetLine,
  queueStatsJsonLine,
  summarizeQueued,
} from './nfqueue-format.js';

export const HELP = `Usage: portcullis nfqueue <subcommand> [options]

Subcommands:
  accept   bind a queue and accept every packet (a verdict loop for benchmarks)
           --queue N [--batch] [--max-len N] [--count N] [--netns NAME]
  watch    bind a queue, print each packet and give it a verdict
           --queue N [--verdict accept|drop] [--json] [--count N]
           [--fail-open] [--uid-gid] [--netns NAME]
  stats    the bound queues (/proc/net/netfilter/nfnetlink_queue)
           [--json] [--netns NAME]

Options:
  -q, --queue N        the queue number (--queue-num of the NFQUEUE rule), 0..65535
  --batch              accept: coalesce verdicts into batch verdict messages
                       (default: one verdict message per packet)
  --max-len N          accept: the kernel's queue length (default 1024); beyond it
                       packets are dropped
  --verdict V          watch: accept (default) or drop every packet
  --json               one JSON object per line (schema: docs/nfqueue.md)
  --count N            stop after N packets (default: until Ctrl-C / SIGTERM)
  --fail-open          watch: the kernel accepts packets when the queue is full
  --uid-gid            watch: ask for the uid/gid of the sending socket
  --netns NAME         act inside the network namespace NAME (ip netns) or a netns path
  -h, --help           show this help

On exit (--count reached, SIGINT or SIGTERM) waiting packets get the verdict,
the queue is unbound and a summary line goes to stderr.

Exit status: 0 on success, 1 on kernel errors (e.g. the queue is bound by
another process: EPERM), 2 on bad arguments.
`;

/** Test seams: stop without a signal, and a fake kernel instead of a socket. */
export interface NfqueueRunOptions {
  signal?: AbortSignal;
  transport?: NetlinkTransport;
}

/** Prints the first error of each kind and counts the rest (a flood can
 * report ENOBUFS thousands of times). */
function errorReporter(io: CliIo) {
  const counts = new Map<string, number>();
  return {
    listener(error: NfQueueError): void {
      const n = (counts.get(error.code) ?? 0) + 1;
      counts.set(error.code, n);
      if (n === 1) {
        io.stderr(`portcullis: ${error.message} [${error.code}; repeats are counted]\n`);
      }
    },
    summary(): string {
      if (counts.size === 0) return '';
      return ` errors=${[...counts].map(([code, n]) => `${code}:${n}`).join(',')}`;
    },
  };
}

function verdictsGiven(c: NfQueueCounters): number {
  return c.accepted + c.dropped + c.repeated + c.queued + c.stopped;
}

/**
 * Runs a bound queue until `count` packets were handled, SIGINT/SIGTERM or
 * the abort signal; then closes it (waiting packets get the default verdict,
 * the queue is unbound) and prints the summary. `handle` must give the verdict.
 */
function serve(
  q: NfQueue,
  io: CliIo,
  count: number | undefined,
  signal: AbortSignal | undefined,
  handle: (p: NfQueuePacket) => void,
  summary: (errors: string) => string,
): Promise<number> {
  const errors = errorReporter(io);
  return new Promise<number>((resolve) => {
    let handled = 0;
    let stopping = false;
    const stop = (code: number): void => {
      if (stopping) return;
      stopping = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      signal?.removeEventListener('abort', onAbort);
      q.close().then(
        () => {
          io.stderr(summary(errors.summary()));
          resolve(code);
        },
        (error: unknown) => {
          io.stderr(`portcullis: closing queue ${q.queueNumber}: ${(error as Error).message}\n`);
          resolve(1);
        },
      );
    };
    const onSignal = (): void => stop(0);
    const onAbort = (): void => stop(0);
    q.onError((error) => {
      errors.listener(error);
      // The socket cannot be read any more: nothing else will arrive.
      if (error.code === 'SOCKET') stop(1);
    });
    q.onPacket((p) => {
      if (stopping) return; // close() gives it the default verdict
      handle(p);
      handled++;
      if (count !== undefined && handled >= count) stop(0);
    });
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    if (signal?.aborted) stop(0);
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function openOptions(
  args: AcceptArgs | WatchArgs,
  run: NfqueueRunOptions,
): Pick<NfQueueOptions, 'queue' | 'netns' | 'transport'> {
  return {
    queue: args.queue,
    ...(args.netns !== undefined ? { netns: args.netns } : {}),
    ...(run.transport !== undefined ? { transport: run.transport } : {}),
  };
}

const where = (netns: string | undefined) => (netns !== undefined ? ` in netns ${netns}` : '');

async function runAccept(args: AcceptArgs, io: CliIo, run: NfqueueRunOptions): Promise<number> {
  const q = await NfQueue.open({
    ...openOptions(args, run),
    batchVerdicts: args.batch,
    defaultVerdict: 'accept',
    probeConntrackGlue: false,
    ...(args.maxLen !== undefined ? { maxQueueLength: args.maxLen } : {}),
  });
  io.stderr(
    `nfqueue: accepting every packet of queue ${args.queue}${where(args.netns)} ` +
      `(${args.batch ? 'batch verdicts' : 'one verdict per packet'}); Ctrl-C to stop\n`,
  );
  return serve(
    q,
    io,
    args.count,
    run.signal,
    (p) => p.accept(),
    (errors) => {
      const c = q.counters;
      return (
        `nfqueue: queue ${args.queue}: received=${c.received} verdicts=${verdictsGiven(c)} ` +
        `accepted=${c.accepted} messages=${c.verdictMessages} batch_messages=${c.batchMessages} ` +
        `datagrams=${c.datagramsSent} enobufs=${c.enobufs}${errors}\n`
      );
    },
  );
}

async function runWatch(args: WatchArgs, io: CliIo, run: NfqueueRunOptions): Promise<number> {
  const flags: NfQueueOptions['flags'] = {};
  if (args.failOpen) flags.failOpen = true;
  if (args.uidGid) flags.uidGid = true;
  const q = await NfQueue.open({
    ...openOptions(args, run),
    flags,
    // Packets that arrive while the queue closes get the same verdict.
    defaultVerdict: args.verdict,
    probeConntrackGlue: false,
  });
  for (const r of q.flagReport.refused) {
    io.stderr(
      `portcullis: the kernel refused the ${r.flag} flag (${r.code}); continuing without\n`,
    );
  }
  io.stderr(
    `nfqueue: watching queue ${args.queue}${where(args.netns)}, verdict ${args.verdict}; Ctrl-C to stop\n`,
  );
  let shown = 0;
  return serve(
    q,
    io,
    args.count,
    run.signal,
    (p) => {
      // The payload view is valid only now: summarize before anything else.
      const summary = summarizeQueued(p, args.verdict, Date.now());
      if (args.verdict === 'accept') p.accept();
      else p.drop();
      shown++;
      io.stdout(args.json ? packetJsonLine(summary) : packetLine(summary));
    },
    (errors) => {
      const c = q.counters;
      return (
        `nfqueue: queue ${args.queue}: ${shown} packet${shown === 1 ? '' : 's'} shown, ` +
        `received=${c.received} verdicts=${verdictsGiven(c)} accepted=${c.accepted} dropped=${c.dropped}${errors}\n`
      );
    },
  );
}

async function runStats(args: { json: boolean; netns?: string }, io: CliIo): Promise<number> {
  let rows;
  try {
    rows = await readQueueStats(args.netns !== undefined ? { netns: args.netns } : {});
  } catch (error) {
    // readQueueStats refuses names that are not plain `ip netns` names.
    if (error instanceof TypeError) throw new CliUsageError(`--netns: ${error.message}`);
    throw error;
  }
  if (args.json) {
    for (const r of rows) io.stdout(queueStatsJsonLine(r));
  } else {
    io.stdout(formatQueueStatsTable(rows));
    if (rows.length === 0) io.stderr('nfqueue: no queue is bound\n');
  }
  return 0;
}

/** Runs `nfqueue <argv>`; resolves with the exit status. Usage errors are thrown (CliUsageError). */
export async function runNfqueue(
  argv: string[],
  io: CliIo,
  options: NfqueueRunOptions = {},
): Promise<number> {
  const [sub, ...rest] = argv;
  if (!isSubcommand(sub)) return printHelp(sub, HELP, io);
  if (rest.includes('-h') || rest.includes('--help')) {
    io.stdout(HELP);
    return 0;
  }
  const args = parseNfqueueArgs(sub, rest);
  switch (args.sub) {
    case 'accept':
      return runAccept(args, io, options);
    case 'watch':
      return runWatch(args, io, options);
    case 'stats':
      return runStats(args, io);
  }
}

export const nfqueueCommand: CliCommand = {
  name: 'nfqueue',
  summary: 'bind an NFQUEUE queue: accept, watch (print + verdict), stats',
  run: (argv, io) => runNfqueue(argv, io),
};
