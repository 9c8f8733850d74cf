/**
 * The helper's settings as changed over IPC (`settings.set`), kept in
 * STATEDIR/settings.json (mode 0600, written atomically, validated on load) so
 * that they survive a restart, with a copy of the last saved ones next to it
 * (settings.json.last-good).
 *
 * A settings file that cannot be used never makes the helper weaker than the user
 * chose: the damaged file is copied aside byte for byte (settings.json.corrupt-TIME),
 * the last-good copy is used when it is intact, and otherwise every security setting
 * takes its stricter value. The recovered settings are written back with a note of
 * why (`recovered`), which HelperState shows until the settings are saved again.
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';
import { atomicWrite, nodeFs } from '../common/atomic-write.js';
import { keepAside } from '../common/keep-aside.js';
import { Settings, SettingsRecovery, type SettingOverride } from '../protocol/model.js';
import type { Logger } from './log.js';

export const SETTINGS_FILE = 'settings.json';
export const LAST_GOOD_FILE = 'settings.json.last-good';
export const SETTINGS_VERSION = 1;

type SettingsField = keyof Settings;

/**
 * The stricter value of each security setting, used for those that cannot be read:
 * fail closed, deny when a prompt is not answered or no GUI can ask, intercept both
 * directions. The prompt timeout is not one (a shorter or longer wait weakens
 * nothing): it takes the command line's value.
 */
export const STRICT_SETTINGS: Omit<Settings, 'promptTimeoutSeconds'> = {
  defaultAction: 'deny',
  noGuiPolicy: 'deny',
  failOpen: false,
  interceptOutbound: true,
  interceptInbound: true,
};

const FIELDS = Object.keys(Settings.entries) as SettingsField[];

const SettingsDocument = v.object({
  version: v.literal(SETTINGS_VERSION),
  settings: Settings,
  /** Written with recovered settings; gone at the next save. */
  recovered: v.optional(SettingsRecovery),
});
type SettingsDocument = v.InferOutput<typeof SettingsDocument>;

export interface LoadedSettings {
  /** null: nothing saved yet (the command line's settings apply). */
  settings: Settings | null;
  /** Why these are not the saved settings; null when they are. */
  recovered: SettingsRecovery | null;
}

export interface SettingsFileOptions {
  /** Where recoveries and failures to keep a damaged file are reported. */
  log?: Logger;
  now?: () => number;
}

/** What a settings file's text holds. */
type Parsed =
  | { kind: 'ok'; settings: Settings; recovered: SettingsRecovery | null }
  /** A document whose settings have invalid or missing fields: the others are good. */
  | { kind: 'partial'; values: Partial<Settings>; bad: SettingsField[]; problem: string }
  | { kind: 'damaged'; problem: string };

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

function parseDocument(text: string): Parsed {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { kind: 'damaged', problem: `not JSON (${(error as Error).message})` };
  }
  if (!isObject(json)) return { kind: 'damaged', problem: 'not a JSON object' };
  if (json.version !== SETTINGS_VERSION) {
    return {
      kind: 'damaged',
      problem: `version ${JSON.stringify(json.version) ?? 'missing'} (this helper reads version ${SETTINGS_VERSION})`,
    };
  }
  const raw = json.settings;
  if (!isObject(raw)) return { kind: 'damaged', problem: 'no "settings" object' };
  const values: Partial<Record<SettingsField, unknown>> = {};
  const bad: SettingsField[] = [];
  const problems: string[] = [];
  for (const field of FIELDS) {
    const r = v.safeParse(Settings.entries[field], raw[field]);
    if (r.success) values[field] = r.output;
    else {
      bad.push(field);
      problems.push(`${field}: ${r.issues[0]?.message ?? 'invalid'}`);
    }
  }
  if (bad.length > 0) {
    return {
      kind: 'partial',
      values: values as Partial<Settings>,
      bad,
      problem: problems.join('; '),
    };
  }
  const settings = values as Settings;
  // A damaged note alone does not make the settings unusable: they are still the
  // recovered (strict) ones, only the reason is lost.
  const note = v.safeParse(SettingsRecovery, json.recovered);
  return { kind: 'ok', settings, recovered: note.success ? note.output : null };
}

/** Longest text the protocol carries (model.ts Text). */
const clip = (s: string): string => (s.length > 4096 ? `${s.slice(0, 4093)}...` : s);

export class SettingsFile {
  readonly path: string;
  readonly lastGoodPath: string;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  #recovered: SettingsRecovery | null = null;
  /** settings.json is damaged and could not be copied aside: save() must not replace it. */
  #damagedInPlace = false;

