/**
 * Ends a TCP connection's local socket (SOCK_DESTROY over sock_diag), so that killing a
 * flow aborts the program's connection at once (ECONNABORTED, RST to the peer) instead
 * of leaving it to time out. This implementation runs iproute2's `ss -K` with an exact
 * 4-tuple filter; helper/attribution's native sock_diag destroy can replace it through
 * the same interface. Needs CONFIG_INET_DIAG_DESTROY (`ss -K` then kills nothing).
 */
import { execFileRunner, inNetns, type CommandRunner } from '../firewall/exec.js';
import type { ConnectionTuple } from './ports.js';

export interface SocketDestroyer {
  /** Destroys the local sockets of a TCP tuple; resolves with how many were destroyed. */
  destroy(tuple: ConnectionTuple): Promise<number>;
}

function endpoint(family: 'ipv4' | 'ipv6', addr: string): string {
  return family === 'ipv6' ? `[${addr}]` : addr;
}

/** The `ss` argv that kills exactly the sockets of `t` (either end may be the local one). */
export function ssKillArgv(t: ConnectionTuple): string[] {
  if (t.sport === null || t.dport === null) throw new TypeError('a TCP tuple needs ports');
  return [
    'ss',
    '-K',
    '-H',
    '-n',
    '-t',
    t.family === 'ipv6' ? '-6' : '-4',
    'src',
    endpoint(t.family, t.src),
    'sport',
    '=',
    `:${t.sport}`,
    'dst',
    endpoint(t.family, t.dst),
    'dport',
    '=',
    `:${t.dport}`,
  ];
}

export class SsSocketDestroyer implements SocketDestroyer {
  constructor(
    private readonly netns: string | undefined,
    private readonly run: CommandRunner = execFileRunner,
  ) {}

  async destroy(tuple: ConnectionTuple): Promise<number> {
    if (tuple.protocol !== 6) return 0;
    const { stdout } = await this.run(inNetns(this.netns, ssKillArgv(tuple)));
    // -K prints each socket it destroyed, one per line (-H: no header).
    return stdout.split('\n').filter((l) => l.trim() !== '').length;
  }
}
