/** `portcullis conntrack events` and `expect list`, in a throw-away netns. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../helper/cli.js';
import { Conntrack } from '../../helper/conntrack/client.js';
import type { Tuple } from '../../helper/conntrack/types.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';

const skip = rootTestsUnavailable();
if (skip) console.warn(`skipping conntrack events/expect CLI root tests: ${skip}`);

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['conntrack', ...argv], {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
  });
  return { code, out: out.join(''), err: err.join('') };
}

describe.skipIf(skip)('portcullis conntrack events / expect list (root)', () => {
  let ns: TestNetns;
  let ct: Conntrack;
  beforeAll(() => {
    ns = new TestNetns('pcl-ctev');
    ct = Conntrack.open({ netns: ns.name });
  });
  afterAll(() => {
    ct?.close();
    ns?.delete();
  });

  it('prints the filtered events as JSON lines and stops after --count', async () => {
    const run = cli(
      'events',
      '--netns',
      ns.name,
      '--json',
      '-e',
      'new,destroy',
      '-p',
      'udp',
      '--count',
      '3',
    );
    await new Promise((r) => setTimeout(r, 300)); // the listener subscribes first
    const udp = (i: number): Tuple => ({
      src: `198.18.7.${i}`,
      dst: '198.18.7.100',
      proto: 17,
      srcPort: 40000 + i,
      dstPort: 53,
    });
    await ct.create({ orig: { ...udp(1), proto: 6 }, timeout: 60 }); // filtered out: tcp
    await ct.create({ orig: udp(1), timeout: 60 });
    await ct.update({ orig: udp(1), mark: 7 }); // an update: not asked for
    await ct.create({ orig: udp(2), timeout: 60 });
    await ct.delete({ orig: udp(1) });
    const r = await run;
    expect(r.code, r.err).toBe(0);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; orig: { src: string; proto: number } });
    expect(lines.map((l) => [l.event, l.orig.src, l.orig.proto])).toEqual([
      ['new', '198.18.7.1', 17],
      ['new', '198.18.7.2', 17],
      ['destroy', '198.18.7.1', 17],
    ]);
    expect(r.err).toMatch(/3 events shown/);
  });

  it('lists expectations as the library sees them', async () => {
    const master: Tuple = {
      src: '198.18.8.1',
      dst: '198.18.8.2',
      proto: 6,
      srcPort: 40000,
      dstPort: 21,
    };
    await ct.create({
      orig: master,
      timeout: 600,
      tcpState: 'ESTABLISHED',
      status: ['SEEN_REPLY', 'ASSURED'],
      helper: 'ftp',
    });
    const tuple: Tuple = {
      src: '198.18.8.1',
      dst: '198.18.8.2',
      proto: 6,
      srcPort: 0,
      dstPort: 50000,
    };
    await ct.expectations.create({ master, tuple, mask: { srcPort: 0 }, timeout: 120 });
    const r = await cli('expect', 'list', '--netns', ns.name, '--json');
    expect(r.code, r.err).toBe(0);
    const rows = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { master: Tuple; tuple: Tuple; helper?: string });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.master).toEqual(master);
    expect(rows[0]!.tuple).toMatchObject({ dst: '198.18.8.2', dstPort: 50000, proto: 6 });
    expect(rows[0]!.helper).toBe('ftp');
    const text = await cli('expect', 'list', '--netns', ns.name);
    expect(text.out).toMatch(
      /198\.18\.8\.1:0 -> 198\.18\.8\.2:50000 master 198\.18\.8\.1:40000 -> 198\.18\.8\.2:21 helper=ftp/,
    );
  });
});
