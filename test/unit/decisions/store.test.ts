import fc from 'fast-check';
import * as fsp from 'node:fs/promises';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DecisionsError,
  RULES_VERSION,
  RuleStore,
  type Migration,
  type RuleStoreOptions,
} from '../../../helper/decisions/index.js';
import type { StoreFs } from '../../../helper/common/atomic-write.js';
import type { RuleInput } from '../../../helper/protocol/model.js';
import { ManualClock, req } from './fixtures.js';

let dir: string;
let clock: ManualClock;
let ids = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-rules-'));
  clock = new ManualClock();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const open = (over: RuleStoreOptions = {}) =>
  RuleStore.open({ dir, clock, isAlive: () => true, newId: () => `id${ids++}`, ...over });

const forever = (over: Partial<RuleInput> = {}): RuleInput => ({
  action: 'allow',
  match: { exe: '/usr/bin/curl', host: '*.example.com' },
  duration: { kind: 'forever' },
  ...over,
});

async function fileDoc(): Promise<{ version: number; rules: { id: string }[] }> {
  return JSON.parse(await readFile(join(dir, 'rules.json'), 'utf8'));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DecisionsError);
    return (e as DecisionsError).code;
  }
  return 'no error';
}

describe('RuleStore persistence', () => {
  it('writes rules.json {version, rules}, mode 0600, and reads it back', async () => {
    const s = await open();
    const a = await s.add(forever({ note: 'first' }));
    const b = await s.add(forever({ action: 'deny', duration: { kind: 'minutes', minutes: 5 } }));
    expect(b.expires).toBe(clock.now() + 5 * 60_000);
    const doc = await fileDoc();
    expect(doc.version).toBe(RULES_VERSION);
    expect(doc.rules.map((r) => r.id)).toEqual([a.id, b.id]);
    expect((await stat(join(dir, 'rules.json'))).mode & 0o777).toBe(0o600);
    await s.close();
    const again = await open();
    expect(again.list()).toEqual([a, b]);
    expect(again.loadProblem).toBeNull();
  });

  it('keeps session rules in memory only; process rules on disk but out of exports', async () => {
    const s = await open({ bootId: 'boot-a' });
    await s.add(forever({ duration: { kind: 'session' } }));
    const proc = await s.add(forever({ duration: { kind: 'process', pid: 1, startTime: 2 } }));
    const kept = await s.add(forever());
    expect(s.size).toBe(3);
    expect((await fileDoc()).rules.map((r) => r.id)).toEqual([proc.id, kept.id]);
    expect(s.export().rules.map((r) => r.id)).toEqual([kept.id]);
    await s.close();
    expect((await open({ bootId: 'boot-a' })).list().map((r) => r.id)).toEqual([proc.id, kept.id]);
  });

  it('keeps a process rule across a restart only while (pid, start time) runs in the same boot', async () => {
    const s = await open({ bootId: 'boot-a' });
    const live = await s.add(forever({ duration: { kind: 'process', pid: 10, startTime: 5 } }));
    await s.add(forever({ duration: { kind: 'process', pid: 11, startTime: 5 } }));
    await s.close();
    const isAlive = (pid: number, start: number) => pid === 10 && start === 5;
    const again = await open({ bootId: 'boot-a', isAlive });
    expect(again.list().map((r) => r.id)).toEqual([live.id]);
    // The exited one is gone from the file too.
    expect((await fileDoc()).rules.map((r) => r.id)).toEqual([live.id]);
    await again.close();
    // Another boot: the same pid and start time name another process.
    expect((await open({ bootId: 'boot-b', isAlive })).size).toBe(0);
  });

  it('drops expired "minutes" rules at load', async () => {
    const s = await open();
    await s.add(forever({ duration: { kind: 'minutes', minutes: 1 } }));
    await s.add(forever());
    await s.close();
    clock.advance(61_000);
    expect((await open()).size).toBe(1);
  });

  it('round-trips random rules (property)', async () => {
    const arbInput: fc.Arbitrary<RuleInput> = fc.record(
      {
        enabled: fc.boolean(),
        action: fc.constantFrom('allow' as const, 'deny' as const),
        match: fc.record(
          {
            exe: fc.string({ maxLength: 20 }),
            uid: fc.nat(65535),
            host: fc.constantFrom('example.com', '*.example.org'),
            address: fc.constantFrom('10.0.0.0/8', '2001:db8::/32', '192.0.2.1'),
            port: fc.constant({ from: 1, to: 2 }),
            protocol: fc.constantFrom('tcp' as const, 'udp' as const),
          },
          { requiredKeys: [] },
        ),
        duration: fc.oneof(
          fc.constant({ kind: 'forever' as const }),
          fc
            .integer({ min: 1, max: 1000 })
            .map((minutes) => ({ kind: 'minutes' as const, minutes })),
        ),
        note: fc.string({ maxLength: 30 }),
      },
      { requiredKeys: ['action', 'match', 'duration'] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(arbInput, { maxLength: 12 }), async (inputs) => {
        // A directory per run: nothing is shared with other tests, even after a timeout.
        const own = await mkdtemp(join(tmpdir(), 'portcullis-rules-prop-'));
        try {
          const s = await open({ dir: own });
          for (const i of inputs) await s.add(i);
          const before = s.list();
          await s.close();
          const again = await open({ dir: own });
          expect(again.list()).toEqual(before);
          await again.close();
        } finally {
          await rm(own, { recursive: true, force: true });
        }
      }),
      { numRuns: 25 },
    );
  }, 60_000);

  it('a crash between write and rename leaves the old file intact', async () => {
    const s = await open();
    await s.add(forever());
    const before = await readFile(join(dir, 'rules.json'), 'utf8');
    await s.close();

    // The rename never happens: the write of the tmp file "crashed" before it.
    const crashing: StoreFs = {
      ...fsp,
      rename: (() =>
        Promise.reject(new Error('simulated crash before rename'))) as StoreFs['rename'],
    };
    const broken = await open({ fs: crashing });
    expect(await codeOf(broken.add(forever({ action: 'deny' })))).toBe('IO');
    expect(await readFile(join(dir, 'rules.json'), 'utf8')).toBe(before);
    expect((await readdir(dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);

    // A real crash leaves the tmp file behind: the next open removes it and loads the old file.
    await writeFile(join(dir, 'rules.json.tmp-999-deadbeef'), '{"version":1,"rules":[');
    const reopened = await open();
    expect(reopened.size).toBe(1);
    expect(await readdir(dir)).toEqual(['rules.json']);
  });

  it('moves a corrupt file aside and starts with no rules', async () => {
    await writeFile(join(dir, 'rules.json'), '{"version":1,"rules":[{"id":');
    const s = await open();
    expect(s.size).toBe(0);
    expect(s.loadProblem?.code).toBe('CORRUPT');
    const moved = s.loadProblem?.details.movedTo ?? '';
    expect(moved).toMatch(/rules\.json\.corrupt-\d{4}-\d\d-\d\dT/u);
    expect(await readFile(moved, 'utf8')).toBe('{"version":1,"rules":[{"id":');
    expect((await readdir(dir)).includes('rules.json')).toBe(false);
    await s.add(forever());
    expect((await fileDoc()).rules).toHaveLength(1);
  });

  it('two corrupt files moved aside within one millisecond both survive', async () => {
    // The clock stands still: both moves happen at the same time stamp.
    await writeFile(join(dir, 'rules.json'), 'first damaged');
    const first = (await open()).loadProblem?.details.movedTo ?? '';
    await writeFile(join(dir, 'rules.json'), 'second damaged');
    const second = (await open()).loadProblem?.details.movedTo ?? '';
    expect(second).not.toBe(first);
    expect(await readFile(first, 'utf8')).toBe('first damaged');
    expect(await readFile(second, 'utf8')).toBe('second damaged');
    expect((await readdir(dir)).includes('rules.json')).toBe(false);
  });

  it.each([
    ['an invalid rule', { version: 1, rules: [{ id: 'x' }] }],
    [
      'a bad CIDR',
      {
        version: 1,
        rules: [
          {
            id: 'x',
            enabled: true,
            action: 'allow',
            match: { address: '10.0.0.0/40' },
            duration: { kind: 'forever' },
            created: 0,
            expires: null,
            hits: 0,
            lastHit: null,
          },
        ],
      },
    ],
    ['no version', { rules: [] }],
    ['an array', []],
  ])('treats %s as corrupt', async (_name, doc) => {
    await writeFile(join(dir, 'rules.json'), JSON.stringify(doc));
    const s = await open();
    expect(s.loadProblem?.code).toBe('CORRUPT');
    expect(s.size).toBe(0);
  });

  it('refuses a newer version with a typed error and leaves the file untouched', async () => {
    const text = JSON.stringify({ version: RULES_VERSION + 1, rules: [], future: true });
    await writeFile(join(dir, 'rules.json'), text);
    expect(await codeOf(open())).toBe('NEWER_VERSION');
    expect(await readFile(join(dir, 'rules.json'), 'utf8')).toBe(text);
    expect(await readdir(dir)).toEqual(['rules.json']);
  });

  it('refuses an older version with no migration path, file untouched', async () => {
    const text = JSON.stringify({ version: 0, list: [] });
    await writeFile(join(dir, 'rules.json'), text);
    expect(await codeOf(open())).toBe('UNSUPPORTED_VERSION');
    expect(await readFile(join(dir, 'rules.json'), 'utf8')).toBe(text);
  });

  it('migrates an older version through the table, keeping a backup', async () => {
    // A hypothetical v0: {version: 0, list: [...]} with "verdict" instead of "action".
    const v0: Migration = (doc) => ({
      version: 1,
      rules: (doc.list as { verdict: string; [k: string]: unknown }[]).map(({ verdict, ...r }) => ({
        ...r,
        action: verdict,
      })),
    });
    const old = {
      version: 0,
      list: [
        {
          id: 'old1',
          enabled: true,
          verdict: 'deny',
          match: { host: 'example.com' },
          duration: { kind: 'forever' },
          created: 1,
          expires: null,
          hits: 3,
          lastHit: null,
        },
      ],
    };
    await writeFile(join(dir, 'rules.json'), JSON.stringify(old));
    const s = await open({ migrations: new Map([[0, v0]]) });
    expect(s.get('old1')?.action).toBe('deny');
    await s.flush();
    expect((await fileDoc()).version).toBe(1);
    expect(JSON.parse(await readFile(join(dir, 'rules.json.v0.bak'), 'utf8'))).toEqual(old);
  });
});

describe('RuleStore operations', () => {
  it('update, setEnabled and remove persist; unknown ids are NOT_FOUND', async () => {
    const s = await open();
    const r = await s.add(forever());
    const u = await s.update(r.id, { action: 'deny', note: 'edited' });
    expect(u).toMatchObject({ id: r.id, action: 'deny', note: 'edited', created: r.created });
    await s.setEnabled(r.id, false);
    expect(s.match(req())).toBeUndefined();
    expect((await fileDoc()).rules[0]).toMatchObject({ enabled: false, action: 'deny' });
    await s.remove(r.id);
    expect((await fileDoc()).rules).toEqual([]);
    expect(await codeOf(s.remove(r.id))).toBe('NOT_FOUND');
    expect(await codeOf(s.update('nope', {}))).toBe('NOT_FOUND');
    expect(() => s.insert(forever({ match: { address: 'bogus' } }))).toThrow(DecisionsError);
  });

  it('emits changes', async () => {
    const s = await open();
    const seen: string[] = [];
    s.onChange((c) => seen.push(c.kind));
    const r = await s.add(forever());
    await s.update(r.id, { action: 'deny' });
    await s.remove(r.id);
    await s.import({ version: 1, rules: [] }, { mode: 'merge' });
    expect(seen).toEqual(['added', 'updated', 'removed', 'reset']);
  });

  it('prune reports each rule it drops, and why', async () => {
    let alive = true;
    const s = await open({ isAlive: () => alive });
    const seen: unknown[] = [];
    s.onChange((c) => seen.push(c.kind === 'removed' ? [c.rule.id, c.reason] : c.kind));
    const m = await s.add(forever({ duration: { kind: 'minutes', minutes: 1 } }));
    const p = await s.add(forever({ duration: { kind: 'process', pid: 3, startTime: 4 } }));
    seen.length = 0;
    clock.advance(60_000);
    alive = false;
    await s.prune();
    expect(seen).toEqual([
      [m.id, 'expired'],
      [p.id, 'exited'],
    ]);
  });

  it('counts hits in memory and flushes them lazily', async () => {
    const s = await open({ hitFlushDelayMs: 5_000 });
    const r = await s.add(forever());
    expect(s.match(req())?.id).toBe(r.id);
    expect(s.match(req())?.hits).toBe(2);
    expect((await fileDoc()).rules[0]).toMatchObject({ hits: 0 });
    expect(clock.pending).toBe(1);
    clock.advance(5_000);
    await s.flush();
    expect((await fileDoc()).rules[0]).toMatchObject({ hits: 2, lastHit: clock.now() - 5_000 });
  });

  it('reports a failed background flush through onError', async () => {
    let fail = false;
    const flaky: StoreFs = {
      ...fsp,
      rename: ((a: string, b: string) =>
        fail ? Promise.reject(new Error('disk full')) : fsp.rename(a, b)) as StoreFs['rename'],
    };
    const s = await open({ fs: flaky, hitFlushDelayMs: 10 });
    await s.add(forever());
    fail = true;
    const errors: DecisionsError[] = [];
    s.onError((e) => errors.push(e));
    s.match(req());
    clock.advance(10);
    await vi.waitFor(() => expect(errors.map((e) => e.code)).toEqual(['IO']));
  });

  it('denyWith: drop is stored, reloaded, patched, exported and imported; absent means reject', async () => {
    const s = await open();
    const quiet = await s.add(forever({ action: 'deny', denyWith: 'drop' }));
    const loud = await s.add(forever({ action: 'deny', match: { host: 'example.net' } }));
    // An allow rule has no deny choice; "reject" is the default and is not stored.
    const allow = await s.add(forever({ denyWith: 'drop', match: { host: 'example.org' } }));
    const explicit = await s.add(
      forever({ action: 'deny', denyWith: 'reject', match: { port: { from: 1, to: 1 } } }),
    );
    expect([quiet, loud, allow, explicit].map((r) => r.denyWith)).toEqual([
      'drop',
      undefined,
      undefined,
      undefined,
    ]);
    await s.close();
    const again = await open();
    expect(again.get(quiet.id)?.denyWith).toBe('drop');
    expect(again.get(loud.id)).not.toHaveProperty('denyWith');
    expect((await again.update(loud.id, { denyWith: 'drop' })).denyWith).toBe('drop');
    expect((await again.update(quiet.id, { denyWith: 'reject' })).denyWith).toBeUndefined();
    expect((await again.update(loud.id, { note: 'kept' })).denyWith).toBe('drop');
    const doc = again.export();
    expect(doc.rules.find((r) => r.id === loud.id)?.denyWith).toBe('drop');
    await again.close();
    await rm(join(dir, 'rules.json'));
    const fresh = await open();
    await fresh.import(doc, { mode: 'replace' });
    expect(fresh.get(loud.id)?.denyWith).toBe('drop');
    expect(fresh.match(req({ host: 'example.net' }))?.denyWith).toBe('drop');
    await fresh.close();
  });

  it('import merges, regenerating ids that are taken', async () => {
    const s = await open();
    const mine = await s.add(forever());
    const doc = {
      version: 1,
      rules: [
        { ...mine, action: 'deny' as const },
        { ...mine, id: 'fresh', match: { host: 'example.net' } },
      ],
    };
    const result = await s.import(doc, { mode: 'merge' });
    expect(result).toEqual({ added: 2, renamed: 1, removed: 0 });
    expect(s.size).toBe(3);
    expect(s.get(mine.id)?.action).toBe('allow');
    expect(s.get('fresh')).toBeDefined();
    expect((await fileDoc()).rules).toHaveLength(3);
  });

  it('import replace drops the persistent rules but keeps session ones', async () => {
    const s = await open();
    await s.add(forever());
    const session = await s.add(forever({ duration: { kind: 'session' } }));
    const exported = s.export();
    const r = await s.import(
      { version: 1, rules: [{ ...exported.rules[0]!, id: 'imp' }] },
      { mode: 'replace' },
    );
    expect(r.removed).toBe(1);
    expect(
      s
        .list()
        .map((x) => x.id)
        .sort(),
    ).toEqual(['imp', session.id].sort());
  });

  it.each([
    ['not a document', 'garbage'],
    ['a newer version', { version: 99, rules: [] }],
    ['an invalid rule', { version: 1, rules: [{ id: 'a' }] }],
    [
      'a session rule',
      {
        version: 1,
        rules: [
          {
            id: 'a',
            enabled: true,
            action: 'allow',
            match: {},
            duration: { kind: 'session' },
            created: 0,
            expires: null,
            hits: 0,
            lastHit: null,
          },
        ],
      },
    ],
  ])('import rejects %s with INVALID_IMPORT and changes nothing', async (_n, doc) => {
    const s = await open();
    await s.add(forever());
    const before = await readFile(join(dir, 'rules.json'), 'utf8');
    expect(await codeOf(s.import(doc, { mode: 'replace' }))).toBe('INVALID_IMPORT');
    expect(s.size).toBe(1);
    expect(await readFile(join(dir, 'rules.json'), 'utf8')).toBe(before);
  });

  it('prune removes expired rules', async () => {
    const s = await open();
    await s.add(forever({ duration: { kind: 'minutes', minutes: 1 } }));
    clock.advance(60_000);
    expect(await s.prune()).toHaveLength(1);
    expect((await fileDoc()).rules).toEqual([]);
  });

  it('a closed store refuses changes', async () => {
    const s = await open();
    await s.close();
    expect(() => s.insert(forever())).toThrow(/closed/u);
  });
});

describe('RuleStore.importInputs', () => {
  it('names the first bad rule by position and changes nothing', async () => {
    const s = await open();
    await s.add(forever());
    const before = await readFile(join(dir, 'rules.json'), 'utf8');
    const list = [forever({ note: 'a' }), forever({ match: { address: '10.0.0.300' } })];
    const e = await s.importInputs(list, { mode: 'replace', firstPosition: 1000 }).catch((x) => x);
    expect(e).toBeInstanceOf(DecisionsError);
    expect((e as DecisionsError).code).toBe('INVALID_IMPORT');
    expect((e as DecisionsError).message).toMatch(/^rule 1002: .*10\.0\.0\.300/);
    expect(s.size).toBe(1);
    expect(await readFile(join(dir, 'rules.json'), 'utf8')).toBe(before);
  });

  it('skips duplicates of kept rules and of earlier rules of the import', async () => {
    const s = await open();
    await s.add(forever());
    await s.add(forever({ duration: { kind: 'session' } }));
    const list = [
      forever({ note: 'same rule, another note', enabled: false }),
      forever({ action: 'deny' }),
      forever({ action: 'deny' }),
    ];
    expect(await s.importInputs(list, { mode: 'merge' })).toEqual({
      added: 1,
      skipped: 2,
      removed: 0,
    });
    expect(s.size).toBe(3);
    // A replace compares with the rules that stay: the session rule only.
    expect(await s.importInputs(list, { mode: 'replace' })).toEqual({
      added: 2,
      skipped: 1,
      removed: 2,
    });
    expect((await fileDoc()).rules).toHaveLength(2);
  });

  it('puts memory back when the one write fails', async () => {
    let fail = false;
    const flaky: StoreFs = {
      ...fsp,
      rename: ((a: string, b: string) =>
        fail ? Promise.reject(new Error('disk full')) : fsp.rename(a, b)) as StoreFs['rename'],
    };
    const s = await open({ fs: flaky });
    await s.add(forever());
    const before = s.list();
    const onDisk = await readFile(join(dir, 'rules.json'), 'utf8');
    fail = true;
    const list = [forever({ action: 'deny' }), forever({ match: { host: 'example.org' } })];
    expect(await codeOf(s.importInputs(list, { mode: 'replace' }))).toBe('IO');
    expect(s.list()).toEqual(before);
    expect(await readFile(join(dir, 'rules.json'), 'utf8')).toBe(onDisk);
    fail = false;
    await s.flush();
    expect(await readFile(join(dir, 'rules.json'), 'utf8')).toBe(onDisk);
  });
});
