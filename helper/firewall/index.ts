export * from './errors.js';
export * from './config.js';
export * from './exec.js';
export * from './detect.js';
export * from './iptables.js';
export * from './nft.js';
export * from './rules.js';
export * from './watch.js';
