/**
 * Where a desktop looks for application entries and icons: the XDG data
 * directories of the environment, plus the export directories of flatpak and
 * snap (which add them to XDG_DATA_DIRS in login shells only).
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

export interface IconSearchPaths {
  /** `applications/` directories, the most important first (XDG_DATA_HOME first). */
  applicationDirs: string[];
  /** Icon theme base directories (~/.icons, then each data dir's `icons/`). */
  iconDirs: string[];
  /** The last resort for icon names (`pixmaps/`). */
  pixmapDirs: string[];
}

export function unique(list: string[]): string[] {
  return [...new Set(list.filter((d) => d !== ''))];
}

/** A colon-separated list of absolute directories ($PATH, $XDG_DATA_DIRS), or `fallback`. */
export function splitDirs(value: string | undefined, fallback: string[]): string[] {
  const dirs = (value ?? '').split(':').filter((d) => isAbsolute(d));
  return dirs.length > 0 ? dirs : fallback;
}

/** An XDG base directory variable if it is absolute, else its default under home. */
export function xdgHome(value: string | undefined, fallback: string): string {
  return value && isAbsolute(value) ? value : fallback;
}

/** The XDG search paths of the environment, with flatpak's and snap's export directories. */
export function searchPathsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): IconSearchPaths {
  const dataHome = xdgHome(env['XDG_DATA_HOME'], join(home, '.local', 'share'));
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
