export { IpcServer, type ClientInfo } from './server.js';
export type { IpcServerOptions, ServerLogEntry, LogLevel } from './options.js';
export type { HelperService, CallContext, MethodHandler, ServiceMethod } from './service.js';
export { generateToken, tokenMatches } from './auth.js';
export {
  DEFAULT_SOCKET_PATH,
  DEFAULT_TOKEN_PATH,
  DIRECTORY_MODE,
  SOCKET_MODE,
  TOKEN_MODE,
  GROUP_TOKEN_MODE,
  SocketPathError,
  writeTokenFile,
} from './paths.js';
export { resolveAccessGroup, AccessGroupError, type AccessGroup } from './groups.js';
