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
export {
  ConntrackExpectations,
  decodeExpectation,
  decodeExpectationEvent,
  type Expectation,
  type ExpectationSpec,
  type ExpectationKey,
} from './expect.js';
export { flowMatcher } from './filter.js';
