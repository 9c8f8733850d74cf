/**
 * The web host's secrets: one-time codes (what a link carries) and the
 * sessions they are exchanged for (an HttpOnly cookie plus a secret the page
 * keeps in sessionStorage and sends in its hello). Everything is stored as
 * its SHA-256 digest and compared by digest or in constant time; nothing here
 * is ever logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A secret as stored: its SHA-256 (a lookup by hash leaks nothing about the secret). */
function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Every value of the cookie `name` (a page may hold several, with other paths). */
function cookieValues(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}

export interface Session {
  /** SHA-256 of the secret the page sends in its hello. */
  readonly secret: Buffer;
}

export interface OpenedSession {
  /** The Set-Cookie header value. */
  setCookie: string;
  /** The secret the page keeps and sends in its hello. */
  secret: string;
}

export class WebSessions {
  /** One-time codes by hex digest -> expiry (epoch ms, Infinity for none). */
  private readonly codes = new Map<string, number>();
  /** Sessions by the hex digest of their cookie. */
  private readonly sessions = new Map<string, Session>();
  // Cookies are per host, not per port: the port in the name keeps two web
  // hosts from overwriting each other's cookie.
  private readonly cookieName: string;

  constructor(port: number) {
    this.cookieName = `portcullis-session-${port}`;
  }

  issueCode(ttlMs: number | null): string {
    const now = Date.now();
    for (const [key, expiry] of this.codes) if (expiry <= now) this.codes.delete(key);
    const code = newSecret();
    this.codes.set(digest(code).toString('hex'), ttlMs === null ? Infinity : now + ttlMs);
    return code;
  }

  /** True once per live code; the code is dead afterwards whatever the outcome. */
  redeem(code: string): boolean {
    const key = digest(code).toString('hex');
    const expiry = this.codes.get(key);
    this.codes.delete(key);
    return expiry !== undefined && expiry > Date.now();
  }

  open(): OpenedSession {
    const cookie = newSecret();
    const secret = newSecret();
    this.sessions.set(digest(cookie).toString('hex'), { secret: digest(secret) });
    return {
      // No Max-Age: gone when the browser closes. Path=/ so that the
      // WebSocket upgrade carries it.
      setCookie: `${this.cookieName}=${cookie}; Path=/; HttpOnly; SameSite=Strict`,
      secret,
    };
  }

  /** The session a request's Cookie header names, or null. */
  of(cookieHeader: string | undefined): Session | null {
    for (const value of cookieValues(cookieHeader, this.cookieName)) {
      const session = this.sessions.get(digest(value).toString('hex'));
      if (session) return session;
    }
    return null;
  }

  /** Whether a hello's secret is the session's. */
  static helloMatches(session: Session, secret: string): boolean {
    return timingSafeEqual(digest(secret), session.secret);
  }
}
