/**
 * The interception rules while this helper owns them: reconciled one change at a time
 * (start, settings, the ruleset watch), watched for changes by somebody else and put
 * back, removed at stop.
 */
import {
  FirewallRules,
  RulesetChanges,
  type BackendKind,
  type ChangeReport,
  type DnsLogConfig,
  type MarkLayout,
} from '../firewall/index.js';
import type { Logger } from './log.js';

/** How long the ruleset stays quiet before our rules are checked (a reload is many commits). */
const RULES_CHECK_DELAY_MS = 200;

export interface OwnedRulesOptions {
  netns?: string;
  queue: number;
  marks: MarkLayout;
  dnsLog?: DnsLogConfig;
  log: Logger;
  component: string;
  /** The fail policy and inbound interception the rules are to have, read at each change. */
  wanted: () => { failClosed: boolean; inbound: boolean };
  /** A check after somebody else's change found our rules changed and restored them. */
  onRestored: (report: ChangeReport) => void;
}

export class OwnedRules {
  private owned = false;
  private watch: RulesetChanges | undefined;
  private check: NodeJS.Timeout | undefined;
  /** The change in progress: changes run one after the other. */
  private op: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly fw: FirewallRules,
    private readonly options: OwnedRulesOptions,
  ) {}

  static async open(options: OwnedRulesOptions): Promise<OwnedRules> {
    const { netns } = options;
    return new OwnedRules(await FirewallRules.open(netns !== undefined ? { netns } : {}), options);
  }

  get backend(): BackendKind {
    return this.fw.backend;
  }

  /**
   * From here the rules are ours to change and remove: the caller has bound the queue,
   * which proves no other helper runs here (a second one must not remove the first one's).
   */
  own(): void {
    this.owned = true;
  }

  /** Installs or reconciles the rules. */
  install(): Promise<ChangeReport> {
    const run = this.op.then(() => {
      const { queue, dnsLog, marks } = this.options;
      const { failClosed, inbound } = this.options.wanted();
      return this.fw.reconcile({
        queue,
        bypass: !failClosed,
        inbound,
        marks,
        ...(dnsLog ? { dnsLog } : {}),
      });
    });
    this.op = run.catch(() => undefined);
    return run;
  }

  /**
   * After every committed ruleset change in the namespace (nft, iptables-nft, firewalld,
   * `nft flush ruleset`), once it has been quiet for a moment, checks our rules and puts
   * back what somebody else removed: a reload must not end interception silently. Our own
   * changes are checked too and find nothing to do.
   */
  startWatch(): void {
    const { netns, log, component } = this.options;
    try {
      this.watch = RulesetChanges.open(netns !== undefined ? { netns } : {});
    } catch (error) {
      log.warn(component, `cannot watch the ruleset: ${(error as Error).message}`);
      return;
    }
    this.watch.onError((e) => log.warn(component, `ruleset watch: ${e.message}`));
    this.watch.onChange(() => {
      if (this.check) clearTimeout(this.check);
      this.check = setTimeout(() => void this.checkNow(), RULES_CHECK_DELAY_MS);
    });
  }

  /** Stops watching, waits for the change in progress, and removes the rules if ours. */
  async remove(): Promise<void> {
    // Our own removal must not be taken for a reload to undo.
    this.stopWatch();
    await this.op;
    if (!this.owned) return;
    const r = await this.fw.remove();
    this.options.log.info(this.options.component, 'rules removed', { changed: r.changed });
  }

  private stopWatch(): void {
    this.watch?.close();
    this.watch = undefined;
    if (this.check) clearTimeout(this.check);
    this.check = undefined;
  }

  private async checkNow(): Promise<void> {
    this.check = undefined;
    if (this.watch === undefined) return;
    try {
      const report = await this.install();
      if (report.changed && this.watch !== undefined) this.options.onRestored(report);
    } catch (error) {
      this.options.log.error(
        this.options.component,
        `cannot restore the rules: ${(error as Error).message}`,
      );
    }
  }
}
