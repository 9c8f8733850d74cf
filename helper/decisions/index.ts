/** Rules, matching, the rule store, prompts and the decision engine (docs/rules.md). */
export * from './errors.js';
export * from './matcher.js';
export { matchForScope, normalizeHost } from '../protocol/rules.js';
export * from './liveness.js';
export * from './ruleset.js';
export * from './import.js';
export * from './store.js';
export {
  MIGRATIONS,
  RULES_VERSION,
  RulesDocument,
  migrate,
  type Migration,
} from './rules-document.js';
export * from './prompts.js';
export * from './engine.js';
