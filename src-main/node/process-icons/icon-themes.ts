/**
 * Icon themes (freedesktop.org Icon Theme specification): which theme the
 * user chose, what a theme's index.theme says about its Applications
 * directories, and the files to try for an icon name, best first: the current
 * themes, the themes they inherit and hicolor, preferring a PNG of the wanted
 * size, then a scalable SVG, then the nearest size (larger first); then
 * pixmaps/.
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { isDirectory, listDir, readSmallText } from './icon-files.js';
import { unique, xdgHome } from './search-paths.js';

/** A theme or icon name that is safe to join into a path. */
export const ICON_NAME = /^[A-Za-z0-9][A-Za-z0-9._+@-]{0,254}$/u;
const MAX_SETTINGS_BYTES = 64 * 1024;
const MAX_INDEX_THEME_BYTES = 512 * 1024;
const MAX_THEMES = 10;

/** The first `key=value` of `[group]` in an ini-style text (GTK settings.ini, kdeglobals). */
function iniValue(text: string, group: string, key: string): string | null {
  let inGroup = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inGroup = line === `[${group}]`;
      continue;
    }
    if (!inGroup) continue;
    const eq = line.indexOf('=');
    if (eq > 0 && line.slice(0, eq).trim() === key) return line.slice(eq + 1).trim();
  }
  return null;
}

/** The user's icon theme: GTK's settings.ini, KDE's kdeglobals, else the desktop's default. */
export async function detectIconThemes(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): Promise<string[]> {
  const config = xdgHome(env['XDG_CONFIG_HOME'], join(home, '.config'));
  const found: string[] = [];
  for (const file of ['gtk-4.0/settings.ini', 'gtk-3.0/settings.ini']) {
    const text = await readSmallText(join(config, file), MAX_SETTINGS_BYTES);
    const name = text === null ? null : iniValue(text, 'Settings', 'gtk-icon-theme-name');
    if (name) found.push(name);
  }
  const kde = await readSmallText(join(config, 'kdeglobals'), MAX_INDEX_THEME_BYTES);
  const kdeTheme = kde === null ? null : iniValue(kde, 'Icons', 'Theme');
  if (kdeTheme) found.push(kdeTheme);
  const desktop = (env['XDG_CURRENT_DESKTOP'] ?? '').toUpperCase();
  // GNOME keeps its choice in dconf (binary); its default theme is Adwaita.
  if (found.length === 0 && desktop.includes('GNOME')) found.push('Adwaita');
  if (found.length === 0 && desktop.includes('KDE')) found.push('breeze');
  return unique(found.filter((t) => ICON_NAME.test(t)));
}

interface ThemeDir {
  /** Relative to the theme directory ("32x32/apps"). */
  path: string;
  size: number;
  scale: number;
  scalable: boolean;
}

interface Theme {
  name: string;
  /** base/name for each icon base directory that has the theme. */
  roots: string[];
  dirs: ThemeDir[];
  inherits: string[];
}

/** How far a directory is from the wanted size: 0 is a 32 px PNG; scalable comes next. */
function dirScore(d: ThemeDir, want: number): number {
  if (d.scalable) return 1;
  const px = d.size * d.scale;
  // Larger icons scale down well; smaller ones blur: they rank as if twice as far.
  return px >= want ? (px - want) * 2 : (want - px) * 4 + 1;
}

