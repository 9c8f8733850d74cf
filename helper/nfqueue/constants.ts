/** NFQUEUE constants, mirrored from linux/netfilter/nfnetlink_queue.h and
 * linux/netfilter.h with their C names. */

// enum nfqnl_msg_types: nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | message
export const NFQNL_MSG_PACKET = 0;
export const NFQNL_MSG_VERDICT = 1;
export const NFQNL_MSG_CONFIG = 2;
export const NFQNL_MSG_VERDICT_BATCH = 3;

// enum nfqnl_attr_type
export const NFQA_UNSPEC = 0;
/** struct nfqnl_msg_packet_hdr: packet_id be32, hw_protocol be16, hook u8 (packed, 7 bytes) */
export const NFQA_PACKET_HDR = 1;
/** struct nfqnl_msg_verdict_hdr: verdict be32, id be32 */
export const NFQA_VERDICT_HDR = 2;
export const NFQA_MARK = 3;
/** struct nfqnl_msg_packet_timestamp: sec be64, usec be64 */
export const NFQA_TIMESTAMP = 4;
export const NFQA_IFINDEX_INDEV = 5;
export const NFQA_IFINDEX_OUTDEV = 6;
export const NFQA_IFINDEX_PHYSINDEV = 7;
export const NFQA_IFINDEX_PHYSOUTDEV = 8;
/** struct nfqnl_msg_packet_hw: hw_addrlen be16, _pad u16, hw_addr[8] */
export const NFQA_HWADDR = 9;
export const NFQA_PAYLOAD = 10;
/** Nested CTA_* attributes (nfnetlink_conntrack.h). */
export const NFQA_CT = 11;
/** enum ip_conntrack_info, be32. */
export const NFQA_CT_INFO = 12;
export const NFQA_CAP_LEN = 13;
export const NFQA_SKB_INFO = 14;
/** Nested CTA_EXPECT_* attributes. */
export const NFQA_EXP = 15;
export const NFQA_UID = 16;
export const NFQA_GID = 17;
export const NFQA_SECCTX = 18;
/** Nested: NFQA_VLAN_PROTO, NFQA_VLAN_TCI. */
export const NFQA_VLAN = 19;
export const NFQA_L2HDR = 20;
export const NFQA_PRIORITY = 21;

// enum nfqnl_vlan_attr
export const NFQA_VLAN_UNSPEC = 0;
export const NFQA_VLAN_PROTO = 1;
export const NFQA_VLAN_TCI = 2;

// enum nfqnl_msg_config_cmds
export const NFQNL_CFG_CMD_NONE = 0;
export const NFQNL_CFG_CMD_BIND = 1;
export const NFQNL_CFG_CMD_UNBIND = 2;
/** Obsolete: the kernel answers 0 and does nothing since Linux 3.8. */
export const NFQNL_CFG_CMD_PF_BIND = 3;
export const NFQNL_CFG_CMD_PF_UNBIND = 4;

// enum nfqnl_config_mode
export const NFQNL_COPY_NONE = 0;
export const NFQNL_COPY_META = 1;
export const NFQNL_COPY_PACKET = 2;

/** The kernel clamps copy_range to 0xffff - NLA_HDRLEN (and 0 means that too). */
export const NFQNL_MAX_COPY_RANGE = 0xffff - 4;
/** Queue length of a freshly bound queue (NFQNL_QMAX_DEFAULT). */
export const NFQNL_QMAX_DEFAULT = 1024;

// enum nfqnl_attr_config
export const NFQA_CFG_UNSPEC = 0;
/** struct nfqnl_msg_config_cmd: command u8, _pad u8, pf be16 */
export const NFQA_CFG_CMD = 1;
/** struct nfqnl_msg_config_params: copy_range be32, copy_mode u8 (packed, 5 bytes) */
export const NFQA_CFG_PARAMS = 2;
export const NFQA_CFG_QUEUE_MAXLEN = 3;
export const NFQA_CFG_MASK = 4;
export const NFQA_CFG_FLAGS = 5;

