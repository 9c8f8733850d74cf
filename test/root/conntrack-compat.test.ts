/**
 * `portcullis conntrack -L ...` (conntrack-tools syntax) against conntrack-tools
 * 1.4.7 itself, in a throw-away network namespace: the same command lines go
 * through `conntrack` and through our CLI in-process, and exit status, stdout
 * and stderr must agree.
 *
 * Normalised, and only that: timeouts tick down between the two runs, so they
 * are compared within ±2 s; and the order of entries in a listing, because a
 * dump filtered by tuple without a family is made per family here (IPv4 then
 * IPv6), where conntrack-tools makes one dump in the kernel's hash order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Conntrack } from '../../helper/conntrack/client.js';
import type { Tuple } from '../../helper/conntrack/types.js';
import { TestNetns } from '../support/netns.js';
import {
  conntrackIn,
  expectSameOutput,
  oracleUnavailable,
  portcullisIn,
  type ToolResult,
} from '../support/conntrack-oracle.js';

/** Same output as conntrack-tools for the command line `argv`. */
const compare = (argv: string[], theirs: ToolResult, mine: ToolResult): void =>
  expectSameOutput(`conntrack ${argv.join(' ')}`, theirs, mine);

const skip = oracleUnavailable();
if (skip) console.warn(`skipping conntrack compat root tests: ${skip}`);

type Result = ToolResult;

/** The table every comparison starts from, made by conntrack-tools. */
const POPULATION: string[][] = [
  '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80 --state SYN_SENT -t 3001',
  '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 --state ESTABLISHED -u ASSURED,SEEN_REPLY -m 16 -t 3002',
  '-p tcp -s 10.1.0.3 -d 10.1.0.2 --sport 1003 --dport 443 --state TIME_WAIT -m 17 -t 3003',
  '-p tcp -s 10.1.0.1 -d 10.1.0.4 --sport 1004 --dport 22 --state CLOSE -w 5 -t 3004',
  '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1005 --dport 80 --state LISTEN -m 7 -t 3005',
  '-p tcp -s 2001:db8:1::1 -d 2001:db8:1::2 --sport 2001 --dport 80 --state ESTABLISHED -u ASSURED -m 0x10 -t 3009',
  '-p tcp -s ::ffff:10.0.0.1 -d 2001:db8:1::2 --sport 2002 --dport 443 --state TIME_WAIT -w 9 -t 3010',
  '-p udp -s 10.1.0.1 -d 10.1.0.5 --sport 5000 --dport 53 -m 0x10 -t 3011',
  '-p udp -s 10.1.0.6 -d 10.1.0.5 --sport 5001 --dport 53 -u SEEN_REPLY -m 7 -t 3012',
  '-p udp -s 2001:db8:1::1 -d 2001:db8:1::5 --sport 5002 --dport 53 -r 2001:db8:1::6 -q 2001:db8:1::1 --reply-port-src 53 --reply-port-dst 5002 -t 3013',
  '-p udplite -s 10.1.0.1 -d 10.1.0.8 --sport 6000 --dport 6001 -t 3015',
  '-p icmp -s 10.1.0.1 -d 10.1.0.9 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 3016',
  '-p icmpv6 -s 2001:db8:1::1 -d 2001:db8:1::9 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 79 -t 3018',
  '-p sctp -s 10.1.0.1 -d 10.1.0.11 --sport 7000 --dport 7001 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 3019',
  '-p gre -s 10.1.0.1 -d 10.1.0.12 --srckey 5 --dstkey 6 -t 3021',
  '-p dccp -s 10.1.0.1 -d 10.1.0.14 --sport 8000 --dport 8001 --state OPEN --role client -t 3022',
  '-p 50 -s 10.1.0.1 -d 10.1.0.13 -t 3023',
  '-p tcp -s 10.5.0.1 -d 10.5.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 3024 --dst-nat 10.5.0.9',
  '-p tcp -s 10.5.0.1 -d 10.5.0.2 --sport 3 --dport 4 --state ESTABLISHED -t 3025 --src-nat 10.5.0.8:77',
  '-p udp -s 10.5.0.1 -d 10.5.0.3 --sport 3 --dport 4 -t 3026 --src-nat 10.5.0.8',
  '-p udp -s 2001:db8:6::1 -d 2001:db8:6::2 --sport 5 --dport 6 -t 3027 --dst-nat [2001:db8:6::9]:99',
  '-p udp -s 10.6.0.1 -d 10.6.0.2 --sport 3 --dport 4 -t 3028 --orig-zone 3',
  '-p udp -s 10.6.0.1 -d 10.6.0.2 --sport 5 --dport 6 -t 3029 --reply-zone 4',
].map((l) => l.split(' '));

const split = (line: string) => line.split(' ');

