import { describe, expect, it } from 'vitest';
import {
  NFNLGRP_NFTABLES,
  NFT_MSG_NEWGEN,
  RulesetChanges,
} from '../../../helper/firewall/watch.js';
import type { DatagramSink, NetlinkTransport } from '../../../helper/netlink/socket.js';

/** A transport the test feeds datagrams into, as the kernel would. */
class FakeTransport implements NetlinkTransport {
  readonly portId = 4242;
  sink: DatagramSink | undefined;
  closed = false;
  send(): void {}
  sendMany(): void {}
  read(sink: DatagramSink): void {
    this.sink = sink;
  }
  pause(): void {}
  resume(): void {}
  close(): void {
    this.closed = true;
  }
  /** One nf_tables notification: nlmsghdr + nfgenmsg, from the committing process. */
  notify(message: number): void {
    const buf = new DataView(new ArrayBuffer(20));
    buf.setUint32(0, 20, true);
    buf.setUint16(4, (10 << 8) | message, true); // NFNL_SUBSYS_NFTABLES
    buf.setUint32(8, 7, true); // the committer's seq: not ours
    buf.setUint32(12, 9698, true); // and its port
    this.sink!.onDatagram(buf, 0, 20, { truncated: false, multicast: true, senderPort: 0 });
  }
}

describe('RulesetChanges', () => {
  it('tells once per committed transaction (NEWGEN, 15), not per table, chain or rule message', () => {
    expect(NFT_MSG_NEWGEN).toBe(15); // enum nf_tables_msg_types: NEWGEN follows DELSETELEM (14)
    expect(NFNLGRP_NFTABLES).toBe(7);
    const t = new FakeTransport();
    const w = RulesetChanges.open({ transport: t });
    let changes = 0;
    w.onChange(() => changes++);
    for (const m of [0 /* NEWTABLE */, 3 /* NEWCHAIN */, 6 /* NEWRULE */]) t.notify(m);
    expect(changes).toBe(0);
    t.notify(NFT_MSG_NEWGEN);
    expect(changes).toBe(1);
    // Lost notifications may have held a commit.
    t.sink!.onLost();
    expect(changes).toBe(2);
    w.close();
    expect(t.closed).toBe(true);
  });
});
