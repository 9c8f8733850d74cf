/**
 * The commands of the conntrack tables (-L, -G, -I, -A, -U, -D, -F, -C,
 * -S), each with 1.4.7's output, summary line and exit status; the expect
 * table's are in run-expect.ts.
 */
import type { Conntrack } from '../../conntrack/client.js';
import { STATUS_BITS } from '../../conntrack/constants.js';
import { labelBits } from '../../conntrack/decode.js';
import { flowMatcher } from '../../conntrack/filter.js';
import type { Flow } from '../../conntrack/types.js';
import { NetlinkError } from '../../netlink/errors.js';
import type { CliIo } from '../command.js';
import type { CompatArgs, CompatCommand } from './args.js';
import { completeTuple, createSpec } from './create-spec.js';
import { COMPAT_PREFIX, OperationFailed } from './errors.js';
import { filterInit, listFilter } from './filter.js';
import { counterJsonLine, statsJsonLine } from './format-json.js';
import { formatCompatStats } from './format-text.js';
import { kernelErrorText } from './kernel-error-text.js';
import { openConntrack, type ConntrackRunOptions } from './open-table.js';
import { Output } from './output.js';
import { executeExpect } from './run-expect.js';

/** One command's run: what it reads, where it prints, and the table. */
interface Run {
  a: CompatArgs;
  io: CliIo;
  ct: Conntrack;
  out: Output;
  /** A -R batch: no summaries, and -U / -D that match nothing succeed. */
  batch: boolean;
  /** "N flow entries have been ...", outside a batch. */
  summary(text: string): void;
}

type TableCommand = (run: Run) => Promise<number>;

const list: TableCommand = async ({ a, ct, out, summary }) => {
  if (a.table === 'conntrack') filterInit(a);
  const filter = listFilter(a);
  if (a.table === 'dying' || a.table === 'unconfirmed') filter.table = a.table;
  if (a.options.has('zero')) filter.zeroCounters = true;
  const n = await ct.forEach((f) => out.flow(f), filter);
  out.endXml();
  out.flush();
  summary(`${n} flow entries have been shown.`);
  return 0;
};

const get: TableCommand = async ({ a, ct, out, summary, batch }) => {
  const key =
    a.orig.src !== undefined && a.orig.dst !== undefined
      ? { orig: completeTuple(a.orig, 'src') }
      : { reply: completeTuple({ ...a.reply, proto: a.proto! }, 'reply-src') };
  const flow = await ct.get({
    ...key,
    ...(a.family ? { family: a.family } : {}),
    ...(a.id !== undefined ? { id: a.id } : {}),
  });
  // mnl_nfct_dump_cb() compares what the kernel sent with every option
  // given (-i, -l, the tuples): no match, nothing shown, exit 1.
  if (!flowMatcher(listFilter(a))(flow)) {
    summary('0 flow entries have been shown.');
    return batch ? 0 : 1;
  }
  out.flow(flow);
  out.flush();
  summary('1 flow entries have been shown.');
  return 0;
};

const create: TableCommand = async ({ a, ct, summary }) => {
  await ct.create(createSpec(a));
  summary('1 flow entries have been created.');
  return 0;
};

const add: TableCommand = async ({ a, ct, summary }) => {
  const spec = createSpec(a);
  try {
    await ct.create(spec);
    summary('1 flow entries have been added.');
  } catch (error) {
    // 1.4.7 leaves an existing entry as it is (timeout, status, mark).
    if (!(error instanceof NetlinkError && error.code === 'EEXIST')) throw error;
    summary('0 flow entries have been added.');
  }
  return 0;
};

const ALL_LABELS = new Uint8Array(16).fill(0xff);

/**
 * copy_label() of -U: --label-add sets bits, --label-del clears the named
 * ones (all without names; nothing when the entry has no labels). The new
 * bit list, or undefined when 1.4.7 finds the entry unchanged: it sends a
 * labels mask with --label-add and a named --label-del, which always makes
 * the entry differ, so those count as updates even when no bit changes.
 */
function newLabels(a: CompatArgs, flow: Flow): number[] | undefined {
  const add = a.options.has('label-add');
  if (!add && !a.options.has('label-del')) return undefined;
  if (!add && !flow.labels) return undefined;
  const old = flow.labels ? labelBits(flow.labels) : [];
  const next = new Set(old);
  if (add) for (const b of a.labelModify ?? []) next.add(b);
  else if (a.labelModify === undefined) {
    if (old.length === 0) return undefined;
    next.clear();
  } else for (const b of a.labelModify) next.delete(b);
  return [...next].sort((x, y) => x - y);
}

