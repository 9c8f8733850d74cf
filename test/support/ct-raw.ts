// Hand-built ctnetlink messages for the netlink-core tests, independent of
// the conntrack library (which has its own tests against conntrack-tools).
import {
  AF_INET,
  NFNL_SUBSYS_CTNETLINK,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  nfnlMsgType,
} from '../../helper/netlink/constants.js';
import { NetlinkWriter } from '../../helper/netlink/writer.js';
import {
  CTA_TIMEOUT,
  CTA_TUPLE_ORIG,
  CTA_TUPLE_REPLY,
  IPCTNL_MSG_CT_NEW,
} from '../../helper/conntrack/constants.js';

const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;

function ipv4(i: number): Uint8Array {
  return Uint8Array.of(198, 18, (i >> 8) & 0xff, i & 0xff);
}

function tuple(
  w: NetlinkWriter,
  type: number,
  src: Uint8Array,
  dst: Uint8Array,
  sport: number,
  dport: number,
): void {
  const t = w.beginNest(type);
  const ip = w.beginNest(CTA_TUPLE_IP);
  w.bytes(CTA_IP_V4_SRC, src).bytes(CTA_IP_V4_DST, dst);
  w.endNest(ip);
  const proto = w.beginNest(CTA_TUPLE_PROTO);
  w.u8(CTA_PROTO_NUM, 17).u16be(CTA_PROTO_SRC_PORT, sport).u16be(CTA_PROTO_DST_PORT, dport);
  w.endNest(proto);
  w.endNest(t);
}

/** IPCTNL_MSG_CT_NEW for a UDP flow 198.18.x.y:1000+i -> 198.19.0.1:53. */
export function ctNewUdp(i: number, timeout = 600): Uint8Array {
  const w = new NetlinkWriter()
    .beginMessage(
      nfnlMsgType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW),
      NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
    )
    .nfgenmsg(AF_INET);
  const src = ipv4(i);
  const dst = Uint8Array.of(198, 19, 0, 1);
  const sport = 1000 + (i % 60000);
  tuple(w, CTA_TUPLE_ORIG, src, dst, sport, 53);
  tuple(w, CTA_TUPLE_REPLY, dst, src, 53, sport);
  w.u32be(CTA_TIMEOUT, timeout);
  return w.endMessage().finish();
}

export {
  CTA_TUPLE_IP,
  CTA_TUPLE_PROTO,
  CTA_IP_V4_SRC,
  CTA_IP_V4_DST,
  CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT,
};
