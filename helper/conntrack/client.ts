import { ConntrackMirror, type ConntrackMirrorOptions } from './mirror.js';
import { ConntrackTable, openConnection, type ConntrackOptions } from './table.js';

export type { ConntrackOptions } from './table.js';
export type { CreateSpec, FlowFilter, FlowKey, ListOptions, UpdateSpec } from './types.js';

/**
 * The conntrack table of one network namespace, over ctnetlink, and the
 * starting point of a mirror of it. The requests are ConntrackTable's (table.ts):
 * ConntrackMirror uses that class, so this one, which starts mirrors, can
 * import the mirror without an import cycle.
 */
export class Conntrack extends ConntrackTable {
  static override open(options: ConntrackOptions = {}): Conntrack {
    return new Conntrack(openConnection(options), options.netns);
  }

  /** A live Map of this namespace's flows, kept in sync by a dump and events
   * (and a fresh dump after lost events); see ConntrackMirror. Dumps go over
   * this socket; the mirror opens its own event socket. */
  mirror(
    options: Omit<ConntrackMirrorOptions, 'conntrack' | 'netns'> = {},
  ): Promise<ConntrackMirror> {
    return ConntrackMirror.start({
      ...options,
      conntrack: this,
      ...(this.netns !== undefined ? { netns: this.netns } : {}),
    });
  }
}
