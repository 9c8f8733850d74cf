import { describe, expect, it } from 'vitest';
import { main } from '../../../helper/cli.js';
import {
  parseConntrackArgs,
  type ConntrackCommandArgs,
} from '../../../helper/cli/conntrack-args.js';
import {
  parseLabels,
  parseMark,
  parseProto,
  parseStatus,
  parseUnsigned,
} from '../../../helper/cli/conntrack-values.js';
import { CliUsageError } from '../../../helper/cli/command.js';
import type { Flow } from '../../../helper/conntrack/types.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) },
    out,
    err,
  };
}

/** Runs the CLI and expects a usage error (exit 2) whose message matches. */
async function expectUsage(argv: string[], message: RegExp): Promise<void> {
  const c = capture();
  const code = await main(['conntrack', ...argv], c.io);
  const err = c.err.join('');
  expect(code, `${argv.join(' ')} -> ${err}`).toBe(2);
  expect(err, argv.join(' ')).toMatch(/^portcullis: .+\nTry 'portcullis --help'\.\n$/);
  expect(err, argv.join(' ')).toMatch(message);
  expect(c.out.join('')).toBe('');
}

function parse(sub: string, ...argv: string[]): ConntrackCommandArgs {
  return parseConntrackArgs(sub, argv);
}

function list(...argv: string[]) {
  const r = parse('list', ...argv);
  if (r.sub !== 'list') throw new Error(`expected list, got ${r.sub}`);
  return r;
}

function flow(over: Partial<Flow> = {}): Flow {
  return {
    family: 'ipv4',
    orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 6, srcPort: 1, dstPort: 2 },
    reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 6, srcPort: 2, dstPort: 1 },
    status: 8,
    statusFlags: ['CONFIRMED'],
    ...over,
  };
}

describe('value parsers', () => {
  it('parses unsigned numbers in decimal and hex, with range checks', () => {
    expect(parseUnsigned('0', 10, 'x')).toBe(0);
    expect(parseUnsigned('65535', 65535, 'x')).toBe(65535);
    expect(parseUnsigned('0x1F', 255, 'x')).toBe(31);
    expect(parseUnsigned('0XfF', 255, 'x')).toBe(255);
    expect(parseUnsigned('007', 255, 'x')).toBe(7);
    for (const bad of ['', '-1', '+1', '1.5', '1e3', 'abc', '0x', '0xg', ' ', '12a', 'NaN']) {
      expect(() => parseUnsigned(bad, 100000, 'x'), bad).toThrow(CliUsageError);
    }
    expect(() => parseUnsigned('65536', 65535, 'port')).toThrow(/out of range 0\.\.65535/);
    expect(() => parseUnsigned('99999999999999999999', 2 ** 32 - 1, 'mark')).toThrow(/range/);
  });

  it('parses marks as VALUE[/MASK], decimal or hex, 32 bits', () => {
    expect(parseMark('5')).toEqual({ value: 5 });
    expect(parseMark('0x10')).toEqual({ value: 16 });
    expect(parseMark('0x10/0xf0')).toEqual({ value: 16, mask: 0xf0 });
    expect(parseMark('1/3')).toEqual({ value: 1, mask: 3 });
    expect(parseMark('4294967295/0xffffffff')).toEqual({ value: 0xffffffff, mask: 0xffffffff });
    for (const bad of ['', '/', '1/', '/1', '1/2/3', 'x', '0x1g', '4294967296', '1/0x100000000']) {
      expect(() => parseMark(bad), bad).toThrow(CliUsageError);
    }
  });

  it('parses protocol names (any case) and numbers, and rejects garbage', () => {
    expect(parseProto('tcp')).toBe(6);
    expect(parseProto('UDP')).toBe(17);
    expect(parseProto('udplite')).toBe(136);
    expect(parseProto('icmp')).toBe(1);
    expect(parseProto('icmpv6')).toBe(58);
    expect(parseProto('ipv6-icmp')).toBe(58);
    expect(parseProto('sctp')).toBe(132);
    expect(parseProto('dccp')).toBe(33);
    expect(parseProto('gre')).toBe(47);
    expect(parseProto('0')).toBe(0);
    expect(parseProto('255')).toBe(255);
    expect(parseProto('50')).toBe(50);
    for (const bad of ['256', '-1', 'tcpx', 'tc', '6a', '', '1.0', 'ipv4']) {
      expect(() => parseProto(bad), bad).toThrow(CliUsageError);
    }
  });

  it('parses status flag names case-insensitively, IPS_ prefix optional', () => {
    expect(parseStatus(['assured'])).toEqual(['ASSURED']);
    expect(parseStatus(['ASSURED,seen_reply'])).toEqual(['ASSURED', 'SEEN_REPLY']);
    expect(parseStatus(['IPS_CONFIRMED', 'Dying'])).toEqual(['CONFIRMED', 'DYING']);
    expect(parseStatus(['assured,assured'])).toEqual(['ASSURED']);
    expect(() => parseStatus(['BOGUS'])).toThrow(/unknown flag 'BOGUS'/);
    expect(() => parseStatus(['ASSURED,'])).toThrow(CliUsageError);
  });

  it('parses label bit lists 0..127', () => {
    expect(parseLabels(['3,1', '127'])).toEqual([1, 3, 127]);
    expect(parseLabels(['0'])).toEqual([0]);
    expect(() => parseLabels(['128'])).toThrow(/out of range 0\.\.127/);
    expect(() => parseLabels(['1,,2'])).toThrow(/empty label/);
    expect(() => parseLabels(['red'])).toThrow(/not a number/);
  });
});

