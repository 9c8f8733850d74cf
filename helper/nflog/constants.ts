/** NFLOG (nfnetlink_log) constants, mirrored from linux/netfilter/nfnetlink_log.h
 * with their C names. Every integer attribute is big endian. */

// enum nfulnl_msg_types: nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | message
export const NFULNL_MSG_PACKET = 0;
export const NFULNL_MSG_CONFIG = 1;

// enum nfulnl_attr_type
export const NFULA_UNSPEC = 0;
/** struct nfulnl_msg_packet_hdr: hw_protocol be16, hook u8, _pad u8 (4 bytes). */
export const NFULA_PACKET_HDR = 1;
/** skb->mark, be32. */
export const NFULA_MARK = 2;
/** struct nfulnl_msg_packet_timestamp: sec be64, usec be64. */
export const NFULA_TIMESTAMP = 3;
export const NFULA_IFINDEX_INDEV = 4;
export const NFULA_IFINDEX_OUTDEV = 5;
export const NFULA_IFINDEX_PHYSINDEV = 6;
export const NFULA_IFINDEX_PHYSOUTDEV = 7;
/** struct nfulnl_msg_packet_hw: hw_addrlen be16, _pad u16, hw_addr[8]. */
export const NFULA_HWADDR = 8;
export const NFULA_PAYLOAD = 9;
/** The rule's prefix (`--nflog-prefix`, nft `log prefix`), NUL-terminated. */
export const NFULA_PREFIX = 10;
/** uid of the socket that owns the packet (locally generated or delivered packets). */
export const NFULA_UID = 11;
/** Instance-local sequence number (flag NFULNL_CFG_F_SEQ). */
export const NFULA_SEQ = 12;
/** Per-netns sequence number over every instance (flag NFULNL_CFG_F_SEQ_GLOBAL). */
export const NFULA_SEQ_GLOBAL = 13;
export const NFULA_GID = 14;
/** dev->type (ARPHRD_*), be16. */
export const NFULA_HWTYPE = 15;
/** The link-layer header bytes. */
export const NFULA_HWHEADER = 16;
/** dev->hard_header_len, be16. */
export const NFULA_HWLEN = 17;
/** Nested CTA_* attributes (flag NFULNL_CFG_F_CONNTRACK, needs the kernel glue). */
export const NFULA_CT = 18;
/** enum ip_conntrack_info, be32. */
export const NFULA_CT_INFO = 19;
/** Nested: NFULA_VLAN_PROTO, NFULA_VLAN_TCI. */
export const NFULA_VLAN = 20;
/** The full L2 header (bridge family). */
export const NFULA_L2HDR = 21;

// enum nfulnl_vlan_attr
export const NFULA_VLAN_UNSPEC = 0;
export const NFULA_VLAN_PROTO = 1;
export const NFULA_VLAN_TCI = 2;

// enum nfulnl_msg_config_cmds
export const NFULNL_CFG_CMD_NONE = 0;
export const NFULNL_CFG_CMD_BIND = 1;
export const NFULNL_CFG_CMD_UNBIND = 2;
/** Makes nfnetlink_log the family's default logger (nfgenmsg family = the family). */
export const NFULNL_CFG_CMD_PF_BIND = 3;
export const NFULNL_CFG_CMD_PF_UNBIND = 4;

// enum nfulnl_attr_config
export const NFULA_CFG_UNSPEC = 0;
/** struct nfulnl_msg_config_cmd: command u8 (1 byte). */
export const NFULA_CFG_CMD = 1;
/** struct nfulnl_msg_config_mode: copy_range be32, copy_mode u8, _pad u8 (packed, 6 bytes). */
export const NFULA_CFG_MODE = 2;
/** Bytes the kernel batches into one netlink skb, be32. */
export const NFULA_CFG_NLBUFSIZ = 3;
/** Flush timeout in 1/100 s, be32. */
export const NFULA_CFG_TIMEOUT = 4;
/** Packets batched before a flush, be32. */
export const NFULA_CFG_QTHRESH = 5;
/** be16. */
export const NFULA_CFG_FLAGS = 6;

export const NFULNL_COPY_NONE = 0x00;
export const NFULNL_COPY_META = 0x01;
export const NFULNL_COPY_PACKET = 0x02;

export const NFULNL_CFG_F_SEQ = 0x0001;
export const NFULNL_CFG_F_SEQ_GLOBAL = 0x0002;
export const NFULNL_CFG_F_CONNTRACK = 0x0004;

/** The kernel caps copy_range at this (0 means this too). */
export const NFULNL_COPY_RANGE_MAX = 0xffff - 4;
/** nfnetlink_log.c: NFULNL_NLBUFSIZ_DEFAULT is NLMSG_GOODSIZE (about a page);
 * nlbufsiz must be at least that and at most 131072 (else ERANGE). */
export const NFULNL_NLBUFSIZ_MAX = 131072;
/** Instance defaults (nfnetlink_log.c). */
export const NFULNL_TIMEOUT_DEFAULT = 100;
export const NFULNL_QTHRESH_DEFAULT = 100;
