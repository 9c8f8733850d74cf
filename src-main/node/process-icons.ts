/**
 * A program's icon, found the way a Linux desktop finds it: the executable (or the
 * flatpak/snap app id) names a `.desktop` entry, whose `Icon=` is looked up in the icon
 * themes (Desktop Entry and Icon Theme specifications, freedesktop.org).
 *
 * Runs in main's Electron-free core (the bridge serves `processIcon`), as the desktop
 * user, never in the renderer and never in the root helper: it reads files the user can
 * read anyway. Everything is bounded: desktop files (count, size), icon files (size,
 * regular files only, opened non-blocking so a FIFO cannot hang it), the caches (entries
 * and bytes). An icon leaves as a base64 `data:` URL of a PNG or an SVG, recognised by
 * content (not by name): the renderer shows it only through `<img>`, where an SVG cannot
 * run script or load anything, under the CSP's `img-src 'self' data:`.
 *
 * 1. The entry, in this order: the app id (flatpak `X-Flatpak=` / file name, snap
 *    `X-SnapInstanceName=` / `SNAP_APP.desktop`); `Exec=` (first word, after `env
 *    VAR=...`, resolved through PATH and symlinks) or `TryExec=` naming the same file as
 *    the executable; the same basename; `StartupWMClass=`; the file name
 *    (`org.gnome.Nautilus.desktop` for `nautilus`). Flatpak launcher entries (`Exec=flatpak
 *    run ...`) match by app id only: their Exec names the flatpak command, not the app.
 * 2. The icon: an absolute `Icon=` path as it is; a name in the current icon theme, the
 *    themes it inherits and hicolor (their Applications directories), preferring a PNG of
 *    32 px, then a scalable SVG, then the nearest size (larger first); then pixmaps/.
 */
import { constants, type Dirent } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import type { ProcessIcon } from '../common/api.js';

export interface IconSearchPaths {
  /** `applications/` directories, the most important first (XDG_DATA_HOME first). */
  applicationDirs: string[];
  /** Icon theme base directories (~/.icons, then each data dir's `icons/`). */
  iconDirs: string[];
  /** The last resort for icon names (`pixmaps/`). */
  pixmapDirs: string[];
}

export interface IconResolverOptions extends Partial<IconSearchPaths> {
  /** The current icon theme(s), before the ones they inherit and hicolor. Default: detected. */
  themes?: string[];
  /** For Exec= names without a slash. Default: $PATH. */
  pathDirs?: string[];
  /** Icon files larger than this are refused. Default 256 KiB. */
  maxFileBytes?: number;
  /** Cached results (per executable and app id). Default 512. */
  maxCacheEntries?: number;
  /** Total size of the cached data: URLs. Default 16 MiB. */
  maxCacheBytes?: number;
  /** Desktop entries and themes are read again, and "no icon" answers forgotten, after this. Default 5 min. */
  ttlMs?: number;
  /** The size the UI draws (px). Default 32. */
  size?: number;
  now?: () => number;
}

const MAX_DESKTOP_FILES = 4096;
const MAX_DESKTOP_BYTES = 64 * 1024;
const MAX_INDEX_THEME_BYTES = 512 * 1024;
const MAX_DIR_DEPTH = 3;
const MAX_THEMES = 10;
const ICON_NAME = /^[A-Za-z0-9][A-Za-z0-9._+@-]{0,254}$/u;
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/u;
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function unique(list: string[]): string[] {
  return [...new Set(list.filter((d) => d !== ''))];
}

function splitDirs(value: string | undefined, fallback: string[]): string[] {
  const dirs = (value ?? '').split(':').filter((d) => isAbsolute(d));
  return dirs.length > 0 ? dirs : fallback;
}

/** The XDG search paths of the environment, with flatpak's and snap's export directories. */
export function searchPathsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): IconSearchPaths {
  const dataHome =
    env['XDG_DATA_HOME'] && isAbsolute(env['XDG_DATA_HOME'])
      ? env['XDG_DATA_HOME']
      : join(home, '.local', 'share');
  const dataDirs = splitDirs(env['XDG_DATA_DIRS'], ['/usr/local/share', '/usr/share']);
  // flatpak and snap add these to XDG_DATA_DIRS in login shells only; a desktop looks there anyway.
  const exported = [
    join(home, '.local', 'share', 'flatpak', 'exports', 'share'),
    '/var/lib/flatpak/exports/share',
  ];
  const data = unique([dataHome, ...exported, ...dataDirs]);
  return {
    applicationDirs: unique([
      ...data.map((d) => join(d, 'applications')),
      '/var/lib/snapd/desktop/applications',
    ]),
    iconDirs: unique([
      join(home, '.icons'),
      ...data.map((d) => join(d, 'icons')),
      '/var/lib/snapd/desktop/icons',
    ]),
    pixmapDirs: unique([...dataDirs.map((d) => join(d, 'pixmaps')), '/usr/share/pixmaps']),
  };
}

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

