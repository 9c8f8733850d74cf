/**
 * Whole-collection helpers over the paged methods: no frame may exceed
 * MAX_FRAME_BYTES, so lists travel MAX_PAGE items at a time. Used by the CLI;
 * they need only `call`, so any IpcClient can use them.
 */
import type { IpcClient } from './client.js';
import { IpcError } from './errors.js';
import { MAX_PAGE, type HistoryQuery, type ImportMode, type RulesDocument } from './messages.js';
import type { HistoryEntry, Rule, RuleInput } from './model.js';

export type Caller = Pick<IpcClient, 'call'>;

/** Every rule, in precedence order. */
export async function listAllRules(client: Caller): Promise<Rule[]> {
  const rules: Rule[] = [];
  for (;;) {
    const page = await client.call('rules.list', { offset: rules.length, limit: MAX_PAGE });
    rules.push(...page.rules);
    if (page.rules.length === 0 || rules.length >= page.total) return rules;
  }
}

/** The persistent rules as a rules document (the export file format). */
export async function exportAllRules(client: Caller): Promise<RulesDocument> {
  const rules: RuleInput[] = [];
  for (;;) {
    const page = await client.call('rules.export', { offset: rules.length, limit: MAX_PAGE });
    rules.push(...page.rules);
    if (page.rules.length === 0 || rules.length >= page.total) break;
  }
  return { format: 'portcullis-rules', version: 1, rules };
}

/** What an import did: rules added, duplicates skipped, old rules dropped by a replace. */
export interface ImportOutcome {
  added: number;
  skipped: number;
  removed: number;
}

/** Page size in JSON bytes: well under MAX_FRAME_BYTES, whatever the notes hold. */
const IMPORT_PAGE_BYTES = 512 * 1024;

/**
 * Imports any number of rules, all or nothing: the helper stages the pages
 * (checking every rule as rules.add does), then applies them in one write at
 * the commit. A refused rule is named by its position in `rules` (from 1) in
 * the error; the helper's rules are then exactly as before.
 */
export async function importRules(
  client: Caller,
  rules: readonly unknown[],
  mode: ImportMode,
): Promise<ImportOutcome> {
  let staging: string;
  try {
    ({ staging } = await client.call('rules.importBegin', { total: rules.length }));
  } catch (error) {
    if (error instanceof IpcError && error.code === 'unknown-method') {
      throw new Error(
        'this helper is too old to import rules all or nothing (protocol 1.3 needed): update and restart it',
        { cause: error },
      );
    }
    throw error;
  }
  try {
    let offset = 0;
    while (offset < rules.length) {
      const page = nextPage(rules, offset);
      await client.call('rules.importPage', { staging, offset, rules: page });
      offset += page.length;
    }
    return await client.call('rules.importCommit', { staging, mode });
  } catch (error) {
    // The first error is the one to report. A refused page or commit has
    // already ended the staging (the abort finds nothing), and the helper
    // drops a forgotten one when this client disconnects.
    await client.call('rules.importAbort', { staging }).catch(() => undefined);
    throw error;
  }
}

/** The rules from `offset` that fit one page (at least one). */
function nextPage(rules: readonly unknown[], offset: number): unknown[] {
  const page: unknown[] = [];
  let bytes = 0;
  for (let i = offset; i < rules.length && page.length < MAX_PAGE; i++) {
    const size = JSON.stringify(rules[i])?.length ?? 4;
    if (page.length > 0 && bytes + size > IMPORT_PAGE_BYTES) break;
    page.push(rules[i]);
    bytes += size + 1;
  }
  return page;
}

/** Up to `limit` history entries, newest first, paging with beforeSeq. */
export async function queryHistory(
  client: Caller,
  query: Omit<HistoryQuery, 'beforeSeq'>,
): Promise<{ entries: HistoryEntry[]; more: boolean }> {
  const entries: HistoryEntry[] = [];
  let beforeSeq: number | undefined;
  for (;;) {
    const want = Math.min(MAX_PAGE, query.limit - entries.length);
    const page = await client.call('history.query', {
      ...query,
      limit: want,
      ...(beforeSeq !== undefined ? { beforeSeq } : {}),
    });
    entries.push(...page.entries);
    const last = page.entries.at(-1);
    if (!page.more || !last) return { entries, more: page.more };
    if (entries.length >= query.limit) return { entries, more: true };
    beforeSeq = last.seq;
  }
}