/** Read-only command lines: run against the same table, one after the other. */
const READ_ONLY: string[] = [
  '-L',
  '-L -o extended',
  '-L -o id',
  '-L -o extended,id',
  '-L -o EXT',
  '--dump',
  '-L conntrack',
  '-L -p tcp',
  '-L -p 6',
  '-L -p TCP',
  '-L --protonum=udp',
  '-L --proto udp',
  '-L -ptcp',
  '-L -p 50',
  '-L -p tcp --dport 80',
  '-L -p tcp --sport 1002 --dport 80 -o extended',
  '-L -p tcp --state ESTABLISHED',
  '-L -p tcp --state LISTEN',
  '-L -p udp --reply-port-src 53',
  '-L -s 10.1.0.1',
  '-L --orig-src 10.1.0.1 -d 10.1.0.2',
  '-L -s 10.1.0.0/24',
  '-L -d 10.1.0.0/30',
  '-L -s 2001:db8:1::/64',
  '-L -s 2001:db8:1::1',
  '-L -r 2001:db8:1::6',
  '-L -q 10.1.0.1 -p udp',
  '-L -s 10.1',
  '-L -f ipv4',
  '-L -f ipv6 -o extended',
  '-L -m 16',
  '-L -m 0x10',
  '-L -m 0x10/0x10',
  '-L -m 7/ff',
  '-L -m zz',
  '-L -u ASSURED',
  '-L -u SEEN_REPLY,ASSURED',
  '-L -u ASS',
  '-L -w 5',
  '-L -w 9 -f ipv6',
  '-L -w 0',
  '-L -p icmp --icmp-type 8',
  '-L -p icmpv6 --icmpv6-id 79',
  '-L -p tcp --sport x',
  '-L -p tcp --sport 70000',
  '-L -z',
  '-L -z -p udplite',
  '-L dying',
  '-L unconfirmed',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 -o extended',
  '-G -p udp -s 10.1.0.1 -d 10.1.0.5 --sport 5000 --dport 53',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1 --dport 2',
  '-G -p icmp -s 10.1.0.1 -d 10.1.0.9 --icmp-type 8 --icmp-code 0 --icmp-id 77',
  '-C',
  '-S',
  // -o xml (libnetfilter_conntrack's XML: no ICMP fields, SCTP states by TCP names).
  '-L -o timestamp -p tcp',
  '-L -a 1 -p udp',
  '-L --nat-range 1 -p udp',
  '-L -a',
  '-L -a 1 -p foo',
  '-L -o ktimestamp,extended -p udp',
  '-G -p udp -s 10.1.0.1 -d 10.1.0.5 --sport 5000 --dport 53 -o timestamp',
  '-L -o xml,timestamp -p tcp',
  '-L -o xml',
  '-L -o xml,extended,id',
  '-L -o xml -p icmp',
  '-L -o xml -f ipv6',
  '-L -o xml -p 99',
  '-L -o xml -n',
  '-L -o xml,ktimestamp -p udp',
  '-L --output XML -w 5',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 -o xml',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1 --dport 80 -o xml',
  // NAT filters (filter_nat()), masks (filter_network()), zones, -i, -c.
  '-L -n',
  '-L --src-nat 10.5.0.8',
  '-L -n 10.5.0.8:77',
  '-L -n 10.5.0.8:78',
  '-L -n :77',
  '-L -n 10.5.0.1',
  '-L -n 10.5.0.8 -p udp',
  '-L -g',
  '-L -g 10.5.0.9',
  '-L --dst-nat 10.5.0.9:2',
  '-L -g -n',
  '-L -j',
  '-L --any-nat 10.5.0.9',
  '-L --any-nat 10.5.0.8:77',
  '-L -j -p tcp',
  '-L -g [2001:db8:6::9]:99',
  '-L -g 2001:db8:6::9',
  '-L -f ipv6 -g',
  '-L -n -o extended',
  '-L -s 10.1.0.0 --mask-src 255.255.0.0',
  '-L -s 10.1.0.0/16 --mask-src 255.255.255.0',
  '-L --mask-src 255.255.255.0 -s 10.1.0.0/16',
  '-L -d 10.1.0.0 --mask-dst 255.255.255.252',
  '-L -d 10.1.0.2 --mask-dst 255.255.255.0 -p tcp',
  '-L -s 2001:db8:: --mask-src ffff:ffff::',
  '-L -s 10.1.0.1 -d 10.1.0.0/24',
  '-L -s 10.1.0.1/32',
  '-L --orig-zone 3',
  '-L --reply-zone 4',
  '-L --orig-zone 4',
  '-L --orig-zone 0',
  '-L --orig-zone 3 -o extended',
  '-L -w 3',
  '-L -c 0',
  '-L -c 5',
  '-L --secmark 5',
  '-G -p icmp -s 10.1.0.1 -d 10.1.0.9 --icmp-type 8 --icmp-code 0 --icmp-id 77 -i 5',
  '-G -p icmp -s 10.1.0.1 -d 10.1.0.9 --icmp-type 8 --icmp-code 0 --icmp-id 77 -r 10.1.0.9 -q 10.1.0.2',
  // SCTP, DCCP and GRE options (libct_proto_sctp/dccp/gre.c).
  '-L -p sctp',
  '-L -p sctp --sport 7000',
  '-L -p sctp --orig-port-dst 7001 --state ESTABLISHED',
  '-L -p sctp --state CLOSED',
  '-L -p sctp --reply-port-src 7001 -o extended',
  '-L -p gre --srckey 5',
  '-L -p gre --srckey 0x5 --dstkey 6',
  '-L -p gre --orig-key-dst 6',
  '-L -p gre --reply-key-src 6 --reply-key-dst 5',
  '-L -p dccp',
  '-L -p dccp --sport 8000',
  '-L -p dccp --sport 0',
  '-L -p dccp --state OPEN',
  '-G -p gre -s 10.1.0.1 -d 10.1.0.12 --srckey 5 --dstkey 6',
  '-G -p gre -s 10.1.0.1 -d 10.1.0.12 --srckey 5 --dstkey 7',
  '-G -p sctp -s 10.1.0.1 -d 10.1.0.11 --sport 7000 --dport 7001',
  '-G -p sctp -s 10.1.0.1 -d 10.1.0.11 --sport 7000 --dport 7001 --state ESTABLISHED',
  '-G -p sctp -s 10.1.0.1 -d 10.1.0.11 --sport 7000 --dport 7001 --state CLOSED',
  '-L -p sctp --orig-vtag 1',
  '-L -p dccp --role client',
  '-L -p gre --sport 5',
  '-L -p gre --mask-key-src 5',
  '-L -p dccp --state FOO',
  '-L -p dccp --state open',
  '-L -p dccp --state',
  '-L -p sctp --vtag 1',
  '-I -p sctp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 100',
  '-I -p sctp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --orig-vtag 1 --reply-vtag 2 -t 100',
  '-I -p sctp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 100',
  '-I -p dccp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state OPEN -t 100',
  '-I -p dccp -s 10.9.0.1 -d 10.9.0.2 --reply-port-src 1 --state OPEN -t 100 --role c',
  '-I -p dccp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state OPEN -t 100 --role x',
  '-I -p gre -s 10.9.0.1 -d 10.9.0.2 --srckey 1 -t 100',
  '-I -p gre -s 10.9.0.1 -d 10.9.0.2 --reply-key-src 1 -t 100',
  '-I -p gre -s 10.9.0.1 -d 10.9.0.2 -t 100',
  '-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --reply-port-src 1 --state SYN_SENT -t 10',
  '-I -p udp -s 10.0.0.1 -d 10.0.0.2 --reply-port-dst 1 -t 10',
  '-D -p gre --tuple-key-src 1',
  // Malformed NAT, mask, zone and id options.
  '-D dying -p tcp',
  '-F unconfirmed',
  '-L -n [2001::1',
  '-L -n []:5',
  '-L -n [2001::1]',
  '-L -n 10.5.0.8:',
  '-L -n 10.5.0.8:x',
  '-L -n 10.5.0.8:70000',
  '-L -n 10.5.0.8:+5',
  '-L -n x',
  '-L -g 10.0.0.1/24',
  '-L -j -n',
  '-L -g 10.5.0.9 -j',
  '-L -r 10.0.0.0/24',
  '-L -q 2001:db8::/64',
  '-L --mask-src 255.255.0.0',
  '-L -d 10.1.0.2 --mask-src 255.255.0.0',
  '-L --mask-dst 255.255.0.0 -s 10.1.0.1',
  '-L --mask-src 255.255.0.0/8',
  '-L -s 10.1.0.0 --mask-src 2001::',
  '-L --mask-src x',
  '-L -s 10.1.0.0/',
  '-L -z --orig-zone 3',
  '-L -z -c 3',
  '-L -z --mask-src 255.0.0.0',
  '-L -i 5',
  '-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --state SYN_SENT -t 5 -i 5',
  '-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --state SYN_SENT -t 5 -c 5',
  '-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --state SYN_SENT -t 5 -j',
  '-I -p tcp -s 10.0.0.0/24 -d 10.0.0.2 --sport 1 --dport 2 --state SYN_SENT -t 5',
  '-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --state SYN_SENT -t 5 --mask-src 255.0.0.0',
  '-U -p tcp --orig-zone 3 -t 5',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 -n',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 --orig-zone 3',
  // Malformed: parse errors, exit status 2.
  '-X',
  '-L -L',
  '-L -G',
  '-L --dum',
  '-L --foo',
  '-L -p',
  '-L -o',
  '-L -p foo',
  '-L -p 256',
  '-L -p 6x',
  '-L -p -1',
  '-L -f ipx',
  '-L -s 300.1.1.1',
  '-L -s 10.0.0.0/33',
  '-L -s 10.0.0.0/x',
  '-L -s 10.0.0.1 -d 2001:db8::2',
  '-L -f ipv4 -s 2001:db8::1',
  '-L -f ipv6 -f ipv4',
  '-L -o bogus',
  '-L -o extended,bogus',
  '-L -o bogus,extended',
  '-L -u FOO',
  '-L -t 5',
  '-L --sport 5',
  '-L --state ESTABLISHED',
  '-L -p udp --state ESTABLISHED',
  '-L -p tcp --icmp-type 8',
  '-L -p tcp --state FOO',
  '-L -p tcp --state established',
  '-L foo',
  '-p tcp',
  '-C -p tcp',
  '-S -p tcp',
  '-F -p tcp',
  '-G -p tcp -s 10.0.0.1',
  '-G -s 10.0.0.1 -d 10.0.0.2',
  '-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 -m 5',
  '-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2',
  '-I -p tcp -s 10.0.0.1 -d 10.0.0.2 -t 10',
  '-I -p tcp -s 10.0.0.1 -t 10 --sport 1 --dport 2 --state SYN_SENT',
  '-I -s 10.0.0.1 -d 10.0.0.2 -t 10',
  '-I -p udp -s 10.0.0.1 -d 10.0.0.2 -t 10',
  '-I -p icmp -s 10.0.0.1 -d 10.0.0.2 -t 10',
  '-L -e NEW',
  '-I -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80 --state SYN_SENT -t 3001',
  '-V',
];

