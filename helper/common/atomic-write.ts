/**
 * Replace a file so that a crash at any point leaves either the old content
 * or the new, never a mix: write a temporary file in the same directory,
 * fsync it, rename it over the target, then fsync the directory so that the
 * rename itself is durable.
 */
import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** The file operations the stores use: a seam to simulate crashes and failures in tests. */
export type StoreFs = Pick<
  typeof fsp,
  'open' | 'rename' | 'unlink' | 'readFile' | 'readdir' | 'mkdir' | 'copyFile' | 'stat'
>;

export const nodeFs: StoreFs = fsp;

/** Prefix of the temporary files; leftovers of a crash are removed on open. */
const tmpName = (name: string): string =>
  `${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

export async function atomicWrite(
  fs: StoreFs,
  dir: string,
  name: string,
  data: string,
  mode = 0o600,
): Promise<void> {
  const tmp = join(dir, tmpName(name));
  const fh = await fs.open(tmp, 'w', mode);
  try {
    // The open mode is filtered by the umask; chmod states it exactly.
    await fh.chmod(mode);
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close();
    await removeQuietly(fs, tmp);
    throw e;
  }
  await fh.close();
  try {
    await fs.rename(tmp, join(dir, name));
  } catch (e) {
    await removeQuietly(fs, tmp);
    throw e;
  }
  await syncDir(fs, dir);
}

export async function syncDir(fs: StoreFs, dir: string): Promise<void> {
  const dh = await fs.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Removes a temporary file after a failed write. The write's own error is the
 * one worth reporting; a failure here only leaves a tmp file that the next
 * open removes, so it is deliberately not raised over the original error.
 */
async function removeQuietly(fs: StoreFs, path: string): Promise<void> {
  await fs.unlink(path).catch(() => undefined);
}
