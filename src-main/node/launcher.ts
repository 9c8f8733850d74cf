/**
 * How the app gets a helper (DESIGN.md sections 1, 7, 8):
 *
 * 1. the systemd service's socket exists (.deb install): connect with the
 *    token the service wrote for us; never ask for a password;
 * 2. otherwise start the helper elevated (pkexec, or sudo-prompt without
 *    pkexec; see elevation.ts) with a fresh per-launch token, wait for its
 *    socket, connect;
 * 3. a lost connection is retried with backoff (common/backoff.ts) for as long
 *    as its helper may come back; a helper that exited, a dismissed password
 *    dialog or an unreadable token end in `failed` until the user calls retry().
 *
 * Every effect (files, sockets, processes, clocks) is injected: this module is
 * a state machine over HelperLinkState and is unit-tested with fakes.
 */
import type { Backoff } from '../common/backoff.js';
import type { HelperLinkState, HelperVia } from '../common/helper-link.js';

/** The part of the protocol's IpcClient the launcher needs. */
export interface HelperConnection {
  close(): Promise<void>;
  /** Called once when the connection ends (error null for a clean close). */
  onClose(listener: (error: Error | null) => void): unknown;
}

/** A helper we started: it ends with a human-readable reason. */
export interface ElevatedHelper {
  method: 'pkexec' | 'sudo-prompt';
  actionId: string;
  exited: Promise<string>;
  /**
   * Lets go of it. A pkexec helper stops at once (its stdin closes); any helper we
   * started stops when this process ends, however it ends (elevate.ts).
   */
  release(): void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LauncherDeps {
  socketPath: string;
  /** Where the service writes the token for its users (DEFAULT_TOKEN_PATH). */
  serviceTokenPath: string;
  socketExists(path: string): boolean;
  readToken(path: string): string;
  connect(path: string, token: string): Promise<HelperConnection>;
  /** Starts the helper with this token; resolves once the process is spawned. */
  elevate(token: string): Promise<ElevatedHelper>;
  generateToken(): string;
  backoff: Backoff;
  /** Interval of socket polls while the password dialog is open. Default 500 ms. */
  elevatedPollMs?: number;
  timers?: Timers;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class HelperLauncher {
  private current: HelperLinkState = { kind: 'idle' };
  private readonly listeners = new Set<(s: HelperLinkState) => void>();
  private readonly connectionListeners = new Set<(c: HelperConnection | null) => void>();
  private readonly timers: Timers;
  private timer: unknown = null;
  private conn: HelperConnection | null = null;
  private elevated: { helper: ElevatedHelper; token: string } | null = null;
  private attempt = 0;
  /** Bumped by stop()/retry(): callbacks of an older run are ignored. */
  private generation = 0;

  constructor(private readonly deps: LauncherDeps) {
    this.timers = deps.timers ?? realTimers;
  }

  get state(): HelperLinkState {
    return this.current;
  }

  get connection(): HelperConnection | null {
    return this.conn;
  }

  onState(listener: (s: HelperLinkState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The connection once connected, null when it is lost. */
  onConnection(listener: (c: HelperConnection | null) => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  /** Starts from idle (no-op otherwise). */
  start(): void {
    if (this.current.kind !== 'idle') return;
    void this.attemptNow();
  }

  /** From failed (or waiting): try again now; re-elevates if our helper is gone. */
  retry(): void {
    if (this.current.kind !== 'failed' && this.current.kind !== 'waiting') return;
    this.cancelTimer();
    this.deps.backoff.reset();
    this.attempt = 0;
    this.generation++;
    void this.attemptNow();
  }

  /** On quit: closes the connection and lets our helper go. */
  async stop(): Promise<void> {
    this.generation++;
    this.cancelTimer();
    const conn = this.conn;
    this.setConnection(null);
    this.elevated?.helper.release();
    this.elevated = null;
    this.set({ kind: 'idle' });
    if (conn) await conn.close().catch(() => undefined);
  }

  private set(s: HelperLinkState): void {
    this.current = s;
    for (const l of this.listeners) l(s);
  }

  private setConnection(c: HelperConnection | null): void {
    if (this.conn === c) return;
    this.conn = c;
    for (const l of this.connectionListeners) l(c);
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private async attemptNow(): Promise<void> {
    const gen = this.generation;
    if (this.elevated) return this.connectElevated(gen);
    if (this.deps.socketExists(this.deps.socketPath)) return this.connectService(gen);
    return this.startElevated(gen);
  }

  private async connectService(gen: number): Promise<void> {
    this.attempt++;
    this.set({ kind: 'connecting', via: 'service', attempt: this.attempt });
    let token: string;
    try {
      token = this.deps.readToken(this.deps.serviceTokenPath);
    } catch (error) {
      // Retrying cannot help: the user is not allowed to use the service.
      this.set({
        kind: 'failed',
        reason: `cannot read the helper's token (${message(error)}); only members of the portcullis group may use the system helper`,
      });
      return;
    }
    await this.connectWith('service', token, gen);
  }

  private async connectElevated(gen: number): Promise<void> {
    const e = this.elevated;
    if (!e) return;
    this.attempt++;
    this.set({ kind: 'connecting', via: 'elevated', attempt: this.attempt });
    await this.connectWith('elevated', e.token, gen);
  }

  private async connectWith(via: HelperVia, token: string, gen: number): Promise<void> {
    let conn: HelperConnection;
    try {
      conn = await this.deps.connect(this.deps.socketPath, token);
    } catch (error) {
      if (gen !== this.generation) return;
      this.scheduleRetry(via, message(error));
      return;
    }
    if (gen !== this.generation) {
      void conn.close().catch(() => undefined);
      return;
    }
    this.adopt(conn, via, gen);
  }

  /** Connected: reset the backoff, publish, and retry when the link drops. */
  private adopt(conn: HelperConnection, via: HelperVia, gen: number): void {
    this.attempt = 0;
    this.deps.backoff.reset();
    this.set({ kind: 'connected', via });
    this.setConnection(conn);
    conn.onClose((error) => {
      if (gen !== this.generation || this.conn !== conn) return;
      this.setConnection(null);
      this.scheduleRetry(via, error ? message(error) : 'the helper closed the connection');
    });
  }

  private scheduleRetry(via: HelperVia, reason: string): void {
    // An elevated helper that is gone cannot be reconnected to: its exit
    // handler reports failed; a service helper is restarted by systemd.
    if (via === 'elevated' && !this.elevated) return;
    const delay = this.deps.backoff.next();
    this.set({ kind: 'waiting', via, retryInMs: delay, reason, attempt: this.attempt });
    this.cancelTimer();
    const gen = this.generation;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (gen === this.generation) void this.attemptNow();
    }, delay);
  }

  private async startElevated(gen: number): Promise<void> {
    const token = this.deps.generateToken();
    let helper: ElevatedHelper;
    try {
      helper = await this.deps.elevate(token);
    } catch (error) {
      if (gen === this.generation) this.set({ kind: 'failed', reason: message(error) });
      return;
    }
    if (gen !== this.generation) {
      helper.release();
      return;
    }
    this.elevated = { helper, token };
    this.set({ kind: 'elevating', method: helper.method, actionId: helper.actionId });
    void helper.exited.then((reason) => {
      if (this.elevated?.helper !== helper) return;
      this.elevated = null;
      this.cancelTimer();
      const conn = this.conn;
      this.setConnection(null);
      if (conn) void conn.close().catch(() => undefined);
      if (gen === this.generation) this.set({ kind: 'failed', reason });
    });
    this.pollElevated(gen, helper, token);
  }

  /** While the password dialog is up, the socket does not exist yet: poll
   * quietly (state stays `elevating`) until connected or the process ends. */
  private pollElevated(gen: number, helper: ElevatedHelper, token: string): void {
    const tick = async (): Promise<void> => {
      this.timer = null;
      if (gen !== this.generation || this.elevated?.helper !== helper) return;
      if (this.deps.socketExists(this.deps.socketPath)) {
        try {
          const conn = await this.deps.connect(this.deps.socketPath, token);
          if (gen !== this.generation || this.elevated?.helper !== helper) {
            void conn.close().catch(() => undefined);
            return;
          }
          this.adopt(conn, 'elevated', gen);
          return;
        } catch {
          // Not listening yet, or another helper's socket: poll on.
        }
      }
      if (gen !== this.generation || this.elevated?.helper !== helper) return;
      this.timer = this.timers.setTimeout(() => void tick(), this.deps.elevatedPollMs ?? 500);
    };
    void tick();
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
