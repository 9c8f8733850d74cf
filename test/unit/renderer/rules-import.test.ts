// @vitest-environment happy-dom
// The renderer's rules import (stores/rules.ts) over the in-memory API double,
// which behaves as the helper does: all or nothing, duplicates skipped.
import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RuleInput } from '../../../src-main/common/api.js';
import { MemoryPortcullis } from '../../support/memory-api.js';
import { useRulesStore } from '../../../src-renderer/src/stores/rules.js';

beforeEach(() => setActivePinia(createPinia()));

const rule = (i: number): RuleInput => ({
  action: 'allow',
  match: { address: `10.${i >> 8}.${i & 255}.1`, port: { from: 53, to: 53 } },
  duration: { kind: 'forever' },
});

const file = (rules: unknown[]) =>
  JSON.stringify({ format: 'portcullis-rules', version: 1, rules });

describe('rules store import', () => {
  it('is all or nothing and names the refused rule by its position in the file', async () => {
    const api = new MemoryPortcullis();
    const store = useRulesStore();
    store.attach(api);
    for (let i = 0; i < 55; i++) await api.addRule(rule(i));
    await store.load();
    const before = store.rules;
    const list: unknown[] = Array.from({ length: 2000 }, (_, i) => rule(1000 + i));
    list[1499] = { ...rule(0), match: { address: '10.256.0.1' } };
    for (const replace of [true, false]) {
      expect(await store.importText(file(list), replace)).toBeNull();
      expect(store.error).toMatch(/^rule 1500: "10\.256\.0\.1" is not an IPv4 or IPv6 address/u);
      expect(store.rules).toEqual(before);
      expect(await api.listRules()).toEqual(before);
    }
  });

  it('skips duplicates of kept rules and of earlier rules of the file', async () => {
    const api = new MemoryPortcullis();
    const store = useRulesStore();
    store.attach(api);
    for (let i = 0; i < 4; i++) await api.addRule(rule(i));
    const doc = await store.exportDocument();
    expect(await store.importText(JSON.stringify(doc), false)).toEqual({
      imported: 0,
      skipped: 4,
      removed: 0,
    });
    expect(store.rules).toHaveLength(4);
    expect(await store.importText(file([rule(9), rule(9), rule(1)]), false)).toEqual({
      imported: 1,
      skipped: 2,
      removed: 0,
    });
    expect(store.rules).toHaveLength(5);
  });
});
