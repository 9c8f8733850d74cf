import { AF_UNSPEC, NFNL_SUBSYS_ULOG, NLM_F_REQUEST, nfnlMsgType } from '../netlink/constants.js';
import { checkU32, NetlinkWriter } from '../netlink/writer.js';
import * as L from './constants.js';

export const NFULNL_CONFIG_TYPE = nfnlMsgType(NFNL_SUBSYS_ULOG, L.NFULNL_MSG_CONFIG);

export type LogCopyMode = 'none' | 'meta' | 'packet';

export function logCopyModeValue(mode: LogCopyMode): number {
  switch (mode) {
    case 'none':
      return L.NFULNL_COPY_NONE;
    case 'meta':
      return L.NFULNL_COPY_META;
    case 'packet':
      return L.NFULNL_COPY_PACKET;
  }
}

export function checkGroup(group: number): void {
  if (!Number.isInteger(group) || group < 0 || group > 0xffff) {
    throw new RangeError(`NFLOG group ${group} out of range 0..65535`);
  }
}

/** What one NFULNL_MSG_CONFIG sets; each field only if given. */
export interface LogConfigSettings {
  /** NFULA_CFG_CMD, written first: bind and settings in one message leave no
   * window in which the kernel logs to us with default settings. */
  command?: number;
  copyMode?: number;
  /** Bytes of each packet to copy (0 or more than NFULNL_COPY_RANGE_MAX: the maximum). */
  copyRange?: number;
  nlbufsiz?: number;
  /** Flush timeout in 1/100 s. */
  timeout?: number;
  qthresh?: number;
  /** NFULA_CFG_FLAGS (be16): the whole flag word (the kernel has no mask). */
  flags?: number;
}

/**
 * NFULNL_MSG_CONFIG for `group`. The nfgenmsg family is AF_UNSPEC except for
 * PF_BIND/PF_UNBIND, which name the family there (as libnetfilter_log does).
 */
export function encodeLogConfig(
  group: number,
  settings: LogConfigSettings,
  family = AF_UNSPEC,
): Uint8Array {
  checkGroup(group);
  const w = new NetlinkWriter(64);
  w.beginMessage(NFULNL_CONFIG_TYPE, NLM_F_REQUEST).nfgenmsg(family, 0, group);
  // struct nfulnl_msg_config_cmd is one byte; the writer pads the attribute.
  if (settings.command !== undefined) w.bytes(L.NFULA_CFG_CMD, Uint8Array.of(settings.command));
  if (settings.copyMode !== undefined) {
    const range = settings.copyRange ?? 0xffff;
    checkU32(range, 'copy range');
    // struct nfulnl_msg_config_mode: copy_range be32, copy_mode u8, _pad u8 (packed).
    const mode = new Uint8Array(6);
    new DataView(mode.buffer).setUint32(0, range, false);
    mode[4] = settings.copyMode;
    w.bytes(L.NFULA_CFG_MODE, mode);
  }
  if (settings.nlbufsiz !== undefined) {
    checkU32(settings.nlbufsiz, 'nlbufsiz');
    w.u32be(L.NFULA_CFG_NLBUFSIZ, settings.nlbufsiz);
  }
  if (settings.timeout !== undefined) {
    checkU32(settings.timeout, 'timeout');
    w.u32be(L.NFULA_CFG_TIMEOUT, settings.timeout);
  }
  if (settings.qthresh !== undefined) {
    checkU32(settings.qthresh, 'qthresh');
    w.u32be(L.NFULA_CFG_QTHRESH, settings.qthresh);
  }
  if (settings.flags !== undefined) {
    if (!Number.isInteger(settings.flags) || settings.flags < 0 || settings.flags > 0xffff) {
      throw new RangeError(`flags ${settings.flags} is not a u16`);
    }
    w.u16be(L.NFULA_CFG_FLAGS, settings.flags);
  }
  return w.endMessage().finish();
}

/** PF_BIND / PF_UNBIND for one family (old kernels; see NfLogOptions.bindFamilies). */
export function encodePfCommand(command: number, family: number): Uint8Array {
  return encodeLogConfig(0, { command }, family);
}
