import { describe, expect, it } from 'vitest';
import { HOST_LITTLE_ENDIAN } from '../../../helper/netlink/endian.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import { NLM_F_REQUEST } from '../../../helper/netlink/constants.js';
import * as CT from '../../../helper/conntrack/constants.js';
import * as Q from '../../../helper/nfqueue/constants.js';
import {
  encodeConfig,
  encodeConfigCommand,
  encodeVerdict,
  encodeVerdictBatch,
  isPlainVerdict,
  validateVerdictOptions,
  VerdictBuffer,
  verdictValue,
  NFQNL_CONFIG_TYPE,
  NFQNL_VERDICT_TYPE,
  NFQNL_VERDICT_BATCH_TYPE,
} from '../../../helper/nfqueue/encode.js';

/** Writes a host-order u16/u32 at a position (nlmsghdr and nlattr headers). */
function host(bytes: number[], at: number, value: number, size: 2 | 4): void {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  if (size === 2) v.setUint16(0, value, HOST_LITTLE_ENDIAN);
  else v.setUint32(0, value, HOST_LITTLE_ENDIAN);
  for (let i = 0; i < size; i++) bytes[at + i] = b[i]!;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

describe('verdict encoding', () => {
  it('NFQNL_MSG_VERDICT: byte-exact, no NLM_F_ACK, queue number big endian', () => {
    const expected: number[] = new Array(32).fill(0);
    host(expected, 0, 32, 4); // nlmsg_len
    host(expected, 4, 0x0301, 2); // NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT
    host(expected, 6, NLM_F_REQUEST, 2);
    expected.splice(16, 4, 0, 0, 0x01, 0x2c); // AF_UNSPEC, version 0, res_id 300 BE
    host(expected, 20, 12, 2);
    host(expected, 22, Q.NFQA_VERDICT_HDR, 2);
    expected.splice(24, 8, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe); // NF_ACCEPT, id BE
    expect(hex(encodeVerdict(300, Q.NF_ACCEPT, 0xfffffffe))).toBe(hex(Uint8Array.from(expected)));
  });

  it('NF_QUEUE carries the target queue in the upper 16 bits, bypass in bit 15', () => {
    expect(verdictValue('queue', 5)).toBe(0x00050003);
    expect(verdictValue('queue', 0xffff, true)).toBe(0xffff8003);
    expect(verdictValue('repeat')).toBe(4);
    expect(verdictValue('stop')).toBe(5);
    expect(verdictValue('drop')).toBe(0);
    expect(() => verdictValue('queue', 65536)).toThrow(RangeError);
    const m = encodeVerdict(1, verdictValue('queue', 0xffff, true), 1);
    expect(hex(m.subarray(24, 28))).toBe('ffff8003');
  });

  it('mark, priority, connmark/labels (nested NFQA_CT) and payload match the generic writer', () => {
    const payload = Uint8Array.from([0x45, 1, 2, 3, 4]); // 5 bytes: padding needed
    const labels = new Uint8Array(16).fill(0x0f);
    const got = encodeVerdict(7, Q.NF_ACCEPT, 99, {
      mark: 0x11223344,
      priority: 3,
      connmark: 0xabcdef01,
      connlabels: { labels },
      payload,
    });
    const w = new NetlinkWriter();
    w.beginMessage(NFQNL_VERDICT_TYPE, NLM_F_REQUEST).nfgenmsg(0, 0, 7);
    const hdr = new Uint8Array(8);
    new DataView(hdr.buffer).setUint32(0, 1, false);
    new DataView(hdr.buffer).setUint32(4, 99, false);
    w.bytes(Q.NFQA_VERDICT_HDR, hdr);
    w.u32be(Q.NFQA_MARK, 0x11223344);
    w.u32be(Q.NFQA_PRIORITY, 3);
    const ct = w.beginNest(Q.NFQA_CT);
    w.u32be(CT.CTA_MARK, 0xabcdef01);
    w.bytes(CT.CTA_LABELS, labels);
    w.bytes(CT.CTA_LABELS_MASK, new Uint8Array(16).fill(0xff));
    w.endNest(ct);
    w.bytes(Q.NFQA_PAYLOAD, payload);
    expect(hex(got)).toBe(hex(w.endMessage().finish()));
    expect(got.length % 4).toBe(0);
    // NFQA_CT is flagged NLA_F_NESTED.
    expect(new DataView(got.buffer).getUint16(32 + 8 + 8 + 2, HOST_LITTLE_ENDIAN)).toBe(
      Q.NFQA_CT | 0x8000,
    );
  });

  it('NFQNL_MSG_VERDICT_BATCH, with and without a mark', () => {
    const b = encodeVerdictBatch(2, Q.NF_DROP, 10);
    expect(new DataView(b.buffer).getUint16(4, HOST_LITTLE_ENDIAN)).toBe(NFQNL_VERDICT_BATCH_TYPE);
    expect(hex(b.subarray(24, 32))).toBe('000000000000000a');
    expect(b.length).toBe(32);
    const m = encodeVerdictBatch(2, Q.NF_ACCEPT, 10, 7);
    expect(m.length).toBe(40);
    const mv = new DataView(m.buffer);
    expect(mv.getUint16(32, HOST_LITTLE_ENDIAN)).toBe(8);
    expect(mv.getUint16(34, HOST_LITTLE_ENDIAN)).toBe(Q.NFQA_MARK);
    expect(mv.getUint32(36, false)).toBe(7);
  });

  it('VerdictBuffer packs many messages back to back and reuses its memory', () => {
    const buf = new VerdictBuffer(16);
    for (let i = 0; i < 100; i++) buf.append(1, Q.NF_ACCEPT, i, false);
    expect(buf.count).toBe(100);
    expect(buf.length).toBe(3200);
    const bytes = buf.bytes();
    for (let i = 0; i < 100; i++) {
      expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(i * 32 + 28, false)).toBe(i);
    }
    buf.reset();
    expect(buf.length).toBe(0);
    buf.append(1, Q.NF_DROP, 5, true);
    expect(hex(buf.bytes())).toBe(hex(encodeVerdictBatch(1, Q.NF_DROP, 5)));
  });

  it('validates options before anything is recorded', () => {
    expect(() => validateVerdictOptions({ mark: -1 })).toThrow(RangeError);
    expect(() => validateVerdictOptions({ mark: 2 ** 32 })).toThrow(RangeError);
    expect(() => validateVerdictOptions({ payload: new Uint8Array(65532) })).toThrow(RangeError);
    expect(() => validateVerdictOptions({ connlabels: { labels: new Uint8Array(3) } })).toThrow(
      RangeError,
    );
    expect(() =>
      validateVerdictOptions({
        connlabels: { labels: new Uint8Array(8), mask: new Uint8Array(4) },
      }),
    ).toThrow(RangeError);
    expect(() => encodeVerdict(70000, 1, 1)).toThrow(RangeError);
    expect(isPlainVerdict(undefined)).toBe(true);
    expect(isPlainVerdict({})).toBe(true);
    expect(isPlainVerdict({ mark: 0 })).toBe(false);
  });
});

