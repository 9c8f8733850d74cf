export { Conntrack, type ConntrackOptions } from './client.js';
export type { CpuStats, GlobalStats } from './stats.js';
export * as constants from './constants.js';