/** Command lines that change the table: each runs on a freshly populated table. */
const MUTATING: string[] = [
  '-I -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 100',
  '-I -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state SYN_SENT -t 100 -u ASSURED -m 0x20 -w 3',
  '-I -p udp -s 2001:db8:9::1 -d 2001:db8:9::2 --sport 1 --dport 2 -t 100',
  '-I -p udp -r 10.9.0.2 -q 10.9.0.1 --reply-port-src 2 --reply-port-dst 1 -t 100',
  '-I -p icmp -s 10.9.0.1 -d 10.9.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 5 -t 100',
  '-A -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 100',
  '-A -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80 --state SYN_SENT -t 3001',
  // conntrack-tools' -U sends back the whole dumped entry, and the kernel
  // refuses that for many entries (EOPNOTSUPP, ENOENT for zoned ones): only
  // lines where it works are compared (docs/conntrack-cli.md).
  '-U -p tcp -s 10.1.0.3 -t 50',
  '-U -p tcp -s 10.1.0.3 -t 50 -u ASSURED',
  '-U -p tcp -s 10.9.9.9 -t 50',
  '-D -p udp',
  '-I -p sctp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state ESTABLISHED --orig-vtag 7 --reply-vtag 8 -t 100',
  '-I -p sctp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state COOKIE_WAIT --orig-vtag 0x10 --reply-vtag 4000000000 -t 100',
  '-A -p sctp -s 10.1.0.1 -d 10.1.0.11 --sport 7000 --dport 7001 --state CLOSED --orig-vtag 1 --reply-vtag 2 -t 100',
  '-I -p gre -s 10.9.0.1 -d 10.9.0.2 --srckey 0x10 --dstkey 20 -t 100',
  '-I -p gre -r 10.9.0.2 -q 10.9.0.1 --reply-key-src 3 --reply-key-dst 4 -t 100',
  '-I -p dccp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 --state REQUEST --role server -t 100',
  '-D -p sctp --state ESTABLISHED',
  '-D -p gre --srckey 5',
  '-D -p dccp',
  '-D -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80',
  '-D -p tcp -m 7',
  '-D -f ipv6',
  '-D -s 10.1.0.0/24 -p icmp',
  '-D -p tcp -s 10.9.9.9',
  '-D -u ASSURED',
  '-D -n',
  '-D -a 5 -p 99',
  '-D -p udp -o xml',
  '-D -p 99 -o xml',
  '-U -p tcp -s 10.1.0.1 --sport 1002 -t 50 -o xml',
  '-D -g 10.5.0.9',
  '-D -j -p udp',
  '-D -n 10.5.0.8:77',
  '-D --orig-zone 3',
  '-D --reply-zone 4 -p udp',
  '-D -s 10.1.0.0 --mask-src 255.255.255.0 -p tcp',
  '-D -d 10.1.0.0/16',
  '-D -i 12345',
  '-D --mask-dst 255.0.0.0',
  '-U -s 10.5.0.1 -g -m 0x41',
  '-U -s 10.1.0.0/24 -p tcp --sport 1003 -t 60',
  '-I -p udp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 -t 100 --orig-zone 7',
  '-I -p udp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 -t 100 --reply-zone 8',
  '-I -p udp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 -t 100 --orig-zone 7 --reply-zone 8',
  '-I -p udp -s 10.9.0.1 -d 10.9.0.2 --sport 1 --dport 2 -t 100 -w 2 --orig-zone 7',
  '-A -p udp -s 10.6.0.1 -d 10.6.0.2 --sport 3 --dport 4 -t 100 --orig-zone 3',
  '-I -p tcp -r 10.9.0.2 -q 10.9.0.1 --reply-port-src 2 --reply-port-dst 1 --state SYN_SENT -t 100 --reply-zone 8',
  '-F',
];

