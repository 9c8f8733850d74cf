import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessGroupError, resolveAccessGroup } from '../../../helper/server/groups.js';

describe('access group (--access-group)', () => {
  let etc: string;
  beforeEach(() => {
    etc = mkdtempSync(join(tmpdir(), 'pcl-groups-'));
    writeFileSync(
      join(etc, 'group'),
      ['root:x:0:', '# a comment', 'portcullis:x:998:alice,bob,root', 'empty:x:997:', ''].join(
        '\n',
      ),
    );
  });
  afterEach(() => rmSync(etc, { recursive: true, force: true }));

  it('is the group of that name, by gid', () => {
    expect(resolveAccessGroup('portcullis', etc)).toEqual({ name: 'portcullis', gid: 998 });
    expect(resolveAccessGroup('empty', etc)).toEqual({ name: 'empty', gid: 997 });
  });

  it('an unknown group is a clear error', () => {
    expect(() => resolveAccessGroup('nope', etc)).toThrow(AccessGroupError);
    expect(() => resolveAccessGroup('nope', etc)).toThrow(/'nope' does not exist/);
  });
});
