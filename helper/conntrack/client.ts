import { NetlinkConnection, type ConnectionOptions } from '../netlink/connection.js';
import {
  AF_UNSPEC,
  NETLINK_NETFILTER,
  NFNL_SUBSYS_CTNETLINK,
  nfnlMsgType,
} from '../netlink/constants.js';
import {
  NetlinkSocket,
  type NetlinkSocketOptions,
  type NetlinkTransport,
} from '../netlink/socket.js';
import { NetlinkWriter } from '../netlink/writer.js';
import { IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_GET_STATS_CPU } from './constants.js';
import { decodeCpuStats, decodeGlobalStats, type CpuStats, type GlobalStats } from './stats.js';

export interface ConntrackOptions extends ConnectionOptions {
  /** Act inside this network namespace (`ip netns` name or path). */
  netns?: string;
  /** Receive buffer for the request socket. */
  rcvbuf?: number;
  /** Injection seam: a transport instead of a real socket (tests, fake kernel). */
  transport?: NetlinkTransport;
  socket?: Omit<NetlinkSocketOptions, 'netns'>;
}

function ctType(msg: number): number {
  return nfnlMsgType(NFNL_SUBSYS_CTNETLINK, msg);
}

/** The conntrack table of one network namespace, over ctnetlink. */
export class Conntrack {
  private readonly writer = new NetlinkWriter();

  private constructor(readonly connection: NetlinkConnection) {}

  static open(options: ConntrackOptions = {}): Conntrack {
    const transport =
      options.transport ??
      NetlinkSocket.open(NETLINK_NETFILTER, {
        extAck: true,
        capAck: true,
        rcvbuf: options.rcvbuf ?? 4 * 1024 * 1024,
        slotSize: 32768,
        slots: 32,
        ...options.socket,
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
      });
    return new Conntrack(new NetlinkConnection(transport, options));
  }

  private message(type: number, family = AF_UNSPEC, flags = 0): NetlinkWriter {
    return this.writer.reset().beginMessage(ctType(type), flags).nfgenmsg(family);
  }

  /** Per-CPU counters, including clash_resolve and chain_toolong where the kernel has them. */
  async stats(): Promise<CpuStats[]> {
    const out: CpuStats[] = [];
    await this.connection.dumpEach(
      this.message(IPCTNL_MSG_CT_GET_STATS_CPU).endMessage().finish(),
      (msg) => out.push(decodeCpuStats(msg)),
      { operation: 'conntrack stats' },
    );
    return out.sort((a, b) => a.cpu - b.cpu);
  }

  /** The global entry count and the table's maximum. */
  async globalStats(): Promise<GlobalStats> {
    const replies = await this.connection.request(
      this.message(IPCTNL_MSG_CT_GET_STATS).endMessage().finish(),
      { operation: 'conntrack count' },
    );
    const first = replies[0];
    if (!first) throw new Error('conntrack count: the kernel sent no statistics');
    return decodeGlobalStats(first);
  }

  async count(): Promise<number> {
    return (await this.globalStats()).entries;
  }

  close(): void {
    this.connection.close();
  }
}