/** `-I expect`: the master is the FTP entry of EXPECT_LINES (4001 -> 21). */
const EXPECT_MASTER = '-s 192.0.2.1 -d 192.0.2.2 -p tcp --sport 4001 --dport 21';
const EXPECT_TUPLE =
  '--tuple-src 192.0.2.1 --tuple-dst 192.0.2.2 --mask-src 255.255.255.255 --mask-dst 255.255.255.255';
const EXPECT_CREATES: string[] = [
  `-I expect ${EXPECT_MASTER} ${EXPECT_TUPLE} --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 --mask-port-dst 65535 -t 100`,
  `--create expect ${EXPECT_MASTER} --tuple-src 192.0.2.1 --tuple-dst 192.0.2.2 --mask-src 255.255.255.0 --mask-dst 255.255.255.255 --tuple-port-src 0 --tuple-port-dst 50003 --mask-port-src 0 --mask-port-dst 65535 -t 50`,
  // Refused by the kernel or by the parser: compared in full.
  `-I expect -s 192.0.2.1 -d 192.0.2.2 -p tcp --sport 4009 --dport 21 ${EXPECT_TUPLE} --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 --mask-port-dst 65535 -t 100`,
  `-I expect -s 192.0.2.1 -d 192.0.2.2 -p 50 ${EXPECT_TUPLE} -t 100`,
  `-I expect ${EXPECT_MASTER} ${EXPECT_TUPLE} --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 -t 100`,
  `-I expect ${EXPECT_MASTER} ${EXPECT_TUPLE} --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 --mask-port-dst 65535`,
  `-I expect ${EXPECT_MASTER} --tuple-src 192.0.2.1 --tuple-dst 192.0.2.2 --mask-src 255.255.255.255 --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 --mask-port-dst 65535 -t 100`,
  `-I expect ${EXPECT_MASTER} ${EXPECT_TUPLE} --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 --mask-port-dst 65535 --reply-port-src 1 -t 100`,
  `-I expect ${EXPECT_MASTER} ${EXPECT_TUPLE} --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 --mask-port-dst 65535 -t 100 -m 1`,
  `-I expect ${EXPECT_MASTER} ${EXPECT_TUPLE} --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 --mask-port-dst 65535 -t 100 -w 1`,
  `-I expect ${EXPECT_MASTER} --tuple-src 2001:db8::1 --tuple-dst 192.0.2.2 --mask-src 255.255.255.255 --mask-dst 255.255.255.255 -t 100`,
  `-I expect ${EXPECT_MASTER} --tuple-src 192.0.2.0/24 --tuple-dst 192.0.2.2 --mask-dst 255.255.255.255 --tuple-port-src 0 --tuple-port-dst 50002 --mask-port-src 0 --mask-port-dst 65535 -t 100`,
  '-I expect -s 192.0.2.1 -d 192.0.2.2 -p icmp --tuple-src 192.0.2.1 --tuple-dst 192.0.2.2 --mask-src 255.255.255.255 --mask-dst 255.255.255.255 --icmp-type 8 -t 100',
  '-I expect -s 192.0.2.1 -d 192.0.2.2 -p gre --srckey 1 --dstkey 2 --reply-key-src 2 --reply-key-dst 1 --tuple-src 192.0.2.1 --tuple-dst 192.0.2.2 --mask-src 255.255.255.255 --mask-dst 255.255.255.255 --tuple-key-src 0 --tuple-key-dst 5 --mask-key-src 0 --mask-key-dst 0xffff -t 100',
  '-I expect -s 192.0.2.1 -d 192.0.2.2 -p gre --srckey 1 --dstkey 2 --tuple-src 192.0.2.1 --tuple-dst 192.0.2.2 --mask-src 255.255.255.255 --mask-dst 255.255.255.255 -t 100',
  '-A expect -s 192.0.2.1 -d 192.0.2.2 -p tcp',
  '-U expect -s 192.0.2.1 -d 192.0.2.2 -p tcp',
];

