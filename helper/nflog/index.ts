export * from './constants.js';
export * from './types.js';
export * from './errors.js';
export {
  decodeLoggedPacket,
  decodeLogAttributes,
  NFULNL_PACKET_TYPE,
  type DecodeLogOptions,
} from './decode.js';
export * from './encode.js';
export * from './log.js';
export * from './stats.js';
