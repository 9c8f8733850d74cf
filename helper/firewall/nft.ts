import { hex, type ResolvedConfig } from './config.js';
import type { CommandRunner } from './exec.js';

export const NFT_TABLE = 'portcullis';

/** As denyRules for iptables: outbound TCP gets a reset, the rest ICMP administratively
 * prohibited (`icmpx` picks ICMP or ICMPv6 by family); inbound is dropped. */
function denyRules(direction: 'out' | 'in', config: ResolvedConfig, match: string): string[] {
  if (direction === 'in' || config.denyAction === 'drop') return [`${match} drop`];
  return [
    `meta l4proto tcp ${match} reject with tcp reset`,
    `${match} reject with icmpx admin-prohibited`,
  ];
}

function queueStatement(config: ResolvedConfig): string {
  const { from, to } = config.queue;
  const target = from === to ? String(from) : `${from}-${to}`;
  return config.bypass ? `queue flags bypass to ${target}` : `queue to ${target}`;
}

/** The rules of one base chain of `table inet portcullis` (same order as the iptables chain). */
export function nftChainRules(direction: 'out' | 'in', config: ResolvedConfig): string[] {
  const { mask, accepted, denied, dropped, exempt } = config.marks;
  const keep = hex((~mask & 0xffffffff) >>> 0);
  const rules: string[] = [direction === 'out' ? 'oifname "lo" return' : 'iifname "lo" return'];
  if (!config.ipv6) rules.push('meta nfproto ipv6 return');
  if (config.exemptMark) rules.push(`meta mark & ${hex(exempt)} == ${hex(exempt)} return`);
  if (direction === 'out' && config.exemptUid !== undefined) {
    rules.push(`meta skuid ${config.exemptUid} return`);
  }
  rules.push(
    `ct mark & ${hex(mask)} == ${hex(accepted)} accept`,
    ...denyRules(direction, config, `ct mark & ${hex(mask)} == ${hex(denied)}`),
    `ct mark & ${hex(mask)} == ${hex(dropped)} drop`,
    `meta mark & ${hex(mask)} == ${hex(accepted)} ct mark set ct mark & ${keep} | ${hex(accepted)} accept`,
    ...denyRules(direction, config, `meta mark & ${hex(mask)} == ${hex(denied)}`),
    `meta mark & ${hex(mask)} == ${hex(dropped)} drop`,
    `tcp flags & (fin | syn | rst | ack) == syn ct state new ${queueStatement(config)}`,
    `meta l4proto != tcp ct state new ${queueStatement(config)}`,
  );
  return rules;
}

/** The DNS logging rules that open a base chain (as dnsLogRules for iptables). */
export function nftDnsLogRules(direction: 'out' | 'in', config: ResolvedConfig): string[] {
  const dns = config.dnsLog;
  if (!dns) return [];
  const family = config.ipv6 ? '' : 'meta nfproto ipv4 ';
  const iface = direction === 'out' ? 'oifname "lo"' : 'iifname != "lo"';
  const log = `log prefix "${dns.prefix}" group ${dns.group}`;
  const rules = [
    `${family}${iface} meta l4proto { tcp, udp } th sport 53 ct state established ct direction reply ${log}`,
  ];
  if (dns.mdns && direction === 'in') rules.push(`${family}${iface} udp sport 5353 ${log}`);
  return rules;
}

/**
 * The `nft -f` script that installs the table atomically: it declares the table (so the
 * delete cannot fail), deletes it, and creates it anew, all in one transaction.
 */
export function nftInstallScript(config: ResolvedConfig): string {
  const chain = (name: string, hook: string, direction: 'out' | 'in'): string[] => [
    `  chain ${name} {`,
    `    type filter hook ${hook} priority filter; policy accept;`,
    ...nftDnsLogRules(direction, config).map((r) => `    ${r}`),
    ...(direction === 'out' || config.inbound ? nftChainRules(direction, config) : []).map(
      (r) => `    ${r}`,
    ),
    '  }',
  ];
  return [
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    ...chain('output', 'output', 'out'),
    ...(config.inbound || config.dnsLog ? chain('input', 'input', 'in') : []),
    '}',
    '',
  ].join('\n');
}

/** The native nftables implementation: `table inet portcullis`. */
export class NftTable {
  constructor(private readonly run: CommandRunner) {}

  async exists(): Promise<boolean> {
    const { stdout } = await this.run(['nft', 'list', 'tables', 'inet']);
    return stdout.split('\n').some((l) => l.trim() === `table inet ${NFT_TABLE}`);
  }

  async current(): Promise<string | undefined> {
    if (!(await this.exists())) return undefined;
    return (await this.run(['nft', 'list', 'table', 'inet', NFT_TABLE])).stdout;
  }

  async install(config: ResolvedConfig): Promise<string[]> {
    await this.run(['nft', '-f', '-'], nftInstallScript(config));
    return [`nft: installed table inet ${NFT_TABLE}`];
  }

  async remove(): Promise<string[]> {
    if (!(await this.exists())) return [];
    await this.run(['nft', 'delete', 'table', 'inet', NFT_TABLE]);
    return [`nft: deleted table inet ${NFT_TABLE}`];
  }
}
