import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeFs } from '../../../helper/common/atomic-write.js';
import { keepAside } from '../../../helper/common/keep-aside.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-keep-aside-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const NOW = Date.UTC(2026, 11, 7, 12, 0, 0, 123);

describe('keepAside', () => {
  it('copies the file byte for byte to NAME.corrupt-TIME, mode 0600, leaving it in place', async () => {
    const path = join(dir, 'state.json');
    const bytes = Buffer.from([0x7b, 0x00, 0xff, 0x0a]);
    await writeFile(path, bytes, { mode: 0o644 });
    const copy = await keepAside(nodeFs, path, NOW);
    expect(copy).toBe(`${path}.corrupt-2026-12-07T12-00-00-123Z`);
    expect((await readFile(copy)).equals(bytes)).toBe(true);
    expect((await stat(copy)).mode & 0o777).toBe(0o600);
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('never overwrites an earlier kept copy: two damaged files kept within one millisecond both survive', async () => {
    const path = join(dir, 'state.json');
    await writeFile(path, 'first');
    const first = await keepAside(nodeFs, path, NOW, { move: true });
    await writeFile(path, 'second');
    const second = await keepAside(nodeFs, path, NOW, { move: true });
    expect(second).toBe(`${first}-2`);
    expect(await readFile(first, 'utf8')).toBe('first');
    expect(await readFile(second, 'utf8')).toBe('second');
    // move: the damaged file is gone once its copy is safe.
    expect((await readdir(dir)).sort()).toEqual([
      'state.json.corrupt-2026-12-07T12-00-00-123Z',
      'state.json.corrupt-2026-12-07T12-00-00-123Z-2',
    ]);
  });

  it('throws when there is nothing to copy, and makes no copy', async () => {
    await expect(keepAside(nodeFs, join(dir, 'missing.json'), NOW)).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(await readdir(dir)).toEqual([]);
  });
});
