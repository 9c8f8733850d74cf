/**
 * The states of main's link to the root helper, as the UI shows them. Pure
 * data (common layer): the launcher (src-main/node/launcher.ts) moves between
 * them, the status bar renders them.
 */
export type HelperVia = 'service' | 'elevated';

export type HelperLinkState =
  /** Not started yet, or stopped on quit. */
  | { kind: 'idle' }
  /** Connecting to a socket (the systemd service's, or our elevated helper's). */
  | { kind: 'connecting'; via: HelperVia; attempt: number }
  /** Waiting for the password dialog and the helper's socket. */
  | { kind: 'elevating'; method: 'pkexec' | 'sudo-prompt'; actionId: string }
  | { kind: 'connected'; via: HelperVia }
  /** Lost or refused: the next attempt is scheduled. */
  | { kind: 'waiting'; via: HelperVia; retryInMs: number; reason: string; attempt: number }
  /** Gave up until the user asks again (retry()): dismissed password, helper exited... */
  | { kind: 'failed'; reason: string };

/** One line for the status bar and the tray tooltip. */
export function describeLink(s: HelperLinkState): string {
  switch (s.kind) {
    case 'idle':
      return 'Helper: not started';
    case 'connecting':
      return s.via === 'service'
        ? 'Helper: connecting to the system service…'
        : 'Helper: connecting…';
    case 'elevating':
      return 'Helper: waiting for authorization…';
    case 'connected':
      return s.via === 'service' ? 'Helper: connected (system service)' : 'Helper: connected';
    case 'waiting':
      return `Helper: ${s.reason}; retrying in ${Math.ceil(s.retryInMs / 1000)} s`;
    case 'failed':
      return `Helper: ${s.reason}`;
  }
}

/**
 * The three-valued `connection` of the UI contract (src-main/common/api.ts,
 * HelperStatus) plus its error text.
 */
export function linkStatus(s: HelperLinkState): {
  connection: 'connected' | 'connecting' | 'disconnected';
  error: string | null;
} {
  switch (s.kind) {
    case 'connected':
      return { connection: 'connected', error: null };
    case 'connecting':
    case 'elevating':
      return { connection: 'connecting', error: null };
    case 'waiting':
      return { connection: 'connecting', error: s.reason };
    case 'failed':
      return { connection: 'disconnected', error: s.reason };
    case 'idle':
      return { connection: 'disconnected', error: null };
  }
}
