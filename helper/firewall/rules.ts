import { resolveConfig, type FirewallConfig, type ResolvedConfig } from './config.js';
import { detect, type Detection } from './detect.js';
import { FirewallError } from './errors.js';
import { execFileRunner, inNetns, type CommandRunner } from './exec.js';
import { IptablesTable, wantedState, type IpFamily, type IptablesVariant } from './iptables.js';
import { NftTable, nftInstallScript } from './nft.js';

export type BackendKind = 'nft' | 'iptables-nft' | 'iptables-legacy';

export interface FirewallRulesOptions {
  /** Run every command inside this `ip netns` name (`ip netns exec NAME ...`). */
  netns?: string;
  /** Force a backend; 'auto' (default) picks nft when the kernel has nft queue, else iptables. */
  backend?: BackendKind | 'auto';
  /** Test seam: runs an argv (default: execFile, no shell). */
  runner?: CommandRunner;
  /** Skip detection and use this (tests). */
  detection?: Detection;
}

/** What a call changed (empty when the state was already right). */
export interface ChangeReport {
  backend: BackendKind;
  changed: boolean;
  actions: string[];
}

const FAMILIES: IpFamily[] = ['ipv4', 'ipv6'];

export function chooseBackend(d: Detection, wanted: BackendKind | 'auto' = 'auto'): BackendKind {
  const ok: Record<BackendKind, boolean> = {
    nft: d.nft && d.nftQueue.supported,
    'iptables-nft': d.iptables.nft.ipv4,
    'iptables-legacy': d.iptables.legacy.ipv4,
  };
  if (wanted !== 'auto') {
    if (!ok[wanted]) {
      throw new FirewallError(
        'UNSUPPORTED',
        wanted === 'nft'
          ? `nft backend unavailable: ${d.nftQueue.reason}`
          : `${wanted} is not installed`,
      );
    }
    return wanted;
  }
  for (const k of ['nft', 'iptables-nft', 'iptables-legacy'] as const) if (ok[k]) return k;
  throw new FirewallError('UNSUPPORTED', `no firewall backend: ${d.nftQueue.reason}; no iptables`);
}

/**
 * Installs, removes and reconciles the interception rules of Portcullis (docs/firewall.md).
 * Owns only the `PORTCULLIS*` chains of the filter tables (and the jumps to them) and the
 * nft table `inet portcullis`; nothing else is read for change or written.
 */
export class FirewallRules {
  readonly backend: BackendKind;
  private readonly run: CommandRunner;
  private installed: ResolvedConfig | undefined;
  /** What our last nft install wrote, and how nft listed the table right after. */
  private nftApplied: { script: string; listing: string | undefined } | undefined;

  private constructor(
    readonly detection: Detection,
    readonly options: FirewallRulesOptions,
    run: CommandRunner,
  ) {
    this.run = run;
    this.backend = chooseBackend(detection, options.backend);
  }

  /** Detects what the namespace offers and picks the backend. */
  static async open(options: FirewallRulesOptions = {}): Promise<FirewallRules> {
    const base = options.runner ?? execFileRunner;
    const run: CommandRunner = (argv, input) => base(inNetns(options.netns, argv), input);
    const detection = options.detection ?? (await detect(run));
    return new FirewallRules(detection, options, run);
  }

  /** The config of the last install, resolved (defaults applied). */
  get config(): ResolvedConfig | undefined {
    return this.installed;
  }

  private tables(variant: IptablesVariant): IptablesTable[] {
    return FAMILIES.filter((f) => this.detection.iptables[variant][f]).map(
      (f) => new IptablesTable(f, variant, this.run),
    );
  }

  /** Idempotently makes the rules exactly what `config` says (atomic per table). */
  async install(config: FirewallConfig): Promise<ChangeReport> {
    const resolved = resolveConfig(config);
    const actions: string[] = [];
    if (this.backend === 'nft') {
      // The table is replaced as a whole, so compare first: unchanged since our last
      // install of the same config means nothing to do (a rules watch calls this after
      // every ruleset change, ours included, and must not reinstall forever).
      const table = new NftTable(this.run);
      const script = nftInstallScript(resolved);
      const applied = this.nftApplied;
      if (!applied || applied.script !== script || applied.listing !== (await table.current())) {
        actions.push(...(await table.install(resolved)));
        this.nftApplied = { script, listing: await table.current() };
      }
    } else {
      const variant = this.backend === 'iptables-nft' ? 'nft' : 'legacy';
      for (const table of this.tables(variant)) {
        const want =
          table.family === 'ipv6' && !resolved.ipv6
            ? { chains: [], rules: [], jumps: [] }
            : wantedState(table.family, resolved);
        actions.push(...(await table.apply(want)));
      }
    }
    this.installed = resolved;
    return { backend: this.backend, changed: actions.length > 0, actions };
  }

  /**
   * Removes every Portcullis rule this namespace has, from every backend present
   * (including ones left by another backend or a crashed run); idempotent.
   */
  async remove(): Promise<ChangeReport> {
    const actions = await this.removeExcept(undefined);
    this.installed = undefined;
    this.nftApplied = undefined;
    return { backend: this.backend, changed: actions.length > 0, actions };
  }

  /**
   * At start: removes stale Portcullis rules of other backends (a crashed run that used
   * another one), then installs `config` over whatever the chosen backend has (duplicate
   * jumps, old chain contents, chains no longer wanted).
   */
  async reconcile(config: FirewallConfig): Promise<ChangeReport> {
    resolveConfig(config);
    const actions = await this.removeExcept(this.backend);
    const report = await this.install(config);
    actions.push(...report.actions);
    return { backend: this.backend, changed: actions.length > 0, actions };
  }

  private async removeExcept(keep: BackendKind | undefined): Promise<string[]> {
    const actions: string[] = [];
    const empty = { chains: [], rules: [], jumps: [] };
    if (keep !== 'nft' && this.detection.nft) {
      actions.push(...(await new NftTable(this.run).remove()));
    }
    if (keep !== 'iptables-nft') {
      for (const t of this.tables('nft')) actions.push(...(await t.apply(empty)));
    }
    if (keep !== 'iptables-legacy') {
      // Listing a legacy table would create it: look only where x_tables has a filter table.
      const legacy = await this.refreshLegacyTables();
      for (const t of this.tables('legacy')) {
        if (legacy[t.family].includes('filter')) actions.push(...(await t.apply(empty)));
      }
    }
    return actions;
  }

  private async refreshLegacyTables(): Promise<Record<IpFamily, string[]>> {
    const read = async (file: string): Promise<string[]> => {
      try {
        return (await this.run(['cat', file])).stdout.split('\n').filter((l) => l.trim() !== '');
      } catch {
        return [];
      }
    };
    return {
      ipv4: await read('/proc/net/ip_tables_names'),
      ipv6: await read('/proc/net/ip6_tables_names'),
    };
  }
}
