export * from './errors.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './tcp.js';
export * from './udp.js';
export * from './icmp.js';
export * from './parse.js';
export * from './checksum.js';
