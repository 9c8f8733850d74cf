import { describe, expect, it } from 'vitest';
import { STATUS_BITS } from '../../../helper/conntrack/constants.js';
import { main } from '../../../helper/cli.js';
import { inetAton } from '../../../helper/cli/conntrack-compat/addresses.js';
import { atoi, strtoul } from '../../../helper/cli/conntrack-compat/c-numbers.js';
import { CompatUsageError } from '../../../helper/cli/conntrack-compat/errors.js';
import {
  ctime,
  formatCompatExpectation,
  formatCompatFlow,
} from '../../../helper/cli/conntrack-compat/format-text.js';
import { formatCompatXml } from '../../../helper/cli/conntrack-compat/format-xml.js';
import { parseLabelMap } from '../../../helper/cli/conntrack-compat/label-map.js';
import { parseCompatArgs } from '../../../helper/cli/conntrack-compat/parse.js';
import type { Flow } from '../../../helper/conntrack/types.js';

const parse = (line: string) => parseCompatArgs(line.split(' '));

function error(line: string): string {
  try {
    parse(line);
  } catch (e) {
    expect(e).toBeInstanceOf(CompatUsageError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${line}`);
}

describe('conntrack-tools command line', () => {
  it('parses the SCTP, DCCP and GRE options as libct_proto_sctp/dccp/gre.c', () => {
    const s = parse(
      '-I -p sctp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --state COOKIE_WAIT --orig-vtag 4000000000 --reply-vtag 0x10 -t 5',
    );
    expect(s).toMatchObject({ sctpState: 'COOKIE_WAIT', vtagOrig: 4000000000, vtagReply: 0 });
    expect(s.orig).toMatchObject({ srcPort: 1, dstPort: 2, proto: 132 });
    const d = parse(
      '-I -p dccp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --state OPEN --role SE -t 5',
    );
    expect(d).toMatchObject({ dccpState: 'OPEN', dccpRole: 'server' });
    expect(
      parse('-A -p dccp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --role= --state REQUEST -t 5')
        .dccpRole,
    ).toBe('client');
    const g = parse('-L -p gre --srckey 0x10 --orig-key-dst 010 --reply-key-src 70000');
    expect(g.orig).toMatchObject({ srcPort: 16, dstPort: 8 });
    expect(g.reply).toMatchObject({ srcPort: 70000 & 0xffff });
    const fail = (line: string) => () => parse(line);
    expect(fail('-L -p sctp --state FOO')).toThrow("unknown SCTP state `FOO'");
    expect(fail('-L -p dccp --state open')).toThrow("Unknown DCCP state `open'");
    expect(fail('-I -p dccp --state OPEN --role x')).toThrow("Unknown DCCP role `x'");
    expect(
      fail('-I -p sctp -s 1.1.1.1 -d 1.1.1.2 --sport 1 --dport 2 --state CLOSED -t 5'),
    ).toThrow("You need to supply the `--orig-vtag' option for this command");
    expect(fail('-I -p gre -s 1.1.1.1 -d 1.1.1.2 --reply-key-src 1 -t 5')).toThrow(
      "you have to specify `--reply-src-key' and `--reply-dst-key'",
    );
    expect(fail('-I -p dccp -s 1.1.1.1 -d 1.1.1.2 --state OPEN --role c -t 5')).toThrow(
      "you have to specify `--sport' and `--dport'",
    );
    expect(fail('-L -p gre --sport 1')).toThrow("unknown option `--sport'");
  });

  it('parses NAT filters, masks, zones, -i and -c', () => {
    const a = parse('-L -n 10.0.0.1:80 -g 10.0.0.2');
    expect(a.natSrc).toEqual({ ip: '10.0.0.1', port: 80 });
    expect(a.natDst).toEqual({ ip: '10.0.0.2' });
    expect(parse('-L -g [2001:db8::1]:99').natDst).toEqual({ ip: '2001:db8::1', port: 99 });
    expect(() => parse('-L -n 10.0.0.1 -g ::1')).toThrow('mismatched address family');
    expect(parse('-L -j 10.0.0.1')).toMatchObject({
      natSrc: { ip: '10.0.0.1' },
      natDst: { ip: '10.0.0.1' },
    });
    expect(parse('-L -d 10.1.0.0/16 --mask-dst 255.0.0.0').dstMask).toBe('255.0.0.0');
    expect(parse('-L --orig-zone 0x10 --reply-zone 70000')).toMatchObject({
      origZone: 16,
      replyZone: 70000 & 0xffff,
    });
    expect(parse('-D -i 4000000000').id).toBe(4000000000);
    expect(parse('-L -c 7').secmark).toBe(7);
    const fail = (line: string) => () => parse(line);
    expect(fail('-L -n 10.0.0.1:')).toThrow("No port specified after `:'");
    expect(fail('-L -n 10.0.0.1:65536')).toThrow("Invalid port `65536'");
    expect(fail('-L -n [::1')).toThrow("No closing ']' around IPv6 address");
    expect(fail('-L -n []')).toThrow('No IPv6 address specified');
    expect(fail('-L -j -n')).toThrow("cannot specify `--src-nat' or `--dst-nat' with `--any-nat'");
    expect(fail('-L -q 10.0.0.0/8')).toThrow("CIDR notation unavailable for `--reply-dst'");
    expect(fail('-L --mask-src 255.0.0.0/8')).toThrow("CIDR notation unavailable for `--mask-src'");
    expect(fail('-L -i 5')).toThrow("Illegal option `--id' with this command");
  });

  it('parses commands, tables and filters', () => {
    const a = parse('-L -p tcp --dport 80 -s 10.0.0.0/24 -m 0x10/0xff -u ASS,SEEN -w 70000');
    expect(a.command).toBe('L');
    expect(a.table).toBe('conntrack');
    expect(a.proto).toBe(6);
    expect(a.orig).toEqual({ src: '10.0.0.0', proto: 6, dstPort: 80 });
    expect(a.srcMask).toBe('255.255.255.0');
    expect(a.options.has('mask-src')).toBe(true);
    expect(a.family).toBe('ipv4');
    expect(a.mark).toEqual({ value: 16, mask: 255 });
    expect(a.status).toBe(4 | 2);
    expect(a.zone).toBe(70000 & 0xffff);
    expect(parse('-L expect').table).toBe('expect');
    expect(parse('-L dy').table).toBe('dying');
    expect(parse('--dump -o EXT,id').output).toEqual(new Set(['extended', 'id']));
    expect(parse('-Lptcp').proto).toBe(6);
    expect(parse('-L --proto=udp').proto).toBe(17);
    expect(parse('-L -p 0x32').proto).toBe(50);
    expect(parse('-L -p tcp --state LISTEN').state).toBe('SYN_SENT2');
    expect(parse('-L -s 2001:db8::1/128').srcMask).toBeUndefined();
    expect(parse('-L -s 2001:db8::1/64').srcMask).toBe('ffff:ffff:ffff:ffff::');
    expect(parse('-L -s 10.1.0.1 --mask-src 255.255.0.0').srcMask).toBe('255.255.0.0');
    expect(parse('-L --json --netns blue')).toMatchObject({ json: true, netns: 'blue' });
    const c = parse('-I -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 -t 5');
    expect(c.orig).toMatchObject({ icmpType: 8, icmpCode: 0 });
    expect(
      parse('-I -p udp -r 1.2.3.4 -q 1.2.3.5 --reply-port-src 1 --reply-port-dst 2 -t 1').reply,
    ).toEqual({ src: '1.2.3.4', dst: '1.2.3.5', srcPort: 1, dstPort: 2, proto: 17 });
  });

  it('gathers repeated -u flags but keeps the first one as the mask, as 1.4.7', () => {
    const { ASSURED, SEEN_REPLY } = STATUS_BITS;
    expect(parse('-L -u ASSURED,SEEN_REPLY')).toMatchObject({
      status: ASSURED | SEEN_REPLY,
      statusMask: ASSURED | SEEN_REPLY,
    });
    expect(parse('-L -u ASSURED -u SEEN_REPLY')).toMatchObject({
      status: ASSURED | SEEN_REPLY,
      statusMask: ASSURED,
    });
    expect(parse('-L -u UNSET -u SEEN_REPLY')).toMatchObject({
      status: SEEN_REPLY,
      statusMask: SEEN_REPLY,
    });
  });

  it('keeps the lenient number parsing of conntrack-tools 1.4.7', () => {
    expect(parse('-L -m zz').mark).toEqual({ value: 0, mask: 0xffffffff });
    expect(parse('-L -m 7/ff').mark).toEqual({ value: 7, mask: 0 });
    expect(parse('-L -p tcp --sport x').orig.srcPort).toBe(0);
    expect(parse('-L -p tcp --sport 70000').orig.srcPort).toBe(70000 & 0xffff);
    expect(strtoul('0x1f/3')).toEqual({ value: 31, end: 4 });
    expect(strtoul('017')).toEqual({ value: 15, end: 3 });
    expect(atoi('12ab')).toBe(12);
    expect(atoi('-1')).toBe(-1);
    expect(inetAton('10.1')).toEqual(Uint8Array.from([10, 0, 0, 1]));
    expect(inetAton('1')).toEqual(Uint8Array.from([0, 0, 0, 1]));
    expect(inetAton('0x0a.010.0.1')).toEqual(Uint8Array.from([10, 8, 0, 1]));
    expect(inetAton('300.1.1.1')).toBeUndefined();
    expect(inetAton('1.2.3.4.5')).toBeUndefined();
  });

  it.each([
    ['-X', "unknown option `-X'"],
    ['-L --foo', "unknown option `--foo'"],
    ['-L --s 1.2.3.4', "unknown option `--s'"],
    ['-L -L', 'Invalid commands combination'],
    ['-L --dum', 'Invalid commands combination'],
    ['-L -p', "option `-p' requires an argument"],
    ['-L --src', "option `--src' requires an argument"],
    ['-L -p foo', "`foo' unsupported protocol"],
    ['-L -p 256', "`256' unsupported protocol"],
    ['-L -p 6x', "`6x' unsupported protocol"],
    ['-L -f ipx', "`ipx' unsupported protocol"],
    ['-L -s 300.1.1.1', "Invalid IP address `300.1.1.1'"],
    ['-L -s 10.0.0.0/33', 'Invalid netmask'],
    ['-L -s 10.0.0.0/x', 'Invalid netmask'],
    ['-L -s 10.0.0.1 -d 2001:db8::2', 'mismatched address family'],
    ['-L -f ipv6 -s 10.0.0.1', 'mismatched address family'],
    ['-L -o bogus,extended', "Bad parameter `bogus,extended'"],
    ['-L -o extended,', "Bad parameter `'"],
    ['-L -u FOO', "Bad parameter `FOO'"],
    ['-L -t 5', "Illegal option `--timeout' with this command"],
    ['-L --sport 5', "unknown option `--sport'"],
    ['-L -p udp --state ESTABLISHED', "unknown option `--state'"],
    ['-L -p tcp --state established', "unknown TCP state `established'"],
    ['-L foo', "unknown type `foo'"],
    ['-L -z -p tcp', "Can't use -z with filtering parameters"],
    ['-p tcp', "Illegal option `--protonum' with this command"],
    ['-F -p tcp', "Illegal option `--protonum' with this command"],
    ['-G -p tcp -s 1.1.1.1', "you have to specify `--src' and `--dst'"],
    ['-G -s 1.1.1.1 -d 1.1.1.2', "You need to supply the `--protonum' option for this command"],
    [
      '-I -p tcp -s 1.1.1.1 -d 1.1.1.2',
      "You need to supply the `--timeout' option for this command",
    ],
    [
      '-I -p tcp -s 1.1.1.1 -d 1.1.1.2 -t 1',
      "You need to supply the `--state' option for this command",
    ],
    ['-I -p udp -s 1.1.1.1 -d 1.1.1.2 -t 1', "you have to specify `--sport' and `--dport'"],
    [
      '-I -p icmp -s 1.1.1.1 -d 1.1.1.2 -t 1',
      "You need to supply the `--icmp-type' option for this command",
    ],
    [
      '-I -p icmpv6 -s ::1 -d ::2 -t 1',
      "You need to supply the `--icmpv6-type' option for this command",
    ],
  ])('rejects %s', (line, message) => {
    expect(error(line)).toBe(message);
  });

  it('prints errors as conntrack-tools does, with exit status 2', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) };
    expect(await main(['conntrack', '-L', '-p', 'foo'], io)).toBe(2);
    expect(err.join('')).toBe(
      "conntrack v1.4.7 (conntrack-tools): `foo' unsupported protocol\n" +
        "Try `conntrack -h' or 'conntrack --help' for more information.\n",
    );
    expect(out).toEqual([]);
    expect(await main(['conntrack', '-V'], io)).toBe(0);
    expect(out.join('')).toBe('conntrack v1.4.7 (conntrack-tools)\n');
    err.length = 0;
    expect(
      await main(['conntrack', '-D', 'expect', '-s', '1.1.1.1', '-d', '2.2.2.2', '-p', 'udp'], io),
    ).toBe(2);
    // 1.4.7's UDP extension makes all four ports compulsory for -D/-G expect.
    expect(err.join('')).toMatch(/You need to supply the `--sport' option for this command/);
    expect(
      error('-G expect -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 0 --dport 1 --reply-port-src 1'),
    ).toBe("You need to supply the `--reply-port-dst' option for this command");
    expect(error('-D expect -s 1.1.1.1 -d 2.2.2.2 -p icmp --icmp-type 8')).toBe(
      "Illegal option `--icmp-type' with this command",
    );
  });
});

