import { describe, expect, it } from 'vitest';
import { CompatUsageError } from '../../../helper/cli/conntrack-compat/errors.js';
import { formatCompatSave } from '../../../helper/cli/conntrack-compat/format-save.js';
import {
  fgetsLines,
  loadFileRequest,
  loadFileWords,
} from '../../../helper/cli/conntrack-compat/load-file.js';
import { parseCompatArgs } from '../../../helper/cli/conntrack-compat/parse.js';
import { runConntrackCompat } from '../../../helper/cli/conntrack-compat/run.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Flow } from '../../../helper/conntrack/types.js';
import { FakeConntrackTable, tcpEntry } from '../../support/fake-conntrack.js';

const base: Flow = {
  family: 'ipv4',
  orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 6, srcPort: 1000, dstPort: 80 },
  reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 6, srcPort: 80, dstPort: 1000 },
  status: 0,
  statusFlags: [],
  timeout: 30,
  mark: 7,
  tcp: { state: 'ESTABLISHED', stateNumber: 3 },
};

describe('conntrack -o save', () => {
  it('prints ct_save_snprintf() lines', () => {
    expect(formatCompatSave(base)).toBe(
      '-A -t 30 -u UNSET -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p tcp --sport 1000 --dport 80 --reply-port-src 80 --reply-port-dst 1000 --state ESTABLISHED',
    );
    // Status in bit order, only the four names 1.4.7 maps; zone after it.
    expect(formatCompatSave({ ...base, status: 0x40f | 0x400, zone: 3 })).toMatch(
      /^-A -t 30 -u EXPECTED,SEEN_REPLY,ASSURED,FIXED_TIMEOUT -w 3 -s /,
    );
    // DNAT / SNAT done: -g / -n instead of -r / -q.
    const nat: Flow = {
      ...base,
      status: (1 << 7) | (1 << 8),
      reply: { ...base.reply, src: '10.0.0.9', dst: '10.0.0.8' },
    };
    expect(formatCompatSave(nat)).toContain('-g 10.0.0.9 -n 10.0.0.8 -p tcp');
    // Without the *_NAT_DONE bits, the reply addresses are -r / -q.
    expect(formatCompatSave({ ...nat, status: 0 })).toContain('-r 10.0.0.9 -q 10.0.0.8');
    const icmp: Flow = {
      ...base,
      orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 5 },
      reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 1, icmpType: 0, icmpCode: 0, icmpId: 5 },
    };
    delete icmp.tcp;
    expect(formatCompatSave(icmp)).toMatch(/-p icmp --icmp-type 8 --icmp-code 0 --icmp-id 5$/);
    const esp: Flow = {
      ...base,
      orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 50 },
      reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 50 },
    };
    delete esp.tcp;
    expect(formatCompatSave(esp)).toMatch(/-q 10\.0\.0\.1 -p 50$/);
    const sctp: Flow = {
      ...base,
      orig: { ...base.orig, proto: 132 },
      reply: { ...base.reply, proto: 132 },
      sctp: { state: 'ESTABLISHED', stateNumber: 4, vtagOrig: 0x01000000, vtagReply: 0x04030201 },
    };
    delete sctp.tcp;
    expect(formatCompatSave(sctp)).toMatch(
      /--state ESTABLISHED --orig-vtag 1 --reply-vtag 16909060$/,
    );
  });

  it('cannot be combined with other output types', () => {
    for (const line of ['-L -o save,id', '-L -o extended,save', '-L -o save -o xml']) {
      try {
        parseCompatArgs(line.split(' '));
        expect.unreachable(line);
      } catch (e) {
        expect(e).toBeInstanceOf(CompatUsageError);
        expect((e as CompatUsageError).exitStatus).toBe(1);
        expect((e as Error).message).toBe(
          'cannot combine save output with any other output type, use -o save only',
        );
      }
    }
    expect(parseCompatArgs(['-L', '-o', 'save,userspace']).output).toEqual(
      new Set(['save', 'userspace']),
    );
  });
});

