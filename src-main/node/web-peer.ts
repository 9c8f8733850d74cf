/**
 * Who is on the other end of a loopback TCP connection: the uid that owns the
 * client's socket, from the kernel's socket tables in /proc/net/tcp and
 * /proc/net/tcp6 (readable without privileges, in the reader's network
 * namespace). The web host (web-host.ts) refuses another local user's
 * connections with this before reading a byte from them.
 *
 * The kernel prints each socket's local and remote address, state, owning uid
 * (the socket inode's, i.e. its creator's) and inode. The client's row is the
 * one whose local end is our socket's remote end and whose remote end is our
 * local end. A row with inode 0 is a socket already closed (TIME_WAIT and
 * friends show uid 0 there): no owner.
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';

export interface TcpEndpoint {
  /** Dotted IPv4 (IPv4-mapped IPv6 rows are given in this form too). */
  address: string;
  port: number;
}

export interface TcpSocketRow {
  local: TcpEndpoint;
  remote: TcpEndpoint;
  uid: number;
  inode: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** One 32-bit word as the kernel prints it (host order) -> its 4 bytes in network order. */
function wordBytes(hex: string): number[] {
  const bytes = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return LITTLE_ENDIAN ? bytes.reverse() : bytes;
}

/** `0100007F` (tcp) or 32 hex digits (tcp6): dotted IPv4, or null for other IPv6. */
function parseAddress(hex: string): string | null {
  if (hex.length === 8) return wordBytes(hex).join('.');
  if (hex.length !== 32) return null;
  const bytes = [0, 8, 16, 24].flatMap((i) => wordBytes(hex.slice(i, i + 8)));
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255;
  return mapped ? bytes.slice(12).join('.') : null;
}

function parseEndpoint(text: string | undefined): TcpEndpoint | null {
  const [hex, port] = (text ?? '').split(':');
  if (hex === undefined || port === undefined || !/^[0-9A-Fa-f]+$/u.test(hex + port)) return null;
  const address = parseAddress(hex);
  return address === null ? null : { address, port: parseInt(port, 16) };
}

/** The rows of /proc/net/tcp or tcp6 with IPv4 (or IPv4-mapped) addresses. */
export function parseProcNetTcp(text: string): TcpSocketRow[] {
  const rows: TcpSocketRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/u);
    if (f.length < 10) continue;
    const local = parseEndpoint(f[1]);
    const remote = parseEndpoint(f[2]);
    const uid = Number(f[7]);
    const inode = Number(f[9]);
    if (!local || !remote || !Number.isInteger(uid) || !Number.isInteger(inode)) continue;
    rows.push({ local, remote, uid, inode });
  }
  return rows;
}

/** The uid owning the client socket of our connection `local` <- `remote`, or null. */
export function findPeerUid(
  rows: readonly TcpSocketRow[],
  local: TcpEndpoint,
  remote: TcpEndpoint,
): number | null {
  for (const r of rows) {
    if (
      r.local.port === remote.port &&
      r.remote.port === local.port &&
      r.local.address === remote.address &&
      r.remote.address === local.address
    ) {
      return r.inode === 0 ? null : r.uid;
    }
  }
  return null;
}

export class PeerLookupError extends Error {
  override readonly name = 'PeerLookupError';
}

interface Waiter {
  local: TcpEndpoint;
  remote: TcpEndpoint;
  resolve(uid: number | null): void;
  reject(error: PeerLookupError): void;
}

/**
 * Looks up peers, reading the tables once for every connection accepted
 * before the read started (a flood of connections costs one read at a time,
 * not one each). The client's row exists before our accept() returns, so a
 * read started after that sees it.
 */
export class PeerUidReader {
  private queued: Waiter[] = [];
  private reading = false;

  /** `procNet`: /proc/net (tests point it elsewhere). */
  constructor(private readonly procNet = '/proc/net') {}

  lookup(local: TcpEndpoint, remote: TcpEndpoint): Promise<number | null> {
    return new Promise((resolve, reject) => {
      this.queued.push({ local, remote, resolve, reject });
      if (!this.reading) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.reading = true;
    while (this.queued.length > 0) {
      const batch = this.queued;
      this.queued = [];
      try {
        const rows: TcpSocketRow[] = [];
        for (const file of ['tcp', 'tcp6']) {
          rows.push(...parseProcNetTcp(await readTable(join(this.procNet, file))));
        }
        for (const w of batch) w.resolve(findPeerUid(rows, w.local, w.remote));
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        for (const w of batch)
          w.reject(new PeerLookupError(`cannot read the socket table: ${why}`));
      }
    }
    this.reading = false;
  }
}

/** A table; tcp6 is absent on a kernel without IPv6. */
async function readTable(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (path.endsWith('6') && (error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}
