/**
 * Tells when the ruleset of a network namespace changed: nf_tables ends every committed
 * transaction with a NEWGEN message to the NFNLGRP_NFTABLES group, whoever made it (nft,
 * iptables-nft, firewalld, ufw, a `nft flush ruleset`). The helper checks its own rules
 * then, so that a ruleset reload that flushed them does not silently end interception.
 * iptables-legacy changes send nothing here.
 */
import { NetlinkConnection } from '../netlink/connection.js';
import { NETLINK_NETFILTER, NFNL_SUBSYS_NFTABLES, nfnlMsgType } from '../netlink/constants.js';
import { NetlinkSocket, type NetlinkTransport } from '../netlink/socket.js';
import { subscribe } from '../common/listeners.js';

/** The nf_tables multicast group (linux/netfilter/nfnetlink.h NFNLGRP_NFTABLES). */
export const NFNLGRP_NFTABLES = 7;
/** The message that ends a committed transaction (NFT_MSG_NEWGEN). */
export const NFT_MSG_NEWGEN = 15;

export interface RulesetChangesOptions {
  netns?: string;
  /** A transport to read from instead of a new socket (tests). */
  transport?: NetlinkTransport;
}

export class RulesetChanges {
  private readonly listeners = new Set<() => void>();
  private readonly errorListeners = new Set<(error: Error) => void>();
  private closed = false;

  private constructor(private readonly connection: NetlinkConnection) {
    const newgen = nfnlMsgType(NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWGEN);
    connection.onNotification((msg) => {
      if (msg.type === newgen) this.emit();
    });
    // Lost messages may have held a change: assume one.
    connection.onLost(() => this.emit());
    connection.onError((error) => {
      for (const l of this.errorListeners) l(error);
    });
  }

  static open(options: RulesetChangesOptions = {}): RulesetChanges {
    const transport =
      options.transport ??
      NetlinkSocket.open(NETLINK_NETFILTER, {
        groups: [NFNLGRP_NFTABLES],
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
      });
    return new RulesetChanges(new NetlinkConnection(transport));
  }

  /** A transaction was committed (or messages were lost). Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    return subscribe(this.listeners, listener);
  }

  /** The socket failed for good: no more changes will be told. */
  onError(listener: (error: Error) => void): () => void {
    return subscribe(this.errorListeners, listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.connection.close();
  }

  private emit(): void {
    if (this.closed) return;
    for (const l of this.listeners) l();
  }
}