describe('conntrack-tools text format', () => {
  const flow: Flow = {
    family: 'ipv4',
    orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 6, srcPort: 1, dstPort: 2 },
    reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 6, srcPort: 2, dstPort: 1 },
    status: 4 | 8,
    statusFlags: ['ASSURED', 'CONFIRMED'],
    timeout: 99,
    mark: 0,
    zone: 3,
    use: 1,
    id: 42,
    tcp: { state: 'ESTABLISHED', stateNumber: 3 },
  };
  it('prints delta-time and, with -o ktimestamp, the start and stop', () => {
    const start = 1_000_000_000_500_000_000n;
    const t: Flow = { ...flow, timestampStart: start };
    expect(
      formatCompatFlow(t, { extended: false, id: false, nowSeconds: 1_000_000_100 }),
    ).toContain(' zone=3 delta-time=100 use=1');
    const stopped: Flow = { ...t, timestampStop: start + 7_000_000_000n };
    expect(formatCompatFlow(stopped, { extended: false, id: false, ktimestamp: true })).toContain(
      ` zone=3 delta-time=7 [start=${ctime(1_000_000_000)}] [stop=${ctime(1_000_000_007)}] use=1`,
    );
    expect(ctime(0)).toMatch(/^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d 19(69|70)$/);
  });

  it('prints libnetfilter_conntrack XML, SCTP states by TCP names, no ICMP fields', () => {
    expect(formatCompatXml(flow, 'new')).toBe(
      '<flow type="new"><meta direction="original"><layer3 protonum="2" protoname="ipv4">' +
        '<src>10.0.0.1</src><dst>10.0.0.2</dst></layer3><layer4 protonum="6" protoname="tcp">' +
        '<sport>1</sport><dport>2</dport></layer4></meta><meta direction="reply">' +
        '<layer3 protonum="2" protoname="ipv4"><src>10.0.0.2</src><dst>10.0.0.1</dst></layer3>' +
        '<layer4 protonum="6" protoname="tcp"><sport>2</sport><dport>1</dport></layer4></meta>' +
        '<meta direction="independent"><state>ESTABLISHED</state><timeout>99</timeout>' +
        '<mark>0</mark><zone>3</zone><use>1</use><id>42</id><assured/><unreplied/></meta></flow>',
    );
    const sctp: Flow = {
      ...flow,
      orig: { ...flow.orig, proto: 132 },
      reply: { ...flow.reply, proto: 132 },
      sctp: { state: 'ESTABLISHED', stateNumber: 4 },
    };
    delete sctp.tcp;
    expect(formatCompatXml(sctp)).toContain('<state>FIN_WAIT</state>');
    const icmp: Flow = {
      ...flow,
      orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 5 },
      reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 1, icmpType: 0, icmpCode: 0, icmpId: 5 },
    };
    delete icmp.tcp;
    expect(formatCompatXml(icmp)).toContain('<layer4 protonum="1" protoname="icmp"></layer4>');
  });

  it('prints the default, extended and id forms', () => {
    expect(formatCompatFlow(flow, { extended: false, id: false })).toBe(
      'tcp      6 99 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] ' +
        'src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 zone=3 use=1',
    );
    expect(formatCompatFlow(flow, { extended: true, id: true })).toBe(
      'ipv4     2 tcp      6 99 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] ' +
        'src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 zone=3 use=1 id=42',
    );
    const other: Flow = {
      ...flow,
      orig: { src: '10.0.0.1', dst: '10.0.0.3', proto: 50 },
      reply: { src: '10.0.0.3', dst: '10.0.0.1', proto: 50 },
      status: 2 | 8,
      countersOrig: { packets: 1n, bytes: 2n },
      countersReply: { packets: 3n, bytes: 4n },
    };
    delete other.tcp;
    delete other.zone;
    expect(formatCompatFlow(other, { extended: false, id: false })).toBe(
      'unknown  50 99 src=10.0.0.1 dst=10.0.0.3 packets=1 bytes=2 ' +
        'src=10.0.0.3 dst=10.0.0.1 packets=3 bytes=4 mark=0 use=1',
    );
  });

  it('parses -e event masks and -b, and checks the expect table rows', () => {
    expect(parse('-E -e NEW,DESTROY').eventMask).toEqual(new Set(['new', 'destroy']));
    expect(parse('-E -e u -e new').eventMask).toEqual(new Set(['update', 'new']));
    expect(parse('-E -e ALL').eventMask).toEqual(new Set(['new', 'update', 'destroy']));
    expect(parse('-E -b 100000').bufferSize).toBe(100000);
    expect(error('-E -e FOO')).toBe("Bad parameter `FOO'");
    expect(error('-E -e NEW,')).toBe("Bad parameter `'");
    expect(error('-L expect -p tcp')).toBe("Illegal option `--protonum' with this command");
    expect(error('-E expect -s 1.1.1.1')).toBe("Illegal option `--src' with this command");
    expect(error('-D expect')).toBe("You need to supply the `--src' option for this command");
    expect(parse('-L expect -f ipv6 -o extended').table).toBe('expect');
  });

  it('formats expectations as conntrack -L expect', () => {
    const line = formatCompatExpectation({
      family: 'ipv4',
      master: { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, srcPort: 4000, dstPort: 21 },
      tuple: { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, srcPort: 0, dstPort: 50001 },
      mask: {
        src: '255.255.255.255',
        dst: '255.255.255.255',
        proto: 6,
        srcPort: 0,
        dstPort: 65535,
      },
      timeout: 99,
      flags: 1,
      flagNames: ['PERMANENT'],
      class: 0,
      helper: 'ftp',
    });
    expect(line).toBe(
      '99 proto=6 src=192.0.2.1 dst=192.0.2.2 sport=0 dport=50001 mask-src=255.255.255.255 ' +
        'mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.1 master-dst=192.0.2.2 ' +
        'sport=4000 dport=21 PERMANENT class=0 helper=ftp',
    );
  });
});

