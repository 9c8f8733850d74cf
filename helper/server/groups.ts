/**
 * An access group (the .deb's `portcullis` group) by name: its gid, from /etc/group.
 * Who is a member is the peer's own business: the server admits a peer whose groups
 * hold the gid when it connects (SO_PEERGROUPS), as the kernel did on the directory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AccessGroup {
  name: string;
  gid: number;
}

export class AccessGroupError extends Error {
  override readonly name = 'AccessGroupError';
}

function rows(path: string): string[][] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
}

export function resolveAccessGroup(name: string, etc = '/etc'): AccessGroup {
  const group = rows(join(etc, 'group')).find((f) => f[0] === name);
  if (!group || group.length < 3 || !/^\d+$/u.test(group[2]!)) {
    throw new AccessGroupError(`access group '${name}' does not exist in ${join(etc, 'group')}`);
  }
  return { name, gid: Number(group[2]) };
}
