import type { AttributeReader } from '../netlink/attributes.js';
import { decodeNfGenMsg, nfAttributes, type NetlinkMessage } from '../netlink/message.js';
import {
  CTA_STATS_CHAIN_TOOLONG,
  CTA_STATS_CLASH_RESOLVE,
  CTA_STATS_DELETE,
  CTA_STATS_DELETE_LIST,
  CTA_STATS_DROP,
  CTA_STATS_EARLY_DROP,
  CTA_STATS_ERROR,
  CTA_STATS_FOUND,
  CTA_STATS_GLOBAL_ENTRIES,
  CTA_STATS_GLOBAL_MAX_ENTRIES,
  CTA_STATS_IGNORE,
  CTA_STATS_INSERT,
  CTA_STATS_INSERT_FAILED,
  CTA_STATS_INVALID,
  CTA_STATS_NEW,
  CTA_STATS_SEARCH_RESTART,
  CTA_STATS_SEARCHED,
} from './constants.js';

/** One CPU's conntrack counters (IPCTNL_MSG_CT_GET_STATS_CPU). Counters the
 * kernel did not send (older kernels, or ones no longer maintained) are absent. */
export interface CpuStats {
  cpu: number;
  searched?: number;
  found?: number;
  new?: number;
  invalid?: number;
  ignore?: number;
  delete?: number;
  deleteList?: number;
  insert?: number;
  insertFailed?: number;
  drop?: number;
  earlyDrop?: number;
  error?: number;
  searchRestart?: number;
  clashResolve?: number;
  chainTooLong?: number;
  /** Attribute types this library does not know yet, by number. */
  unknown?: Record<number, number>;
}

export interface GlobalStats {
  entries: number;
  maxEntries?: number;
}

const cpuFields: Record<number, keyof Omit<CpuStats, 'cpu' | 'unknown'>> = {
  [CTA_STATS_SEARCHED]: 'searched',
  [CTA_STATS_FOUND]: 'found',
  [CTA_STATS_NEW]: 'new',
  [CTA_STATS_INVALID]: 'invalid',
  [CTA_STATS_IGNORE]: 'ignore',
  [CTA_STATS_DELETE]: 'delete',
  [CTA_STATS_DELETE_LIST]: 'deleteList',
  [CTA_STATS_INSERT]: 'insert',
  [CTA_STATS_INSERT_FAILED]: 'insertFailed',
  [CTA_STATS_DROP]: 'drop',
  [CTA_STATS_EARLY_DROP]: 'earlyDrop',
  [CTA_STATS_ERROR]: 'error',
  [CTA_STATS_SEARCH_RESTART]: 'searchRestart',
  [CTA_STATS_CLASH_RESOLVE]: 'clashResolve',
  [CTA_STATS_CHAIN_TOOLONG]: 'chainTooLong',
};

/** Decodes one per-CPU stats message; the CPU id is nfgenmsg.res_id. */
export function decodeCpuStats(msg: NetlinkMessage): CpuStats {
  const stats: CpuStats = { cpu: decodeNfGenMsg(msg).resId };
  const ad: AttributeReader = nfAttributes(msg);
  while (ad.next()) {
    const field = cpuFields[ad.type];
    if (field) stats[field] = ad.u32be();
    else if (ad.valueLength === 4) (stats.unknown ??= {})[ad.type] = ad.u32be();
  }
  return stats;
}

export function decodeGlobalStats(msg: NetlinkMessage): GlobalStats {
  const stats: GlobalStats = { entries: 0 };
  const ad = nfAttributes(msg);
  while (ad.next()) {
    if (ad.type === CTA_STATS_GLOBAL_ENTRIES) stats.entries = ad.u32be();
    else if (ad.type === CTA_STATS_GLOBAL_MAX_ENTRIES) stats.maxEntries = ad.u32be();
  }
  return stats;
}