/**
 * `-G expect` and `-D expect`, on an FTP master with one PERMANENT
 * expectation (tuple 192.0.2.1 -> 192.0.2.2:50001) and one with NAT and an
 * expect function (-> :50005). 1.4.7's TCP/UDP
 * extension demands --reply-port-src/--reply-port-dst for both (its EXP_GET
 * and EXP_DELETE rows make all four ports compulsory) though only the
 * original tuple is used; and -D expect reports "0 expectations have been
 * shown." with exit status 1 even when it deleted one.
 */
const EXPECT_LINES: string[] = [
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001 --reply-port-src 9 --reply-port-dst 9 -r 10.0.0.1 -q 10.0.0.2',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50002 --reply-port-src 1 --reply-port-dst 2',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2 -o extended',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2 --state ESTABLISHED',
  '-G expect -p udp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001',
  '-G expect -p icmp -s 192.0.2.1 -d 192.0.2.2 --icmp-type 8',
  '-G expect -p icmp -s 192.0.2.1 -d 192.0.2.2',
  '-G expect -s 192.0.2.1 -d 192.0.2.2 -p 50',
  '-G expect -s 2001:db8::1 -d 2001:db8::2 -p tcp --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2',
  '-G expect -s 192.0.2.1 -p tcp --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2',
  '-G expect -s 192.0.2.1 -d 192.0.2.2 --sport 0',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2 -o xml',
  '-L expect',
  '-L expect -o extended',
  '-L expect -o save',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50005 --reply-port-src 1 --reply-port-dst 2',
  '-G expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50005 --reply-port-src 1 --reply-port-dst 2 -o xml',
  '-D expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50005 --reply-port-src 1 --reply-port-dst 2',
  '-L expect -o xml',
  '-L expect -o xml,extended',
  '-L expect -o xml -f ipv6',
  '-L expect -o xml,timestamp',
  '-D expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2',
  '-D expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50003 --reply-port-src 1 --reply-port-dst 2',
  '-D expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001',
  '-D expect -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2 -m 1',
  '-D expect -p udp -s 192.0.2.1 -d 192.0.2.2 --sport 0 --dport 50001 --reply-port-src 1 --reply-port-dst 2',
  '-D expect -d 192.0.2.2 -p tcp',
];

