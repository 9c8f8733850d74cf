/**
 * The rules file's format (STATEDIR/rules.json): the document schema, the
 * version this code writes, and the migrations that bring an older document
 * up to it. Both the store's load and a rules import read documents here.
 */
import * as v from 'valibot';
import { Rule as RuleSchema, type Rule } from '../protocol/model.js';
import { DecisionsError } from './errors.js';
import { compileMatch } from './matcher.js';

/** The version this code writes. Bump it with a migration from the previous one. */
export const RULES_VERSION = 1;

/** Turns a document of version n into version n + 1 (plain JSON in, plain JSON out). */
export type Migration = (doc: { version: number; [key: string]: unknown }) => {
  version: number;
  [key: string]: unknown;
};

/**
 * Migrations keyed by the version they upgrade from. Version 1 is the first
 * format, so the table is empty; a file older than the oldest entry has no
 * path forward and is refused (UNSUPPORTED_VERSION) rather than guessed at.
 */
export const MIGRATIONS: ReadonlyMap<number, Migration> = new Map();

export const RulesDocument = v.object({
  version: v.literal(RULES_VERSION),
  rules: v.array(RuleSchema),
});
export type RulesDocument = v.InferOutput<typeof RulesDocument>;

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Runs the migration chain; throws NEWER_VERSION / UNSUPPORTED_VERSION / CORRUPT. */
export function migrate(
  raw: unknown,
  migrations: ReadonlyMap<number, Migration>,
  path: string,
): unknown {
  if (!isObject(raw) || typeof raw.version !== 'number' || !Number.isInteger(raw.version)) {
    throw new DecisionsError('CORRUPT', `${path}: not a rules document (no integer "version")`, {
      path,
    });
  }
  const found = raw.version;
  if (found > RULES_VERSION) {
    throw new DecisionsError(
      'NEWER_VERSION',
      `${path}: version ${found} was written by a newer Portcullis (this one reads up to ${RULES_VERSION}); the file is left untouched`,
      { path, version: found },
    );
  }
  let doc = raw as { version: number; [key: string]: unknown };
  while (doc.version < RULES_VERSION) {
    const step = migrations.get(doc.version);
    if (!step) {
      throw new DecisionsError(
        'UNSUPPORTED_VERSION',
        `${path}: version ${found} cannot be migrated to ${RULES_VERSION} (no migration from ${doc.version}); the file is left untouched`,
        { path, version: found },
      );
    }
    const next = step(doc);
    if (next.version !== doc.version + 1) {
      throw new Error(`migration from version ${doc.version} produced version ${next.version}`);
    }
    doc = next;
  }
  return doc;
}

/** Validates a document's rules; throws `code` with the first problem. */
export function validateDocument(
  doc: unknown,
  code: 'CORRUPT' | 'INVALID_IMPORT',
  path: string,
): Rule[] {
  const parsed = v.safeParse(RulesDocument, doc);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue ? v.getDotPath(issue) : null;
    throw new DecisionsError(
      code,
      `${path}: invalid rules document${where ? ` at ${where}` : ''}: ${issue?.message ?? 'unknown'}`,
      { path },
    );
  }
  for (const rule of parsed.output.rules) {
    try {
      compileMatch(rule.match);
    } catch (e) {
      throw new DecisionsError(code, `${path}: rule ${rule.id}: ${(e as Error).message}`, {
        path,
        cause: e,
      });
    }
  }
  return parsed.output.rules;
}
