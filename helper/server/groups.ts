/**
 * An access group (the .deb's `portcullis` group): its gid and the uids of its
 * members, from /etc/group (listed members) and /etc/passwd (users whose
 * primary group it is). SO_PEERCRED only carries the peer's primary gid, so the
 * server admits members by uid; membership is read when the helper starts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AccessGroup {
  name: string;
  gid: number;
  uids: number[];
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
  const gid = Number(group[2]);
  const listed = new Set((group[3] ?? '').split(',').filter(Boolean));
  const uids = new Set<number>();
  for (const f of rows(join(etc, 'passwd'))) {
    if (f.length < 4 || !/^\d+$/u.test(f[2]!)) continue;
    const uid = Number(f[2]);
    if (listed.has(f[0]!) || Number(f[3]) === gid) uids.add(uid);
  }
  uids.delete(0);
  return { name, gid, uids: [...uids].sort((a, b) => a - b) };
}
