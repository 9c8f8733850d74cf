/**
 * What nfnetlink_queue and nfnetlink_log share in opening, binding and
 * configuring one instance (an NFQUEUE queue, an NFLOG group): the kernel
 * answers both alike, so both libraries report its answers alike. It lives
 * here, below both, so that neither library needs the other; each names its
 * instance and builds its own error through InstanceErrors.
 */
import { NETLINK_NETFILTER } from './constants.js';
import type { NetlinkConnection } from './connection.js';
import { NetlinkDecodeError, NetlinkError, type ExtendedAck } from './errors.js';
import { NetlinkSocket, type NetlinkSocketOptions, type NetlinkTransport } from './socket.js';

/** What a library's error keeps of the kernel's answer. */
export interface KernelErrorDetails {
  errno?: number;
  errnoName?: string;
  extack?: ExtendedAck;
  cause?: unknown;
}

/** How one library reports the failures below. */
export interface InstanceErrors<E extends Error> {
  /** The instance as messages name it: "queue 7", "nflog group 5". */
  readonly what: string;
  /** The library's error class: its errors pass through unchanged. */
  readonly own: abstract new (...args: never[]) => E;
  /** The library's error with this code (the instance's number added to the details). */
  make(
    code: 'CONFIG_FAILED' | 'DECODE' | 'SOCKET',
    message: string,
    details: KernelErrorDetails,
  ): E;
}

/** A NETLINK_NETFILTER socket; failing to open one (a missing namespace, no
 * native addon, EMFILE) is CONFIG_FAILED. */
export function openNetfilterSocket<E extends Error>(
  options: NetlinkSocketOptions,
  errors: InstanceErrors<E>,
): NetlinkTransport {
  try {
    return NetlinkSocket.open(NETLINK_NETFILTER, options);
  } catch (error) {
    const e = error as Error & { code?: string; errno?: number };
    throw errors.make(
      'CONFIG_FAILED',
      `${errors.what}: opening the netlink socket failed: ${e.message}`,
      { errno: e.errno, errnoName: e.code, cause: error },
    );
  }
}

/** The copy range asked for: bytes of each packet to copy, by default 0xffff
 * (the whole packet); a value that is not a u32 is a RangeError. */
export function copyRangeOption(copyRange = 0xffff): number {
  if (!Number.isInteger(copyRange) || copyRange < 0 || copyRange > 0xffffffff) {
    throw new RangeError(`copyRange ${copyRange} out of range`);
  }
  return copyRange;
}

/** Runs the configuration of a fresh instance. On a failure its connection is
 * closed and the failure thrown as CONFIG_FAILED, with the kernel's errno and
 * extended ACK when the kernel refused a request. */
export async function configureOrClose<E extends Error>(
  conn: NetlinkConnection,
  configure: () => Promise<void>,
  errors: InstanceErrors<E>,
): Promise<void> {
  try {
    await configure();
  } catch (error) {
    conn.close();
    if (error instanceof errors.own) throw error;
    const ne = error instanceof NetlinkError ? error : undefined;
    throw errors.make('CONFIG_FAILED', `${errors.what}: ${(error as Error).message}`, {
      errno: ne?.errno,
      errnoName: ne?.code,
      extack: ne?.extack,
      cause: error,
    });
  }
}

/** Sends the bind request. The kernel's EPERM (another socket holds the
 * instance, or CAP_NET_ADMIN is missing) and EBUSY (this socket holds it
 * already) become CONFIG_FAILED saying so. */
export async function bindInstance<E extends Error>(
  conn: NetlinkConnection,
  message: Uint8Array,
  operation: string,
  errors: InstanceErrors<E>,
): Promise<void> {
  try {
    await conn.request(message, { operation });
  } catch (error) {
    if (error instanceof NetlinkError && (error.code === 'EPERM' || error.code === 'EBUSY')) {
      throw errors.make(
        'CONFIG_FAILED',
        error.code === 'EPERM'
          ? `${errors.what} is bound by another socket (or CAP_NET_ADMIN is missing): EPERM`
          : `${errors.what} is already bound by this socket: EBUSY`,
        { errno: error.errno, errnoName: error.code, cause: error },
      );
    }
    throw error;
  }
}

/** Sends the unbind request at close. A failure is returned for the library
 * to report, not thrown: closing the socket unbinds too (the kernel drops the
 * instances of a released port). */
export async function unbindInstance<E extends Error>(
  conn: NetlinkConnection,
  message: Uint8Array,
  operation: string,
  errors: InstanceErrors<E>,
): Promise<E | undefined> {
  try {
    await conn.request(message, { operation });
    return undefined;
  } catch (error) {
    return errors.make(
      'CONFIG_FAILED',
      `${errors.what}: unbind failed: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** The error for a failure of the connection's reader: an undecodable
 * datagram (DECODE, reading goes on) or a dead socket (SOCKET, for good). */
export function readFailure<E extends Error>(error: Error, errors: InstanceErrors<E>): E {
  return error instanceof NetlinkDecodeError
    ? errors.make('DECODE', `${errors.what}: undecodable datagram: ${error.message}`, {
        cause: error,
      })
    : errors.make(
        'SOCKET',
        `${errors.what}: reading the socket failed, no more packets will arrive: ${error.message}`,
        { cause: error },
      );
}

/** A flag the kernel refused, with its errno (EOPNOTSUPP: not built in). */
export interface RefusedFlag<Name extends string> {
  flag: Name;
  errno: number;
  code: string;
  message?: string;
}

/** What became of the flags asked to be on. */
export interface FlagOutcome<Name extends string> {
  requested: Name[];
  /** Flags that are on. */
  applied: Name[];
  refused: RefusedFlag<Name>[];
}

/** Sends a flags request, once more on EAGAIN: the kernel answers that when
 * the conntrack flag has just loaded ctnetlink. */
export async function requestFlags(
  conn: NetlinkConnection,
  message: () => Uint8Array,
  operation: string,
): Promise<void> {
  try {
    await conn.request(message(), { operation });
  } catch (error) {
    if (error instanceof NetlinkError && error.code === 'EAGAIN') {
      await conn.request(message(), { operation });
    } else throw error;
  }
}

/**
 * The kernel takes a flag word whole and refuses it whole. After a refusal,
 * `set` sends each requested flag alone so that the report says which flags
 * the kernel takes (`applied`) and which it refuses and why (`refused`).
 */
export async function tryEachFlag<Name extends string>(
  report: FlagOutcome<Name>,
  bits: Readonly<Record<Name, number>>,
  set: (bit: number) => Promise<void>,
): Promise<void> {
  for (const name of report.requested) {
    try {
      await set(bits[name]);
      report.applied.push(name);
    } catch (error) {
      if (!(error instanceof NetlinkError)) throw error;
      report.refused.push({
        flag: name,
        errno: error.errno,
        code: error.code,
        message: error.extack.message,
      });
    }
  }
}

/** With strict flags a refused flag fails the open: CONFIG_FAILED naming every refused flag. */
export function failOnRefusedFlags<E extends Error>(
  refused: readonly RefusedFlag<string>[],
  errors: InstanceErrors<E>,
): void {
  const first = refused[0];
  if (first === undefined) return;
  throw errors.make(
    'CONFIG_FAILED',
    `${errors.what}: the kernel refused flag(s) ${refused.map((r) => `${r.flag} (${r.code})`).join(', ')}`,
    { errno: first.errno, errnoName: first.code },
  );
}
