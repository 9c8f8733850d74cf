/** The conntrack table a command works on. */
import { Conntrack } from '../../conntrack/client.js';
import type { NetlinkTransport } from '../../netlink/socket.js';

/** Test seam of the conntrack commands: a fake kernel instead of a netlink
 * socket, one per Conntrack opened. */
export interface ConntrackRunOptions {
  transport?: () => NetlinkTransport;
}

/** The table of `netns` (the caller's own when undefined). */
export function openConntrack(netns: string | undefined, seams: ConntrackRunOptions): Conntrack {
  return Conntrack.open({
    ...(netns !== undefined ? { netns } : {}),
    ...(seams.transport ? { transport: seams.transport() } : {}),
  });
}