describe('conntrack-tools labels', () => {
  const map = parseLabelMap('# c\n0 red\n1 green\n 64  blue \nx bad\n1 again\n');
  const withMap = (line: string) => parseCompatArgs(line.split(' '), { loadLabelMap: () => map });

  it('reads connlabel.conf as libnetfilter_conntrack does', () => {
    expect([...map.bits]).toEqual([
      ['red', 0],
      ['green', 1],
      ['blue', 64],
      ['again', 1],
    ]);
    expect(map.names.get(1)).toBe('green');
  });

  it('resolves -l, --label-add and --label-del', () => {
    expect(withMap('-L -l red,blue -l green').labels).toEqual([0, 64, 1]);
    expect(withMap('-U --label-add blue').labelModify).toEqual([64]);
    const del = withMap('-U --label-del');
    expect(del.options.has('label-del')).toBe(true);
    expect(del.labelModify).toBeUndefined();
    expect(withMap('-L -o labels').labelMap).toBe(map);
  });

  it('fails as 1.4.7 does', () => {
    const fail = (line: string, loaded = true): CompatUsageError => {
      try {
        parseCompatArgs(line.split(' '), loaded ? { loadLabelMap: () => map } : {});
      } catch (e) {
        return e as CompatUsageError;
      }
      throw new Error(`no error for ${line}`);
    };
    expect(fail('-L -l red,foo').message).toBe("unknown label 'foo'");
    expect(fail('-L -l red,').message).toBe("unknown label ''");
    expect(fail('-L -l red', false).message).toBe("unknown label 'red'");
    const both = fail('-U --label-add red --label-del green');
    expect([both.message, both.exitStatus]).toEqual([
      'cannot use --label-add and --label-del at the same time',
      1,
    ]);
    expect(fail('-I -p tcp -s 1.1.1.1 -d 2.2.2.2 -t 5 -l red').message).toBe(
      "Illegal option `--label' with this command",
    );
  });
});
