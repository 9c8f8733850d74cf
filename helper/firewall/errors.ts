import { CodedError } from '../common/coded-error.js';

export type FirewallErrorCode =
  /** A command (iptables, nft, ...) exited non-zero or could not be started. */
  | 'COMMAND_FAILED'
  /** The configuration is invalid (queue number, marks, ...). */
  | 'INVALID_CONFIG'
  /** Nothing on this machine can install the rules (no backend found). */
  | 'UNSUPPORTED';

/** Every error of the firewall-rules library: `code` says which. */
export class FirewallError extends CodedError<
  FirewallErrorCode,
  {
    /** The full argv that ran (with the `ip netns exec NAME` prefix when a netns is set). */
    command?: readonly string[];
    /** Exit status, or undefined when the process could not be started or was killed. */
    exitStatus?: number;
    /** The signal that ended it, if any. */
    signal?: string;
    stderr?: string;
    /** For restore-style commands: the script fed on stdin. */
    input?: string;
    cause?: unknown;
  }
> {
  override readonly name = 'FirewallError';
}
