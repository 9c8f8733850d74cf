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
      join(etc, 'passwd'),
      [
        'root:x:0:0:root:/root:/bin/bash',
        'alice:x:1000:1000::/home/alice:/bin/bash',
        'bob:x:1001:1001::/home/bob:/bin/bash',
        'carol:x:1002:998::/home/carol:/bin/bash',
        'dave:x:1003:1003::/home/dave:/bin/bash',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(etc, 'group'),
      ['root:x:0:', '# a comment', 'portcullis:x:998:alice,bob,root', 'empty:x:997:', ''].join(
        '\n',
      ),
    );
  });
  afterEach(() => rmSync(etc, { recursive: true, force: true }));

  it('members are the listed users and those whose primary group it is, never root', () => {
    expect(resolveAccessGroup('portcullis', etc)).toEqual({
      name: 'portcullis',
      gid: 998,
      uids: [1000, 1001, 1002],
    });
    expect(resolveAccessGroup('empty', etc)).toEqual({ name: 'empty', gid: 997, uids: [] });
  });

  it('an unknown group is a clear error', () => {
    expect(() => resolveAccessGroup('nope', etc)).toThrow(AccessGroupError);
    expect(() => resolveAccessGroup('nope', etc)).toThrow(/'nope' does not exist/);
  });
});
