// The owner of a loopback TCP client socket (src-main/node/web-peer.ts): the
// table format, and the real kernel's tables for a real connection.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  findPeerUid,
  parseProcNetTcp,
  PeerLookupError,
  PeerUidReader,
} from '../../../src-main/node/web-peer.js';

const HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

/** A /proc/net/tcp line as a little-endian kernel prints it. */
function line(local: string, remote: string, uid: number, inode: number): string {
  return `   0: ${local} ${remote} 01 00000000:00000000 00:00000000 00000000  ${uid}        0 ${inode} 1 0000000000000000 20 4 30 10 -1\n`;
}

describe.runIf(endianness() === 'LE')('parseProcNetTcp', () => {
  it('reads IPv4 and IPv4-mapped IPv6 rows, skips other IPv6 and junk', () => {
    const v4 = parseProcNetTcp(HEADER + line('0100007F:9C40', '0100007F:1F90', 1000, 4242));
    expect(v4).toEqual([
      {
        local: { address: '127.0.0.1', port: 40000 },
        remote: { address: '127.0.0.1', port: 8080 },
        uid: 1000,
        inode: 4242,
      },
    ]);
    const v6 = parseProcNetTcp(
      HEADER +
        line(
          '0000000000000000FFFF00000100007F:9C41',
          '0000000000000000FFFF00000100007F:1F90',
          65534,
          77,
        ) +
        line(
          '00000000000000000000000001000000:9C42',
          '00000000000000000000000001000000:1F90',
          0,
          78,
        ) +
        'garbage\n',
    );
    expect(v6).toEqual([
      {
        local: { address: '127.0.0.1', port: 40001 },
        remote: { address: '127.0.0.1', port: 8080 },
        uid: 65534,
        inode: 77,
      },
    ]);
  });

  it("finds the client's row (ends swapped); a closed socket (inode 0) has no owner", () => {
    const rows = parseProcNetTcp(
      HEADER +
        // Our own accepted socket: not the client's.
        line('0100007F:1F90', '0100007F:9C40', 0, 10) +
        line('0100007F:9C40', '0100007F:1F90', 1000, 11) +
        line('0100007F:9C41', '0100007F:1F90', 0, 0),
    );
    const local = { address: '127.0.0.1', port: 8080 };
    expect(findPeerUid(rows, local, { address: '127.0.0.1', port: 40000 })).toBe(1000);
    expect(findPeerUid(rows, local, { address: '127.0.0.1', port: 40001 })).toBeNull();
    expect(findPeerUid(rows, local, { address: '127.0.0.1', port: 40002 })).toBeNull();
  });
});

describe('PeerUidReader', () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('names this process as the owner of its own loopback clients, a batch at a time', async () => {
    const accepted: Socket[] = [];
    server = createServer((s) => accepted.push(s));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    for (let i = 0; i < 5; i++) {
      const c = connect(port, '127.0.0.1');
      sockets.push(c);
      await new Promise((resolve) => c.once('connect', resolve));
    }
    while (accepted.length < 5) await new Promise((r) => setTimeout(r, 5));
    sockets.push(...accepted);
    const reader = new PeerUidReader();
    const uids = await Promise.all(
      accepted.map((s) =>
        reader.lookup(
          { address: s.localAddress!, port: s.localPort! },
          { address: s.remoteAddress!, port: s.remotePort! },
        ),
      ),
    );
    expect(uids).toEqual(accepted.map(() => process.getuid!()));
    // A port nobody uses: no owner.
    const nobody = await reader.lookup(
      { address: '127.0.0.1', port },
      { address: '127.0.0.1', port: 1 },
    );
    expect(nobody).toBeNull();
  });

  it('reports a table it cannot read as an error, not as "no owner"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pcl-peer-'));
    try {
      // tcp6 may be missing (a kernel without IPv6); tcp may not.
      writeFileSync(join(dir, 'tcp'), HEADER);
      const ok = new PeerUidReader(dir);
      const ends = [
        { address: '127.0.0.1', port: 1 },
        { address: '127.0.0.1', port: 2 },
      ] as const;
      await expect(ok.lookup(...ends)).resolves.toBeNull();
      const broken = new PeerUidReader(join(dir, 'missing'));
      await expect(broken.lookup(...ends)).rejects.toBeInstanceOf(PeerLookupError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
