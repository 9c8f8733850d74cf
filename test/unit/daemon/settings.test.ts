import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../helper/daemon/log.js';
import {
  SettingsFile,
  settingOverrides,
  startSettings,
  STRICT_SETTINGS,
  type LoadedSettings,
} from '../../../helper/daemon/settings.js';
import type { Settings } from '../../../helper/protocol/model.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'portcullis-settings-'));
  dirs.push(d);
  return d;
}

/** What the user chose: fail-closed, but allow on timeout and without a GUI, no inbound. */
const chosen: Settings = {
  defaultAction: 'allow',
  promptTimeoutSeconds: 45,
  noGuiPolicy: 'allow',
  failOpen: false,
  interceptOutbound: true,
  interceptInbound: false,
};
/** The command line's defaults: fail-open (what the old code fell back to). */
const commandLine: Settings = {
  defaultAction: 'allow',
  promptTimeoutSeconds: 30,
  noGuiPolicy: 'allow',
  failOpen: true,
  interceptOutbound: true,
  interceptInbound: false,
};

function opened(dir: string): { file: SettingsFile; log: string[] } {
  const log: string[] = [];
  const file = new SettingsFile(dir, {
    log: createLogger({ write: (l) => log.push(l) }),
    now: () => Date.UTC(2026, 11, 7, 12, 0, 0),
  });
  return { file, log };
}

const corruptCopies = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => n.startsWith('settings.json.corrupt-'))
    .map((n) => join(dir, n));

/** A settings file saved with the user's choice, then damaged as `damage` says. */
async function damaged(
  damage: (text: string) => string | Buffer,
  keepLastGood: boolean,
): Promise<{ dir: string; bytes: Buffer }> {
  const dir = tempDir();
  await opened(dir).file.save(chosen);
  if (!keepLastGood) rmSync(join(dir, 'settings.json.last-good'));
  const path = join(dir, 'settings.json');
  writeFileSync(path, damage(readFileSync(path, 'utf8')));
  // Whatever mode it has now, the copy is root's alone.
  chmodSync(path, 0o644);
  return { dir, bytes: readFileSync(path) };
}

const DAMAGE: [string, (text: string) => string | Buffer][] = [
  ['truncated', (t) => t.slice(0, t.length / 2)],
  ['garbage', () => Buffer.from([0x00, 0xff, 0x7b, 0x22, 0x80, 0x0a, 0x13])],
  ['empty', () => ''],
  ['a newer version', (t) => t.replace('"version": 1', '"version": 7')],
];

