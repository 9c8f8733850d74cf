/**
 * Reading the files icons are found through, bounded: a regular file only, up
 * to a size, opened non-blocking (an `Icon=` naming a FIFO or a device must
 * not hang main); an icon is accepted by its content (a PNG or an SVG
 * document), never by its name.
 */
import { constants, type Dirent } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import type { ProcessIcon } from '../../common/api.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Up to `max` bytes of a regular file, or null (missing, not a regular file, empty, too big). */
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

/** A small text file (a desktop entry, an index.theme, a settings file), or null. */
export async function readSmallText(path: string, max: number): Promise<string | null> {
  const buf = await readBounded(path, max);
  return buf ? buf.toString('utf8') : null;
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

/** The icon at `path` as a data: URL, or null (unreadable, too big, not a PNG or SVG). */
export async function readIcon(path: string, maxBytes: number): Promise<ProcessIcon | null> {
  const buf = await readBounded(path, maxBytes);
  if (!buf) return null;
  const mime = sniffImage(buf);
  if (!mime) return null;
  return { mime, dataUrl: `data:${mime};base64,${buf.toString('base64')}` };
}

export async function listDir(path: string): Promise<Dirent[]> {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch {
    return [];
  }
}

export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