describe('conntrack list filters', () => {
  it('maps every filter to the kernel filter and the predicate', () => {
    const r = list(
      '-p',
      'tcp',
      '-s',
      '10.0.0.1',
      '-d',
      '10.0.0.2',
      '--sport',
      '1000',
      '--dport',
      '0x50',
      '--reply-src',
      '10.0.0.2',
      '--reply-dst',
      '10.0.0.1',
      '--reply-sport',
      '80',
      '--reply-dport',
      '1000',
      '--mark',
      '0x10/0xf0',
      '--zone',
      '7',
      '--status',
      'assured,SEEN_REPLY',
      '-f',
      'ipv4',
      '--netns',
      'blue',
      '--json',
    );
    expect(r.common).toEqual({ netns: 'blue', json: true });
    const { where, ...kernel } = r.filter;
    expect(kernel).toEqual({
      family: 'ipv4',
      orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 6, srcPort: 1000, dstPort: 80 },
      reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 6, srcPort: 80, dstPort: 1000 },
      mark: 16,
      markMask: 0xf0,
      zone: 7,
      status: ['ASSURED', 'SEEN_REPLY'],
    });
    expect(where).toBeUndefined();
  });

  it('has no filter at all without options', () => {
    expect(list().filter).toEqual({});
    expect(list().common).toEqual({ json: false });
  });

  it('accepts the conntrack-tools spellings', () => {
    const r = list(
      '--orig-src',
      '10.0.0.1',
      '--orig-dst',
      '10.0.0.2',
      '-p',
      'udp',
      '--orig-port-src',
      '1',
      '--orig-port-dst',
      '2',
      '-r',
      '10.0.0.2',
      '-q',
      '10.0.0.1',
      '--reply-port-src',
      '2',
      '--reply-port-dst',
      '1',
      '-m',
      '3',
      '-w',
      '4',
      '-u',
      'ASSURED',
      '-l',
      '5',
    );
    expect(r.filter.orig).toEqual({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      proto: 17,
      srcPort: 1,
      dstPort: 2,
    });
    expect(r.filter.reply).toEqual({
      src: '10.0.0.2',
      dst: '10.0.0.1',
      proto: 17,
      srcPort: 2,
      dstPort: 1,
    });
    expect(r.filter.mark).toBe(3);
    expect(r.filter.markMask).toBeUndefined();
    expect(r.filter.zone).toBe(4);
    expect(r.filter.status).toEqual(['ASSURED']);
    expect(typeof r.filter.where).toBe('function');
  });

  it('normalises addresses to the canonical form the decoder prints', () => {
    expect(list('-s', '2001:DB8:0:0::1').filter.orig).toEqual({ src: '2001:db8::1' });
    expect(list('-d', '::ffff:10.0.0.1').filter.orig).toEqual({ dst: '::ffff:10.0.0.1' });
  });

  it('filters ICMP fields only with -p icmp or icmpv6', () => {
    expect(
      list('-p', 'icmp', '--icmp-type', '8', '--icmp-code', '0', '--icmp-id', '77').filter.orig,
    ).toEqual({ proto: 1, icmpType: 8, icmpCode: 0, icmpId: 77 });
    expect(
      list('-p', 'icmpv6', '--icmpv6-type', '128', '--icmpv6-code', '0', '--icmpv6-id', '9').filter
        .orig,
    ).toEqual({ proto: 58, icmpType: 128, icmpCode: 0, icmpId: 9 });
  });

  it('matches --state with a predicate (TCP by default, SCTP and DCCP with -p)', () => {
    const tcp = list('--state', 'established');
    expect(tcp.filter.orig).toEqual({ proto: 6 });
    const established = flow({ tcp: { state: 'ESTABLISHED', stateNumber: 3 } });
    const closing = flow({ tcp: { state: 'TIME_WAIT', stateNumber: 7 } });
    expect(tcp.filter.where?.(established)).toBe(true);
    expect(tcp.filter.where?.(closing)).toBe(false);
    expect(tcp.filter.where?.(flow())).toBe(false);

    const sctp = list('-p', 'sctp', '--state', 'COOKIE_WAIT');
    expect(sctp.filter.where?.(flow({ sctp: { state: 'COOKIE_WAIT', stateNumber: 2 } }))).toBe(
      true,
    );
    expect(sctp.filter.where?.(flow({ tcp: { state: 'ESTABLISHED', stateNumber: 3 } }))).toBe(
      false,
    );
    const dccp = list('-p', 'dccp', '--state', 'open');
    expect(dccp.filter.where?.(flow({ dccp: { state: 'OPEN', stateNumber: 4 } }))).toBe(true);
  });

  it('matches --label with a predicate: every given bit set', () => {
    const r = list('--label', '1,64');
    const labels = new Uint8Array(16);
    labels[0] = 0b10;
    expect(r.filter.where?.(flow({ labels }))).toBe(false);
    labels[8] = 1;
    expect(r.filter.where?.(flow({ labels }))).toBe(true);
    expect(r.filter.where?.(flow())).toBe(false);
  });

  it('combines --state and --label', () => {
    const r = list('--state', 'CLOSE', '-l', '0');
    const labels = new Uint8Array(16);
    labels[0] = 1;
    expect(r.filter.where?.(flow({ labels, tcp: { state: 'CLOSE', stateNumber: 8 } }))).toBe(true);
    expect(r.filter.where?.(flow({ labels, tcp: { state: 'NONE', stateNumber: 0 } }))).toBe(false);
    expect(r.filter.where?.(flow({ tcp: { state: 'CLOSE', stateNumber: 8 } }))).toBe(false);
  });

  it('accepts -f ipv6 alone, and matching families', () => {
    expect(list('-f', 'ipv6').filter).toEqual({ family: 'ipv6' });
    expect(list('-f', 'IPv4', '-s', '1.2.3.4').filter.family).toBe('ipv4');
    expect(list('-f', 'ipv6', '-p', 'icmpv6').filter.family).toBe('ipv6');
  });
});

