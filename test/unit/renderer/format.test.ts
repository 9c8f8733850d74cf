import { describe, expect, it } from 'vitest';
import {
  killMessage,
  formatBytes,
  formatDuration,
  formatEndpoint,
} from '../../../src-renderer/src/lib/format.js';

describe('formatting', () => {
  it('formats byte counts, including bigint counters', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(50 * 1024 * 1024)).toBe('50 MiB');
    expect(formatBytes(2n ** 62n)).toBe('4096 PiB');
    expect(formatBytes(-1)).toBe('–');
  });

  it('formats durations', () => {
    expect(formatDuration(45.9)).toBe('45s');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(7620)).toBe('2h 07m');
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe('3d 04h');
    expect(formatDuration(Number.NaN)).toBe('–');
  });

  it('brackets IPv6 addresses next to a port', () => {
    expect(formatEndpoint('10.0.0.1', 443)).toBe('10.0.0.1:443');
    expect(formatEndpoint('fe80::1', 443)).toBe('[fe80::1]:443');
    expect(formatEndpoint('fe80::1')).toBe('fe80::1');
  });
});

describe('cell formatting', () => {
  it('formats counters, marks, ages and countdowns', async () => {
    const f = await import('../../../src-renderer/src/lib/format.js');
    expect(f.formatCount(1234567)).toBe('1,234,567');
    expect(f.formatCount(null)).toBe('–');
    expect(f.formatBytesOrNone(null)).toBe('–');
    expect(f.formatMark(0)).toBe('');
    expect(f.formatMark(255)).toBe('0xff');
    expect(f.formatAge(1000, 66_000)).toBe('1m 05s');
    expect(f.formatAge(null, 5)).toBe('–');
    expect(f.secondsLeft(10_000, 9_001)).toBe(1);
    expect(f.secondsLeft(10_000, 10_000)).toBe(0);
    expect(f.secondsLeft(10_000, 20_000)).toBe(0);
  });

  it('describes conntrack accounting, and why it is off', async () => {
    const f = await import('../../../src-renderer/src/lib/format.js');
    const base = { accounting: true, timestamps: true, enabledByHelper: false, optOut: false };
    expect(f.describeAccounting(base)).toBe('byte and packet counters on, flow start times on');
    expect(f.describeAccounting({ ...base, enabledByHelper: true })).toMatch(
      /turned on by the helper; set back when it stops/,
    );
    expect(f.describeAccounting({ ...base, accounting: false, optOut: true })).toBe(
      'byte and packet counters off, flow start times on (the helper runs with --no-conntrack-accounting)',
    );
    expect(f.describeAccounting({ ...base, accounting: null, timestamps: false })).toMatch(
      /^byte and packet counters unknown, flow start times off \(the helper could not/,
    );
  });

  it('parses marks and labels as people type them', async () => {
    const f = await import('../../../src-renderer/src/lib/format.js');
    expect(f.parseMark('0x1F')).toBe(31);
    expect(f.parseMark(' 42 ')).toBe(42);
    expect(f.parseMark('4294967296')).toBeNull();
    expect(f.parseMark('-1')).toBeNull();
    expect(f.parseMark('x')).toBeNull();
    expect(f.parseLabels('5, 1 5,,127')).toEqual([1, 5, 127]);
    expect(f.parseLabels('')).toEqual([]);
    expect(f.parseLabels('128')).toBeNull();
  });
});

describe('kill messages', () => {
  it('says "killed" only when the entry went and nothing failed', () => {
    expect(killMessage(5, { conntrackDeleted: true, socketsDestroyed: 1 })).toBe(
      'Connection 5 killed.',
    );
    expect(killMessage(5, { conntrackDeleted: false, socketsDestroyed: null })).toBe(
      'Connection 5 had ended already.',
    );
  });

  it('tells what could not be done without SOCK_DESTROY', () => {
    const socketError = 'EOPNOTSUPP: the kernel cannot destroy sockets';
    expect(killMessage(6, { conntrackDeleted: true, socketsDestroyed: null, socketError })).toBe(
      `Connection 6: its tracking entry is deleted, but its socket could not be closed (${socketError}).`,
    );
    expect(
      killMessage(6, { conntrackDeleted: false, socketsDestroyed: null, socketError }),
    ).toContain('it had no tracking entry, but its socket could not be closed');
  });
});
