import { hex, type ResolvedConfig } from './config.js';
import { FirewallError } from './errors.js';
import type { CommandRunner } from './exec.js';

export type IpFamily = 'ipv4' | 'ipv6';
export type IptablesVariant = 'nft' | 'legacy';

/** Every chain Portcullis creates starts with this; anything else is never touched. */
export const CHAIN_PREFIX = 'PORTCULLIS';
export const OUT_CHAIN = 'PORTCULLIS-OUT';
export const IN_CHAIN = 'PORTCULLIS-IN';

/** One rule as iptables argv, without the `-A CHAIN` (the chain is separate). */
export interface RuleSpec {
  chain: string;
  args: string[];
}

/** Where a Portcullis chain is jumped to from: built-in chain and target. */
export interface JumpSpec {
  from: 'OUTPUT' | 'INPUT';
  to: string;
}

/** The wanted state of the filter table for one family. */
export interface WantedState {
  chains: string[];
  rules: RuleSpec[];
  jumps: JumpSpec[];
}

export function binaries(
  family: IpFamily,
  variant: IptablesVariant,
): { iptables: string; restore: string } {
  const base = family === 'ipv4' ? 'iptables' : 'ip6tables';
  return { iptables: `${base}-${variant}`, restore: `${base}-${variant}-restore` };
}

function markMatch(module: 'mark' | 'connmark', value: number, mask: number): string[] {
  return ['-m', module, '--mark', mask === 0xffffffff ? hex(value) : `${hex(value)}/${hex(mask)}`];
}

/**
 * The rules that deny what `match` selects. Outbound with denyAction 'reject': TCP gets
 * a reset (connect() fails with ECONNREFUSED), everything else ICMP administratively
 * prohibited (a connected UDP socket's next call fails with EHOSTUNREACH; IPv6: EACCES),
 * as OpenSnitch does. Inbound denials are dropped, so a scan learns nothing.
 */
function denyRules(
  family: IpFamily,
  direction: 'out' | 'in',
  config: ResolvedConfig,
  match: string[],
): string[][] {
  if (direction === 'in' || config.denyAction === 'drop') return [[...match, '-j', 'DROP']];
  const icmp = family === 'ipv4' ? 'icmp-admin-prohibited' : 'icmp6-adm-prohibited';
  return [
    ['-p', 'tcp', ...match, '-j', 'REJECT', '--reject-with', 'tcp-reset'],
    [...match, '-j', 'REJECT', '--reject-with', icmp],
  ];
}

function queueTarget(config: ResolvedConfig): string[] {
  const { from, to } = config.queue;
  return [
    '-j',
    'NFQUEUE',
    ...(from === to ? ['--queue-num', String(from)] : ['--queue-balance', `${from}:${to}`]),
    ...(config.bypass ? ['--queue-bypass'] : []),
  ];
}

/**
 * The rules of one Portcullis chain, in order, exactly as `iptables -S` prints them
 * (so that the installed state can be compared textually):
 *
 * 1. loopback is never queued;
 * 2. the helper's own traffic (exempt mark, owner uid; output only) is never queued;
 * 3. a flow whose connmark says accepted is accepted, denied is rejected (outbound;
 *    see denyRules), dropped is dropped;
 * 4. a packet whose mark says accepted (a verdict `repeat({ mark })` runs the chain again)
 *    saves that into the connmark, then is accepted; denied and dropped as in 3;
 * 5. new connections are queued: TCP only on SYN, other protocols on their first packet.
 */
