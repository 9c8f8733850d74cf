/** The connection history: rotated JSON-lines log with an in-memory query window (docs/history.md). */
export * from './errors.js';
export * from './segments.js';
export * from './store.js';
export type * from './types.js';
