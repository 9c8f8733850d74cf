// `portcullis rules import` against the helper's real service and rule store
// (helper/daemon/service.ts over a RuleStore in a temp dir) behind a real
// IpcServer: an import is all or nothing, names a refused rule by its
// position in the file, and skips duplicates.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../../helper/cli.js';
import type { ImportStaging } from '../../../helper/daemon/import-staging.js';
import { RuleStore } from '../../../helper/decisions/index.js';
import type { RuleInput } from '../../../helper/protocol/model.js';
import { TOKEN, startHarness, until, type Harness } from '../../support/ipc-harness.js';
import { realRulesService } from '../../support/real-rules-service.js';

let h: Harness;
let rules: RuleStore;
let staging: ImportStaging;
let conn: string[];
let stateDir: string;

beforeEach(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'pcl-import-'));
  rules = await RuleStore.open({ dir: stateDir, isAlive: () => true });
  let service;
  ({ service, staging } = realRulesService(rules));
  h = await startHarness({ service });
  const tokenFile = join(h.dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o400 });
  conn = ['--socket', h.path, '--token-file', tokenFile];
});
afterEach(async () => {
  await h.stop();
  await rules.close();
  rmSync(stateDir, { recursive: true, force: true });
});

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, {
    stdout: (s: string) => void out.push(s),
    stderr: (s: string) => void err.push(s),
  });
  return { code, out: out.join(''), err: err.join('') };
}

const rule = (i: number, over: Partial<RuleInput> = {}): RuleInput => ({
  action: i % 2 === 0 ? 'allow' : 'deny',
  match: { host: `h${i}.example`, port: { from: 443, to: 443 } },
  duration: { kind: 'forever' },
  ...over,
});

/** 55 persistent rules (and a session rule, which no import touches), exported by the CLI. */
async function exportFiftyFive(): Promise<{ file: string; text: string }> {
  for (let i = 0; i < 55; i++) await rules.add(rule(i, { note: `old ${i}` }));
  await rules.add({ action: 'deny', match: { host: 's.example' }, duration: { kind: 'session' } });
  const file = join(h.dir, 'old.json');
  const exp = await run(['rules', 'export', ...conn, file]);
  expect(exp.code, exp.err).toBe(0);
  const text = readFileSync(file, 'utf8');
  expect((JSON.parse(text) as { rules: unknown[] }).rules).toHaveLength(55);
  return { file, text };
}

/** 2,000 new rules; rule 1500 (position in the file, from 1) has an address the helper refuses. */
function twoThousandWithBadAddress(): string {
  const list = Array.from({ length: 2000 }, (_, i) =>
    rule(1000 + i, { match: { address: `10.${i >> 8}.${i & 255}.1`, protocol: 'tcp' } }),
  );
  // Passes the CLI's schema check (digits and dots) but is no IPv4 address.
  list[1499] = rule(0, { match: { address: '10.999.0.1', protocol: 'tcp' } });
  const file = join(h.dir, 'new.json');
  writeFileSync(file, JSON.stringify({ format: 'portcullis-rules', version: 1, rules: list }));
  return file;
}

async function exportedNow(): Promise<string> {
  const r = await run(['rules', 'export', ...conn]);
  expect(r.code, r.err).toBe(0);
  return r.out;
}

