/**
 * `-o save`: an entry as the conntrack-tools command line that would create
 * it again (ct_save_snprintf() of 1.4.7).
 */
import { IPPROTO, STATUS_BITS } from '../../conntrack/constants.js';
import type { Flow } from '../../conntrack/types.js';
import { bswap32 } from './c-numbers.js';
import { L4_NAMES } from './protocol-names.js';

/** conntrack_status_map of ct_save_snprintf(), in bit order. */
const SAVE_STATUS: [number, string][] = [
  [STATUS_BITS.EXPECTED, 'EXPECTED'],
  [STATUS_BITS.SEEN_REPLY, 'SEEN_REPLY'],
  [STATUS_BITS.ASSURED, 'ASSURED'],
  [STATUS_BITS.FIXED_TIMEOUT, 'FIXED_TIMEOUT'],
];

/**
 * One entry as `conntrack -L -o save` (ct_save_snprintf() of 1.4.7) prints
 * it: `-A`, then -t, -u (only EXPECTED, SEEN_REPLY, ASSURED, FIXED_TIMEOUT;
 * `UNSET` without them), -c, -w, --orig-zone, --reply-zone, the addresses
 * (-g / -n instead of -r / -q when the entry is DNATed / SNATed), then
 * `-p NAME` and the protocol's options (none for dccp), or `-p NUMBER`.
 * The mark, labels and helper are not part of it, as in 1.4.7.
 */
export function formatCompatSave(f: Flow, prefix = '-A'): string {
  const o: string[] = [prefix];
  if (f.timeout !== undefined) o.push('-t', String(f.timeout));
  const status = SAVE_STATUS.filter(([bit]) => f.status & bit).map(([, name]) => name);
  o.push('-u', status.length ? status.join(',') : 'UNSET');
  if (f.secmark !== undefined) o.push('-c', String(f.secmark));
  if (f.zone !== undefined) o.push('-w', String(f.zone));
  if (f.orig.zone !== undefined) o.push('--orig-zone', String(f.orig.zone));
  if (f.reply.zone !== undefined) o.push('--reply-zone', String(f.reply.zone));
  o.push('-s', f.orig.src, '-d', f.orig.dst);
  const dnat = (f.status & STATUS_BITS.DST_NAT_DONE) !== 0 && f.reply.src !== f.orig.dst;
  const snat = (f.status & STATUS_BITS.SRC_NAT_DONE) !== 0 && f.reply.dst !== f.orig.src;
  o.push(dnat ? '-g' : '-r', f.reply.src, snat ? '-n' : '-q', f.reply.dst);
  const proto = f.orig.proto;
  const name = L4_NAMES[proto];
  o.push('-p', name ?? String(proto));
  const num = (flag: string, v: number | undefined) => {
    if (v !== undefined) o.push(flag, String(v));
  };
  switch (proto) {
    case IPPROTO.tcp:
    case IPPROTO.udp:
    case IPPROTO.udplite:
    case IPPROTO.sctp:
      num('--sport', f.orig.srcPort);
      num('--dport', f.orig.dstPort);
      num('--reply-port-src', f.reply.srcPort);
      num('--reply-port-dst', f.reply.dstPort);
      if (proto === IPPROTO.tcp && f.tcp) o.push('--state', f.tcp.state);
      if (proto === IPPROTO.sctp && f.sctp) {
        o.push('--state', f.sctp.state);
        // 1.4.7 prints ntohl() of the tags the library decodes in host order.
        num('--orig-vtag', f.sctp.vtagOrig === undefined ? undefined : bswap32(f.sctp.vtagOrig));
        num('--reply-vtag', f.sctp.vtagReply === undefined ? undefined : bswap32(f.sctp.vtagReply));
      }
      break;
    case IPPROTO.gre:
      num('--srckey', f.orig.srcPort);
      num('--dstkey', f.orig.dstPort);
      num('--reply-key-src', f.reply.srcPort);
      num('--reply-key-dst', f.reply.dstPort);
      break;
    case IPPROTO.icmp:
    case IPPROTO.icmpv6: {
      const p = proto === IPPROTO.icmp ? '--icmp' : '--icmpv6';
      num(`${p}-type`, f.orig.icmpType);
      num(`${p}-code`, f.orig.icmpCode);
      num(`${p}-id`, f.orig.icmpId);
      break;
    }
    default:
      break;
  }
  return o.join(' ');
}