async function readSmall(path: string, max: number): Promise<string | null> {
  const buf = await readBounded(path, max);
  return buf ? buf.toString('utf8') : null;
}

/** The user's icon theme: GTK's settings.ini, KDE's kdeglobals, else the desktop's default. */
export async function detectIconThemes(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): Promise<string[]> {
  const config =
    env['XDG_CONFIG_HOME'] && isAbsolute(env['XDG_CONFIG_HOME'])
      ? env['XDG_CONFIG_HOME']
      : join(home, '.config');
  const found: string[] = [];
  for (const file of ['gtk-4.0/settings.ini', 'gtk-3.0/settings.ini']) {
    const text = await readSmall(join(config, file), MAX_DESKTOP_BYTES);
    const name = text === null ? null : iniValue(text, 'Settings', 'gtk-icon-theme-name');
    if (name) found.push(name);
  }
  const kde = await readSmall(join(config, 'kdeglobals'), MAX_INDEX_THEME_BYTES);
  const kdeTheme = kde === null ? null : iniValue(kde, 'Icons', 'Theme');
  if (kdeTheme) found.push(kdeTheme);
  const desktop = (env['XDG_CURRENT_DESKTOP'] ?? '').toUpperCase();
  // GNOME keeps its choice in dconf (binary); its default theme is Adwaita.
  if (found.length === 0 && desktop.includes('GNOME')) found.push('Adwaita');
  if (found.length === 0 && desktop.includes('KDE')) found.push('breeze');
  return unique(found.filter((t) => ICON_NAME.test(t)));
}

// ---- desktop entries ----

export interface DesktopEntry {
  /** Desktop file id: the path under applications/ with '/' as '-' ("org.gnome.Nautilus.desktop"). */
  id: string;
  path: string;
  exec: string | null;
  tryExec: string | null;
  icon: string | null;
  wmClass: string | null;
  /** X-Flatpak= (the app id of a flatpak's exported entry). */
  flatpak: string | null;
  /** X-SnapInstanceName= (the snap of a snap's entry). */
  snap: string | null;
}

/** The general string unescaping of the Desktop Entry spec (\s \n \t \r \\). */
function unescapeValue(v: string): string {
  return v.replace(/\\([sntr\\])/gu, (_, c: string) =>
    c === 's' ? ' ' : c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : '\\',
  );
}

/**
 * The keys of the `[Desktop Entry]` group that name a program and its icon, or null when
 * the file is not a usable application entry (no group, Type other than Application,
 * Hidden=true). Lines that are not `key=value` are skipped; localized keys (`Icon[de]`)
 * and other groups (`[Desktop Action new]`) are ignored; the first of a repeated key wins.
 */
export function parseDesktopEntry(text: string): Omit<DesktopEntry, 'id' | 'path'> | null {
  if (text.includes('\0')) return null;
  const values = new Map<string, string>();
  let group: string | null = null;
  let seenMain = false;
  for (const raw of text.split(/\r?\n/u)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      group = line.endsWith(']') ? line.slice(1, -1) : null;
      // Only the first [Desktop Entry] group counts.
      if (group === 'Desktop Entry') {
        if (seenMain) group = null;
        seenMain = true;
      }
      continue;
    }
    if (group !== 'Desktop Entry') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z0-9-]+$/u.test(key) || values.has(key)) continue;
    values.set(key, unescapeValue(line.slice(eq + 1).trim()));
  }
  if (!seenMain) return null;
  const type = values.get('Type');
  if (type !== undefined && type !== 'Application') return null;
  if (values.get('Hidden') === 'true') return null;
  const get = (k: string): string | null => {
    const v = values.get(k);
    return v === undefined || v === '' ? null : v;
  };
  return {
    exec: get('Exec'),
    tryExec: get('TryExec'),
    icon: get('Icon'),
    wmClass: get('StartupWMClass'),
    flatpak: get('X-Flatpak'),
    snap: get('X-SnapInstanceName'),
  };
}