  constructor(
    readonly dir: string,
    options: SettingsFileOptions = {},
  ) {
    this.path = join(dir, SETTINGS_FILE);
    this.lastGoodPath = join(dir, LAST_GOOD_FILE);
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  /** Why the current settings are not the saved ones (until the next save); null when they are. */
  get recovered(): SettingsRecovery | null {
    return this.#recovered;
  }

  /**
   * The saved settings. When settings.json cannot be used they are recovered (see the
   * file's comment); `base` (the command line's settings) gives the fields that are
   * not security settings. Throws only when the state directory cannot be read.
   */
  async load(base: Settings): Promise<LoadedSettings> {
    await this.#removeLeftovers();
    const main = await this.#read(this.path);
    if (main.kind === 'ok') {
      if (main.recovered) {
        this.#recovered = main.recovered;
        this.#log?.warn('settings', `still the recovered settings: ${main.recovered.reason}`, {
          file: this.path,
          from: main.recovered.from,
          damagedPath: main.recovered.damagedPath,
        });
      } else {
        await this.#refreshLastGood(main.settings);
      }
      return { settings: main.settings, recovered: this.#recovered };
    }
    if (main.kind === 'missing') {
      const lastGood = await this.#read(this.lastGoodPath);
      if (lastGood.kind === 'missing') return { settings: null, recovered: null };
      if (lastGood.kind === 'ok') {
        return this.#recover(lastGood.settings, {
          from: 'last-good',
          damagedPath: null,
          reason: `${this.path} is missing; using ${this.lastGoodPath}`,
          fields: [],
        });
      }
      return this.#recover(this.#strict(base, {}), {
        from: 'defaults-strict',
        damagedPath: null,
        reason: `${this.path} is missing and ${this.lastGoodPath} ${problemOf(lastGood)}`,
        fields: FIELDS,
      });
    }
    // Damaged, partly damaged or unreadable: keep it before anything replaces it.
    const damagedPath = main.kind === 'unreadable' ? null : await this.#keepAside();
    const problem = `${this.path} ${problemOf(main)}`;
    if (main.kind === 'partial') {
      const settings = this.#strict(base, main.values);
      return this.#recover(settings, {
        from: 'partial',
        damagedPath,
        reason: `${problem}; used instead: ${main.bad.map((f) => `${f}=${String(settings[f])}`).join(', ')}`,
        fields: main.bad,
      });
    }
    const lastGood = await this.#read(this.lastGoodPath);
    if (lastGood.kind === 'ok') {
      return this.#recover(lastGood.settings, {
        from: 'last-good',
        damagedPath,
        reason: `${problem}; using ${this.lastGoodPath}`,
        fields: [],
      });
    }
    const why =
      lastGood.kind === 'missing'
        ? 'there is no last-good copy'
        : `${this.lastGoodPath} ${problemOf(lastGood)}`;
    return this.#recover(this.#strict(base, {}), {
      from: 'defaults-strict',
      damagedPath,
      reason: `${problem}; ${why}: the stricter value is used for every security setting`,
      fields: FIELDS,
    });
  }

  /** Saves the settings (and the last-good copy); the recovery note is gone after. */
  async save(settings: Settings): Promise<void> {
    if (this.#damagedInPlace && (await this.#keepAside()) === null) {
      throw new Error(`${this.path} is damaged and could not be kept aside: not replacing it`);
    }
    const doc: SettingsDocument = v.parse(SettingsDocument, {
      version: SETTINGS_VERSION,
      settings,
    });
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    await atomicWrite(nodeFs, this.dir, SETTINGS_FILE, text);
    this.#recovered = null;
    try {
      await atomicWrite(nodeFs, this.dir, LAST_GOOD_FILE, text);
    } catch (error) {
      // The settings are saved; only the spare copy is older.
      this.#log?.error('settings', `writing ${this.lastGoodPath}: ${(error as Error).message}`);
    }
  }

  #strict(base: Settings, good: Partial<Settings>): Settings {
    return { ...STRICT_SETTINGS, promptTimeoutSeconds: base.promptTimeoutSeconds, ...good };
  }

  async #recover(settings: Settings, note: Omit<SettingsRecovery, 'at'>): Promise<LoadedSettings> {
    const recovered: SettingsRecovery = { ...note, reason: clip(note.reason), at: this.#now() };
    this.#recovered = recovered;
    this.#log?.error('settings', `saved settings unusable: ${recovered.reason}`, {
      file: this.path,
      from: recovered.from,
      damagedPath: recovered.damagedPath,
      fields: recovered.fields.join(',') || '-',
      failPolicy: settings.failOpen ? 'open' : 'closed',
    });
    // Written back with the note so that the next start, too, runs with them and says
    // why; never over a damaged file that is not kept elsewhere.
    if (!this.#damagedInPlace) {
      const doc: SettingsDocument = { version: SETTINGS_VERSION, settings, recovered };
      try {
        await atomicWrite(nodeFs, this.dir, SETTINGS_FILE, `${JSON.stringify(doc, null, 2)}\n`);
      } catch (error) {
        this.#log?.error('settings', `writing ${this.path}: ${(error as Error).message}`);
      }
    }
    return { settings, recovered };
  }

  async #read(
    path: string,
  ): Promise<Parsed | { kind: 'missing' } | { kind: 'unreadable'; problem: string }> {
    let text: string;
    try {
      text = await fsp.readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      this.#damagedInPlace ||= path === this.path;
      return { kind: 'unreadable', problem: `could not be read (${(error as Error).message})` };
    }
    return parseDocument(text);
  }

  /**
   * Copies settings.json aside (common/keep-aside.ts), the original staying until a
   * save replaces it; the copy's path, or null when it failed (then the original
   * must stay).
   */
  async #keepAside(): Promise<string | null> {
    try {
      const target = await keepAside(nodeFs, this.path, this.#now());
      this.#damagedInPlace = false;
      return target;
    } catch (error) {
      this.#damagedInPlace = true;
      this.#log?.error(
        'settings',
        `keeping damaged ${this.path} aside: ${(error as Error).message}`,
      );
      return null;
    }
  }

  /** The last-good copy follows the saved file (a helper older than it wrote none). */
  async #refreshLastGood(settings: Settings): Promise<void> {
    const copy = await this.#read(this.lastGoodPath);
    if (copy.kind === 'ok' && JSON.stringify(copy.settings) === JSON.stringify(settings)) return;
    const doc: SettingsDocument = { version: SETTINGS_VERSION, settings };
    try {
      await atomicWrite(nodeFs, this.dir, LAST_GOOD_FILE, `${JSON.stringify(doc, null, 2)}\n`);
    } catch (error) {
      this.#log?.error('settings', `writing ${this.lastGoodPath}: ${(error as Error).message}`);
    }
  }

  /** Leftovers of a crash between write and rename: the real files are intact. */
  async #removeLeftovers(): Promise<void> {
    for (const name of await fsp.readdir(this.dir)) {
      if (name.startsWith(`${SETTINGS_FILE}.tmp-`) || name.startsWith(`${LAST_GOOD_FILE}.tmp-`)) {
        await fsp.unlink(join(this.dir, name)).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        });
      }
    }
  }
}

