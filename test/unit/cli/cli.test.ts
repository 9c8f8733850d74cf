import { describe, expect, it } from 'vitest';
import { main } from '../../../helper/cli.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) },
    out,
    err,
  };
}

describe('portcullis CLI', () => {
  it('prints help with exit 0, and usage with exit 2 when no command is given', async () => {
    const a = capture();
    expect(await main(['--help'], a.io)).toBe(0);
    expect(a.out.join('')).toMatch(/Usage: portcullis <command>/);
    expect(a.out.join('')).toMatch(/conntrack/);
    const b = capture();
    expect(await main([], b.io)).toBe(2);
  });

  it('prints the package version', async () => {
    const c = capture();
    expect(await main(['--version'], c.io)).toBe(0);
    expect(c.out.join('')).toMatch(/^portcullis \d+\.\d+\.\d+\n$/);
  });

  it('rejects unknown commands, subcommands and options with exit 2 and a clear message', async () => {
    for (const argv of [
      ['frobnicate'],
      ['conntrack', 'nope'],
      ['conntrack', 'stats', '--bogus'],
      ['conntrack', 'count', '--netns'],
      ['conntrack', 'count', 'extra'],
    ]) {
      const c = capture();
      expect(await main(argv, c.io), argv.join(' ')).toBe(2);
      expect(c.err.join('')).toMatch(/^portcullis: .+\nTry 'portcullis --help'\.\n$/);
      expect(c.out.join('')).toBe('');
    }
  });

  it('shows conntrack help', async () => {
    const c = capture();
    expect(await main(['conntrack', '--help'], c.io)).toBe(0);
    expect(c.out.join('')).toMatch(/--netns NAME/);
  });

  it('reports a missing network namespace as an error with exit 1', async () => {
    const c = capture();
    const code = await main(['conntrack', 'count', '--netns', 'pcl-surely-missing'], c.io);
    expect(code).toBe(1);
    expect(c.err.join('')).toMatch(/ENOENT.*pcl-surely-missing/);
  });
});

describe('portcullis conntrack events / expect arguments', () => {
  it('rejects bad event options with exit 2 before opening anything', async () => {
    for (const argv of [
      ['conntrack', 'events', '-e', 'bogus'],
      ['conntrack', 'events', '--count', '0'],
      ['conntrack', 'events', '--count'],
      ['conntrack', 'events', '--dport', '80'],
      ['conntrack', 'expect', 'frob'],
      ['conntrack', 'expect', 'list', '-p', 'tcp'],
    ]) {
      const c = capture();
      expect(await main(argv, c.io), argv.join(' ')).toBe(2);
      expect(c.err.join('')).toMatch(/^portcullis: /);
    }
  });
});