export function chainRules(
  family: IpFamily,
  direction: 'out' | 'in',
  config: ResolvedConfig,
): RuleSpec[] {
  const chain = direction === 'out' ? OUT_CHAIN : IN_CHAIN;
  const { mask, accepted, denied, dropped, exempt } = config.marks;
  const rules: string[][] = [[direction === 'out' ? '-o' : '-i', 'lo', '-j', 'RETURN']];
  if (config.exemptMark) rules.push([...markMatch('mark', exempt, exempt), '-j', 'RETURN']);
  if (direction === 'out' && config.exemptUid !== undefined) {
    rules.push(['-m', 'owner', '--uid-owner', String(config.exemptUid), '-j', 'RETURN']);
  }
  rules.push(
    [...markMatch('connmark', accepted, mask), '-j', 'ACCEPT'],
    ...denyRules(family, direction, config, markMatch('connmark', denied, mask)),
    [...markMatch('connmark', dropped, mask), '-j', 'DROP'],
    [
      ...markMatch('mark', accepted, mask),
      ...['-j', 'CONNMARK', '--save-mark', '--nfmask', hex(mask), '--ctmask', hex(mask)],
    ],
    [...markMatch('mark', accepted, mask), '-j', 'ACCEPT'],
    ...denyRules(family, direction, config, markMatch('mark', denied, mask)),
    [...markMatch('mark', dropped, mask), '-j', 'DROP'],
    [
      ...['-p', 'tcp', '-m', 'tcp', '--tcp-flags', 'FIN,SYN,RST,ACK', 'SYN'],
      ...['-m', 'conntrack', '--ctstate', 'NEW'],
      ...queueTarget(config),
    ],
    ['!', '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'NEW', ...queueTarget(config)],
  );
  return rules.map((args) => ({ chain, args }));
}

/**
 * The DNS logging rules that open a Portcullis chain (empty without `dnsLog`). NFLOG
 * does not end the chain, so they come first, before the loopback RETURN. Replies only
 * (`--ctstate ESTABLISHED --ctdir REPLY`): an unsolicited packet from port 53 cannot
 * plant names. A response a local resolver sends a local program crosses OUTPUT and
 * then INPUT, both on lo: it is logged on output (`-o lo`), and input logs only what
 * comes from the network (`! -i lo`), so each response is logged once.
 */
export function dnsLogRules(
  _family: IpFamily,
  direction: 'out' | 'in',
  config: ResolvedConfig,
): RuleSpec[] {
  const dns = config.dnsLog;
  if (!dns) return [];
  const chain = direction === 'out' ? OUT_CHAIN : IN_CHAIN;
  const iface = direction === 'out' ? ['-o', 'lo'] : ['!', '-i', 'lo'];
  // iptables -S leaves out group 0, the target's default.
  const target = [
    ...['-j', 'NFLOG', '--nflog-prefix', dns.prefix],
    ...(dns.group === 0 ? [] : ['--nflog-group', String(dns.group)]),
  ];
  const reply = ['-m', 'conntrack', '--ctstate', 'ESTABLISHED', '--ctdir', 'REPLY'];
  const rules = (['udp', 'tcp'] as const).map((p) => [
    ...[...iface, '-p', p, '-m', p, '--sport', '53'],
    ...reply,
    ...target,
  ]);
  if (dns.mdns && direction === 'in') {
    rules.push([...iface, '-p', 'udp', '-m', 'udp', '--sport', '5353', ...target]);
  }
  return rules.map((args) => ({ chain, args }));
}

/** Everything Portcullis wants in the filter table of one family. The inbound chain
 * exists for inbound queueing, for DNS logging, or both. */
export function wantedState(family: IpFamily, config: ResolvedConfig): WantedState {
  const state: WantedState = {
    chains: [OUT_CHAIN],
    rules: [...dnsLogRules(family, 'out', config), ...chainRules(family, 'out', config)],
    jumps: [{ from: 'OUTPUT', to: OUT_CHAIN }],
  };
  if (config.inbound || config.dnsLog) {
    state.chains.push(IN_CHAIN);
    state.rules.push(...dnsLogRules(family, 'in', config));
    if (config.inbound) state.rules.push(...chainRules(family, 'in', config));
    state.jumps.push({ from: 'INPUT', to: IN_CHAIN });
  }
  return state;
}

/** The argv (after the binary) that appends a rule: `-A CHAIN ...args`. */
export function appendArgv(rule: RuleSpec): string[] {
  return ['-A', rule.chain, ...rule.args];
}

/** What of Portcullis is in a filter table now (parsed from `iptables -S`). */
export interface CurrentState {
  /** Portcullis chains that exist, in listing order. */
  chains: string[];
  /** Rules of the Portcullis chains, as `-A ...` lines. */
  rules: string[];
  /** Every rule outside Portcullis chains that jumps to a Portcullis chain, in order, per chain. */
  jumps: { chain: string; index: number; target: string; line: string }[];
  /** The -S lines of built-in chains per chain (to know positions). */
}

const isOurs = (chain: string): boolean =>
  chain === CHAIN_PREFIX || chain.startsWith(`${CHAIN_PREFIX}-`);

/** Parses `iptables -t filter -S` output. */
export function parseListing(text: string): CurrentState {
  const state: CurrentState = { chains: [], rules: [], jumps: [] };
  const positions = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const tokens = line.split(/\s+/);
    if (tokens[0] === '-N' && tokens[1] !== undefined && isOurs(tokens[1])) {
      state.chains.push(tokens[1]);
    } else if (tokens[0] === '-A' && tokens[1] !== undefined) {
      const chain = tokens[1];
      const index = positions.get(chain) ?? 0;
      positions.set(chain, index + 1);
      if (isOurs(chain)) {
        state.rules.push(line);
        continue;
      }
      const j = tokens.lastIndexOf('-j');
      const target = j >= 0 ? tokens[j + 1] : undefined;
      const g = tokens.lastIndexOf('-g');
      const gotoTarget = g >= 0 ? tokens[g + 1] : undefined;
      const t = target !== undefined && isOurs(target) ? target : gotoTarget;
      if (t !== undefined && isOurs(t)) state.jumps.push({ chain, index, target: t, line });
    }
  }
  return state;
}

