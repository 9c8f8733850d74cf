/** ctnetlink enums, mirrored from linux/netfilter/nfnetlink_conntrack.h
 * (the UAPI header is the authority; the YNL spec has inaccuracies). */

// enum cntl_msg_types
export const IPCTNL_MSG_CT_NEW = 0;
export const IPCTNL_MSG_CT_GET = 1;
export const IPCTNL_MSG_CT_DELETE = 2;
export const IPCTNL_MSG_CT_GET_CTRZERO = 3;
export const IPCTNL_MSG_CT_GET_STATS_CPU = 4;
export const IPCTNL_MSG_CT_GET_STATS = 5;
export const IPCTNL_MSG_CT_GET_DYING = 6;
export const IPCTNL_MSG_CT_GET_UNCONFIRMED = 7;

// enum ctnl_exp_msg_types
export const IPCTNL_MSG_EXP_NEW = 0;
export const IPCTNL_MSG_EXP_GET = 1;
export const IPCTNL_MSG_EXP_DELETE = 2;
export const IPCTNL_MSG_EXP_GET_STATS_CPU = 3;

// enum ctattr_type
export const CTA_TUPLE_ORIG = 1;
export const CTA_TUPLE_REPLY = 2;
export const CTA_STATUS = 3;
export const CTA_PROTOINFO = 4;
export const CTA_HELP = 5;
export const CTA_NAT_SRC = 6;
export const CTA_TIMEOUT = 7;
export const CTA_MARK = 8;
export const CTA_COUNTERS_ORIG = 9;
export const CTA_COUNTERS_REPLY = 10;
export const CTA_USE = 11;
export const CTA_ID = 12;
export const CTA_NAT_DST = 13;
export const CTA_TUPLE_MASTER = 14;
export const CTA_SEQ_ADJ_ORIG = 15;
export const CTA_SEQ_ADJ_REPLY = 16;
export const CTA_SECMARK = 17;
export const CTA_ZONE = 18;
export const CTA_SECCTX = 19;
export const CTA_TIMESTAMP = 20;
export const CTA_MARK_MASK = 21;
export const CTA_LABELS = 22;
export const CTA_LABELS_MASK = 23;
export const CTA_SYNPROXY = 24;
export const CTA_FILTER = 25;
export const CTA_STATUS_MASK = 26;

// enum ctattr_stats_cpu
export const CTA_STATS_SEARCHED = 1;
export const CTA_STATS_FOUND = 2;
export const CTA_STATS_NEW = 3;
export const CTA_STATS_INVALID = 4;
export const CTA_STATS_IGNORE = 5;
export const CTA_STATS_DELETE = 6;
export const CTA_STATS_DELETE_LIST = 7;
export const CTA_STATS_INSERT = 8;
export const CTA_STATS_INSERT_FAILED = 9;
export const CTA_STATS_DROP = 10;
export const CTA_STATS_EARLY_DROP = 11;
export const CTA_STATS_ERROR = 12;
export const CTA_STATS_SEARCH_RESTART = 13;
export const CTA_STATS_CLASH_RESOLVE = 14;
export const CTA_STATS_CHAIN_TOOLONG = 15;

// enum ctattr_stats_global
export const CTA_STATS_GLOBAL_ENTRIES = 1;
export const CTA_STATS_GLOBAL_MAX_ENTRIES = 2;

// enum ctattr_expect_stats
export const CTA_STATS_EXP_NEW = 1;
export const CTA_STATS_EXP_CREATE = 2;
export const CTA_STATS_EXP_DELETE = 3;
