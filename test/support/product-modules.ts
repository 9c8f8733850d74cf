/**
 * Which source modules the product is made of: everything reachable by relative
 * imports from the product's entry points. What tsc compiles from helper/ and
 * src-main/ but no entry reaches (a test double, a benchmark's helper) still lands
 * in dist/ and in the packages, so the packaging tests hold both to this list.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '..', '..');

/**
 * The product's entry points (repository-relative): the Electron main process and
 * preload, the `portcullis` command (helper, CLI, `portcullis ui`), the renderer,
 * and each helper subsystem's index.ts, the public API of a library (docs/*.md).
 */
export function productEntries(): string[] {
  const subsystems = readdirSync(join(repoRoot, 'helper'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(repoRoot, 'helper', d.name, 'index.ts')))
    .map((d) => `helper/${d.name}/index.ts`);
  return [
    'src-main/electron-main/main.ts',
    'src-main/preload/preload.ts',
    // bin/portcullis.js runs these three from dist/.
    'helper/cli.ts',
    'src-main/node/web-cli.ts',
    'src-main/node/start/start-cli.ts',
    // `portcullis start --demo` runs its peer as a process of its own.
    'src-main/node/start/demo-peer-main.ts',
    'src-renderer/src/main.ts',
    ...subsystems.sort(),
  ];
}

/** The folders tsc -p tsconfig.node.json compiles into the product's dist/ trees. */
export const PRODUCT_SOURCE_DIRS = ['helper', 'src-main'];

/**
 * Relative module specifiers of imports and re-exports (`... from '...'`), of imports
 * for side effects (`import '...'`) and of literal dynamic imports (`import('...')`).
 */
const SPECIFIER =
  /(?:^|[\s;}])(?:import|export)\s[^'"`;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/gmu;

/** The source file an import of `specifier` from `from` reads, or null when there is none. */
function resolveSource(from: string, specifier: string): string | null {
  const target = resolve(dirname(from), specifier);
  const candidates = [target.replace(/\.js$/u, '.ts'), target];
  return candidates.find((c) => existsSync(c)) ?? null;
}

/** Repository-relative paths of every file reachable from `entries`. */
export function reachableFrom(entries: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = entries.map((e) => join(repoRoot, e));
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    const rel = relative(repoRoot, file);
    if (seen.has(rel)) continue;
    seen.add(rel);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(SPECIFIER)) {
      const target = resolveSource(file, (m[1] ?? m[2])!);
      if (target !== null) todo.push(target);
    }
  }
  return seen;
}

/** Every .ts source (no declarations) below the given repository folders. */
export function sourcesUnder(dirs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(repoRoot, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
    }
  };
  for (const dir of dirs) walk(dir);
  return out.sort();
}