/** What -U changes in an entry, or undefined when 1.4.7 would leave it as it is. */
function updateOf(a: CompatArgs, flow: Flow) {
  const mark =
    a.mark === undefined ? undefined : (((flow.mark ?? 0) & ~a.mark.mask) ^ a.mark.value) >>> 0;
  const status =
    a.status === undefined ? undefined : (flow.status | a.status | STATUS_BITS.CONFIRMED) >>> 0;
  const labels = newLabels(a, flow);
  const changed =
    labels !== undefined ||
    (mark !== undefined && mark !== (flow.mark ?? 0)) ||
    (a.timeout !== undefined && a.timeout !== flow.timeout) ||
    (status !== undefined && status !== flow.status);
  if (!changed) return undefined;
  return {
    ...(mark !== undefined ? { mark } : {}),
    ...(a.timeout !== undefined ? { timeout: a.timeout } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(labels !== undefined ? { labels, labelsMask: ALL_LABELS } : {}),
  };
}

/** How -U and -D name an entry they found in the dump. */
function entryKey(flow: Flow) {
  return {
    orig: flow.orig,
    family: flow.family,
    ...(flow.zone !== undefined ? { zone: flow.zone } : {}),
  };
}

/** Runs `change`; false when the entry expired meanwhile (skipped, as conntrack-tools does). */
async function unlessExpired(change: () => Promise<void>): Promise<boolean> {
  try {
    await change();
    return true;
  } catch (error) {
    if (!(error instanceof NetlinkError && error.code === 'ENOENT')) throw error;
    return false;
  }
}

const update: TableCommand = async ({ a, ct, out, summary, batch }) => {
  filterInit(a);
  const victims = await ct.listAll(listFilter(a, true));
  let n = 0;
  for (const flow of victims) {
    const change = updateOf(a, flow);
    if (!change) continue;
    const key = entryKey(flow);
    const done = await unlessExpired(async () => {
      await ct.update({ ...key, ...change });
      out.flow(await ct.get(key));
    });
    if (done) n++;
  }
  out.flush();
  summary(`${n} flow entries have been updated.`);
  return n === 0 && !batch ? 1 : 0;
};

const remove: TableCommand = async ({ a, ct, out, summary, batch }) => {
  filterInit(a);
  const victims = await ct.listAll(listFilter(a));
  let n = 0;
  for (const flow of victims) {
    const done = await unlessExpired(async () => {
      await ct.delete({ ...entryKey(flow), ...(flow.id !== undefined ? { id: flow.id } : {}) });
      out.flow(flow, '-D');
    });
    if (done) n++;
  }
  out.flush();
  summary(`${n} flow entries have been deleted.`);
  return n === 0 && !batch ? 1 : 0;
};

const flush: TableCommand = async ({ io, ct }) => {
  // conntrack-tools 1.4.7 empties the whole table, whatever -f says.
  await ct.flush();
  io.stderr(`${COMPAT_PREFIX}connection tracking table has been emptied.\n`);
  return 0;
};

const count: TableCommand = async ({ a, io, ct }) => {
  const g = await ct.globalStats();
  io.stdout(a.json ? counterJsonLine(g.entries, g.maxEntries) : `${g.entries}\n`);
  return 0;
};

const stats: TableCommand = async ({ a, io, ct }) => {
  const rows = await ct.stats();
  if (a.json) {
    for (const r of rows) io.stdout(statsJsonLine(r));
  } else io.stdout(formatCompatStats(rows));
  return 0;
};

const COMMANDS: Partial<Record<CompatCommand, TableCommand>> = {
  L: list,
  G: get,
  I: create,
  A: add,
  U: update,
  D: remove,
  F: flush,
  C: count,
  S: stats,
};

/**
 * Runs one command. In a -R batch (`batch`), as 1.4.7's do_command_ct()
 * without print_stats(): no "N flow entries ..." summaries, and -U / -D
 * that match nothing succeed; -F still reports.
 */
export async function execute(
  a: CompatArgs,
  io: CliIo,
  seams: ConntrackRunOptions,
  batch = false,
): Promise<number> {
  const ct = openConntrack(a.netns, seams);
  const run: Run = {
    a,
    io,
    ct,
    out: new Output(io, a, a.command === 'L' || a.command === 'G'),
    batch,
    summary: (text) => {
      if (!batch) io.stderr(`${COMPAT_PREFIX}${text}\n`);
    },
  };
  try {
    if (a.table === 'expect') return await executeExpect(a, io, ct);
    const command = COMMANDS[a.command];
    return command ? await command(run) : 0;
  } catch (error) {
    if (error instanceof NetlinkError) {
      throw new OperationFailed(kernelErrorText(error, a.command, a.table === 'expect'));
    }
    throw error;
  } finally {
    ct.close();
  }
}
