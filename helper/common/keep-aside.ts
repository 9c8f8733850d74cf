/**
 * Keeping a damaged state file before anything may replace or drop it: its
 * bytes go to NAME.corrupt-TIME (the clock's ISO time, ':' and '.' as '-'),
 * never over a copy kept earlier; a second one in the same millisecond is
 * NAME.corrupt-TIME-2, and so on. The copy is root's alone (0600), whatever
 * mode the damaged file had, and it and its directory are synced before the
 * call returns, so that a crash right after cannot lose both.
 */
import { constants as fsConstants } from 'node:fs';
import { dirname } from 'node:path';
import { syncDir, type StoreFs } from './atomic-write.js';

/** Copies kept within one millisecond before giving up. */
const MAX_SAME_TIME = 100;

export interface KeepAsideOptions {
  /** Remove the damaged file once its copy is safe (a store that starts
   * without it). Default false: it stays until a write replaces it. */
  move?: boolean;
}

/** The copy's path. Throws when no copy could be made; the damaged file is then where it was. */
export async function keepAside(
  fs: StoreFs,
  path: string,
  now: number,
  options: KeepAsideOptions = {},
): Promise<string> {
  const stamp = new Date(now).toISOString().replace(/[:.]/gu, '-');
  for (let n = 1; n <= MAX_SAME_TIME; n++) {
    const target = `${path}.corrupt-${stamp}${n > 1 ? `-${n}` : ''}`;
    try {
      await fs.copyFile(path, target, fsConstants.COPYFILE_EXCL);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    const fh = await fs.open(target, 'r');
    try {
      await fh.chmod(0o600);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (options.move) await fs.unlink(path);
    await syncDir(fs, dirname(path));
    return target;
  }
  throw new Error(`${path}: ${MAX_SAME_TIME} copies kept aside at ${stamp} already`);
}
