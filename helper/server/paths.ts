/**
 * The filesystem side of the IPC socket: the directory, the socket file and
 * the token file, with the ownership and modes docs/protocol.md promises.
 *
 *   /run/portcullis/              root:GROUP 0750  (GROUP: the owning user's group)
 *   /run/portcullis/helper.sock   root:GROUP 0660
 *   /run/portcullis/token         USER:root  0400  (only the user and root read it)
 *
 * Ownership is set only when running as root (unit tests run unprivileged);
 * modes always.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  fchmodSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
} from 'node:fs';
import { renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { socketAnswers } from '../protocol/client.js';

export { DEFAULT_SOCKET_PATH, DEFAULT_TOKEN_PATH } from '../protocol/defaults.js';
export const DIRECTORY_MODE = 0o750;
export const SOCKET_MODE = 0o660;
export const TOKEN_MODE = 0o400;
/** The token file of a service with an access group: root:GROUP, group-readable. */
export const GROUP_TOKEN_MODE = 0o440;

export class SocketPathError extends Error {
  override readonly name = 'SocketPathError';
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/**
 * Creates the socket's directory (and parents) or takes over an existing one,
 * then sets root:group and 0750. An existing path that is not a real
 * directory, or (as root) a directory owned by someone other than root, is
 * refused: somebody else could swap the socket under us.
 */
export function prepareSocketDirectory(dir: string, group: number): void {
  let existing: ReturnType<typeof lstatSync> | undefined;
  try {
    existing = lstatSync(dir);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
  if (existing) {
    if (!existing.isDirectory()) {
      throw new SocketPathError(`${dir} exists and is not a directory (symlinks are refused)`);
    }
    if (isRoot() && existing.uid !== 0) {
      throw new SocketPathError(`${dir} is owned by uid ${existing.uid}, not root`);
    }
  } else {
    mkdirSync(dir, { recursive: true, mode: DIRECTORY_MODE });
  }
  if (isRoot()) chownSync(dir, 0, group);
  chmodSync(dir, DIRECTORY_MODE); // mkdir's mode is filtered by the umask
}

/**
 * Removes a socket file left by a crashed helper. Refuses to remove anything
 * that is not a socket, or a socket another helper still listens on.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  if (!st.isSocket()) throw new SocketPathError(`${path} exists and is not a socket`);
  if (await socketAnswers(path)) throw new SocketPathError(`${path} is in use by another process`);
  unlinkSync(path);
}

/** Sets the listening socket's owner and mode. */
export function secureSocketFile(path: string, group: number): void {
  if (isRoot()) chownSync(path, 0, group);
  chmodSync(path, SOCKET_MODE);
}

/**
 * Writes the per-launch token for the owning user: a new file in the same
 * directory (O_EXCL, mode 0400, chowned before any byte is written), synced,
 * then renamed over the old one, so a reader sees the old or the new token.
 */
export function writeTokenFile(
  path: string,
  token: string,
  ownerUid: number,
  options: { group?: number } = {},
): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', TOKEN_MODE);
  try {
    // With an access group (the service), root owns the token and the group reads it.
    if (options.group !== undefined) {
      if (isRoot()) chownSync(tmp, 0, options.group);
      fchmodSync(fd, GROUP_TOKEN_MODE);
    } else if (isRoot()) chownSync(tmp, ownerUid, 0);
    writeSync(fd, `${token}\n`);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(tmp);
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
