/** The protocol module: everything a client (the CLI, Electron main) needs,
 * and the only part of helper/ that src-main may import. */
export * from './model.js';
export * from './messages.js';
export * from './errors.js';
export * from './defaults.js';
export {
  IpcClient,
  socketAnswers,
  type CallArgs,
  type CallOptions,
  type ConnectOptions,
} from './client.js';
export {
  exportAllRules,
  importRules,
  listAllRules,
  queryHistory,
  type Caller,
  type ImportOutcome,
} from './paging.js';
export {
  FrameDecoder,
  FrameError,
  encodeFrame,
  encodeJsonFrame,
  parseFramePayload,
} from './framing.js';
