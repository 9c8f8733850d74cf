/**
 * The options that the helper's layers share, declared once: `Daemon`, `Interception` and
 * `Interceptor` extend these instead of repeating them, and each is passed down as given.
 */
import type { Logger } from './log.js';

/** Where the verdict loop works. */
export interface QueuePlace {
  /** Work inside this `ip netns` (rules, queue, conntrack); the helper's own namespace by default. */
  netns?: string;
  /** The NFQUEUE queue number, 0..65535. */
  queue: number;
  log: Logger;
}

/** One run of the helper. */
export interface HelperRun extends QueuePlace {
  /** Where the rule store, history, settings and the accounting marker live (created 0700). */
  stateDir: string;
  /** The build HelperState and the IPC hello report; 'unknown' when absent. */
  version?: string;
  /**
   * Turn on nf_conntrack_acct and nf_conntrack_timestamp in the namespace (restored at
   * stop; conntrack-accounting.ts). `portcullis helper` does unless
   * --no-conntrack-accounting; the default leaves the sysctls alone.
   */
  conntrackAccounting?: boolean;
}
