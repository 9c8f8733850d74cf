import { describe, expect, it } from 'vitest';
import { main } from '../../../helper/cli.js';
import { CliUsageError } from '../../../helper/cli/command.js';
import { parseNfqueueArgs } from '../../../helper/cli/nfqueue-args.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) },
    out,
    err,
  };
}

describe('parseNfqueueArgs', () => {
  it('parses accept with every option, numbers in decimal or hex', () => {
    expect(parseNfqueueArgs('accept', ['--queue', '7'])).toEqual({
      sub: 'accept',
      queue: 7,
      batch: false,
    });
    expect(
      parseNfqueueArgs('accept', [
        '-q',
        '0x10',
        '--batch',
        '--netns',
        'blue',
        '--max-len',
        '65536',
        '--count=100',
      ]),
    ).toEqual({
      sub: 'accept',
      queue: 16,
      batch: true,
      netns: 'blue',
      maxLen: 65536,
      count: 100,
    });
    expect(parseNfqueueArgs('accept', ['--queue=65535'])).toMatchObject({ queue: 65535 });
    expect(parseNfqueueArgs('accept', ['--queue', '0'])).toMatchObject({ queue: 0 });
  });

  it('parses watch with defaults and every option', () => {
    expect(parseNfqueueArgs('watch', ['--queue', '3'])).toEqual({
      sub: 'watch',
      queue: 3,
      verdict: 'accept',
      json: false,
      failOpen: false,
      uidGid: false,
    });
    expect(
      parseNfqueueArgs('watch', [
        '--queue',
        '3',
        '--verdict',
        'DROP',
        '--json',
        '--netns',
        '/run/netns/x',
        '--count',
        '3',
        '--fail-open',
        '--uid-gid',
      ]),
    ).toEqual({
      sub: 'watch',
      queue: 3,
      verdict: 'drop',
      json: true,
      netns: '/run/netns/x',
      count: 3,
      failOpen: true,
      uidGid: true,
    });
  });

  it('parses stats', () => {
    expect(parseNfqueueArgs('stats', [])).toEqual({ sub: 'stats', json: false });
    expect(parseNfqueueArgs('stats', ['--json', '--netns', 'blue'])).toEqual({
      sub: 'stats',
      json: true,
      netns: 'blue',
    });
  });

  const bad: [string, string[], RegExp][] = [
    ['accept', [], /nfqueue accept needs --queue N/],
    ['watch', ['--json'], /nfqueue watch needs --queue N/],
    ['accept', ['--queue', '65536'], /--queue: 65536 is out of range 0\.\.65535/],
    ['accept', ['--queue', '0x10000'], /out of range 0\.\.65535/],
    ['accept', ['--queue=-1'], /--queue: '-1' is not a number/],
    ['accept', ['--queue', '7x'], /--queue: '7x' is not a number/],
    ['accept', ['--queue', '1e3'], /is not a number/],
    ['accept', ['--queue', '3.5'], /is not a number/],
    ['accept', ['--queue', '99999999999999999999'], /out of range/],
    ['accept', ['--queue'], /argument missing/],
    ['accept', ['--queue='], /--queue needs a value/],
    ['accept', ['--queue', '1', '--queue', '2'], /--queue given more than once/],
    ['accept', ['--queue', '1', '--max-len', '0'], /--max-len: must be at least 1/],
    ['accept', ['--queue', '1', '--max-len', 'lots'], /--max-len: 'lots' is not a number/],
    ['accept', ['--queue', '1', '--max-len', '4294967296'], /--max-len: .*out of range/],
    ['accept', ['--queue', '1', '--count', '0'], /--count: must be at least 1/],
    ['accept', ['--queue', '1', '--count', 'ten'], /--count: 'ten' is not a number/],
    [
      'accept',
      ['--queue', '1', '--verdict', 'drop'],
      /--verdict is not valid with 'nfqueue accept'/,
    ],
    ['accept', ['--queue', '1', '--json'], /--json is not valid with 'nfqueue accept'/],
    [
      'watch',
      ['--queue', '1', '--verdict', 'reject'],
      /--verdict: unknown verdict 'reject' \(accept or drop\)/,
    ],
    ['watch', ['--queue', '1', '--verdict='], /--verdict needs a value/],
    ['watch', ['--queue', '1', '--batch'], /--batch is not valid with 'nfqueue watch'/],
    ['watch', ['--queue', '1', '--json=yes'], /--json' does not take an argument/],
    ['watch', ['--queue', '1', 'extra'], /Unexpected argument 'extra'/],
    ['watch', ['--queue', '1', '--netns='], /--netns needs a value/],
    ['watch', ['--queue', '1', '--bogus'], /Unknown option '--bogus'/],
    ['stats', ['--queue', '1'], /--queue is not valid with 'nfqueue stats'/],
    ['frob', [], /unknown nfqueue subcommand 'frob' \(accept, watch, stats\)/],
  ];
  it.each(bad)('nfqueue %s %j is a usage error', (sub, argv, message) => {
    let error: unknown;
    try {
      parseNfqueueArgs(sub, argv);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CliUsageError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toMatch(/\n/);
  });
});

describe('portcullis nfqueue (argument errors through main)', () => {
  it.each(badArgv())('exit 2 with one message line: %j', async (...argv) => {
    const c = capture();
    expect(await main(['nfqueue', ...argv], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/^portcullis: [^\n]+\nTry 'portcullis --help'\.\n$/);
    expect(c.out.join('')).toBe('');
  });

  function badArgv(): string[][] {
    return [
      ['accept'],
      ['accept', '--queue', '70000'],
      ['accept', '--queue', 'seven'],
      ['accept', '--queue', '1', '--count', '-3'],
      ['watch', '--queue', '1', '--verdict', 'maybe'],
      ['watch', '--verdict', 'drop'],
      ['watch', '--queue', '1', '--count', '0'],
      ['stats', '--bogus'],
      ['nope'],
    ];
  }

  it('prints nfqueue help (exit 0), and usage without a subcommand (exit 2)', async () => {
    const a = capture();
    expect(await main(['nfqueue', '--help'], a.io)).toBe(0);
    expect(a.out.join('')).toMatch(/Usage: portcullis nfqueue <subcommand>/);
    expect(a.out.join('')).toMatch(/--verdict V/);
    const b = capture();
    expect(await main(['nfqueue', 'watch', '--queue', '1', '-h'], b.io)).toBe(0);
    expect(b.out.join('')).toMatch(/watch/);
    const c = capture();
    expect(await main(['nfqueue'], c.io)).toBe(2);
    const d = capture();
    expect(await main(['--help'], d.io)).toBe(0);
    expect(d.out.join('')).toMatch(/nfqueue +bind an NFQUEUE queue/);
  });

  it('rejects a netns name stats cannot use as a usage error', async () => {
    const c = capture();
    expect(await main(['nfqueue', 'stats', '--netns', 'a b'], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/--netns: invalid netns name "a b"/);
  });
});