describe.skipIf(skip)(
  'portcullis conntrack, conntrack-tools syntax, against conntrack 1.4.7',
  () => {
    let ns: TestNetns;

    const tool = (argv: string[]): Result => conntrackIn(ns, argv);

    const ours = (argv: string[]): Promise<Result> => portcullisIn(ns, argv);

    function populate(): void {
      const f = tool(['-F']);
      expect(f.status, f.stderr).toBe(0);
      for (const line of POPULATION) {
        const r = tool(['-I', ...line]);
        expect(r.status, `${line.join(' ')}: ${r.stderr}`).toBe(0);
      }
    }

    beforeAll(() => {
      ns = new TestNetns('pcl-ctcompat');
      // Counters in every line: accounting on in this namespace only.
      ns.exec('sysctl', ['-q', '-w', 'net.netfilter.nf_conntrack_acct=1']);
      populate();
    });

    afterAll(() => {
      ns?.delete();
    });

    it.each(READ_ONLY.map((l) => [l]))('conntrack %s', async (line) => {
      const argv = split(line);
      const theirs = tool(argv);
      const mine = await ours(argv);
      compare(argv, theirs, mine);
    });

    async function populateExpect(): Promise<void> {
      const ct = Conntrack.open({ netns: ns.name });
      try {
        await ct.expectations.flush();
        const master: Tuple = {
          src: '192.0.2.1',
          dst: '192.0.2.2',
          proto: 6,
          srcPort: 4001,
          dstPort: 21,
        };
        await ct.create(
          {
            orig: master,
            timeout: 600,
            tcpState: 'ESTABLISHED',
            status: ['SEEN_REPLY', 'ASSURED'],
            helper: 'ftp',
          },
          { ifExists: 'update' },
        );
        await ct.expectations.create({
          master,
          tuple: { ...master, srcPort: 0, dstPort: 50001 },
          mask: { srcPort: 0 },
          timeout: 100,
          flags: ['PERMANENT'],
        });
        // As nf_nat_ftp leaves one behind a NAT: CTA_EXPECT_NAT and
        // CTA_EXPECT_FN, which 1.4.7 prints in no form (nor must we).
        await ct.expectations.create({
          master,
          tuple: { ...master, srcPort: 0, dstPort: 50005 },
          mask: { srcPort: 0 },
          timeout: 100,
          nat: { dir: 'reply', tuple: { src: '198.51.100.7', srcPort: 2121 } },
          fn: 'nat-follow-master',
        });
      } finally {
        ct.close();
      }
    }

    it.each(EXPECT_CREATES.map((l) => [l]))(
      'conntrack %s (then the expect table)',
      async (line) => {
        const argv = split(line);
        const timeless = (x: string) => x.replace(/^\d+ /gm, 'T ');
        await populateExpect();
        const theirs = tool(argv);
        const theirTable = tool(['-L', 'expect']);
        await populateExpect();
        const mine = await ours(argv);
        const myTable = tool(['-L', 'expect']);
        expect(mine, line).toEqual(theirs);
        if (theirs.status !== 0) {
          expect({ ...myTable, stdout: timeless(myTable.stdout) }, line).toEqual({
            ...theirTable,
            stdout: timeless(theirTable.stdout),
          });
          return;
        }
        // 1.4.7 gives the expected tuple a protocol made of a port byte
        // (proto=195 for port 50002): the tables differ there (docs); ours
        // has the expectation asked for, with the -t timeout.
        const port = / --tuple-port-dst (\d+)/.exec(line)![1]!;
        const timeout = / -t (\d+)/.exec(line)![1]!;
        const src = / --tuple-src ([\d.]+)/.exec(line)![1]!;
        const mask = / --mask-src (\S+)/.exec(line)?.[1] ?? '255.255.255.0'; // or a /24 tuple
        expect(myTable.stdout).toMatch(
          new RegExp(
            `^(?:${Number(timeout) - 1}|${timeout}) proto=6 src=${src.replace(/\./g, '\\.')} dst=192\\.0\\.2\\.2 sport=0 dport=${port} ` +
              `mask-src=${mask.replace(/\./g, '\\.')} mask-dst=255\\.255\\.255\\.255 sport=0 dport=65535 ` +
              'master-src=192\\.0\\.2\\.1 master-dst=192\\.0\\.2\\.2 sport=4001 dport=21',
            'm',
          ),
        );
        expect(theirTable.stdout).toMatch(/ proto=(?!6 )\d+ /);
      },
    );

    it.each(EXPECT_LINES.map((l) => [l]))('conntrack %s (then the expect table)', async (line) => {
      const argv = split(line);
      const timeless = (x: string) =>
        x
          .replace(/^\d+ /gm, 'T ')
          .replace(/<timeout>\d+</g, '<timeout>T<')
          // -o xml,timestamp: the local time of day, which ticks.
          .replace(/<when>(<\w+>\d+<\/\w+>){7}<\/when>/g, '<when/>');
      await populateExpect();
      const theirs = tool(argv);
      const theirTable = tool(['-L', 'expect']);
      await populateExpect();
      const mine = await ours(argv);
      const myTable = tool(['-L', 'expect']);
      for (const [a, b] of [
        [theirs, mine],
        [theirTable, myTable],
      ] as const) {
        expect({ ...b, stdout: timeless(b.stdout) }, line).toEqual({
          ...a,
          stdout: timeless(a.stdout),
        });
      }
    });

    it('-L expect --json carries the NAT and expect function that 1.4.7 does not print', async () => {
      await populateExpect();
      const mine = await ours(split('-L expect --json'));
      expect(mine.status, mine.stderr).toBe(0);
      const natted = mine.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { tuple: { dstPort: number }; nat?: unknown; fn?: string })
        .find((e) => e.tuple.dstPort === 50005);
      expect(natted?.nat).toEqual({
        dir: 1,
        tuple: { src: '198.51.100.7', dst: '0.0.0.0', proto: 6, srcPort: 2121, dstPort: 0 },
      });
      expect(natted?.fn).toBe('nat-follow-master');
    });

    it.each([
      ['-D -p tcp -i ID'],
      ['-D -i ID -o save'],
      ['-G -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 -i ID'],
    ])('conntrack %s (-i: the id of one entry, read from each fresh table)', async (line) => {
      const idOf = (): string => {
        const r = tool(['-L', '-p', 'tcp', '--sport', '1002', '-o', 'id']);
        const id = / id=(\d+)$/.exec(r.stdout.trim())?.[1];
        expect(id, r.stdout).toBeDefined();
        return id!;
      };
      populate();
      const theirs = tool(split(line.replace('ID', idOf())));
      const theirTable = tool(['-L', '-o', 'extended']);
      populate();
      const mine = await ours(split(line.replace('ID', idOf())));
      const myTable = tool(['-L', '-o', 'extended']);
      expect(theirs.stdout + theirs.stderr, 'the id matched').toMatch(/ 1 flow entries/);
      compare(split(line), theirs, mine);
      compare(['-L', '-o', 'extended'], theirTable, myTable);
    });

    it('an unknown SCTP state is an error here (1.4.7 crashes: strcmp() with NULL, docs)', async () => {
      const argv = split('-L -p sctp --state FOO');
      // Killed by SIGSEGV: spawnSync reports no exit status.
      expect(tool(argv).status).toBe(-1);
      expect(await ours(argv)).toEqual({
        status: 2,
        stdout: '',
        stderr:
          "conntrack v1.4.7 (conntrack-tools): unknown SCTP state `FOO'\n" +
          "Try `conntrack -h' or 'conntrack --help' for more information.\n",
      });
    });

    it('GRE keys filter here; 1.4.7 ignores them and matches every GRE entry (docs)', async () => {
      populate();
      for (const line of ['-L -p gre --srckey 7', '-L -p gre --dstkey 5']) {
        expect(tool(split(line)).stderr, line).toContain(' 1 flow entries have been shown.');
        expect(await ours(split(line)), line).toEqual({
          status: 0,
          stdout: '',
          stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n',
        });
      }
    });

    it('-j ADDR with other filters: 1.4.7 compares the entry with garbage, we filter (docs)', async () => {
      populate();
      const argv = split('-L -j 10.5.0.8 -p tcp');
      expect(tool(argv).stderr).toContain(' 0 flow entries have been shown.');
      const mine = await ours(argv);
      expect(mine.stderr).toContain(' 1 flow entries have been shown.');
      expect(mine.stdout).toContain('dst=10.5.0.8 sport=4 dport=77');
    });

    it('-U -i ID updates that entry only (1.4.7: Operation not supported, docs)', async () => {
      populate();
      const id = / id=(\d+)$/.exec(tool(split('-L -p tcp --sport 1002 -o id')).stdout.trim())?.[1];
      const mine = await ours(split(`-U -p tcp -i ${id} -t 77`));
      expect(mine.status).toBe(0);
      expect(mine.stderr).toContain(' 1 flow entries have been updated.');
      expect(mine.stdout).toMatch(/^tcp +6 7[67] ESTABLISHED .* sport=1002 /);
      expect(tool(split('-L -p tcp --sport 1001')).stdout).toMatch(/ 300[01] /);
    });

    it.each(MUTATING.map((l) => [l]))('conntrack %s (then the table)', async (line) => {
      const argv = split(line);
      populate();
      const theirs = tool(argv);
      const theirTable = tool(['-L', '-o', 'extended']);
      populate();
      const mine = await ours(argv);
      const myTable = tool(['-L', '-o', 'extended']);
      // Each side starts from its own fresh table: the entries' ids (always
      // in -o xml) differ, and only those are set aside.
      const noIds = (r: Result): Result => ({
        ...r,
        stdout: r.stdout.replace(/<id>\d+<\/id>/g, '<id>ID</id>'),
      });
      compare(argv, noIds(theirs), noIds(mine));
      compare(['-L', '-o', 'extended'], theirTable, myTable);
    });
  },
);