describe('conntrack get / create / update / delete / flush', () => {
  it('get: the original tuple and zone as the key', () => {
    expect(
      parse(
        'get',
        '-p',
        'tcp',
        '-s',
        '10.0.0.1',
        '-d',
        '10.0.0.2',
        '--sport',
        '1',
        '--dport',
        '2',
        '--zone',
        '3',
        '--json',
      ),
    ).toEqual({
      sub: 'get',
      common: { json: true },
      key: {
        orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 6, srcPort: 1, dstPort: 2 },
        zone: 3,
      },
    });
    expect(
      parse(
        'get',
        '-p',
        'icmp',
        '-s',
        '10.0.0.1',
        '-d',
        '10.0.0.2',
        '--icmp-type',
        '8',
        '--icmp-code',
        '0',
        '--icmp-id',
        '1',
      ),
    ).toMatchObject({
      key: { orig: { proto: 1, icmpType: 8, icmpCode: 0, icmpId: 1 } },
    });
    // Protocols without ports or ICMP fields need only the addresses.
    expect(parse('get', '-p', '50', '-s', '::1', '-d', '::2', '-f', 'ipv6')).toMatchObject({
      key: { orig: { proto: 50, src: '::1', dst: '::2' }, family: 'ipv6' },
    });
  });

  it('create: both tuples (reply defaults to the inverse), timeout and attributes', () => {
    const r = parse(
      'create',
      '-p',
      'tcp',
      '-s',
      '10.0.0.1',
      '-d',
      '10.0.0.2',
      '--sport',
      '1000',
      '--dport',
      '80',
      '-t',
      '120',
      '--mark',
      '0x20',
      '--label',
      '1,2',
      '--zone',
      '9',
      '--status',
      'ASSURED',
      '--state',
      'ESTABLISHED',
    );
    expect(r).toEqual({
      sub: 'create',
      common: { json: false },
      spec: {
        orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 6, srcPort: 1000, dstPort: 80 },
        timeout: 120,
        mark: 32,
        labels: [1, 2],
        zone: 9,
        status: ['ASSURED'],
        tcpState: 'ESTABLISHED',
      },
    });
    const nat = parse(
      'create',
      '-p',
      'udp',
      '-s',
      '10.0.0.1',
      '-d',
      '10.0.0.2',
      '--sport',
      '1',
      '--dport',
      '2',
      '--reply-src',
      '192.0.2.9',
      '--reply-sport',
      '22',
      '-t',
      '5',
    );
    expect(nat).toMatchObject({
      spec: { reply: { src: '192.0.2.9', dst: '10.0.0.1', proto: 17, srcPort: 22, dstPort: 1 } },
    });
    const sctp = parse(
      'create',
      '-p',
      'sctp',
      '-s',
      '::1',
      '-d',
      '::2',
      '--sport',
      '1',
      '--dport',
      '2',
      '-t',
      '5',
      '--state',
      'cookie_echoed',
    );
    expect(sctp).toMatchObject({ spec: { sctpState: 'COOKIE_ECHOED' } });
    const icmp = parse(
      'create',
      '-p',
      'icmpv6',
      '-s',
      '::1',
      '-d',
      '::2',
      '--icmp-type',
      '128',
      '--icmp-code',
      '0',
      '--icmp-id',
      '5',
      '-t',
      '5',
    );
    expect(icmp).toMatchObject({ spec: { orig: { proto: 58, icmpType: 128, icmpId: 5 } } });
  });

  it('update: key plus only the fields given; label add/del become labels and a mask', () => {
    const key = ['-p', 'udp', '-s', '10.0.0.1', '-d', '10.0.0.2', '--sport', '1', '--dport', '2'];
    expect(parse('update', ...key, '--mark', '0x5/0xff', '-t', '30', '-w', '1')).toEqual({
      sub: 'update',
      common: { json: false },
      spec: {
        orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 17, srcPort: 1, dstPort: 2 },
        zone: 1,
        mark: 5,
        markMask: 0xff,
        timeout: 30,
      },
    });
    expect(parse('update', ...key, '--label', '3')).toMatchObject({ spec: { labels: [3] } });
    const r = parse('update', ...key, '--label-add', '1,2', '--label-del', '7');
    expect(r).toMatchObject({ spec: { labels: [1, 2], labelsMask: [1, 2, 7] } });
    expect(parse('update', ...key, '--label-del', '7')).toMatchObject({
      spec: { labels: [], labelsMask: [7] },
    });
    expect(parse('update', ...key, '--status', 'assured')).toMatchObject({
      spec: { status: ['ASSURED'] },
    });
    expect(
      parse(
        'update',
        '-p',
        'tcp',
        '-s',
        '1.1.1.1',
        '-d',
        '2.2.2.2',
        '--sport',
        '1',
        '--dport',
        '2',
        '--state',
        'TIME_WAIT',
      ),
    ).toMatchObject({ spec: { tcpState: 'TIME_WAIT' } });
  });

  it('delete: a key, or filters with --all-matching', () => {
    expect(
      parse('delete', '-p', 'udp', '-s', '::1', '-d', '::2', '--sport', '1', '--dport', '2'),
    ).toEqual({
      sub: 'delete',
      common: { json: false },
      key: { orig: { src: '::1', dst: '::2', proto: 17, srcPort: 1, dstPort: 2 } },
    });
    const m = parse('delete', '--all-matching', '--mark', '7', '-f', 'ipv6', '-p', 'udp');
    expect(m).toEqual({
      sub: 'delete-matching',
      common: { json: false },
      filter: { family: 'ipv6', mark: 7, orig: { proto: 17 } },
    });
  });

  it('flush: optional family and mark', () => {
    expect(parse('flush')).toEqual({ sub: 'flush', common: { json: false }, options: {} });
    expect(parse('flush', '-f', 'ipv6', '--mark', '1/0x3')).toEqual({
      sub: 'flush',
      common: { json: false },
      options: { family: 'ipv6', mark: 1, markMask: 3 },
    });
  });
});

