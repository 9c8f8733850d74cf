export { Conntrack, type ConntrackOptions } from './client.js';
export { ConntrackTable } from './table.js';
export { decodeFlow, labelBits, statusFlagsOf } from './decode.js';
export { ConntrackArgumentError, invertTuple } from './encode.js';
export type { CpuStats, GlobalStats } from './stats.js';
export type * from './types.js';
export * as constants from './constants.js';
export {
  ConntrackEvents,
  eventTypeOf,
  type ConntrackEventsOptions,
  type LostInfo,
} from './events.js';
export {
  ConntrackMirror,
  flowKey,
  type ConntrackMirrorOptions,
  type MirrorChange,
  type ResyncResult,
} from './mirror.js';
export { ConntrackExpectations, type ExpectationSpec, type ExpectationKey } from './expect.js';
export { decodeExpectation, decodeExpectationEvent, type Expectation } from './expect-decode.js';
export { flowMatcher } from './filter.js';