function problemOf(
  p: Exclude<Parsed, { kind: 'ok' }> | { kind: 'unreadable'; problem: string },
): string {
  if (p.kind === 'partial') return `has invalid settings (${p.problem})`;
  if (p.kind === 'damaged') return `is damaged: ${p.problem}`;
  return p.problem;
}

/**
 * The settings the helper starts with: the loaded ones (or the command line's when
 * nothing was saved), and the options given explicitly on the command line over them.
 */
export function startSettings(
  loaded: LoadedSettings,
  commandLine: Settings,
  explicit: ReadonlySet<SettingsField>,
): Settings {
  if (!loaded.settings) return { ...commandLine };
  const settings: Settings = { ...loaded.settings };
  for (const k of explicit) (settings as Record<SettingsField, unknown>)[k] = commandLine[k];
  return settings;
}

/** The command-line option that sets each field (interceptOutbound has none). */
const FLAG_OF: Partial<Record<SettingsField, string>> = {
  defaultAction: '--default-action',
  promptTimeoutSeconds: '--prompt-timeout',
  noGuiPolicy: '--no-gui-policy',
  failOpen: '--fail-closed',
  interceptInbound: '--inbound',
};

/**
 * The saved settings that `startSettings` replaced by a different value given on the
 * command line: the helper says so (a GUI change would otherwise be undone at each
 * start without a word). Equal values override nothing.
 */
export function settingOverrides(
  loaded: LoadedSettings,
  commandLine: Settings,
  explicit: ReadonlySet<SettingsField>,
): SettingOverride[] {
  const saved = loaded.settings;
  if (!saved) return [];
  return FIELDS.filter((k) => explicit.has(k) && saved[k] !== commandLine[k]).map((k) => ({
    field: k,
    flag: FLAG_OF[k] ?? k,
    saved: saved[k],
  }));
}