describe('bad arguments: exit 2 with a clear message, never a stack trace', () => {
  const tcpKey = ['-p', 'tcp', '-s', '10.0.0.1', '-d', '10.0.0.2', '--sport', '1', '--dport', '2'];

  it('rejects malformed values', async () => {
    await expectUsage(['list', '-p', 'tcpx'], /protocol: unknown 'tcpx'/);
    await expectUsage(['list', '-p', '256'], /protocol: 256 is out of range 0\.\.255/);
    await expectUsage(['list', '-p', '-1'], /-p|proto/);
    await expectUsage(['list', '-s', '10.0.0.256'], /-s: '10\.0\.0\.256' is not an IPv4 or IPv6/);
    await expectUsage(['list', '--dst', 'example.com'], /--dst: 'example\.com' is not an/);
    await expectUsage(['list', '--reply-src', '1::2::3'], /--reply-src: '1::2::3'/);
    await expectUsage(['list', '-p', 'tcp', '--sport', '65536'], /--sport: 65536 is out of range/);
    await expectUsage(['list', '-p', 'tcp', '--dport', 'http'], /--dport: 'http' is not a number/);
    await expectUsage(['list', '--mark', '0xZZ'], /mark: '0xZZ' is not a number/);
    await expectUsage(['list', '--mark', '1/2/3'], /is not VALUE\[\/MASK\]/);
    await expectUsage(['list', '--mark', '4294967296'], /mark: 4294967296 is out of range/);
    await expectUsage(['list', '--zone', '65536'], /--zone: 65536 is out of range 0\.\.65535/);
    await expectUsage(['list', '-w', 'x'], /-w: 'x' is not a number/);
    await expectUsage(['list', '--status', 'ASSURED,NOPE'], /status: unknown flag 'NOPE'/);
    await expectUsage(['list', '--state', 'LISTENING'], /unknown tcp state 'LISTENING'/);
    await expectUsage(['list', '-p', 'udp', '--state', 'OPEN'], /--state needs -p tcp, sctp or/);
    await expectUsage(['list', '-f', 'ipv5'], /family: 'ipv5' is not ipv4 or ipv6/);
    await expectUsage(['list', '-p', 'icmp', '--icmp-type', '256'], /--icmp-type: 256 is out/);
    await expectUsage(['list', '-p', 'icmp', '--icmp-id', '70000'], /--icmp-id: 70000 is out/);
    await expectUsage(['list', '-l', '128'], /label: 128 is out of range 0\.\.127/);
    await expectUsage(['create', ...tcpKey, '-t', '-5'], /ambiguous|-t/);
    await expectUsage(['create', ...tcpKey, '-t', '1.5'], /-t: '1\.5' is not a number/);
    await expectUsage(['list', '--netns', ''], /--netns needs a value/);
  });

  it('rejects unknown, duplicated, misplaced and missing options', async () => {
    await expectUsage(['list', '--bogus'], /Unknown option '--bogus'/);
    await expectUsage(['list', 'extra'], /Unexpected argument 'extra'/);
    await expectUsage(['list', '-p'], /argument missing/);
    await expectUsage(['list', '-p', 'tcp', '--proto', 'udp'], /--proto given more than once/);
    await expectUsage(['list', '-t', '5'], /option -t is not valid with 'conntrack list'/);
    await expectUsage(
      ['get', ...tcpKey, '--mark', '1'],
      /--mark is not valid with 'conntrack get'/,
    );
    await expectUsage(['flush', '-p', 'tcp'], /-p is not valid with 'conntrack flush'/);
    await expectUsage(['stats', '-s', '1.2.3.4'], /-s is not valid with 'conntrack stats'/);
    await expectUsage(['create', ...tcpKey, '--all-matching'], /--all-matching is not valid/);
    await expectUsage(['frob'], /unknown conntrack subcommand 'frob'/);
  });

  it('rejects mixed address families', async () => {
    await expectUsage(
      ['list', '-s', '10.0.0.1', '-d', '::1'],
      /address families differ: -s is ipv4, -d is ipv6/,
    );
    await expectUsage(
      ['list', '-s', '::1', '--reply-dst', '10.0.0.1'],
      /-s is ipv6, --reply-dst is ipv4/,
    );
    await expectUsage(
      ['list', '-f', 'ipv4', '-d', '2001:db8::1'],
      /-d is an ipv6 address but the family is ipv4/,
    );
    await expectUsage(
      ['list', '-f', 'ipv6', '--src', '1.2.3.4'],
      /--src is an ipv4 address but the family is ipv6/,
    );
    await expectUsage(['list', '-f', 'ipv6', '-p', 'icmp'], /icmp is IPv4 only/);
    await expectUsage(['list', '-s', '1.2.3.4', '-p', 'icmpv6'], /icmpv6 is IPv6 only/);
    await expectUsage(
      [
        'create',
        '-p',
        'udp',
        '-s',
        '1.1.1.1',
        '-d',
        '2.2.2.2',
        '--sport',
        '1',
        '--dport',
        '2',
        '-r',
        '::1',
        '-t',
        '5',
      ],
      /address families differ/,
    );
  });

  it('rejects layer 4 fields the protocol does not have', async () => {
    await expectUsage(
      ['list', '--sport', '80'],
      /--sport needs -p tcp, udp, udplite, sctp, dccp or gre/,
    );
    await expectUsage(
      ['list', '-p', 'icmp', '--dport', '80'],
      /--dport needs -p .*\(protocol is icmp\)/,
    );
    await expectUsage(
      ['list', '-p', 'tcp', '--icmp-type', '8'],
      /--icmp-type needs -p icmp or -p icmpv6/,
    );
    await expectUsage(['list', '--icmp-id', '8'], /--icmp-id needs -p icmp/);
  });

  it('rejects incomplete keys and meaningless requests', async () => {
    await expectUsage(['get', '-s', '1.1.1.1', '-d', '2.2.2.2'], /missing -p\/--proto/);
    await expectUsage(
      ['get', '-p', 'tcp', '-s', '1.1.1.1', '-d', '2.2.2.2', '--sport', '1'],
      /missing --dport/,
    );
    await expectUsage(
      ['get', '-p', 'tcp', '--sport', '1', '--dport', '2'],
      /missing -s\/--src, -d\/--dst/,
    );
    await expectUsage(
      ['get', '-p', 'icmp', '-s', '1.1.1.1', '-d', '2.2.2.2', '--icmp-type', '8'],
      /missing --icmp-code, --icmp-id/,
    );
    await expectUsage(['create', ...tcpKey], /create needs -t\/--timeout/);
    await expectUsage(['create', ...tcpKey, '-t', '5', '--mark', '1/1'], /without a mask/);
    await expectUsage(
      [
        'create',
        '-p',
        'udp',
        '-s',
        '1.1.1.1',
        '-d',
        '2.2.2.2',
        '--sport',
        '1',
        '--dport',
        '2',
        '-t',
        '5',
        '--state',
        'ESTABLISHED',
      ],
      /--state needs -p tcp or -p sctp/,
    );
    await expectUsage(['update', ...tcpKey], /update needs something to change/);
    await expectUsage(
      ['update', ...tcpKey, '--label', '1', '--label-add', '2'],
      /cannot be combined/,
    );
    await expectUsage(
      ['update', ...tcpKey, '--label-add', '2', '--label-del', '2'],
      /label 2 is both added and deleted/,
    );
    await expectUsage(['delete', '-p', 'tcp'], /delete needs the original tuple.*--all-matching/);
    await expectUsage(
      ['delete', ...tcpKey, '--mark', '1'],
      /--mark selects entries by filter: use 'conntrack delete --all-matching'/,
    );
    await expectUsage(['delete', '--all-matching'], /needs at least one filter/);
    await expectUsage(['delete', '--all-matching', '-f', 'ipv4'], /needs at least one filter/);
  });
});
