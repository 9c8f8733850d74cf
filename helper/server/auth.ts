/** Authentication of a connection: the peer's uid and the per-launch token. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { PeerCredentials } from '../native/types.js';

/** A fresh per-launch token: 32 random bytes, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Compares tokens in constant time. Both sides are hashed first so that
 * timingSafeEqual always compares 32 bytes: neither the content nor the
 * length of the expected token leaks through timing.
 */
export function tokenMatches(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * The file descriptor of an accepted Unix socket. Node keeps it on the
 * internal libuv handle; there is no public accessor, so this one place
 * reaches for it and says so when it cannot (the caller then refuses the
 * connection rather than skipping the uid check).
 */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new Error('cannot read the file descriptor of the connection');
  }
  return fd;
}

export type PeerCredentialsFn = (fd: number) => PeerCredentials;
