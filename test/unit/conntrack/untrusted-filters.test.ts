/**
 * Kernel-side filters are an optimisation, never trusted: kernels before 5.8
 * ignore CTA_FILTER, later ones lack the status filter, and the dying and
 * unconfirmed lists honour only the family. Against a fake kernel that
 * ignores every filter, list() must still return only matches and
 * deleteWhere() delete only matches.
 */
import { describe, expect, it } from 'vitest';
import { Conntrack, type FlowFilter } from '../../../helper/conntrack/client.js';
import { STATUS_BITS } from '../../../helper/conntrack/constants.js';
import {
  FakeConntrackTable,
  idsOf,
  tcpPopulation,
  type FakeEntry,
} from '../../support/fake-conntrack.js';

const { ASSURED, CONFIRMED } = STATUS_BITS;

function population(): FakeEntry[] {
  return [
    ...tcpPopulation(),
    {
      family: 'ipv6',
      orig: { src: '2001:db8::5', dst: '2001:db8::1', proto: 17, srcPort: 5, dstPort: 53 },
      reply: { src: '2001:db8::1', dst: '2001:db8::5', proto: 17, srcPort: 53, dstPort: 5 },
      status: CONFIRMED,
      id: 5,
    },
  ];
}

/** Filter -> the ids that match it. */
const CASES: [string, FlowFilter, number[]][] = [
  ['mark', { mark: 0x10 }, [1]],
  ['mark and mask', { mark: 0x10, markMask: 0xf0 }, [1, 2]],
  ['status flags', { status: ['ASSURED'] }, [2, 4]],
  ['status with a mask', { status: 0, statusMask: ASSURED }, [1, 3, 5]],
  ['zone', { zone: 7 }, [3]],
  ['family', { family: 'ipv6' }, [5]],
  ['original source', { orig: { src: '10.0.0.2' } }, [2]],
  ['original destination port', { orig: { proto: 6, dstPort: 443 } }, [3]],
  ['protocol', { orig: { proto: 17 } }, [5]],
  ['reply source', { reply: { src: '10.9.0.2' } }, [4]],
  ['reply destination port', { reply: { proto: 6, dstPort: 1002 } }, [2]],
  ['IPv6 address', { orig: { src: '2001:db8::5' } }, [5]],
  [
    'everything at once',
    { family: 'ipv4', mark: 0x11, status: ['ASSURED'], orig: { src: '10.0.0.2', proto: 6 } },
    [2],
  ],
  ['nothing matches', { orig: { src: '10.0.0.99' } }, []],
];

function open(table: FakeConntrackTable): Conntrack {
  return Conntrack.open({ transport: table.transport() });
}

describe('Conntrack against a kernel that ignores every filter', () => {
  it.each(CASES)('list() by %s returns only matches', async (_what, filter, ids) => {
    const table = new FakeConntrackTable(population());
    const ct = open(table);
    try {
      expect(idsOf(await ct.listAll(filter))).toEqual(ids);
      const streamed = [];
      for await (const f of ct.list(filter)) streamed.push(f);
      expect(idsOf(streamed)).toEqual(ids);
      expect(table.dumps).toBeGreaterThan(0);
    } finally {
      ct.close();
    }
  });

  it('the dying list is filtered too', async () => {
    const table = new FakeConntrackTable(population());
    const ct = open(table);
    try {
      expect(idsOf(await ct.listAll({ table: 'dying', mark: 0x20 }))).toEqual([4]);
    } finally {
      ct.close();
    }
  });

  it.each(CASES)('deleteWhere() by %s deletes only matches', async (_what, filter, ids) => {
    const table = new FakeConntrackTable(population());
    const ct = open(table);
    try {
      expect(await ct.deleteWhere(filter)).toBe(ids.length);
      expect(table.ids()).toEqual([1, 2, 3, 4, 5].filter((id) => !ids.includes(id)));
      expect(table.refused).toEqual([]);
    } finally {
      ct.close();
    }
  });
});
