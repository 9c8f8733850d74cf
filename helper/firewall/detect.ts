import { FirewallError } from './errors.js';
import type { CommandRunner } from './exec.js';
import { binaries, type IpFamily, type IptablesVariant } from './iptables.js';

/** What this machine (and namespace) offers, found by trying, never guessed. */
export interface Detection {
  /** `nft` runs. */
  nft: boolean;
  /** The kernel accepts the native nft `queue` expression; `reason` says why not. */
  nftQueue: { supported: boolean; reason: string };
  /** iptables binaries present, per variant and family. */
  iptables: Record<IptablesVariant, Record<IpFamily, boolean>>;
  /** Legacy (x_tables) tables that exist in the namespace (from /proc/net/ip*_tables_names). */
  legacyTables: Record<IpFamily, string[]>;
}

async function works(run: CommandRunner, argv: string[]): Promise<boolean> {
  try {
    await run(argv);
    return true;
  } catch {
    return false;
  }
}

async function readNames(run: CommandRunner, file: string): Promise<string[]> {
  try {
    const { stdout } = await run(['cat', file]);
    return stdout.split('\n').filter((l) => l.trim() !== '');
  } catch {
    return [];
  }
}

/** The probe batch: one transaction that adds a queue rule in a scratch table and deletes it. */
export function nftQueueProbeScript(): string {
  const t = 'portcullis_probe';
  return [
    `add table inet ${t}`,
    `add chain inet ${t} probe`,
    `add rule inet ${t} probe queue flags bypass to 0`,
    `delete table inet ${t}`,
    '',
  ].join('\n');
}

/**
 * Detects backends by running them (inside the namespace when the runner does). The nft
 * probe adds a rule with `queue` to a scratch table (no hook, so no traffic sees it) and
 * deletes the table in the same transaction: if the kernel lacks the expression the whole
 * batch fails and nothing is left.
 */
export async function detect(run: CommandRunner): Promise<Detection> {
  const nft = await works(run, ['nft', '--version']);
  let nftQueue = { supported: false, reason: 'nft is not installed' };
  if (nft) {
    try {
      await run(['nft', '-f', '-'], nftQueueProbeScript());
      nftQueue = { supported: true, reason: 'the kernel accepted a queue rule' };
    } catch (error) {
      const stderr = error instanceof FirewallError ? (error.details.stderr ?? '') : '';
      const line =
        stderr
          .split('\n')
          .find((l) => l.includes('Error:'))
          ?.replace(/^.*?Error: /, '') ?? stderr.trim();
      nftQueue = {
        supported: false,
        reason: `the kernel refused an nft queue rule (${line || String(error)}): no native nft queue expression (nft_queue)`,
      };
    }
  }
  const iptables = { nft: { ipv4: false, ipv6: false }, legacy: { ipv4: false, ipv6: false } };
  for (const variant of ['nft', 'legacy'] as const) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const b = binaries(family, variant);
      iptables[variant][family] =
        (await works(run, [b.iptables, '-V'])) && (await works(run, [b.restore, '-V']));
    }
  }
  return {
    nft,
    nftQueue,
    iptables,
    legacyTables: {
      ipv4: await readNames(run, '/proc/net/ip_tables_names'),
      ipv6: await readNames(run, '/proc/net/ip6_tables_names'),
    },
  };
}
