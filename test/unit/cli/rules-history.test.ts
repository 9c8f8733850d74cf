import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../helper/cli.js';
import { parseTime } from '../../../helper/cli/history.js';
import type { Rule } from '../../../helper/protocol/model.js';
import { makeHistoryEntry } from '../../support/fake-helper-service.js';
import { TOKEN, startHarness, type Harness } from '../../support/ipc-harness.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

let h: Harness;
let conn: string[];
beforeEach(async () => {
  h = await startHarness();
  const tokenFile = join(h.dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o400 });
  conn = ['--socket', h.path, '--token-file', tokenFile];
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await h.stop();
});

async function run(argv: string[]) {
  const c = capture();
  const code = await main(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

describe('portcullis rules', () => {
  it('adds, lists (table and JSON), disables and removes rules', async () => {
    const add = await run([
      'rules',
      'add',
      ...conn,
      '--action',
      'deny',
      '--exe',
      '/usr/bin/curl',
      '--host',
      '*.ads.example',
      '--port',
      '80-443',
      '--protocol',
      'tcp',
      '--duration',
      '30m',
      '--note',
      'no ads',
    ]);
    expect(add.code, add.err).toBe(0);
    expect(add.out).toMatch(/^ID\s+ON\s+ACTION/);
    expect(add.out).toMatch(/r1\s+yes\s+deny/);
    expect(h.service.rules[0]).toMatchObject({
      action: 'deny',
      match: {
        exe: '/usr/bin/curl',
        host: '*.ads.example',
        port: { from: 80, to: 443 },
        protocol: 'tcp',
      },
      duration: { kind: 'minutes', minutes: 30 },
      note: 'no ads',
    });
    await run(['rules', 'add', ...conn, '--action', 'allow', '--uid', '1000', '--disabled']);
    const list = await run(['rules', 'list', ...conn]);
    expect(list.code).toBe(0);
    const lines = list.out.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(
      /exe=\/usr\/bin\/curl host=\*\.ads\.example port=80-443 proto=tcp\s+# no ads/,
    );
    expect(lines[2]).toMatch(/^r2\s+no\s+allow\s+forever\s+0\s+-\s+uid=1000$/);
    const json = await run(['rules', 'list', ...conn, '--json']);
    const rules = json.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Rule);
    expect(rules.map((r) => r.id)).toEqual(['r1', 'r2']);
    expect((await run(['rules', 'enable', ...conn, 'r2'])).code).toBe(0);
    expect(h.service.rules[1]!.enabled).toBe(true);
    expect((await run(['rules', 'disable', ...conn, 'r1'])).code).toBe(0);
    expect(h.service.rules[0]!.enabled).toBe(false);
    // --drop: a deny that is silent instead of refused, listed as "drop".
    const quiet = await run([
      'rules',
      'add',
      ...conn,
      '--action',
      'deny',
      '--drop',
      '--port',
      '25',
    ]);
    expect(quiet.code, quiet.err).toBe(0);
    expect(quiet.out).toMatch(/r3\s+yes\s+drop\s+forever/);
    expect(h.service.rules[2]).toMatchObject({ action: 'deny', denyWith: 'drop' });
    expect((await run(['rules', 'remove', ...conn, 'r3'])).code).toBe(0);
    const rm = await run(['rules', 'remove', ...conn, 'r1']);
    expect(rm.code).toBe(0);
    expect(h.service.rules.map((r) => r.id)).toEqual(['r2']);
    const missing = await run(['rules', 'remove', ...conn, 'r1']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^portcullis: not-found: no rule r1\n$/);
  });

  it('exports to a file and imports it back, merging or replacing, staged in pages', async () => {
    for (let i = 0; i < 1500; i++) {
      await h.service['rules.add'](
        { action: 'allow', match: { port: { from: i, to: i } }, duration: { kind: 'forever' } },
        { clientId: 0, peer: { pid: 0, uid: 0, gid: 0 } },
      );
    }
    await h.service['rules.add'](
      { action: 'deny', match: { host: 'x.example' }, duration: { kind: 'session' } },
      { clientId: 0, peer: { pid: 0, uid: 0, gid: 0 } },
    );
    const file = join(h.dir, 'rules.json');
    const exp = await run(['rules', 'export', ...conn, file]);
    expect(exp.code, exp.err).toBe(0);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { format: string; rules: unknown[] };
    expect(doc.format).toBe('portcullis-rules');
    expect(doc.rules).toHaveLength(1500); // the session rule is not persistent
    const stdout = await run(['rules', 'export', ...conn]);
    expect(JSON.parse(stdout.out)).toEqual(doc);
    const merged = await run(['rules', 'import', ...conn, file]);
    expect(merged.code, merged.err).toBe(0);
    expect(merged.err).toMatch(/imported 1500 rule\(s\), skipped 0 duplicate\(s\)\n/);
    expect(h.service.rules).toHaveLength(3001);
    const replaced = await run(['rules', 'import', ...conn, '--replace', file]);
    expect(replaced.err).toMatch(/imported 1500 rule\(s\), skipped 0 duplicate\(s\), removed 3001/);
    expect(h.service.rules).toHaveLength(1500);
    // Begin, pages from their position in the file, then one commit with the mode.
    const steps = h.service.calls
      .filter((c) => c.method.startsWith('rules.import'))
      .map((c) => {
        const p = c.params as { total?: number; offset?: number; rules?: unknown[]; mode?: string };
        return [
          c.method.slice('rules.import'.length),
          p.total ?? p.offset ?? p.mode,
          p.rules?.length,
        ];
      });
    const one = (mode: string) => [
      ['Begin', 1500, undefined],
      ['Page', 0, 1000],
      ['Page', 1000, 500],
      ['Commit', mode, undefined],
    ];
    expect(steps).toEqual([...one('merge'), ...one('replace')]);
    const all = await run(['rules', 'list', ...conn, '--json']);
    expect(all.out.trim().split('\n')).toHaveLength(1500);
  });

  it('rejects bad arguments and bad files with exit 2 or 1 before calling the helper', async () => {
    for (const argv of [
      ['rules', 'add', ...conn, '--exe', '/bin/x'],
      ['rules', 'add', ...conn, '--action', 'maybe', '--exe', '/bin/x'],
      ['rules', 'add', ...conn, '--action', 'allow'],
      ['rules', 'add', ...conn, '--action', 'allow', '--port', '9-1'],
      ['rules', 'add', ...conn, '--action', 'allow', '--port', 'http'],
      ['rules', 'add', ...conn, '--action', 'allow', '--uid', '-3'],
      ['rules', 'add', ...conn, '--action', 'allow', '--drop', '--uid', '3'],
      ['rules', 'add', ...conn, '--action', 'allow', '--host', 'a', '--duration', 'week'],
      ['rules', 'remove', ...conn],
      ['rules', 'remove', ...conn, 'has space'],
      ['rules', 'list', ...conn, '--replace'],
      ['rules', 'frob'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toMatch(/Try 'portcullis --help'/);
    }
    const file = join(h.dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({ format: 'portcullis-rules', version: 1, rules: [{ action: 'x' }] }),
    );
    const bad = await run(['rules', 'import', ...conn, file]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/not a rules file \(rule 1, at rules\.0\.action/);
    expect(h.service.calls).toEqual([]);
  });

  it('takes the token from PORTCULLIS_TOKEN and reports a wrong one', async () => {
    vi.stubEnv('PORTCULLIS_TOKEN', TOKEN);
    const ok = await run(['rules', 'list', '--socket', h.path]);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toBe('no rules\n');
    vi.stubEnv('PORTCULLIS_TOKEN', 'nope');
    const bad = await run(['rules', 'list', '--socket', h.path]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/cannot talk to the helper at .*: bad-token/);
    const gone = await run(['rules', 'list', '--socket', join(h.dir, 'missing.sock')]);
    expect(gone.code).toBe(1);
    expect(gone.err).toMatch(/ENOENT.*\(is the helper running\?\)/);
  });
});

describe('portcullis history', () => {
  beforeEach(() => {
    for (let i = 1; i <= 120; i++) h.service.history.push(makeHistoryEntry(i));
  });

  it('prints the newest entries as a table, with filters', async () => {
    const r = await run(['history', ...conn, '--limit', '5']);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+ACTION\s+REASON\s+PROTO\s+PROCESS\s+USER\s+DESTINATION$/);
    expect(lines).toHaveLength(6);
    expect(lines[1]).toMatch(
      /deny\s+rule\s+tcp\s+\/usr\/bin\/curl\[4242\]\s+alice\s+even\.example \(192\.0\.2\.7:443\)/,
    );
    expect(r.err).toMatch(/more entries match/);
    const deny = await run([
      'history',
      ...conn,
      '--action',
      'deny',
      '--text',
      'ODD',
      '--json',
      '--limit',
      '1000',
    ]);
    const entries = deny.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; action: string });
    expect(entries.every((e) => e.action === 'deny' && e.seq % 2 === 1)).toBe(true);
    expect(entries).toHaveLength(20); // odd multiples of 3 in 1..120
    expect(entries[0]!.seq).toBe(117);
  });

  it('pages past the per-call limit and passes the time range', async () => {
    for (let i = 121; i <= 2600; i++) h.service.history.push(makeHistoryEntry(i));
    const r = await run(['history', ...conn, '--json', '--limit', '2500']);
    const seqs = r.out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs).toHaveLength(2500);
    expect(seqs[0]).toBe(2600);
    expect(seqs.at(-1)).toBe(101);
    const since = 1_700_000_000_000 + 10_000;
    const until = 1_700_000_000_000 + 12_000;
    const ranged = await run([
      'history',
      ...conn,
      '--json',
      '--since',
      String(since),
      '--until',
      new Date(until).toISOString(),
    ]);
    expect(
      ranged.out
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { seq: number }).seq),
    ).toEqual([12, 11, 10]);
  });

  it('parses times and rejects bad ones', async () => {
    const now = Date.UTC(2026, 10, 25, 12);
    expect(parseTime('2h', now, 'x')).toBe(now - 7_200_000);
    expect(parseTime('90s', now, 'x')).toBe(now - 90_000);
    expect(parseTime('2026-11-25T00:00:00Z', now, 'x')).toBe(Date.UTC(2026, 10, 25));
    expect(parseTime('12345', now, 'x')).toBe(12345);
    for (const argv of [
      ['history', ...conn, '--since', 'yesterday-ish'],
      ['history', ...conn, '--action', 'maybe'],
      ['history', ...conn, '--limit', '0'],
      ['history', ...conn, '--since', '1h', '--until', '2h'],
      ['history', ...conn, 'extra'],
    ]) {
      expect((await run(argv)).code, argv.join(' ')).toBe(2);
    }
    expect(h.service.calls).toEqual([]);
  });
});
