/**
 * Whole-collection helpers over the paged methods: no frame may exceed
 * MAX_FRAME_BYTES, so lists travel MAX_PAGE items at a time. Used by the CLI
 * and (later) Electron main; they need only `call`.
 */
import type { IpcClient } from './client.js';
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

/**
 * Imports any number of rules. The first page goes with `mode` (so
 * `replace` clears the old rules once), the rest with `merge`. Not atomic
 * across pages: an error part-way leaves the pages before it imported.
 */
export async function importRules(
  client: Caller,
  rules: readonly RuleInput[],
  mode: ImportMode,
): Promise<{ added: number; removed: number }> {
  let added = 0;
  let removed = 0;
  let offset = 0;
  do {
    const page = rules.slice(offset, offset + MAX_PAGE);
    const r = await client.call('rules.import', {
      rules: page,
      mode: offset === 0 ? mode : 'merge',
    });
    added += r.added;
    removed += r.removed;
    offset += MAX_PAGE;
  } while (offset < rules.length);
  return { added, removed };
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
