/** `portcullis rules list|add|remove|enable|disable|import|export`, over the helper's socket. */
import { readFileSync, writeFileSync } from 'node:fs';
import * as v from 'valibot';
import { RulesDocument } from '../protocol/messages.js';
import {
  Action,
  Direction,
  Duration,
  Protocol,
  RuleId,
  RuleInput,
  RuleMatch,
} from '../protocol/model.js';
import { exportAllRules, importRules, listAllRules } from '../protocol/paging.js';
import { CliUsageError, isSubcommand, printHelp, type CliCommand, type CliIo } from './command.js';
import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  parseCommandArgs,
  stringOption,
  withClient,
  type ParsedArgs,
} from './ipc-connect.js';
import { formatRules } from './ipc-format.js';

const RULES_HELP = `Usage: portcullis rules <subcommand> [options]

Subcommands (all talk to a running helper):
  list                 the rules in precedence order
  add --action allow|deny MATCH... [--drop] [--duration D] [--disabled] [--note TEXT]
                       a deny refuses the connection (the program fails at
                       once); --drop denies silently (it waits for its timeout)
  remove ID
  enable ID
  disable ID
  import FILE [--replace]   add the rules of an export file, skipping duplicates
                       (or replace all rules); all or nothing
  export [FILE]        the persistent rules as a rules file (stdout without FILE)

Match options of add (at least one; all given must match):
  --exe PATH           absolute executable path
  --app-id ID          flatpak/snap app id
  --unit NAME          systemd unit
  --uid N              socket owner's uid
  --host NAME          "example.com" or "*.example.com"
  --address A          address or CIDR ("192.0.2.1", "2001:db8::/32")
  --port N|N-M         destination port or range
  --protocol P         tcp, udp, icmp, icmpv6, sctp, ...
  --direction D        outbound or inbound

  --duration D         forever (default), session, or minutes as N or Nm

Output:
  --json               list/add/enable/disable: one JSON object per line
                       (the Rule schema of docs/protocol.md)

${CONNECTION_HELP}

Exit status: 0 on success, 1 on errors from the helper (e.g. not-found), 2 on bad arguments.
`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  action: { type: 'string' },
  exe: { type: 'string' },
  'app-id': { type: 'string' },
  unit: { type: 'string' },
  uid: { type: 'string' },
  host: { type: 'string' },
  address: { type: 'string' },
  port: { type: 'string' },
  protocol: { type: 'string' },
  direction: { type: 'string' },
  duration: { type: 'string' },
  disabled: { type: 'boolean' },
  drop: { type: 'boolean' },
  note: { type: 'string' },
  replace: { type: 'boolean' },
} as const;

const MATCH_OPTIONS = [
  'exe',
  'app-id',
  'unit',
  'uid',
  'host',
  'address',
  'port',
  'protocol',
  'direction',
] as const;
const ADD_OPTIONS = [...MATCH_OPTIONS, 'action', 'drop', 'duration', 'disabled', 'note'] as const;
const COMMON = ['socket', 'token-file', 'json', 'help'];

/** Which options each subcommand accepts (others are usage errors). */
const ALLOWED: Record<string, { options: readonly string[]; positionals: [number, number] }> = {
  list: { options: COMMON, positionals: [0, 0] },
  add: { options: [...COMMON, ...ADD_OPTIONS], positionals: [0, 0] },
  remove: { options: COMMON, positionals: [1, 1] },
  enable: { options: COMMON, positionals: [1, 1] },
  disable: { options: COMMON, positionals: [1, 1] },
  import: { options: [...COMMON, 'replace'], positionals: [1, 1] },
  export: { options: COMMON, positionals: [0, 1] },
};

function schemaValue<S extends v.GenericSchema>(schema: S, value: unknown, what: string) {
  const r = v.safeParse(schema, value);
  if (!r.success) throw new CliUsageError(`${what}: ${r.issues[0]?.message ?? 'invalid'}`);
  return r.output as v.InferOutput<S>;
}

function integer(text: string, what: string): number {
  if (!/^\d+$/u.test(text)) throw new CliUsageError(`${what}: expected a number, got '${text}'`);
  return Number(text);
}

function parseDuration(text: string): Duration {
  if (text === 'forever' || text === 'session') return { kind: text };
  const m = /^(\d+)m?$/u.exec(text);
  if (!m)
    throw new CliUsageError(`--duration: expected forever, session or N minutes, got '${text}'`);
  return schemaValue(Duration, { kind: 'minutes', minutes: Number(m[1]) }, '--duration');
}

