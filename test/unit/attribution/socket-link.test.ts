import { closeSync, mkdtempSync, openSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsSocketLink, ProcReadError, ProcReader } from '../../../helper/attribution/procfs.js';
import { loadNativeBinding } from '../../../helper/native/load.js';

const native = loadNativeBinding();
const { ENOENT, EIO, EACCES } = constants.errno;

let dir: string;
let server: Server;
let serverFd: number;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pcl-socket-link-'));
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverFd = (server as unknown as { _handle: { fd: number } })._handle.fd;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A symlink in the scratch directory whose target is `target`. */
let links = 0;
function linkTo(target: string): string {
  const path = join(dir, `l${links++}`);
  symlinkSync(target, path);
  return path;
}

describe('socketLinkInode (native) and its fs fallback', () => {
  it('read a real socket fd of this process as its inode', () => {
    const path = `/proc/self/fd/${serverFd}`;
    const inode = Number(/^socket:\[(\d+)\]$/.exec(readlinkSync(path))![1]);
    expect(inode).toBeGreaterThan(0);
    expect(native.socketLinkInode(path)).toBe(inode);
    expect(fsSocketLink(path)).toBe(inode);
  });

  it('give 0 for an fd that is no socket and -ENOENT for a closed fd or a missing process', () => {
    const fd = openSync(dir, 'r');
    const path = `/proc/self/fd/${fd}`;
    expect(native.socketLinkInode(path)).toBe(0);
    expect(fsSocketLink(path)).toBe(0);
    closeSync(fd);
    expect(native.socketLinkInode(path)).toBe(-ENOENT!);
    expect(fsSocketLink(path)).toBe(-ENOENT!);
    expect(native.socketLinkInode('/proc/999999999/fd/3')).toBe(-ENOENT!);
  });

  it('parse targets exactly as the text parser does (property, symlinks with any target)', () => {
    const targets = fc.oneof(
      fc.nat().map((n) => `socket:[${n}]`),
      fc
        .string({ maxLength: 3, unit: fc.constantFrom('0', '9', 'a', '[', ']', ' ') })
        .map((tail) => `socket:[${tail}`),
      fc.bigInt({ min: 0n, max: 10n ** 25n }).map((n) => `socket:[${n}]`),
      fc.constantFrom('socket:[]', 'socket:[', 'pipe:[5]', 'anon_inode:[eventfd]', '/dev/null'),
      fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !s.includes('\0')),
    );
    fc.assert(
      fc.property(targets, (target) => {
        const path = linkTo(target);
        const got = native.socketLinkInode(path);
        expect(got).toBe(fsSocketLink(path));
        const digits = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        const expected = digits !== undefined && BigInt(digits) <= 2n ** 53n ? Number(digits) : 0;
        expect(got).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('refuse a path that is not a string or holds a NUL byte', () => {
    expect(() => (native.socketLinkInode as (p: unknown) => number)(3)).toThrow(TypeError);
    expect(() => native.socketLinkInode('/proc/self/fd/0\0x')).toThrow(/NUL/);
  });
});

describe('ProcReader.socketAt over a link reader', () => {
  it('maps gone and denied to null and throws ProcReadError with the errno for the rest', () => {
    let answer = 0;
    const seen: string[] = [];
    const reader = new ProcReader({
      root: '/proc/',
      socketLink: (path) => {
        seen.push(path);
        return answer;
      },
    });
    answer = 4242;
    expect(reader.socketAt(7, 3)).toBe(4242);
    expect(seen).toEqual(['/proc/7/fd/3']);
    answer = 0;
    expect(reader.socketAt(7, 3)).toBeNull();
    answer = -ENOENT!;
    expect(reader.socketAt(7, 3)).toBeNull();
    answer = -EACCES!;
    expect(reader.socketAt(7, 3)).toBeNull();
    answer = -EIO!;
    const error = (() => {
      try {
        reader.socketAt(7, 3);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ProcReadError);
    expect(error).toMatchObject({ code: 'EIO', errno: EIO, path: '/proc/7/fd/3' });
  });

  it('reads this process by default through the addon', () => {
    const reader = new ProcReader();
    expect(reader.socketAt(process.pid, serverFd)).toBe(
      native.socketLinkInode(`/proc/self/fd/${serverFd}`),
    );
    expect(reader.socketInodes(process.pid)).toContain(reader.socketAt(process.pid, serverFd));
  });
});