/**
 * Kernel timestamps (nf_conntrack_timestamp=1 in a namespace of their own):
 * `delta-time=` in every listing, `-o ktimestamp` with `[start=...]` and
 * `[stop=...]`, and their XML forms. delta-time counts seconds up to now, so
 * it is compared within 2 s; everything else as above.
 */
describe.skipIf(skip)('conntrack -o ktimestamp against conntrack 1.4.7', () => {
  let ns: TestNetns;
  const tool = (argv: string[]): Result => conntrackIn(ns, argv);
  const ours = (argv: string[]): Promise<Result> => portcullisIn(ns, argv);
  /** Deltas out, compared separately. */
  const deltas = (r: Result): { r: Result; d: number[] } => {
    const d: number[] = [];
    const stdout = r.stdout.replace(
      /(delta-time=|<deltatime>)(\d+)/g,
      (_m, tag: string, n: string) => (d.push(Number(n)), `${tag}D`),
    );
    return { r: { ...r, stdout }, d };
  };

  beforeAll(() => {
    ns = new TestNetns('pcl-ctcompat-ts');
    ns.exec('sysctl', ['-q', '-w', 'net.netfilter.nf_conntrack_timestamp=1']);
    for (const line of [
      '-p tcp -s 10.3.0.1 -d 10.3.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 300 -w 4',
      '-p udp -s 10.3.0.1 -d 10.3.0.3 --sport 1 --dport 53 -t 300 -m 7',
      '-p udp -s 2001:db8:3::1 -d 2001:db8:3::2 --sport 1 --dport 53 -t 300',
    ]) {
      const r = tool(['-I', ...split(line)]);
      expect(r.status, `${line}: ${r.stderr}`).toBe(0);
    }
  });

  afterAll(() => {
    ns?.delete();
  });

  it.each(
    [
      '-L',
      '-L -o ktimestamp',
      '-L -o ktimestamp,extended,id',
      '-L -o KT -p udp',
      '-L -o xml',
      '-L -o xml,ktimestamp',
      '-G -p udp -s 10.3.0.1 -d 10.3.0.3 --sport 1 --dport 53 -o ktimestamp',
      '-L -o ktimestamp,save',
    ].map((l) => [l]),
  )('conntrack %s', async (line) => {
    const argv = split(line);
    const a = deltas(tool(argv));
    const b = deltas(await ours(argv));
    compare(argv, a.r, b.r);
    expect(b.d.length).toBe(a.d.length);
    a.d.forEach((t, i) => expect(Math.abs(t - b.d[i]!), line).toBeLessThanOrEqual(2));
    if (line.includes('ktimestamp') && !line.includes('save')) {
      expect(b.r.stdout).toMatch(/\[start=\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\]|<start>\d+</);
    }
  });
});