describe('config encoding', () => {
  it('bind: NFQA_CFG_CMD {command u8, pad, pf be16}', () => {
    const m = encodeConfigCommand(0x1234, Q.NFQNL_CFG_CMD_BIND);
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    expect(m.length).toBe(28);
    expect(v.getUint16(4, HOST_LITTLE_ENDIAN)).toBe(NFQNL_CONFIG_TYPE);
    expect(hex(m.subarray(16, 20))).toBe('00001234');
    expect(v.getUint16(20, HOST_LITTLE_ENDIAN)).toBe(8);
    expect(v.getUint16(22, HOST_LITTLE_ENDIAN)).toBe(Q.NFQA_CFG_CMD);
    expect(hex(m.subarray(24, 28))).toBe('01000000');
  });

  it('params are a packed 5-byte struct (nla_len 9, padded to 12); flags come with their mask', () => {
    const m = encodeConfig(1, {
      copyMode: Q.NFQNL_COPY_PACKET,
      copyRange: 0xffff,
      maxQueueLength: 4096,
      flags: { value: Q.NFQA_CFG_F_UID_GID, mask: Q.NFQA_CFG_F_UID_GID | Q.NFQA_CFG_F_FAIL_OPEN },
    });
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    expect(v.getUint16(20, HOST_LITTLE_ENDIAN)).toBe(9);
    expect(v.getUint16(22, HOST_LITTLE_ENDIAN)).toBe(Q.NFQA_CFG_PARAMS);
    expect(hex(m.subarray(24, 32))).toBe('0000ffff02000000');
    expect(v.getUint16(34, HOST_LITTLE_ENDIAN)).toBe(Q.NFQA_CFG_QUEUE_MAXLEN);
    expect(v.getUint32(36, false)).toBe(4096);
    expect(v.getUint16(42, HOST_LITTLE_ENDIAN)).toBe(Q.NFQA_CFG_MASK);
    expect(v.getUint32(44, false)).toBe(9);
    expect(v.getUint16(50, HOST_LITTLE_ENDIAN)).toBe(Q.NFQA_CFG_FLAGS);
    expect(v.getUint32(52, false)).toBe(8);
    expect(m.length).toBe(56);
  });
});
