/** Runs scripts/stage-linux.mjs once into a fresh directory (root packaging tests). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

export interface Staging {
  dir: string;
  unpacked: string;
  deb: string;
  version: string;
}

/** Why the packaging tests cannot run here, or undefined. */
export function packagingUnavailable(tools: string[]): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const tool of tools) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`]);
    if (r.status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

export function stage(): Staging {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-stage-'));
  const pkgBefore = readFileSync(join(repoRoot, 'package.json'), 'utf8');
  const r = spawnSync('node', [join(repoRoot, 'scripts', 'stage-linux.mjs'), dir], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`stage-linux failed:\n${r.stdout}\n${r.stderr}`);
  // electron-builder once rewrote it through a hard link: staging must leave the tree alone.
  if (readFileSync(join(repoRoot, 'package.json'), 'utf8') !== pkgBefore) {
    throw new Error('stage-linux changed the repository package.json');
  }
  const version = (
    JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  return {
    dir,
    unpacked: join(dir, 'builder', 'linux-unpacked'),
    deb: join(dir, `portcullis_${version}_amd64.deb`),
    version,
  };
}

export function sh(
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
