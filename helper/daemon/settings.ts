/**
 * The helper's settings as changed over IPC (`settings.set`), kept in
 * STATEDIR/settings.json (mode 0600, written atomically, validated on load) so
 * that they survive a restart.
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';
import { atomicWrite, nodeFs } from '../decisions/atomic.js';
import { Settings } from '../protocol/model.js';

export const SETTINGS_FILE = 'settings.json';
export const SETTINGS_VERSION = 1;

const SettingsDocument = v.object({
  version: v.literal(SETTINGS_VERSION),
  settings: Settings,
});

export class SettingsFile {
  readonly path: string;

  constructor(readonly dir: string) {
    this.path = join(dir, SETTINGS_FILE);
  }

  /** The saved settings; null when there are none. Throws on an invalid file (the caller logs it). */
  async load(): Promise<Settings | null> {
    let text: string;
    try {
      text = await fsp.readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`${this.path}: not JSON (${(error as Error).message})`);
    }
    const parsed = v.safeParse(SettingsDocument, json);
    if (!parsed.success) {
      throw new Error(`${this.path}: invalid settings (${parsed.issues[0]?.message})`);
    }
    return parsed.output.settings;
  }

  async save(settings: Settings): Promise<void> {
    const doc = v.parse(SettingsDocument, { version: SETTINGS_VERSION, settings });
    await atomicWrite(nodeFs, this.dir, SETTINGS_FILE, `${JSON.stringify(doc, null, 2)}\n`);
  }
}
