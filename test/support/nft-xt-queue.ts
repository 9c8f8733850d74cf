// Adds a rule with the x_tables NFQUEUE target (through nft_compat) to an
// existing nf_tables chain, by netlink. Neither `nft` (no syntax for xt
// targets) nor ebtables (no NFQUEUE extension) can write it, and this kernel
// lacks the native nft `queue` expression; the bridge family can only queue
// packets this way, if the kernel accepts it.
import { NetlinkSocket } from '../../helper/netlink/socket.js';
import { NetlinkWriter } from '../../helper/netlink/writer.js';
import { errnoName } from '../../helper/netlink/errno.js';

const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG_NEWRULE = 6;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLM_F_CREATE = 0x400;
const NLM_F_APPEND = 0x800;
const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_TARGET_NAME = 1;
const NFTA_TARGET_REV = 2;
const NFTA_TARGET_INFO = 3;

/** `family`: NFPROTO_* (2 ipv4, 7 bridge). Resolves with the kernel's errno (0: added). */
export async function addXtQueueRule(
  netns: string,
  family: number,
  table: string,
  chain: string,
  queue: number,
): Promise<{ errno: number; code: string }> {
  const w = new NetlinkWriter();
  w.beginMessage(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 1)
    .nfgenmsg(0, 0, NFNL_SUBSYS_NFTABLES)
    .endMessage();
  w.beginMessage(
    (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE,
    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
    2,
  ).nfgenmsg(family, 0, 0);
  w.string(NFTA_RULE_TABLE, table).string(NFTA_RULE_CHAIN, chain);
  const list = w.beginNest(NFTA_RULE_EXPRESSIONS);
  const elem = w.beginNest(NFTA_LIST_ELEM);
  w.string(NFTA_EXPR_NAME, 'target');
  const data = w.beginNest(NFTA_EXPR_DATA);
  // struct xt_NFQ_info { __u16 queuenum; } (revision 0), XT_ALIGNed to 8 bytes, host order.
  const info = new Uint8Array(8);
  new DataView(info.buffer).setUint16(0, queue, true);
  w.string(NFTA_TARGET_NAME, 'NFQUEUE').u32be(NFTA_TARGET_REV, 0).bytes(NFTA_TARGET_INFO, info);
  w.endNest(data).endNest(elem).endNest(list).endMessage();
  w.beginMessage(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 3)
    .nfgenmsg(0, 0, NFNL_SUBSYS_NFTABLES)
    .endMessage();
  const socket = NetlinkSocket.open(NETLINK_NETFILTER, { netns });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('nf_tables: no answer')), 5000);
      socket.read({
        onDatagram: (view, offset) => {
          // NLMSG_ERROR (2) for seq 2: the rule's ACK or its error.
          if (view.getUint16(offset + 4, true) !== 2 || view.getUint32(offset + 8, true) !== 2)
            return;
          clearTimeout(timer);
          const errno = -view.getInt32(offset + 16, true);
          resolve({ errno, code: errno === 0 ? 'OK' : errnoName(errno) });
        },
        onLost: () => {},
        onError: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      socket.send(w.finish());
    });
  } finally {
    socket.close();
  }
}
