export {
  SockDiag,
  exactSockId,
  matchScore,
  type DestroyTarget,
  type FindOptions,
  type LookupOptions,
  type SockDiagOptions,
  type SocketFilter,
} from './sock-diag.js';
export {
  AttributionArgumentError,
  decodeDiagMessage,
  encodeDiagRequest,
  type DiagRequest,
  type SockId,
} from './diag-codec.js';
export { PasswdCache, ProcFormatError, ProcReader, type ProcReaderOptions } from './procfs.js';
export {
  SocketOwnerIndex,
  type OwnerLookupHint,
  type SocketOwner,
  type SocketOwnerIndexOptions,
  type SocketOwnerIndexStats,
} from './owners.js';
export {
  Attributor,
  type AttributeRequest,
  type AttributorOptions,
  type AttributorStats,
} from './attributor.js';
export {
  KernelFirstAttributor,
  type KernelFirstOptions,
  type KernelFirstStats,
  type OwnerAttribution,
} from './kernel-first.js';
export { DEFAULT_MAX_ANCESTORS, procAncestors, type AncestryOptions } from './ancestry.js';
export * from './proc-parse.js';
export { CgroupIndex, findCgroup2Root, type CgroupIndexOptions } from './cgroups.js';
export type * from './types.js';
export { KernelOwners, refusalReason, type KernelOwnersOptions } from './ebpf/kernel-owners.js';
export type * from './ebpf/types.js';
export * as constants from './constants.js';