describe('conntrack -I/-A NAT', () => {
  it('parses ADDR[:PORT], [V6]:PORT and an address in the next word', () => {
    const p = (line: string) => parseCompatArgs(line.split(' '));
    const t = '-I -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 -t 5';
    expect(p(`${t} -n 10.0.0.8:77`).natSrc).toEqual({ ip: '10.0.0.8', port: 77 });
    expect(p(`${t} --dst-nat=10.0.0.9`).natDst).toEqual({ ip: '10.0.0.9' });
    expect(p(`${t} -g`).natDst).toBeUndefined();
    expect(
      p('-I -p udp -s 2001:db8::1 -d 2001:db8::2 --sport 1 --dport 2 -t 5 -g [2001:db8::9]:99')
        .natDst,
    ).toEqual({ ip: '2001:db8::9', port: 99 });
    expect(() => p(`${t} -g 2001:db8::9`)).toThrow('mismatched address family');
  });
});

describe('conntrack -R', () => {
  it('is -R/--load-file FILE as the first argument only', () => {
    expect(loadFileRequest(['-R', 'f'])).toEqual({ file: 'f', prefix: [] });
    expect(loadFileRequest(['--load-file', '-', 'x'])).toEqual({ file: '-', prefix: [] });
    expect(loadFileRequest(['--netns', 'blue', '--json', '-R', 'f'])).toEqual({
      file: 'f',
      prefix: ['--netns', 'blue', '--json'],
    });
    expect(loadFileRequest(['-R'])).toBeUndefined();
    expect(loadFileRequest(['--load-file=f'])).toBeUndefined();
    expect(loadFileRequest(['-L', '-R', 'f'])).toBeUndefined();
  });

  it('applies --netns and --json after the file name to every line (other words are ignored)', () => {
    expect(loadFileRequest(['-R', '-', '--netns', 'blue'])).toEqual({
      file: '-',
      prefix: ['--netns', 'blue'],
    });
    expect(loadFileRequest(['-R', 'f', 'x', '--netns=blue', 'y', '--json'])).toEqual({
      file: 'f',
      prefix: ['--netns=blue', '--json'],
    });
    expect(loadFileRequest(['--json', '--load-file', 'f', '--netns', 'blue'])).toEqual({
      file: 'f',
      prefix: ['--json', '--netns', 'blue'],
    });
    expect(() => loadFileRequest(['-R', 'f', '--netns'])).toThrow(
      "option `--netns' requires an argument",
    );
  });

  it('refuses a line that names its own --netns, before any line runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pcl-ct-load-'));
    try {
      const file = join(dir, 'batch');
      writeFileSync(file, '-D -s 10.0.0.1\n-D -s 10.0.0.2 --netns elsewhere\n');
      const table = new FakeConntrackTable([tcpEntry(1), tcpEntry(2)]);
      let stderr = '';
      const status = await runConntrackCompat(
        ['-R', file],
        { stdout: () => undefined, stderr: (s) => void (stderr += s) },
        { transport: () => table.transport() },
      );
      expect(status).toBe(2);
      expect(stderr).toContain('--netns cannot be given in a -R file');
      expect(table.ids()).toEqual([1, 2]);
      expect(table.dumps).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('splits lines as fgets() and words as add_param_to_argv()', () => {
    expect(fgetsLines('a\n\nb')).toEqual(['a\n', '\n', 'b']);
    expect(fgetsLines('')).toEqual([]);
    expect(loadFileWords('\n')).toBeUndefined();
    expect(loadFileWords('  \t\n')).toBeUndefined();
    expect(loadFileWords(' # x\n')).toBeUndefined();
    expect(loadFileWords('  ')).toEqual([]);
    expect(loadFileWords('-A  -p\ttcp -t 5\n')).toEqual(['-A', '-p', 'tcp', '-t', '5']);
    expect(loadFileWords('-l "a b" "x\\"y" z"w" "" "p"q\n')).toEqual([
      '-l',
      'a b',
      'x"y',
      'zw',
      '',
      'p',
      'q',
    ]);
  });
});