/**
 * Exec= split into words. The spec quotes whole arguments ("..." with \" \` \$ \\
 * escapes); real files also quote inside a word (`env A="x y" prog`), as a shell would.
 */
function execWords(exec: string, max = 16): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < exec.length && words.length < max) {
    while (i < exec.length && /\s/u.test(exec[i]!)) i++;
    if (i >= exec.length) break;
    let word = '';
    let quoted = false;
    while (i < exec.length) {
      const c = exec[i]!;
      if (!quoted && /\s/u.test(c)) break;
      if (c === '"') quoted = !quoted;
      else if (c === '\\' && quoted && i + 1 < exec.length) word += exec[++i];
      else word += c;
      i++;
    }
    words.push(word); // an unbalanced quote just ends the value
  }
  return words;
}

/** The program Exec= runs: its first word, after `env` and its VAR=value words. */
export function execProgram(exec: string): string | null {
  const words = execWords(exec);
  let k = 0;
  if (words[0] !== undefined && basename(words[0]) === 'env') {
    k = 1;
    while (k < words.length && (words[k]!.includes('=') || words[k]!.startsWith('-'))) {
      // -u NAME / --unset NAME take the next word.
      if (words[k] === '-u' || words[k] === '--unset') k++;
      k++;
    }
  }
  const program = words[k];
  return program === undefined || program === '' || program.startsWith('%') ? null : program;
}

// ---- reading files, bounded ----

/**
 * Up to `max` bytes of a regular file, or null (missing, not a regular file, too big).
 * Opened non-blocking: an `Icon=` naming a FIFO or a device must not hang main.
 */