describe('SettingsFile', () => {
  it('none yet: null; saved 0600 with a last-good copy, and read back', async () => {
    const dir = tempDir();
    const { file } = opened(dir);
    await expect(file.load(commandLine)).resolves.toEqual({ settings: null, recovered: null });
    await file.save(chosen);
    expect(statSync(file.path).mode & 0o777).toBe(0o600);
    expect(statSync(file.lastGoodPath).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file.path, 'utf8'))).toEqual({ version: 1, settings: chosen });
    expect(readFileSync(file.lastGoodPath, 'utf8')).toBe(readFileSync(file.path, 'utf8'));
    const again = opened(dir);
    await expect(again.file.load(commandLine)).resolves.toEqual({
      settings: chosen,
      recovered: null,
    });
    expect(again.log).toEqual([]);
  });

  it('writes the last-good copy at load when an older helper left none', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'settings.json'), JSON.stringify({ version: 1, settings: chosen }));
    await opened(dir).file.load(commandLine);
    expect(JSON.parse(readFileSync(join(dir, 'settings.json.last-good'), 'utf8'))).toEqual({
      version: 1,
      settings: chosen,
    });
  });

  for (const [kind, damage] of DAMAGE) {
    it(`${kind}, no last-good copy: starts fail-closed and strict, keeps the file aside byte for byte, and a save does not lose it`, async () => {
      const { dir, bytes } = await damaged(damage, false);
      const { file, log } = opened(dir);
      const loaded = await file.load(commandLine);
      expect(loaded.settings).toEqual({ ...STRICT_SETTINGS, promptTimeoutSeconds: 30 });
      expect(loaded.settings!.failOpen).toBe(false);
      const [copy, ...others] = corruptCopies(dir);
      expect(others).toEqual([]);
      expect(readFileSync(copy!).equals(bytes)).toBe(true);
      expect(statSync(copy!).mode & 0o777).toBe(0o600);
      expect(file.recovered).toMatchObject({
        from: 'defaults-strict',
        damagedPath: copy,
        fields: expect.arrayContaining(['failOpen', 'defaultAction', 'noGuiPolicy']),
      });
      expect(file.recovered!.reason).toContain(file.path);
      expect(loaded.recovered).toEqual(file.recovered);
      // One error line naming the file, the copy and the policy.
      const errors = log.filter((l) => / error settings: /u.test(l));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(`file=${file.path}`);
      expect(errors[0]).toContain(`damagedPath=${copy}`);
      expect(errors[0]).toContain('failPolicy=closed');

      // A restart before anyone saved: the same strict settings, the same reason.
      const restart = opened(dir);
      await expect(restart.file.load(commandLine)).resolves.toEqual(loaded);
      expect(corruptCopies(dir)).toEqual([copy]);

      await restart.file.save({ ...loaded.settings!, promptTimeoutSeconds: 99 });
      expect(restart.file.recovered).toBeNull();
      expect(corruptCopies(dir)).toEqual([copy]);
      expect(readFileSync(copy!).equals(bytes)).toBe(true);
      const saved = await opened(dir).file.load(commandLine);
      expect(saved).toEqual({
        settings: { ...loaded.settings, promptTimeoutSeconds: 99 },
        recovered: null,
      });
    });
  }

  it('damaged with a last-good copy: the last saved settings, exactly', async () => {
    const { dir, bytes } = await damaged((t) => t.slice(0, 20), true);
    const { file } = opened(dir);
    const loaded = await file.load(commandLine);
    expect(loaded.settings).toEqual(chosen);
    const [copy] = corruptCopies(dir);
    expect(readFileSync(copy!).equals(bytes)).toBe(true);
    expect(loaded.recovered).toMatchObject({ from: 'last-good', damagedPath: copy, fields: [] });
    expect(loaded.recovered!.reason).toMatch(/not JSON.*last-good/u);
  });

  it('a damaged last-good copy too: strict', async () => {
    const { dir } = await damaged(() => 'x', true);
    writeFileSync(join(dir, 'settings.json.last-good'), '{"version": 1');
    const loaded = await opened(dir).file.load(commandLine);
    expect(loaded.settings).toMatchObject(STRICT_SETTINGS);
    expect(loaded.recovered?.from).toBe('defaults-strict');
  });

  it('valid JSON with one bad field: the others are kept, the bad one takes the stricter value', async () => {
    const { dir, bytes } = await damaged(
      (t) => t.replace('"failOpen": false', '"failOpen": "no"'),
      true,
    );
    const { file } = opened(dir);
    const loaded = await file.load(commandLine);
    // The last-good copy says the same: still the file's own good fields are what counts.
    expect(loaded.settings).toEqual({ ...chosen, failOpen: false });
    expect(loaded.recovered).toMatchObject({ from: 'partial', fields: ['failOpen'] });
    expect(loaded.recovered!.reason).toContain('failOpen=false');
    const [copy] = corruptCopies(dir);
    expect(readFileSync(copy!).equals(bytes)).toBe(true);

    const timeout = await damaged(
      (t) => t.replace('"promptTimeoutSeconds": 45', '"promptTimeoutSeconds": -1'),
      false,
    );
    const second = await opened(timeout.dir).file.load(commandLine);
    // Not a security setting: the command line's value.
    expect(second.settings).toEqual({ ...chosen, promptTimeoutSeconds: 30 });
    expect(second.recovered).toMatchObject({ from: 'partial', fields: ['promptTimeoutSeconds'] });

    const missing = await damaged((t) => t.replace(/,\s*"interceptInbound": false/u, ''), false);
    const third = await opened(missing.dir).file.load(commandLine);
    expect(third.settings).toEqual({ ...chosen, interceptInbound: true });
  });

  it('settings.json missing but a last-good copy: the copy, with a reason', async () => {
    const dir = tempDir();
    await opened(dir).file.save(chosen);
    rmSync(join(dir, 'settings.json'));
    const loaded = await opened(dir).file.load(commandLine);
    expect(loaded.settings).toEqual(chosen);
    expect(loaded.recovered).toMatchObject({ from: 'last-good', damagedPath: null });
    expect(loaded.recovered!.reason).toContain('missing');
  });

  it('a settings.json that cannot be read is not replaced by a save', async () => {
    const dir = tempDir();
    const path = join(dir, 'settings.json');
    // A directory where the file should be: reading and copying fail.
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'kept');
    const { file } = opened(dir);
    const loaded = await file.load(commandLine);
    expect(loaded.settings).toMatchObject(STRICT_SETTINGS);
    expect(loaded.recovered).toMatchObject({ from: 'defaults-strict', damagedPath: null });
    await expect(file.save(chosen)).rejects.toThrow(/could not be kept aside/u);
    expect(readFileSync(join(path, 'inside'), 'utf8')).toBe('kept');
  });

  it('removes leftovers of an interrupted write', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'settings.json.tmp-1-abcd'), '{');
    writeFileSync(join(dir, 'settings.json.last-good.tmp-1-abcd'), '{');
    await opened(dir).file.load(commandLine);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('startSettings', () => {
  const strict: LoadedSettings = {
    settings: { ...STRICT_SETTINGS, promptTimeoutSeconds: 30 },
    recovered: {
      from: 'defaults-strict',
      damagedPath: '/x',
      reason: 'r',
      fields: ['failOpen'],
      at: 1,
    },
  };

  it('options given explicitly on the command line still win; the defaults do not', () => {
    expect(startSettings(strict, commandLine, new Set())).toEqual(strict.settings);
    expect(
      startSettings(strict, { ...commandLine, defaultAction: 'allow' }, new Set(['defaultAction'])),
    ).toEqual({ ...strict.settings, defaultAction: 'allow' });
    expect(startSettings({ settings: null, recovered: null }, commandLine, new Set())).toEqual(
      commandLine,
    );
  });
});

describe('settingOverrides', () => {
  const saved: LoadedSettings = { settings: { ...commandLine, failOpen: true }, recovered: null };

  it('names each explicit option that replaced a different saved value, with the saved value', () => {
    const cli = { ...commandLine, failOpen: false, promptTimeoutSeconds: 30 };
    expect(settingOverrides(saved, cli, new Set(['failOpen', 'promptTimeoutSeconds']))).toEqual([
      { field: 'failOpen', flag: '--fail-closed', saved: true },
    ]);
  });

  it('is empty when nothing was saved or no option was given', () => {
    const cli = { ...commandLine, failOpen: false };
    expect(
      settingOverrides({ settings: null, recovered: null }, cli, new Set(['failOpen'])),
    ).toEqual([]);
    expect(settingOverrides(saved, cli, new Set())).toEqual([]);
  });
});
