export * from './constants.js';
export * from './errors.js';
export * from './wire.js';
export * from './answers.js';
export * from './cache.js';
export * from './snooper.js';