// NFQA_CFG_FLAGS bits
/** Accept packets instead of dropping them when the queue is full. */
export const NFQA_CFG_F_FAIL_OPEN = 1 << 0;
/** Send NFQA_CT/NFQA_CT_INFO; needs CONFIG_NETFILTER_NETLINK_GLUE_CT. */
export const NFQA_CFG_F_CONNTRACK = 1 << 1;
/** Deliver GSO packets unsegmented. */
export const NFQA_CFG_F_GSO = 1 << 2;
/** Send NFQA_UID/NFQA_GID of the socket that owns the packet. */
export const NFQA_CFG_F_UID_GID = 1 << 3;
/** Send NFQA_SECCTX; needs CONFIG_NETWORK_SECMARK. */
export const NFQA_CFG_F_SECCTX = 1 << 4;
export const NFQA_CFG_F_MAX = 1 << 5;

// NFQA_SKB_INFO bits
/** The packet's checksum is not computed yet (CHECKSUM_PARTIAL); it is fine. */
export const NFQA_SKB_CSUMNOTREADY = 1 << 0;
/** The packet is GSO (larger than the device MTU). */
export const NFQA_SKB_GSO = 1 << 1;
/** The checksum was not validated (no hardware checksum on the incoming device). */
export const NFQA_SKB_CSUM_NOTVERIFIED = 1 << 2;

// Verdicts (linux/netfilter.h)
export const NF_DROP = 0;
export const NF_ACCEPT = 1;
/** The kernel forgets the packet; from user space it leaks it, so it is not offered. */
export const NF_STOLEN = 2;
/** Queue to another queue: NF_QUEUE | (queue number << NF_VERDICT_QBITS). */
export const NF_QUEUE = 3;
/** Run the hook again from its start. */
export const NF_REPEAT = 4;
/** Accept and skip the remaining hook functions (deprecated in the kernel). */
export const NF_STOP = 5;
export const NF_MAX_VERDICT = NF_STOP;
export const NF_VERDICT_MASK = 0x000000ff;
export const NF_VERDICT_FLAG_QUEUE_BYPASS = 0x00008000;
export const NF_VERDICT_QMASK = 0xffff0000;
export const NF_VERDICT_QBITS = 16;

/** NF_QUEUE to queue `queue`, optionally accepting when nobody listens there. */
export function nfQueueVerdict(queue: number, bypass = false): number {
  const flags = bypass ? NF_VERDICT_FLAG_QUEUE_BYPASS : 0;
  return (((queue & 0xffff) << NF_VERDICT_QBITS) | flags | NF_QUEUE) >>> 0;
}

// Netfilter hooks (enum nf_inet_hooks)
export const NF_INET_PRE_ROUTING = 0;
export const NF_INET_LOCAL_IN = 1;
export const NF_INET_FORWARD = 2;
export const NF_INET_LOCAL_OUT = 3;
export const NF_INET_POST_ROUTING = 4;
export const NF_INET_INGRESS = 5;

// Protocol families (NFPROTO_*), the nfgenmsg family of packet messages
export const NFPROTO_UNSPEC = 0;
export const NFPROTO_INET = 1;
export const NFPROTO_IPV4 = 2;
export const NFPROTO_ARP = 3;
export const NFPROTO_NETDEV = 5;
export const NFPROTO_BRIDGE = 7;
export const NFPROTO_IPV6 = 10;

// enum ip_conntrack_info
export const IP_CT_ESTABLISHED = 0;
export const IP_CT_RELATED = 1;
export const IP_CT_NEW = 2;
export const IP_CT_IS_REPLY = 3;
export const IP_CT_ESTABLISHED_REPLY = 3;
export const IP_CT_RELATED_REPLY = 4;
export const IP_CT_UNTRACKED = 7;
