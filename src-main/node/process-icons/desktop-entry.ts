/**
 * One `.desktop` file (freedesktop.org Desktop Entry specification): the keys
 * that name a program and its icon, and the program its `Exec=` runs.
 */
import { basename } from 'node:path';

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

/** The programs an entry names: Exec='s and TryExec=, as written. */
export function entryPrograms(e: DesktopEntry): string[] {
  return [e.exec && execProgram(e.exec), e.tryExec].filter(
    (w): w is string => typeof w === 'string',
  );
}