/** The Applications directories of an index.theme. */
function parseIndexTheme(text: string): { dirs: ThemeDir[]; inherits: string[] } {
  const groups = new Map<string, Map<string, string>>();
  let current: Map<string, string> | null = null;
  for (const raw of text.split(/\r?\n/u)) {
    const line = raw.trim();
    if (line.startsWith('[') && line.endsWith(']')) {
      const name = line.slice(1, -1);
      current = groups.get(name) ?? new Map<string, string>();
      groups.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0 && !current.has(line.slice(0, eq).trim())) {
      current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
    }
  }
  const head = groups.get('Icon Theme');
  const list = (v: string | undefined): string[] =>
    (v ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
  const names = unique([
    ...list(head?.get('Directories')),
    ...list(head?.get('ScaledDirectories')),
  ]);
  const dirs: ThemeDir[] = [];
  for (const name of names) {
    const g = groups.get(name);
    if (!g || name.includes('..') || isAbsolute(name)) continue;
    const context = g.get('Context');
    if (context !== undefined && context !== 'Applications') continue;
    const size = Number(g.get('Size'));
    if (!Number.isInteger(size) || size <= 0) continue;
    const scale = Number(g.get('Scale') ?? '1');
    dirs.push({
      path: name,
      size,
      scale: Number.isInteger(scale) && scale > 0 ? scale : 1,
      scalable: g.get('Type') === 'Scalable',
    });
  }
  return { dirs, inherits: list(head?.get('Inherits')).filter((t) => ICON_NAME.test(t)) };
}

/** Without an index.theme (a user's ~/.local/share/icons/hicolor): SIZExSIZE[@S]/apps and scalable/apps. */
async function discoverThemeDirs(root: string): Promise<ThemeDir[]> {
  const dirs: ThemeDir[] = [];
  for (const e of await listDir(root)) {
    const m = /^(\d{1,4})x\1(?:@(\d))?$/u.exec(e.name);
    if (m)
      dirs.push({
        path: `${e.name}/apps`,
        size: Number(m[1]),
        scale: Number(m[2] ?? 1),
        scalable: false,
      });
    else if (e.name === 'scalable')
      dirs.push({ path: 'scalable/apps', size: 48, scale: 1, scalable: true });
  }
  return dirs;
}

/** A theme as its base directories hold it, or null when none has it. */
async function loadTheme(name: string, iconDirs: readonly string[]): Promise<Theme | null> {
  const roots: string[] = [];
  for (const base of iconDirs) {
    const root = join(base, name);
    if (await isDirectory(root)) roots.push(root);
  }
  if (roots.length === 0) return null;
  // The spec: the first index.theme found describes the theme in every base.
  for (const root of roots) {
    const text = await readSmallText(join(root, 'index.theme'), MAX_INDEX_THEME_BYTES);
    if (text !== null) return { name, roots, ...parseIndexTheme(text) };
  }
  const dirs: ThemeDir[] = [];
  const seen = new Set<string>();
  for (const root of roots) {
    for (const d of await discoverThemeDirs(root)) {
      if (!seen.has(d.path)) dirs.push(d);
      seen.add(d.path);
    }
  }
  return { name, roots, dirs, inherits: [] };
}

/** The themes under some icon base directories, each read once. */
export class IconThemes {
  private readonly loaded = new Map<string, Promise<Theme | null>>();

  constructor(private readonly iconDirs: readonly string[]) {}

  /** The files to try for an icon name, best first (see the file comment). */
  async *iconPaths(
    current: readonly string[],
    pixmapDirs: readonly string[],
    name: string,
    size: number,
  ): AsyncGenerator<string> {
    for (const theme of await this.chain(current)) {
      const dirs = [...theme.dirs].sort((a, b) => dirScore(a, size) - dirScore(b, size));
      for (const d of dirs) {
        // A scalable directory holds SVGs; a sized one PNGs (some themes put SVGs there too).
        const exts = d.scalable ? ['svg', 'png'] : ['png', 'svg'];
        for (const root of theme.roots) {
          for (const ext of exts) yield join(root, d.path, `${name}.${ext}`);
        }
      }
    }
    for (const dir of pixmapDirs) {
      for (const ext of ['png', 'svg']) yield join(dir, `${name}.${ext}`);
    }
  }

  /** The theme chain: the current themes, what they inherit, hicolor last. */
  private async chain(current: readonly string[]): Promise<Theme[]> {
    const queue = [...current];
    const chain: Theme[] = [];
    const seen = new Set<string>(['hicolor']);
    while (queue.length > 0 && chain.length < MAX_THEMES) {
      const name = queue.shift()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const t = await this.theme(name);
      if (!t) continue;
      chain.push(t);
      queue.push(...t.inherits);
    }
    const hicolor = await this.theme('hicolor');
    if (hicolor) chain.push(hicolor);
    return chain;
  }

  private theme(name: string): Promise<Theme | null> {
    let t = this.loaded.get(name);
    if (!t) {
      t = loadTheme(name, this.iconDirs);
      this.loaded.set(name, t);
    }
    return t;
  }
}
