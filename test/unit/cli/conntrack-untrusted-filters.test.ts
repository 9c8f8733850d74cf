/**
 * The conntrack commands against a fake kernel that ignores every dump
 * filter (as kernels before 5.8 ignore CTA_FILTER): what they print and what
 * they delete must still be only the matching entries. Also: a stray word
 * before a conntrack-tools command is ignored, as conntrack 1.4.7 ignores it.
 */
import { describe, expect, it } from 'vitest';
import { runConntrack } from '../../../helper/cli/conntrack.js';
import { FakeConntrackTable, tcpPopulation } from '../../support/fake-conntrack.js';

async function cli(table: FakeConntrackTable, argv: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await runConntrack(
    argv,
    { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) },
    { transport: () => table.transport() },
  );
  return { status, stdout, stderr };
}

/** The original sources in a listing (10.0.0.<id>), as ids. */
function shown(stdout: string): number[] {
  return [...stdout.matchAll(/src=10\.0\.0\.(\d+) /g)].map((m) => Number(m[1])).sort();
}

/** Filter words (in both syntaxes) -> the ids that match. */
const SUBCOMMAND_CASES: [string[], number[]][] = [
  [['-s', '10.0.0.2'], [2]],
  [
    ['--mark', '0x10/0xf0'],
    [1, 2],
  ],
  [
    ['--status', 'ASSURED'],
    [2, 4],
  ],
  [['--zone', '7'], [3]],
  [['-p', 'tcp', '--dport', '443'], [3]],
  [['-r', '10.9.0.2'], [4]],
];
const COMPAT_CASES: [string[], number[]][] = [
  [['-s', '10.0.0.2'], [2]],
  [
    ['-m', '0x10/0xf0'],
    [1, 2],
  ],
  [
    ['-u', 'ASSURED'],
    [2, 4],
  ],
  [['-w', '7'], [3]],
  [['-p', 'tcp', '--dport', '443'], [3]],
  [['-r', '10.9.0.2'], [4]],
  [['-f', 'ipv6'], []],
];
const ALL = [1, 2, 3, 4];
const rest = (ids: number[]) => ALL.filter((id) => !ids.includes(id));

describe('portcullis conntrack with a kernel that ignores dump filters', () => {
  it.each(SUBCOMMAND_CASES)('list %j prints only matches', async (words, ids) => {
    const table = new FakeConntrackTable(tcpPopulation());
    const r = await cli(table, ['list', '--json', ...words]);
    expect(r.status, r.stderr).toBe(0);
    const listed = r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { id: string | number }).id)
      .map(Number)
      .sort();
    expect(listed).toEqual(ids);
  });

  it.each(SUBCOMMAND_CASES)('delete --all-matching %j deletes only matches', async (words, ids) => {
    const table = new FakeConntrackTable(tcpPopulation());
    const r = await cli(table, ['delete', '--all-matching', ...words]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${ids.length} ${ids.length === 1 ? 'entry' : 'entries'} deleted\n`);
    expect(table.ids()).toEqual(rest(ids));
    expect(table.refused).toEqual([]);
  });

  it.each(COMPAT_CASES)('-L %j prints only matches', async (words, ids) => {
    const table = new FakeConntrackTable(tcpPopulation());
    const r = await cli(table, ['-L', ...words]);
    expect(r.status, r.stderr).toBe(0);
    expect(shown(r.stdout)).toEqual(ids);
    expect(r.stderr).toContain(`${ids.length} flow entries have been shown.`);
  });

  it.each(COMPAT_CASES)('-D %j deletes only matches', async (words, ids) => {
    const table = new FakeConntrackTable(tcpPopulation());
    const r = await cli(table, ['-D', ...words]);
    expect(r.status, r.stderr).toBe(ids.length ? 0 : 1);
    expect(shown(r.stdout)).toEqual(ids);
    expect(table.ids()).toEqual(rest(ids));
    expect(table.refused).toEqual([]);
  });
});

describe('portcullis conntrack WORD -L (conntrack-tools ignores stray words)', () => {
  it.each([
    [['conntrack', '-L']],
    [['conntrack', '-L', '-s', '10.0.0.2']],
    [['words', '-s', '10.0.0.2', '-L', 'conntrack', 'more']],
    [['conntrack', '--dump']],
  ])('%j lists as conntrack 1.4.7 does', async (argv) => {
    const table = new FakeConntrackTable(tcpPopulation());
    const r = await cli(table, argv);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/flow entries have been shown\.\n$/);
  });

  it('a stray word before -D deletes what -D names, nothing else', async () => {
    const table = new FakeConntrackTable(tcpPopulation());
    const r = await cli(table, ['conntrack', '-D', '-s', '10.0.0.2']);
    expect(r.status, r.stderr).toBe(0);
    expect(table.ids()).toEqual([1, 3, 4]);
  });

  it('a mistyped subcommand is still named as one', async () => {
    const table = new FakeConntrackTable(tcpPopulation());
    for (const argv of [['lsit', '-p', 'tcp'], ['conntrack']]) {
      // A usage error: main() prints it with the hint, exit status 2.
      await expect(cli(table, argv)).rejects.toThrow(`unknown conntrack subcommand '${argv[0]}'`);
    }
    expect(table.dumps).toBe(0);
  });
});
