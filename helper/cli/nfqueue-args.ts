/**
 * Argument parsing for `portcullis nfqueue <subcommand>`. Pure (no kernel
 * access), so every rule here is unit-tested; every mistake is a
 * CliUsageError (exit status 2).
 */
import { CliUsageError, optionTokens } from './command.js';
import { parseUnsigned } from './conntrack-values.js';

export type WatchVerdict = 'accept' | 'drop';

export interface AcceptArgs {
  sub: 'accept';
  queue: number;
  /** Coalesce verdicts into NFQNL_MSG_VERDICT_BATCH messages. */
  batch: boolean;
  netns?: string;
  /** NFQA_CFG_QUEUE_MAXLEN; the kernel's default (1024) when absent. */
  maxLen?: number;
  /** Stop after this many packets. */
  count?: number;
}

export interface WatchArgs {
  sub: 'watch';
  queue: number;
  verdict: WatchVerdict;
  json: boolean;
  netns?: string;
  count?: number;
  failOpen: boolean;
  uidGid: boolean;
}

export interface StatsArgs {
  sub: 'stats';
  json: boolean;
  netns?: string;
}

export type NfqueueArgs = AcceptArgs | WatchArgs | StatsArgs;

const NFQUEUE_SUBCOMMANDS = ['accept', 'watch', 'stats'] as const;
export type NfqueueSubcommand = (typeof NFQUEUE_SUBCOMMANDS)[number];

type OptionName =
  'queue' | 'batch' | 'netns' | 'max-len' | 'count' | 'verdict' | 'json' | 'fail-open' | 'uid-gid';

const OPTIONS: Record<OptionName, { type: 'string' | 'boolean'; short?: string }> = {
  queue: { type: 'string', short: 'q' },
  batch: { type: 'boolean' },
  netns: { type: 'string' },
  'max-len': { type: 'string' },
  count: { type: 'string' },
  verdict: { type: 'string' },
  json: { type: 'boolean' },
  'fail-open': { type: 'boolean' },
  'uid-gid': { type: 'boolean' },
};

/** Which options each subcommand accepts. */
const ALLOWED: Record<NfqueueSubcommand, readonly OptionName[]> = {
  accept: ['queue', 'batch', 'netns', 'max-len', 'count'],
  watch: ['queue', 'verdict', 'json', 'netns', 'count', 'fail-open', 'uid-gid'],
  stats: ['netns', 'json'],
};

function tokenize(sub: NfqueueSubcommand, argv: string[]): Map<OptionName, string> {
  const tokens = optionTokens(argv, OPTIONS);
  const allowed = ALLOWED[sub];
  const values = new Map<OptionName, string>();
  for (const token of tokens) {
    const name = token.name as OptionName;
    if (!allowed.includes(name)) {
      throw new CliUsageError(
        `option ${token.rawName} is not valid with 'nfqueue ${sub}' (valid: ${allowed.map((o) => `--${o}`).join(' ')})`,
      );
    }
    if (values.has(name)) throw new CliUsageError(`option ${token.rawName} given more than once`);
    const value = token.value ?? '';
    if (OPTIONS[name].type === 'string' && value.trim().length === 0) {
      throw new CliUsageError(`option ${token.rawName} needs a value`);
    }
    values.set(name, value);
  }
  return values;
}

/** A queue number 0..65535 (decimal or 0x-hex). */
function parseQueueNumber(text: string): number {
  return parseUnsigned(text, 0xffff, '--queue');
}

/** A positive integer (decimal or 0x-hex) up to `max`. */
function parsePositive(text: string, max: number, what: string): number {
  const n = parseUnsigned(text, max, what);
  if (n < 1) throw new CliUsageError(`${what}: must be at least 1 (got ${text})`);
  return n;
}

function parseVerdict(text: string): WatchVerdict {
  const v = text.trim().toLowerCase();
  if (v === 'accept' || v === 'drop') return v;
  throw new CliUsageError(`--verdict: unknown verdict '${text}' (accept or drop)`);
}

/** Parses the arguments after `nfqueue <sub>`. */
export function parseNfqueueArgs(sub: string, argv: string[]): NfqueueArgs {
  if (!(NFQUEUE_SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new CliUsageError(`unknown nfqueue subcommand '${sub}' (accept, watch, stats)`);
  }
  const s = sub as NfqueueSubcommand;
  const values = tokenize(s, argv);
  const netns = values.get('netns');
  const common = netns !== undefined ? { netns } : {};
  if (s === 'stats') return { sub: 'stats', json: values.has('json'), ...common };

  const queueText = values.get('queue');
  if (queueText === undefined) {
    throw new CliUsageError(`nfqueue ${s} needs --queue N (the --queue-num of the NFQUEUE rule)`);
  }
  const queue = parseQueueNumber(queueText);
  const countText = values.get('count');
  const count =
    countText === undefined ? {} : { count: parsePositive(countText, 2 ** 53 - 1, '--count') };
  if (s === 'accept') {
    const maxLenText = values.get('max-len');
    return {
      sub: 'accept',
      queue,
      batch: values.has('batch'),
      ...common,
      ...(maxLenText !== undefined
        ? { maxLen: parsePositive(maxLenText, 0xffffffff, '--max-len') }
        : {}),
      ...count,
    };
  }
  const verdictText = values.get('verdict');
  return {
    sub: 'watch',
    queue,
    verdict: verdictText === undefined ? 'accept' : parseVerdict(verdictText),
    json: values.has('json'),
    ...common,
    ...count,
    failOpen: values.has('fail-open'),
    uidGid: values.has('uid-gid'),
  };
}
