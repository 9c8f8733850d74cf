/**
 * The desktop's application entries, read from the `applications/`
 * directories (bounded in count, size and depth), and the ranking of those
 * that describe a running program, best first: its sandbox app id (flatpak
 * `X-Flatpak=` / file name, snap `X-SnapInstanceName=` / `SNAP_APP.desktop`);
 * `Exec=` (first word, after `env VAR=...`, resolved through PATH and
 * symlinks) or `TryExec=` naming the same file as the executable; the same
 * basename; `StartupWMClass=`; the file name (`org.gnome.Nautilus.desktop`
 * for `nautilus`). Flatpak launcher entries (`Exec=flatpak run ...`) match by
 * app id only: their Exec names the flatpak command, not the app.
 */
import { realpath } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { entryPrograms, parseDesktopEntry, type DesktopEntry } from './desktop-entry.js';
import { isDirectory, isFile, listDir, readSmallText } from './icon-files.js';

const MAX_DESKTOP_FILES = 4096;
const MAX_DESKTOP_BYTES = 64 * 1024;
const MAX_DIR_DEPTH = 3;

export interface AppIndex {
  entries: DesktopEntry[];
  /** Exec=/TryExec= resolved to real paths, per entry (launcher entries excluded). */
  programs: Map<DesktopEntry, Set<string>>;
}

/** Every usable entry; the first directory with an id wins (the user's copy hides the system's). */
export async function readAppIndex(
  applicationDirs: readonly string[],
  pathDirs: readonly string[],
): Promise<AppIndex> {
  const byId = new Map<string, DesktopEntry>();
  let files = 0;
  const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
    for (const e of await listDir(dir)) {
      if (files >= MAX_DESKTOP_FILES) return;
      const path = join(dir, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(path)))) {
        if (depth < MAX_DIR_DEPTH) await walk(path, `${prefix}${e.name}-`, depth + 1);
        continue;
      }
      if (!e.name.endsWith('.desktop')) continue;
      const id = `${prefix}${e.name}`;
      if (byId.has(id)) continue;
      files++;
      const text = await readSmallText(path, MAX_DESKTOP_BYTES);
      const parsed = text === null ? null : parseDesktopEntry(text);
      if (parsed) byId.set(id, { id, path, ...parsed });
    }
  };
  for (const dir of applicationDirs) await walk(dir, '', 0);
  const entries = [...byId.values()];
  const programs = new Map<DesktopEntry, Set<string>>();
  await Promise.all(
    entries.map(async (e) => {
      const words = entryPrograms(e);
      if (e.flatpak !== null || words.some((w) => basename(w) === 'flatpak')) return;
      const set = new Set<string>();
      for (const w of words) {
        const found = await resolveProgram(w, pathDirs);
        if (found) for (const p of found) set.add(p);
      }
      programs.set(e, set);
    }),
  );
  return { entries, programs };
}

/** A program name as the shell would find it, and its real path. */
async function resolveProgram(word: string, pathDirs: readonly string[]): Promise<string[] | null> {
  if (word.includes('\0')) return null;
  const candidates = isAbsolute(word)
    ? [word]
    : word.includes('/')
      ? []
      : pathDirs.map((d) => join(d, word));
  for (const c of candidates) {
    if (!(await isFile(c))) continue;
    const real = await realpath(c).catch(() => c);
    return [c, real];
  }
  return null;
}

/** The entries that describe the program at `exe` (real path `real`), best first. */
export function matchingEntries(
  index: AppIndex,
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
    if (entryPrograms(e).some((w) => names.has(basename(w).toLowerCase()))) tiers[2]!.push(e);
    else if (e.wmClass !== null && names.has(e.wmClass.toLowerCase())) tiers[3]!.push(e);
    else if (names.has(stem.toLowerCase()) || names.has(stem.split('.').pop()!.toLowerCase()))
      tiers[4]!.push(e);
  }
  return tiers.flat();
}