async function readBounded(path: string, max: number): Promise<Buffer | null> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return null;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > max || st.size === 0) return null;
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await handle.read(buf, off, st.size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return buf.subarray(0, off);
  } catch {
    return null;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The image type by content: a PNG, or an SVG document; null for anything else. */
export function sniffImage(buf: Buffer): ProcessIcon['mime'] | null {
  if (buf.length > PNG_MAGIC.length && buf.subarray(0, 8).equals(PNG_MAGIC)) return 'image/png';
  const head = buf.subarray(0, 4096).toString('utf8');
  if (head.includes('\0')) return null;
  const text = head.replace(/^\uFEFF/u, '').trimStart();
  if (!text.startsWith('<')) return null;
  return /<svg[\s>]/iu.test(text) ? 'image/svg+xml' : null;
}

// ---- icon themes ----

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

async function listDir(path: string): Promise<Dirent[]> {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch {
    return [];
  }
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

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

// ---- the resolver ----

interface Index {
  entries: DesktopEntry[];
  /** Exec=/TryExec= resolved to real paths, per entry (launcher entries excluded). */
  programs: Map<DesktopEntry, Set<string>>;
  themes: Map<string, Promise<Theme | null>>;
}

interface CacheEntry {
  icon: ProcessIcon | null;
  at: number;
  bytes: number;
}

export class IconResolver {
  private readonly paths: IconSearchPaths;
  private readonly options: IconResolverOptions;
  private readonly maxFileBytes: number;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly size: number;
  private readonly now: () => number;
  private readonly pathDirs: string[];
  private index: Promise<Index> | null = null;
  private indexAt = 0;
  private themes: Promise<string[]> | null = null;
  private readonly cache = new Map<string, CacheEntry>();
  private cacheBytes = 0;
  private readonly inflight = new Map<string, Promise<ProcessIcon | null>>();

  constructor(options: IconResolverOptions = {}) {
    const env = searchPathsFromEnv();
    this.options = options;
    this.paths = {
      applicationDirs: options.applicationDirs ?? env.applicationDirs,
      iconDirs: options.iconDirs ?? env.iconDirs,
      pixmapDirs: options.pixmapDirs ?? env.pixmapDirs,
    };
    this.maxFileBytes = options.maxFileBytes ?? 256 * 1024;
    this.maxEntries = options.maxCacheEntries ?? 512;
    this.maxBytes = options.maxCacheBytes ?? 16 * 1024 * 1024;
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.size = options.size ?? 32;
    this.now = options.now ?? Date.now;
    this.pathDirs =
      options.pathDirs ??
      splitDirs(process.env['PATH'], ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']);
  }

  /** Cached results now (tests, diagnostics). */
  get cacheSize(): number {
    return this.cache.size;
  }

  /** The icon of the program at `exe` (and of its sandboxed app), or null. Never throws. */
  resolve(exe: string, appId: string | null = null): Promise<ProcessIcon | null> {
    if (exe.length > 4096 || exe.includes('\0') || !isAbsolute(exe)) return Promise.resolve(null);
    const id = appId !== null && APP_ID.test(appId) ? appId : null;
    const key = `${exe}\0${id ?? ''}`;
    const hit = this.cache.get(key);
    if (hit && (hit.icon !== null || this.now() - hit.at < this.ttlMs)) {
      // Most recently used last: eviction takes the oldest.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return Promise.resolve(hit.icon);
    }
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.lookup(exe, id)
        .catch(() => null)
        .then((icon) => {
          this.remember(key, icon);
          return icon;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private remember(key: string, icon: ProcessIcon | null): void {
    const old = this.cache.get(key);
    if (old) {
      this.cache.delete(key);
      this.cacheBytes -= old.bytes;
    }
    const bytes = icon ? icon.dataUrl.length : 0;
    if (bytes > this.maxBytes) return;
    this.cache.set(key, { icon, at: this.now(), bytes });
    this.cacheBytes += bytes;
    for (const [k, e] of this.cache) {
      if (this.cache.size <= this.maxEntries && this.cacheBytes <= this.maxBytes) break;
      this.cache.delete(k);
      this.cacheBytes -= e.bytes;
    }
  }

  private async lookup(exe: string, appId: string | null): Promise<ProcessIcon | null> {
    const index = await this.currentIndex();
    // /proc/PID/exe of a replaced binary reads "... (deleted)".
    const path = exe.replace(/ \(deleted\)$/u, '');
    const real = await realpath(path).catch(() => path);
    for (const entry of this.candidates(index, path, real, appId)) {
      if (entry.icon === null) continue;
      const icon = await this.iconFor(index, entry.icon);
      if (icon) return icon;
    }
    return null;
  }

  /** Matching entries, best first (see the file comment). */
  private candidates(
    index: Index,
    exe: string,
    real: string,
    appId: string | null,
  ): DesktopEntry[] {
    const name = basename(real);
    const names = new Set([name.toLowerCase(), basename(exe).toLowerCase()]);
    const tiers: DesktopEntry[][] = [[], [], [], [], []];
    for (const e of index.entries) {
      const stem = e.id.replace(/\.desktop$/u, '');
      if (
        appId !== null &&
        (e.flatpak === appId || e.snap === appId || stem === appId || stem.startsWith(`${appId}_`))
      ) {
        tiers[0]!.push(e);
        continue;
      }
      const programs = index.programs.get(e);
      if (programs === undefined) continue; // a flatpak launcher: by app id only
      if (programs.has(real) || programs.has(exe)) {
        tiers[1]!.push(e);
        continue;
      }
      const words = [e.exec && execProgram(e.exec), e.tryExec].filter(
        (w): w is string => typeof w === 'string',
      );
      if (words.some((w) => names.has(basename(w).toLowerCase()))) tiers[2]!.push(e);
      else if (e.wmClass !== null && names.has(e.wmClass.toLowerCase())) tiers[3]!.push(e);
      else if (names.has(stem.toLowerCase()) || names.has(stem.split('.').pop()!.toLowerCase()))
        tiers[4]!.push(e);
    }
    return tiers.flat();
  }

  /** The desktop entries and themes, read again once they are older than the TTL. */
  private currentIndex(): Promise<Index> {
    if (!this.index || this.now() - this.indexAt >= this.ttlMs) {
      this.indexAt = this.now();
      this.index = this.buildIndex();
    }
    return this.index;
  }

  private async buildIndex(): Promise<Index> {
    const byId = new Map<string, DesktopEntry>();
    let files = 0;
    const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
      for (const e of await listDir(dir)) {
        if (files >= MAX_DESKTOP_FILES) return;
        const path = join(dir, e.name);
        const isDir =
          e.isDirectory() ||
          (e.isSymbolicLink() &&
            (await stat(path).then(
              (s) => s.isDirectory(),
              () => false,
            )));
        if (isDir) {
          if (depth < MAX_DIR_DEPTH) await walk(path, `${prefix}${e.name}-`, depth + 1);
          continue;
        }
        if (!e.name.endsWith('.desktop')) continue;
        const id = `${prefix}${e.name}`;
        // The first directory with an id wins (the user's copy hides the system's).
        if (byId.has(id)) continue;
        files++;
        const text = await readSmall(path, MAX_DESKTOP_BYTES);
        const parsed = text === null ? null : parseDesktopEntry(text);
        if (parsed) byId.set(id, { id, path, ...parsed });
      }
    };
    for (const dir of this.paths.applicationDirs) await walk(dir, '', 0);
    const entries = [...byId.values()];
    const programs = new Map<DesktopEntry, Set<string>>();
    await Promise.all(
      entries.map(async (e) => {
        const words = [e.exec && execProgram(e.exec), e.tryExec].filter(
          (w): w is string => typeof w === 'string',
        );
        if (e.flatpak !== null || words.some((w) => basename(w) === 'flatpak')) return;
        const set = new Set<string>();
        for (const w of words) {
          const found = await this.resolveProgram(w);
          if (found) for (const p of found) set.add(p);
        }
        programs.set(e, set);
      }),
    );
    return { entries, programs, themes: new Map() };
  }

  /** A program name as the shell would find it, and its real path. */
  private async resolveProgram(word: string): Promise<string[] | null> {
    if (word.includes('\0')) return null;
    const candidates = isAbsolute(word)
      ? [word]
      : word.includes('/')
        ? []
        : this.pathDirs.map((d) => join(d, word));
    for (const c of candidates) {
      if (!(await isFile(c))) continue;
      const real = await realpath(c).catch(() => c);
      return [c, real];
    }
    return null;
  }

  private currentThemes(): Promise<string[]> {
    this.themes ??= this.options.themes
      ? Promise.resolve(this.options.themes.filter((t) => ICON_NAME.test(t)))
      : detectIconThemes();
    return this.themes;
  }

  private theme(index: Index, name: string): Promise<Theme | null> {
    let t = index.themes.get(name);
    if (!t) {
      t = this.loadTheme(name);
      index.themes.set(name, t);
    }
    return t;
  }

  private async loadTheme(name: string): Promise<Theme | null> {
    const roots: string[] = [];
    for (const base of this.paths.iconDirs) {
      const root = join(base, name);
      if (
        await stat(root).then(
          (s) => s.isDirectory(),
          () => false,
        )
      )
        roots.push(root);
    }
    if (roots.length === 0) return null;
    // The spec: the first index.theme found describes the theme in every base.
    for (const root of roots) {
      const text = await readSmall(join(root, 'index.theme'), MAX_INDEX_THEME_BYTES);
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

  /** The theme chain: the current themes, what they inherit, hicolor last. */
  private async themeChain(index: Index): Promise<Theme[]> {
    const queue = [...(await this.currentThemes())];
    const chain: Theme[] = [];
    const seen = new Set<string>(['hicolor']);
    while (queue.length > 0 && chain.length < MAX_THEMES) {
      const name = queue.shift()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const t = await this.theme(index, name);
      if (!t) continue;
      chain.push(t);
      queue.push(...t.inherits);
    }
    const hicolor = await this.theme(index, 'hicolor');
    if (hicolor) chain.push(hicolor);
    return chain;
  }

  private async iconFor(index: Index, value: string): Promise<ProcessIcon | null> {
    if (isAbsolute(value)) {
      return /\.(png|svg)$/iu.test(value) ? this.readIcon(value) : null;
    }
    const name = value.replace(/\.(png|svg|xpm)$/iu, '');
    if (!ICON_NAME.test(name)) return null;
    for (const theme of await this.themeChain(index)) {
      const dirs = [...theme.dirs].sort((a, b) => dirScore(a, this.size) - dirScore(b, this.size));
      for (const d of dirs) {
        // A scalable directory holds SVGs; a sized one PNGs (some themes put SVGs there too).
        const exts = d.scalable ? ['svg', 'png'] : ['png', 'svg'];
        for (const root of theme.roots) {
          for (const ext of exts) {
            const icon = await this.readIcon(join(root, d.path, `${name}.${ext}`));
            if (icon) return icon;
          }
        }
      }
    }
    for (const dir of this.paths.pixmapDirs) {
      for (const ext of ['png', 'svg']) {
        const icon = await this.readIcon(join(dir, `${name}.${ext}`));
        if (icon) return icon;
      }
    }
    return null;
  }

  private async readIcon(path: string): Promise<ProcessIcon | null> {
    const buf = await readBounded(path, this.maxFileBytes);
    if (!buf) return null;
    const mime = sniffImage(buf);
    if (!mime) return null;
    return { mime, dataUrl: `data:${mime};base64,${buf.toString('base64')}` };
  }
}
