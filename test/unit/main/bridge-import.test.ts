// The UI's import path: the bridge (src-main/node/bridge.ts) over a real
// IpcServer serving the helper's real service and rule store. An import is
// all or nothing and names a refused rule by its position in the file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ImportStaging } from '../../../helper/daemon/import-staging.js';
import { RuleStore } from '../../../helper/decisions/index.js';
import type { RuleInput } from '../../../helper/protocol/model.js';
import { ApiError, type RulesDocument } from '../../../src-main/common/api.js';
import { HelperBridge } from '../../../src-main/node/bridge.js';
import { startHarness, type Harness } from '../../support/ipc-harness.js';
import { realRulesService } from '../../support/real-rules-service.js';

let h: Harness;
let dir: string;
let rules: RuleStore;
let staging: ImportStaging;
let bridge: HelperBridge;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pcl-bridge-import-'));
  rules = await RuleStore.open({ dir, isAlive: () => true });
  let service;
  ({ service, staging } = realRulesService(rules));
  h = await startHarness({ service });
  bridge = new HelperBridge();
  await bridge.attach(await h.client());
  bridge.setLink({ connection: 'connected', error: null });
});
afterEach(async () => {
  await h.stop();
  await rules.close();
  rmSync(dir, { recursive: true, force: true });
});

const rule = (i: number): RuleInput => ({
  action: 'deny',
  match: { address: `10.${i >> 8}.${i & 255}.1`, protocol: 'udp' },
  duration: { kind: 'forever' },
});

function doc(list: RuleInput[]): RulesDocument {
  return { format: 'portcullis-rules', version: 1, rules: list };
}

describe('HelperBridge importRules', () => {
  it('is all or nothing, replace or not, and names the refused rule by position', async () => {
    for (let i = 0; i < 55; i++) await rules.add(rule(i));
    const before = await bridge.api.exportRules();
    const list = Array.from({ length: 2000 }, (_, i) => rule(1000 + i));
    list[1499] = { ...rule(0), match: { address: '10.0.0.1/99' } };
    for (const replace of [true, false]) {
      const e = await bridge.api.importRules({ document: doc(list), replace }).catch((x) => x);
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).code).toBe('invalid-params');
      expect((e as ApiError).message).toMatch(/^rule 1500: .*prefix \/99/);
      expect(await bridge.api.exportRules()).toEqual(before);
      expect(staging.size).toBe(0);
    }
  });

  it('skips duplicates and says how many', async () => {
    for (let i = 0; i < 4; i++) await rules.add(rule(i));
    const exported = await bridge.api.exportRules();
    expect(await bridge.api.importRules({ document: exported, replace: false })).toEqual({
      imported: 0,
      skipped: 4,
      removed: 0,
    });
    expect((await bridge.api.listRules()).length).toBe(4);
    expect(await bridge.api.importRules({ document: exported, replace: true })).toEqual({
      imported: 4,
      skipped: 0,
      removed: 4,
    });
  });
});
