export * from './constants.js';
export * from './types.js';
export * from './errors.js';
export {
  decodeQueuedPacket,
  decodePacketAttributes,
  ctInfoName,
  skbInfoOf,
  NFQNL_PACKET_TYPE,
} from './decode.js';
export * from './encode.js';
export { OutstandingTable, type VerdictOp, type PendingEntry } from './outstanding.js';
export {
  parseQueueProcStats,
  readQueueStats,
  NFQUEUE_PROC_PATH,
  type ReadQueueStatsOptions,
} from './stats.js';
export * from './queue.js';
export { NfQueueGroup, type NfQueueGroupOptions } from './group.js';