/** The RuleInput of `rules add`'s options. */
function ruleInputFromArgs(args: ParsedArgs): RuleInput {
  const s = (name: string) => stringOption(args, name);
  const action = s('action');
  if (action === undefined) throw new CliUsageError('rules add: --action allow|deny is required');
  const match: Record<string, unknown> = {};
  if (s('exe') !== undefined) match['exe'] = s('exe');
  if (s('app-id') !== undefined) match['appId'] = s('app-id');
  if (s('unit') !== undefined) match['unit'] = s('unit');
  if (s('uid') !== undefined) match['uid'] = integer(s('uid')!, '--uid');
  if (s('host') !== undefined) match['host'] = s('host');
  if (s('address') !== undefined) match['address'] = s('address');
  const port = s('port');
  if (port !== undefined) {
    const m = /^(\d+)(?:-(\d+))?$/u.exec(port);
    if (!m) throw new CliUsageError(`--port: expected N or N-M, got '${port}'`);
    match['port'] = { from: Number(m[1]), to: Number(m[2] ?? m[1]) };
  }
  if (s('protocol') !== undefined)
    match['protocol'] = schemaValue(Protocol, s('protocol'), '--protocol');
  if (s('direction') !== undefined) {
    match['direction'] = schemaValue(Direction, s('direction'), '--direction');
  }
  if (Object.keys(match).length === 0) {
    throw new CliUsageError('rules add: give at least one match option (--exe, --host, ...)');
  }
  const note = s('note');
  const drop = args.values['drop'] === true;
  if (drop && action !== 'deny') throw new CliUsageError('rules add: --drop needs --action deny');
  return schemaValue(
    RuleInput,
    {
      enabled: args.values['disabled'] !== true,
      action: schemaValue(Action, action, '--action'),
      ...(drop ? { denyWith: 'drop' } : {}),
      match: schemaValue(RuleMatch, match, 'match'),
      duration: parseDuration(s('duration') ?? 'forever'),
      ...(note !== undefined ? { note } : {}),
    },
    'rule',
  );
}

/** A rules file: an export document, or a bare array of rules. */
function readRulesFile(path: string): RuleInput[] {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
  // Either shape, checked on its own so that the error names the bad field.
  const doc = Array.isArray(value)
    ? v.safeParse(v.array(RuleInput), value)
    : v.safeParse(RulesDocument, value);
  if (!doc.success) {
    const issue = doc.issues[0];
    const where = issue ? v.getDotPath(issue) : null;
    // Name a bad rule by its position in the file, as the helper does.
    const index = where ? /^(?:rules\.)?(\d+)(?:\.|$)/u.exec(where)?.[1] : undefined;
    const rule = index !== undefined ? `rule ${Number(index) + 1}, ` : '';
    throw new Error(
      `${path}: not a rules file${where ? ` (${rule}at ${where}: ${issue!.message})` : ''}`,
    );
  }
  return Array.isArray(doc.output) ? doc.output : doc.output.rules;
}

function ruleId(text: string): string {
  return schemaValue(RuleId, text, 'rule id');
}

export const rulesCommand: CliCommand = {
  name: 'rules',
  summary: "list, add, remove, enable, disable, import or export the helper's rules",
  async run(argv: string[], io: CliIo): Promise<number> {
    const [sub, ...rest] = argv;
    if (!isSubcommand(sub, ['help'])) return printHelp(sub, RULES_HELP, io);
    const allowed = ALLOWED[sub];
    if (!allowed) throw new CliUsageError(`unknown rules subcommand '${sub}'`);
    const args = parseCommandArgs(rest, OPTIONS);
    if (args.values['help']) {
      io.stdout(RULES_HELP);
      return 0;
    }
    for (const name of Object.keys(args.values)) {
      if (!allowed.options.includes(name)) {
        throw new CliUsageError(`rules ${sub}: --${name} does not apply`);
      }
    }
    const [min, max] = allowed.positionals;
    if (args.positionals.length < min || args.positionals.length > max) {
      throw new CliUsageError(
        `rules ${sub}: expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${args.positionals.length}`,
      );
    }
    const json = args.values['json'] === true;
    const [arg] = args.positionals;
    // Check everything that needs no helper before connecting.
    const input = sub === 'add' ? ruleInputFromArgs(args) : undefined;
    const id = sub === 'remove' || sub === 'enable' || sub === 'disable' ? ruleId(arg!) : undefined;
    const imported = sub === 'import' ? readRulesFile(arg!) : undefined;

    return withClient(args, async (client) => {
      switch (sub) {
        case 'list': {
          const rules = await listAllRules(client);
          if (json) for (const r of rules) io.stdout(JSON.stringify(r) + '\n');
          else if (rules.length === 0) io.stdout('no rules\n');
          else io.stdout(formatRules(rules));
          return 0;
        }
        case 'add': {
          const rule = await client.call('rules.add', input!);
          io.stdout(json ? JSON.stringify(rule) + '\n' : formatRules([rule]));
          return 0;
        }
        case 'remove':
          await client.call('rules.remove', { id: id! });
          io.stderr(`removed rule ${id}\n`);
          return 0;
        case 'enable':
        case 'disable': {
          const rule = await client.call('rules.setEnabled', {
            id: id!,
            enabled: sub === 'enable',
          });
          io.stdout(json ? JSON.stringify(rule) + '\n' : formatRules([rule]));
          return 0;
        }
        case 'import': {
          const mode = args.values['replace'] === true ? 'replace' : 'merge';
          const r = await importRules(client, imported!, mode);
          io.stderr(
            `imported ${r.added} rule(s), skipped ${r.skipped} duplicate(s)${mode === 'replace' ? `, removed ${r.removed}` : ''}\n`,
          );
          return 0;
        }
        default: {
          const doc = await exportAllRules(client);
          const text = JSON.stringify(doc, null, 2) + '\n';
          if (arg === undefined) io.stdout(text);
          else {
            writeFileSync(arg, text, { mode: 0o600 });
            io.stderr(`exported ${doc.rules.length} rule(s) to ${arg}\n`);
          }
          return 0;
        }
      }
    });
  },
};
