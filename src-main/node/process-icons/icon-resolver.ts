/**
 * A program's icon, found the way a Linux desktop finds it: the executable (or
 * the flatpak/snap app id) names a `.desktop` entry (app-index.ts), whose
 * `Icon=` is an absolute path or a name looked up in the icon themes
 * (icon-themes.ts).
 *
 * Runs in main's Electron-free core (the bridge serves `processIcon`), as the
 * desktop user, never in the renderer and never in the root helper: it reads
 * files the user can read anyway. Everything is bounded: desktop files (count,
 * size), icon files (size, regular files only, opened non-blocking), the
 * cache (entries and bytes). An icon leaves as a base64 `data:` URL of a PNG
 * or an SVG, recognised by content (icon-files.ts): the renderer shows it only
 * through `<img>`, where an SVG cannot run script or load anything, under the
 * CSP's `img-src 'self' data:`.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import type { ProcessIcon } from '../../common/api.js';
import { matchingEntries, readAppIndex, type AppIndex } from './app-index.js';
import { IconCache } from './icon-cache.js';
import { readIcon } from './icon-files.js';
import { ICON_NAME, IconThemes, detectIconThemes } from './icon-themes.js';
import { searchPathsFromEnv, splitDirs, type IconSearchPaths } from './search-paths.js';

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

const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/u;

/** What is read from disk once per TTL: the entries and the themes. */
interface Snapshot {
  apps: AppIndex;
  themes: IconThemes;
}

export class IconResolver {
  private readonly paths: IconSearchPaths;
  private readonly maxFileBytes: number;
  private readonly ttlMs: number;
  private readonly size: number;
  private readonly now: () => number;
  private readonly pathDirs: string[];
  private readonly configuredThemes: string[] | undefined;
  private snapshot: Promise<Snapshot> | null = null;
  private snapshotAt = 0;
  private currentThemes: Promise<string[]> | null = null;
  private readonly cache: IconCache;
  private readonly inflight = new Map<string, Promise<ProcessIcon | null>>();

  constructor(options: IconResolverOptions = {}) {
    const env = searchPathsFromEnv();
    this.paths = {
      applicationDirs: options.applicationDirs ?? env.applicationDirs,
      iconDirs: options.iconDirs ?? env.iconDirs,
      pixmapDirs: options.pixmapDirs ?? env.pixmapDirs,
    };
    this.configuredThemes = options.themes;
    this.maxFileBytes = options.maxFileBytes ?? 256 * 1024;
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.size = options.size ?? 32;
    this.now = options.now ?? Date.now;
    this.pathDirs =
      options.pathDirs ??
      splitDirs(process.env['PATH'], ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']);
    this.cache = new IconCache({
      maxEntries: options.maxCacheEntries ?? 512,
      maxBytes: options.maxCacheBytes ?? 16 * 1024 * 1024,
      ttlMs: this.ttlMs,
      now: this.now,
    });
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
    if (hit !== undefined) return Promise.resolve(hit);
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.lookup(exe, id)
        .catch(() => null)
        .then((icon) => {
          this.cache.set(key, icon);
          return icon;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async lookup(exe: string, appId: string | null): Promise<ProcessIcon | null> {
    const snapshot = await this.currentSnapshot();
    // /proc/PID/exe of a replaced binary reads "... (deleted)".
    const path = exe.replace(/ \(deleted\)$/u, '');
    const real = await realpath(path).catch(() => path);
    for (const entry of matchingEntries(snapshot.apps, path, real, appId)) {
      if (entry.icon === null) continue;
      const icon = await this.iconFor(snapshot.themes, entry.icon);
      if (icon) return icon;
    }
    return null;
  }

  /** The desktop entries and themes, read again once they are older than the TTL. */
  private currentSnapshot(): Promise<Snapshot> {
    if (!this.snapshot || this.now() - this.snapshotAt >= this.ttlMs) {
      this.snapshotAt = this.now();
      this.snapshot = readAppIndex(this.paths.applicationDirs, this.pathDirs).then((apps) => ({
        apps,
        themes: new IconThemes(this.paths.iconDirs),
      }));
    }
    return this.snapshot;
  }

  private async iconFor(themes: IconThemes, value: string): Promise<ProcessIcon | null> {
    if (isAbsolute(value)) {
      return /\.(png|svg)$/iu.test(value) ? readIcon(value, this.maxFileBytes) : null;
    }
    const name = value.replace(/\.(png|svg|xpm)$/iu, '');
    if (!ICON_NAME.test(name)) return null;
    this.currentThemes ??= this.configuredThemes
      ? Promise.resolve(this.configuredThemes.filter((t) => ICON_NAME.test(t)))
      : detectIconThemes();
    const current = await this.currentThemes;
    for await (const path of themes.iconPaths(current, this.paths.pixmapDirs, name, this.size)) {
      const icon = await readIcon(path, this.maxFileBytes);
      if (icon) return icon;
    }
    return null;
  }
}
