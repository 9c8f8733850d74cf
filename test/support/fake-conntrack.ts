/**
 * A conntrack table behind the FakeKernel: dumps answer with every entry and
 * IGNORE every filter the request carries (CTA_FILTER, CTA_STATUS, CTA_MARK,
 * the family, the table), as kernels before 5.8 ignore CTA_FILTER and the
 * dying/unconfirmed lists ignore everything but the family. Deletes by tuple
 * remove the entry whose original tuple (and zone, and id when given) match,
 * as ctnetlink_del_conntrack() does; anything else is refused with EOPNOTSUPP
 * so that a test notices a request it did not expect (a flush above all).
 */
import * as C from '../../helper/conntrack/constants.js';
import { decodeFlow } from '../../helper/conntrack/decode.js';
import { ctMsgType, familyNumber, writeTuple } from '../../helper/conntrack/encode.js';
import type { Flow, Tuple } from '../../helper/conntrack/types.js';
import { NLM_F_DUMP, NLM_F_MULTI } from '../../helper/netlink/constants.js';
import type { NetlinkMessage } from '../../helper/netlink/message.js';
import { dataMessage, datagram, doneMessage, errorMessage, FakeKernel } from './fake-kernel.js';

const ENOENT = 2;
const EOPNOTSUPP = 95;

/** One entry of the fake table: what a dump sends for it. */
export interface FakeEntry {
  family: 'ipv4' | 'ipv6';
  orig: Tuple;
  reply: Tuple;
  status?: number;
  mark?: number;
  zone?: number;
  id: number;
}

function sameTuple(a: Tuple, b: Tuple): boolean {
  return (
    a.src === b.src &&
    a.dst === b.dst &&
    a.proto === b.proto &&
    a.srcPort === b.srcPort &&
    a.dstPort === b.dstPort &&
    a.icmpType === b.icmpType &&
    a.icmpCode === b.icmpCode &&
    a.icmpId === b.icmpId
  );
}

export class FakeConntrackTable {
  /** Messages the table refused (a test expecting none checks this is empty). */
  readonly refused: NetlinkMessage[] = [];
  /** How many dump requests came, and how many deletes by tuple. */
  dumps = 0;
  deletes = 0;

  constructor(readonly entries: FakeEntry[]) {}

  /** A new socket onto this table (each Conntrack closes its own). */
  transport(): FakeKernel {
    return new FakeKernel({ handler: (req) => this.handle(req) });
  }

  private handle(req: NetlinkMessage) {
    const type = req.type & 0xff;
    const dump = [C.IPCTNL_MSG_CT_GET, C.IPCTNL_MSG_CT_GET_DYING, C.IPCTNL_MSG_CT_GET_UNCONFIRMED];
    if (dump.includes(type) && (req.flags & NLM_F_DUMP) === NLM_F_DUMP) {
      this.dumps++;
      return [
        ...this.entries.map((e) =>
          datagram(
            dataMessage({
              type: ctMsgType(C.IPCTNL_MSG_CT_NEW),
              flags: NLM_F_MULTI,
              seq: req.seq,
              payload: (w) => {
                w.nfgenmsg(familyNumber(e.family));
                writeTuple(w, C.CTA_TUPLE_ORIG, e.orig, e.family);
                writeTuple(w, C.CTA_TUPLE_REPLY, e.reply, e.family);
                w.u32be(C.CTA_STATUS, e.status ?? 0);
                if (e.mark) w.u32be(C.CTA_MARK, e.mark);
                if (e.zone) w.u16be(C.CTA_ZONE, e.zone);
                w.u32be(C.CTA_ID, e.id);
              },
            }),
          ),
        ),
        datagram(doneMessage(req)),
      ];
    }
    if (type === C.IPCTNL_MSG_CT_DELETE) {
      const key = decodeFlow(req);
      if (key.orig.src === '') {
        this.refused.push(req);
        return [datagram(errorMessage(req, EOPNOTSUPP))];
      }
      this.deletes++;
      const at = this.entries.findIndex(
        (e) =>
          e.family === key.family &&
          sameTuple(e.orig, key.orig) &&
          (e.zone ?? 0) === (key.zone ?? 0) &&
          (key.id === undefined || key.id === e.id),
      );
      if (at < 0) return [datagram(errorMessage(req, ENOENT))];
      this.entries.splice(at, 1);
      return [datagram(errorMessage(req, 0))];
    }
    this.refused.push(req);
    return [datagram(errorMessage(req, EOPNOTSUPP))];
  }

  /** The ids still in the table. */
  ids(): number[] {
    return this.entries.map((e) => e.id).sort((a, b) => a - b);
  }
}

/** A TCP entry 10.0.0.<i>:<1000+i> -> <dst>:<dport>, without NAT. */
export function tcpEntry(
  id: number,
  extra: Partial<Omit<FakeEntry, 'orig' | 'reply'>> & { dst?: string; dport?: number } = {},
): FakeEntry {
  const { dst = '10.9.0.1', dport = 80, ...rest } = extra;
  const orig: Tuple = {
    src: `10.0.0.${id}`,
    dst,
    proto: 6,
    srcPort: 1000 + id,
    dstPort: dport,
  };
  return {
    family: 'ipv4',
    orig,
    reply: { src: dst, dst: orig.src, proto: 6, srcPort: dport, dstPort: 1000 + id },
    id,
    ...rest,
  };
}

/**
 * Four IPv4 TCP entries that the untrusted-filter tests tell apart: marks 0x10/0x11/0x20,
 * status flags, a zone, another port and another destination (ids 1-4).
 */
export function tcpPopulation(): FakeEntry[] {
  const { ASSURED, SEEN_REPLY, CONFIRMED } = C.STATUS_BITS;
  return [
    tcpEntry(1, { mark: 0x10, status: CONFIRMED }),
    tcpEntry(2, { mark: 0x11, status: CONFIRMED | ASSURED | SEEN_REPLY }),
    tcpEntry(3, { dport: 443, zone: 7, status: CONFIRMED | SEEN_REPLY }),
    tcpEntry(4, { dst: '10.9.0.2', mark: 0x20, status: CONFIRMED | ASSURED }),
  ];
}

/** The flows of a list call, by id. */
export function idsOf(flows: readonly Flow[]): number[] {
  return flows.map((f) => f.id ?? -1).sort((a, b) => a - b);
}
