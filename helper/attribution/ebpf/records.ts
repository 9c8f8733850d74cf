/**
 * The byte layouts of the owner programs' maps (native/bpf/owners.h): the
 * flow key the helper builds, and the owner and exec records it reads back.
 * Pure functions, no addon: the layouts are fixed-width and little-endian
 * (x86-64, the only architecture the addon is built for).
 */
import { parseIP } from '../../common/ip.js';
import { AF_INET, AF_INET6 } from '../../netlink/constants.js';
import { AttributionArgumentError, checkPort } from '../../attribution/diag-codec.js';
import * as C from '../../attribution/constants.js';
import type { SocketTuple } from '../../attribution/types.js';
import type { KernelOwnerHook } from './types.js';

export const FLOW_KEY_SIZE = 32;
export const OWNER_SIZE = 56;
export const EXEC_SIZE = 552;
const COMM_LEN = 16;
const PATH_LEN = 512;

/** What the kernel's start_boottime becomes in /proc/PID/stat field 22:
 * nsec_to_clock_t, a truncating division by 10^9 / USER_HZ (100 on Linux). */
export const NS_PER_TICK = 10_000_000n;

export function nsToTicks(ns: bigint): number {
  return Number(ns / NS_PER_TICK);
}

const HOOKS: Record<number, KernelOwnerHook> = {
  1: 'connect4',
  2: 'connect6',
  3: 'sendmsg4',
  4: 'sendmsg6',
  5: 'sockops',
  6: 'connect-tracepoint',
};

/** struct owner, decoded. Times stay in kernel nanoseconds here. */
export interface OwnerRecord {
  startNs: bigint;
  cgroupId: bigint;
  tgid: number;
  tid: number;
  uid: number;
  gid: number;
  ppid: number;
  hook: KernelOwnerHook;
  comm: string;
}

/** struct exec_rec, decoded. */
export interface ExecRecord {
  execNs: bigint;
  startNs: bigint;
  ppid: number;
  uid: number;
  comm: string;
  /** As passed to execve. */
  path: string;
}

const PROTOCOLS: Partial<Record<SocketTuple['protocol'], number>> = {
  tcp: C.IPPROTO_TCP,
  udp: C.IPPROTO_UDP,
  udplite: C.IPPROTO_UDPLITE,
};

/**
 * struct flow_key for an outbound tuple (`sport` local, `dst`/`dport`
 * remote) in the namespace with this cookie. An IPv4-mapped destination is
 * keyed as IPv4, as the programs record it. null for a protocol the programs
 * do not record (raw).
 */
export function encodeFlowKey(
  tuple: SocketTuple,
  netns: bigint,
  out?: Uint8Array,
): Uint8Array | null {
  const protocol = PROTOCOLS[tuple.protocol];
  if (protocol === undefined) return null;
  const addr = parseIP(tuple.dst);
  if (!addr) throw new AttributionArgumentError(`dst: '${tuple.dst}' is not an IP address`);
  const key = out ?? new Uint8Array(FLOW_KEY_SIZE);
  key.fill(0);
  const view = new DataView(key.buffer, key.byteOffset, FLOW_KEY_SIZE);
  view.setBigUint64(0, netns, true);
  view.setUint8(8, protocol);
  view.setUint16(10, checkPort(tuple.sport, 'sport'), true);
  view.setUint16(12, checkPort(tuple.dport, 'dport'), true);
  const v4 = addr.length === 4 ? addr : mappedIPv4(addr);
  if (v4) {
    view.setUint8(9, AF_INET);
    key.set(v4, 16);
  } else {
    view.setUint8(9, AF_INET6);
    key.set(addr, 16);
  }
  return key;
}

/** The IPv4 address inside ::ffff:a.b.c.d, or undefined. */
function mappedIPv4(addr: Uint8Array): Uint8Array | undefined {
  for (let i = 0; i < 10; i++) if (addr[i] !== 0) return undefined;
  if (addr[10] !== 0xff || addr[11] !== 0xff) return undefined;
  return addr.subarray(12, 16);
}

/** A NUL-terminated string field (comm, path); bytes that are not UTF-8 are
 * replaced, as /proc's readers do. */
function cString(bytes: Uint8Array, at: number, max: number): string {
  const field = bytes.subarray(at, at + max);
  const end = field.indexOf(0);
  return Buffer.from(field.subarray(0, end < 0 ? max : end)).toString('utf8');
}

export function decodeOwner(bytes: Uint8Array): OwnerRecord {
  if (bytes.length < OWNER_SIZE) throw new RangeError(`owner record: ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, OWNER_SIZE);
  const hook = HOOKS[view.getUint8(36)];
  if (!hook) throw new RangeError(`owner record: unknown hook ${view.getUint8(36)}`);
  return {
    startNs: view.getBigUint64(0, true),
    cgroupId: view.getBigUint64(8, true),
    tgid: view.getUint32(16, true),
    tid: view.getUint32(20, true),
    uid: view.getUint32(24, true),
    gid: view.getUint32(28, true),
    ppid: view.getUint32(32, true),
    hook,
    comm: cString(bytes, 40, COMM_LEN),
  };
}

export function decodeExec(bytes: Uint8Array): ExecRecord {
  if (bytes.length < EXEC_SIZE) throw new RangeError(`exec record: ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, EXEC_SIZE);
  return {
    execNs: view.getBigUint64(0, true),
    startNs: view.getBigUint64(8, true),
    ppid: view.getUint32(16, true),
    uid: view.getUint32(20, true),
    comm: cString(bytes, 24, COMM_LEN),
    path: cString(bytes, 40, PATH_LEN),
  };
}