describe('portcullis rules import: all or nothing', () => {
  for (const replace of [true, false]) {
    it(`a rule the helper refuses leaves every rule as it was (${replace ? '--replace' : 'merge'})`, async () => {
      const { text } = await exportFiftyFive();
      const before = rules.list();
      const onDisk = readFileSync(join(stateDir, 'rules.json'), 'utf8');
      const file = twoThousandWithBadAddress();

      const r = await run(['rules', 'import', ...conn, ...(replace ? ['--replace'] : []), file]);
      expect(r.code, r.err).toBe(1);
      // Named by its position in the file, not by an id the helper made up.
      expect(r.err).toMatch(/invalid-params: rule 1500: .*10\.999\.0\.1/);
      expect(r.err).toMatch(/nothing was imported/);

      expect(rules.list()).toEqual(before);
      expect(rules.size).toBe(56);
      expect(await exportedNow()).toBe(text);
      expect(readFileSync(join(stateDir, 'rules.json'), 'utf8')).toBe(onDisk);
      expect(staging.size).toBe(0);
      expect(staging.stagedRules).toBe(0);
    });
  }

  it('imports 2,000 rules in one write once the file is good', async () => {
    await exportFiftyFive();
    const file = twoThousandWithBadAddress();
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { rules: RuleInput[] };
    doc.rules[1499] = rule(0, { match: { address: '10.99.0.1', protocol: 'tcp' } });
    writeFileSync(file, JSON.stringify(doc));
    const writes: number[] = [];
    rules.onChange((c) => writes.push(c.kind === 'reset' ? 1 : 0));

    const r = await run(['rules', 'import', ...conn, '--replace', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe('imported 2000 rule(s), skipped 0 duplicate(s), removed 55\n');
    expect(writes).toEqual([1]);
    expect(rules.size).toBe(2001); // and the session rule
    const reopened = await RuleStore.open({ dir: stateDir, isAlive: () => true });
    expect(reopened.size).toBe(2000);
    await reopened.close();
  });
});

describe('portcullis rules import: duplicates', () => {
  it('exporting 4 rules and importing them back keeps 4 and says so', async () => {
    for (let i = 0; i < 4; i++) await rules.add(rule(i));
    const file = join(h.dir, 'four.json');
    expect((await run(['rules', 'export', ...conn, file])).code).toBe(0);

    const again = await run(['rules', 'import', ...conn, file]);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toBe('imported 0 rule(s), skipped 4 duplicate(s)\n');
    expect(rules.size).toBe(4);

    // The same match written differently, an earlier rule of the file, and a
    // different note or enabled flag are the same rule; another action is not.
    writeFileSync(
      file,
      JSON.stringify([
        rule(0, { match: { host: 'H0.Example.', port: { from: 443, to: 443 } }, note: 'x' }),
        rule(9),
        rule(9, { enabled: false }),
        rule(1, { action: 'allow' }),
        rule(2, { duration: { kind: 'minutes', minutes: 5 } }),
      ]),
    );
    const mixed = await run(['rules', 'import', ...conn, file]);
    expect(mixed.err).toBe('imported 3 rule(s), skipped 2 duplicate(s)\n');
    expect(rules.size).toBe(7);
  });
});

describe('staged imports over the socket', () => {
  it('are dropped when their client disconnects, and are no other client’s', async () => {
    const a = await h.client();
    const b = await h.client();
    const { staging: id } = await a.call('rules.importBegin', { total: 2 });
    await a.call('rules.importPage', { staging: id, offset: 0, rules: [rule(1)] });
    await expect(
      b.call('rules.importCommit', { staging: id, mode: 'replace' }),
    ).rejects.toMatchObject({ code: 'not-found' });
    expect(staging.stagedRules).toBe(1);
    await a.close();
    await until(() => staging.size === 0, 5000, 'the staging to be dropped');
    expect(staging.stagedRules).toBe(0);
    expect(rules.size).toBe(0);
  });

  it('rules.import (one call) skips duplicates and is all or nothing too', async () => {
    const c = await h.client();
    await rules.add(rule(1));
    expect(
      await c.call('rules.import', { rules: [rule(1), rule(2), rule(2)], mode: 'merge' }),
    ).toEqual({ added: 1, skipped: 2, removed: 0 });
    const bad = { ...rule(3), match: { address: '1.2.3.4/40' } };
    await expect(
      c.call('rules.import', { rules: [rule(4), bad], mode: 'replace' }),
    ).rejects.toMatchObject({
      code: 'invalid-params',
      message: expect.stringMatching(/^rule 2: /),
    });
    expect(rules.size).toBe(2);
  });
});