/** The exact `-S` line of a wanted rule or jump. */
export function ruleLine(rule: RuleSpec): string {
  return appendArgv(rule).join(' ');
}

export function jumpLine(jump: JumpSpec): string {
  return `-A ${jump.from} -j ${jump.to}`;
}

/**
 * The `iptables-restore --noflush` script that turns `current` into `wanted` in one
 * transaction (empty string when nothing changes), and what it does, for logs.
 * Wanted chains are declared (created, or flushed) and refilled only when their rules
 * differ; every jump to a Portcullis chain that is not the single wanted jump at the top of
 * OUTPUT/INPUT is deleted; Portcullis chains that are not wanted are flushed and deleted.
 */
export function planRestore(
  current: CurrentState,
  wanted: WantedState,
): { script: string; actions: string[] } {
  const lines: string[] = [];
  const actions: string[] = [];
  for (const chain of wanted.chains) {
    const have = current.rules.filter((l) => l.split(/\s+/)[1] === chain);
    const want = wanted.rules.filter((r) => r.chain === chain).map(ruleLine);
    const exists = current.chains.includes(chain);
    if (exists && have.length === want.length && have.every((l, i) => l === want[i])) continue;
    lines.push(`:${chain} - [0:0]`, ...want);
    actions.push(exists ? `rewrote chain ${chain}` : `created chain ${chain}`);
  }
  const deletes: string[] = [];
  const inserts: string[] = [];
  for (const from of ['OUTPUT', 'INPUT'] as const) {
    const want = wanted.jumps.find((j) => j.from === from);
    const have = current.jumps.filter((j) => j.chain === from);
    const good =
      want !== undefined &&
      have.length === 1 &&
      have[0]!.index === 0 &&
      have[0]!.line === jumpLine(want);
    if (good || (want === undefined && have.length === 0)) continue;
    for (const j of have) {
      deletes.push(`-D${j.line.slice(2)}`);
      actions.push(`deleted jump ${j.line}`);
    }
    if (want) {
      inserts.push(`-I ${from} 1 -j ${want.to}`);
      actions.push(`inserted jump ${from} -> ${want.to}`);
    }
  }
  for (const j of current.jumps) {
    if (j.chain === 'OUTPUT' || j.chain === 'INPUT') continue;
    if (isOurs(j.chain)) continue;
    deletes.push(`-D${j.line.slice(2)}`);
    actions.push(`deleted jump ${j.line}`);
  }
  const drops: string[] = [];
  for (const chain of current.chains) {
    if (wanted.chains.includes(chain)) continue;
    drops.push(`-F ${chain}`, `-X ${chain}`);
    actions.push(`deleted chain ${chain}`);
  }
  lines.push(...deletes, ...inserts, ...drops);
  if (lines.length === 0) return { script: '', actions };
  return { script: `*filter\n${lines.join('\n')}\nCOMMIT\n`, actions };
}

/** Reads and changes the Portcullis part of one family's filter table with one iptables variant. */
export class IptablesTable {
  constructor(
    readonly family: IpFamily,
    readonly variant: IptablesVariant,
    private readonly run: CommandRunner,
  ) {}

  get label(): string {
    return `iptables-${this.variant} ${this.family}`;
  }

  async read(): Promise<CurrentState> {
    const { iptables } = binaries(this.family, this.variant);
    const { stdout } = await this.run([iptables, '-w', '-t', 'filter', '-S']);
    return parseListing(stdout);
  }

  /** Brings the table to `wanted`; returns what changed. */
  async apply(wanted: WantedState): Promise<string[]> {
    const current = await this.read();
    const { script, actions } = planRestore(current, wanted);
    if (script === '') return [];
    const { restore } = binaries(this.family, this.variant);
    try {
      await this.run([restore, '-w', '--noflush'], script);
    } catch (error) {
      if (error instanceof FirewallError) throw error;
      throw new FirewallError('COMMAND_FAILED', `${restore} failed`, { cause: error });
    }
    return actions.map((a) => `${this.label}: ${a}`);
  }
}
