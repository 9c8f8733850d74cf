/**
 * `portcullis conntrack ...` against conntrack-tools 1.4.7, in a throw-away
 * network namespace: our `list --json` must agree field by field with
 * `conntrack -L -o xml` (and `-o extended` for what the XML leaves out), our
 * filters must select exactly the entries conntrack-tools selects, and our
 * create/update/delete/flush must leave the table conntrack-tools then sees.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../helper/cli.js';
import type { FlowJson, TupleJson } from '../../helper/cli/conntrack-json.js';
import { TCP_STATES } from '../../helper/conntrack/constants.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';

function unavailable(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  if (spawnSync('conntrack', ['--version']).status !== 0) return 'conntrack-tools is not installed';
  if (spawnSync('iptables', ['--version']).status !== 0) return 'iptables is not installed';
  return undefined;
}

const skip = unavailable();
if (skip) console.warn(`skipping conntrack CLI root tests: ${skip}`);

// ---------------------------------------------------------------------------
// Parsing conntrack-tools output

interface XmlTuple {
  l3: number;
  proto: number;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  zone?: number;
  packets?: bigint;
  bytes?: bigint;
}

interface XmlFlow {
  orig: XmlTuple;
  reply: XmlTuple;
  state?: string;
  timeout?: number;
  mark?: number;
  labels?: string[];
  secmark?: number;
  zone?: number;
  use?: number;
  id: number;
  assured: boolean;
  unreplied: boolean;
  start?: bigint;
  stop?: bigint;
  helper?: string;
  raw: string;
}

function tag(s: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(s)?.[1];
}

function num(s: string | undefined): number | undefined {
  return s === undefined ? undefined : Number(s);
}

function parseXmlTuple(meta: string): XmlTuple {
  const m =
    /<layer3 protonum="(\d+)" protoname="[^"]*"><src>([^<]*)<\/src><dst>([^<]*)<\/dst><\/layer3><layer4 protonum="(\d+)" protoname="[^"]*">(.*?)<\/layer4>/.exec(
      meta,
    );
  if (!m) throw new Error(`unexpected XML tuple: ${meta}`);
  const l4 = m[5]!;
  const t: XmlTuple = { l3: Number(m[1]), src: m[2]!, dst: m[3]!, proto: Number(m[4]) };
  const sport = tag(l4, 'sport') ?? tag(l4, 'srckey');
  const dport = tag(l4, 'dport') ?? tag(l4, 'dstkey');
  if (sport !== undefined) t.sport = Number(sport); // srckey is "0x..", Number() reads it
  if (dport !== undefined) t.dport = Number(dport);
  const rest = meta.slice(m.index + m[0].length);
  const zone = tag(rest, 'zone');
  if (zone !== undefined) t.zone = Number(zone);
  const counters = tag(rest, 'counters') ?? /<counters>(.*?)<\/counters>/.exec(rest)?.[1];
  if (counters !== undefined) {
    t.packets = BigInt(tag(counters, 'packets')!);
    t.bytes = BigInt(tag(counters, 'bytes')!);
  }
  return t;
}

/** conntrack-tools' XML is regular enough for regular expressions. */
function parseXml(xml: string): XmlFlow[] {
  const out: XmlFlow[] = [];
  for (const flow of xml.match(/<flow>[\s\S]*?<\/flow>/g) ?? []) {
    const meta = (dir: string) =>
      new RegExp(`<meta direction="${dir}">([\\s\\S]*?)</meta>`).exec(flow)?.[1];
    const ind = meta('independent') ?? '';
    const labels = /<labels>(.*?)<\/labels>/.exec(ind)?.[1];
    const f: XmlFlow = {
      orig: parseXmlTuple(meta('original')!),
      reply: parseXmlTuple(meta('reply')!),
      id: Number(tag(ind, 'id')),
      assured: ind.includes('<assured/>'),
      unreplied: ind.includes('<unreplied/>'),
      raw: flow,
    };
    const set = <K extends keyof XmlFlow>(k: K, v: XmlFlow[K] | undefined) => {
      if (v !== undefined) f[k] = v;
    };
    set('state', tag(ind, 'state'));
    set('timeout', num(tag(ind, 'timeout')));
    set('mark', num(tag(ind, 'mark')));
    set('secmark', num(tag(ind, 'secmark')));
    set('zone', num(tag(ind, 'zone')));
    set('use', num(tag(ind, 'use')));
    if (labels !== undefined)
      f.labels = [...labels.matchAll(/<label>([^<]*)<\/label>/g)].map((x) => x[1]!);
    const start = tag(ind, 'start');
    if (start !== undefined) f.start = BigInt(start);
    const stop = tag(ind, 'stop');
    if (stop !== undefined) f.stop = BigInt(stop);
    set('helper', tag(flow, 'helper'));
    out.push(f);
  }
  return out;
}

interface ExtLine {
  id: number;
  state?: string;
  orig: { type?: number; code?: number; icmpId?: number };
  reply: { type?: number; code?: number; icmpId?: number };
  raw: string;
}

/** `conntrack -L -o extended,id`: "ipv4 2 icmp 1 29 src=.. dst=.. type=8 code=0 id=77
 * [UNREPLIED] src=.. dst=.. type=0 code=0 id=77 mark=0 use=1 id=<conntrack id>". */
function parseExtended(text: string): ExtLine[] {
  const out: ExtLine[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    if (tokens.length < 6 || !/^ipv[46]$/.test(tokens[0]!)) continue;
    const srcs = tokens.flatMap((t, i) => (t.startsWith('src=') ? [i] : []));
    const section = (from: number, to: number) => {
      const s: { type?: number; code?: number; icmpId?: number } = {};
      for (const t of tokens.slice(from, to)) {
        const [k, v] = t.split('=');
        if (k === 'type' && s.type === undefined) s.type = Number(v);
        if (k === 'code' && s.code === undefined) s.code = Number(v);
        if (k === 'id' && s.icmpId === undefined) s.icmpId = Number(v);
      }
      return s;
    };
    // The conntrack id is the first id= after use= (ICMP ids come before;
    // labels=... may follow).
    const use = tokens.findIndex((t) => t.startsWith('use='));
    const ctId = tokens.findIndex((t, i) => i > use && t.startsWith('id='));
    const e: ExtLine = {
      id: Number(tokens[ctId]!.slice(3)),
      orig: section(srcs[0]!, srcs[1]!),
      reply: section(srcs[1]!, use),
      raw: line,
    };
    if (!tokens[5]!.includes('=')) e.state = tokens[5]!;
    out.push(e);
  }
  return out;
}

// ---------------------------------------------------------------------------

describe.skipIf(skip)(
  'portcullis conntrack CLI against conntrack-tools (root, throw-away netns)',
  () => {
    let ns: TestNetns;
    let labelDir: string;
    /** conntrack-tools can name labels only when a connlabel.conf exists; we
     * give it one in a private mount namespace (overlay on /etc), never on the host. */
    let labelsViaTool = false;

    function conntrack(...args: string[]): { status: number; stdout: string; stderr: string } {
      const r = labelsViaTool
        ? spawnSync(
            'unshare',
            [
              '-m',
              '--',
              'sh',
              '-c',
              'mount -t overlay overlay -o lowerdir="$0":/etc /etc && exec "$@"',
              labelDir,
              'ip',
              'netns',
              'exec',
              ns.name,
              'conntrack',
              ...args,
            ],
            { encoding: 'utf8' },
          )
        : spawnSync('ip', ['netns', 'exec', ns.name, 'conntrack', ...args], { encoding: 'utf8' });
      return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    }

    function conntrackOk(...args: string[]): string {
      const r = conntrack(...args);
      if (r.status !== 0) throw new Error(`conntrack ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    }

    async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
      const out: string[] = [];
      const err: string[] = [];
      const code = await main(['conntrack', ...argv], {
        stdout: (s) => void out.push(s),
        stderr: (s) => void err.push(s),
      });
      return { code, out: out.join(''), err: err.join('') };
    }

    async function ours(...filter: string[]): Promise<FlowJson[]> {
      const r = await cli('list', '--json', '--netns', ns.name, ...filter);
      expect(r.code, r.err).toBe(0);
      return r.out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as FlowJson);
    }

    function theirs(...filter: string[]): XmlFlow[] {
      return parseXml(
        conntrackOk(
          '-L',
          ...filter,
          '-o',
          labelsViaTool ? 'xml,ktimestamp,labels' : 'xml,ktimestamp',
        ),
      );
    }

    function theirIds(...filter: string[]): number[] {
      return parseExtended(conntrackOk('-L', ...filter, '-o', 'extended,id'))
        .map((e) => e.id)
        .sort((a, b) => a - b);
    }

    function ids(flows: FlowJson[]): number[] {
      return flows.map((f) => f.id!).sort((a, b) => a - b);
    }

    /** conntrack -G for one entry (XML), or undefined when it is absent. */
    /** One entry as conntrack-tools sees it: `conntrack -G`, or for a zoned
     * entry `conntrack -L` with the key as filter (1.4.7's -G refuses --zone). */
    function tool(key: string[], zone?: number): XmlFlow | undefined {
      const output = ['-o', labelsViaTool ? 'xml,labels' : 'xml'];
      if (zone === undefined) {
        const r = conntrack('-G', ...key, ...output);
        return r.status === 0 ? parseXml(r.stdout)[0] : undefined;
      }
      const found = parseXml(conntrackOk('-L', ...key, '-w', String(zone), ...output));
      expect(found.length).toBeLessThanOrEqual(1);
      return found[0];
    }

    const udpKey = [
      '-p',
      'udp',
      '-s',
      '10.1.0.1',
      '-d',
      '10.1.0.5',
      '--sport',
      '5000',
      '--dport',
      '53',
    ];
    const labelKey = [
      '-p',
      'udp',
      '-s',
      '10.1.0.7',
      '-d',
      '10.1.0.5',
      '--sport',
      '5003',
      '--dport',
      '123',
    ];
    const tcpKey = [
      '-p',
      'tcp',
      '-s',
      '10.1.0.1',
      '-d',
      '10.1.0.2',
      '--sport',
      '1001',
      '--dport',
      '80',
    ];
    const zonedKey = [
      '-p',
      'tcp',
      '-s',
      '10.1.0.1',
      '-d',
      '10.1.0.4',
      '--sport',
      '1004',
      '--dport',
      '22',
    ];

    /** A varied table, made by conntrack-tools. (-u comes before -m: in 1.4.7, -u
     * after -m overwrites the mark with the status bits.) */
    const population: string[][] = [
      '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80 --state SYN_SENT -t 3001',
      '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1002 --dport 80 --state ESTABLISHED -u ASSURED,SEEN_REPLY -m 16 -t 3002',
      '-p tcp -s 10.1.0.3 -d 10.1.0.2 --sport 1003 --dport 443 --state TIME_WAIT -m 17 -t 3003',
      '-p tcp -s 10.1.0.1 -d 10.1.0.4 --sport 1004 --dport 22 --state CLOSE -w 5 -t 3004',
      '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1005 --dport 80 --state SYN_RECV -m 7 -t 3005',
      '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1006 --dport 8080 --state FIN_WAIT -t 3006',
      '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1007 --dport 80 --state CLOSE_WAIT -w 5 -m 7 -t 3007',
      '-p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1008 --dport 80 --state LAST_ACK -t 3008',
      '-p tcp -s 2001:db8:1::1 -d 2001:db8:1::2 --sport 2001 --dport 80 --state ESTABLISHED -u ASSURED -m 0x10 -t 3009',
      '-p tcp -s 2001:db8:1::1 -d 2001:db8:1::2 --sport 2002 --dport 443 --state TIME_WAIT -w 9 -t 3010',
      '-p udp -s 10.1.0.1 -d 10.1.0.5 --sport 5000 --dport 53 -m 0x10 -t 3011',
      '-p udp -s 10.1.0.6 -d 10.1.0.5 --sport 5001 --dport 53 -u SEEN_REPLY -m 7 -t 3012',
      '-p udp -s 2001:db8:1::1 -d 2001:db8:1::5 --sport 5002 --dport 53 -w 9 -m 0x11 -t 3013',
      '-p udplite -s 10.1.0.1 -d 10.1.0.8 --sport 6000 --dport 6001 -t 3015',
      '-p icmp -s 10.1.0.1 -d 10.1.0.9 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 3016',
      '-p icmp -s 10.1.0.1 -d 10.1.0.10 --icmp-type 13 --icmp-code 0 --icmp-id 78 -m 0x11 -t 3017',
      '-p icmpv6 -s 2001:db8:1::1 -d 2001:db8:1::9 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 79 -t 3018',
      '-p sctp -s 10.1.0.1 -d 10.1.0.11 --sport 7000 --dport 7001 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 3019',
      '-p sctp -s 2001:db8:1::1 -d 2001:db8:1::11 --sport 7002 --dport 7003 --state COOKIE_WAIT --orig-vtag 3 --reply-vtag 4 -t 3020',
      '-p gre -s 10.1.0.1 -d 10.1.0.12 --srckey 5 --dstkey 6 -t 3021',
      '-p dccp -s 10.1.0.1 -d 10.1.0.14 --sport 8000 --dport 8001 --state OPEN --role client -t 3022',
      '-p 50 -s 10.1.0.1 -d 10.1.0.13 -t 3023',
    ].map((line) => line.split(' '));

    /** Real traffic on loopback: a TCP connection (counters, window scaling,
     * TIME_WAIT) and a UDP exchange over IPv6 (SEEN_REPLY). */
    const traffic = `
    const net = require('net'), dgram = require('dgram');
    const s = net.createServer((c) => c.end('hello')).listen(8080, '127.0.0.1', () => {
      const c = net.connect(8080, '127.0.0.1');
      c.on('data', () => {});
      c.on('close', () => {
        s.close();
        const srv = dgram.createSocket('udp6');
        srv.on('message', (m, r) => srv.send('pong', r.port, r.address, () => srv.close()));
        srv.bind(9999, '::1', () => {
          const cl = dgram.createSocket('udp6');
          cl.on('message', () => cl.close());
          cl.send('ping', 9999, '::1');
        });
      });
    });`;

    beforeAll(() => {
      ns = new TestNetns('pcl-ctcli');
      // Labels are stored only when something in the netns uses connlabel; the
      // rules also make the netns track IPv4 and IPv6 traffic at all.
      for (const cmd of ['iptables', 'ip6tables']) {
        ns.exec(cmd, ['-A', 'OUTPUT', '-m', 'connlabel', '--label', '0', '-j', 'ACCEPT']);
      }
      ns.exec('sysctl', [
        '-q',
        '-w',
        'net.netfilter.nf_conntrack_acct=1',
        'net.netfilter.nf_conntrack_timestamp=1',
        'net.netfilter.nf_conntrack_udp_timeout=600',
        'net.netfilter.nf_conntrack_udp_timeout_stream=600',
      ]);
      labelDir = mkdtempSync(join(tmpdir(), 'pcl-connlabel-'));
      mkdirSync(join(labelDir, 'xtables'));
      writeFileSync(
        join(labelDir, 'xtables', 'connlabel.conf'),
        Array.from({ length: 128 }, (_, i) => `${i} l${i}\n`).join(''),
      );
      labelsViaTool = true;
      if (conntrack('-L').status !== 0) {
        labelsViaTool = false;
        console.warn('no overlay mount for connlabel.conf: labels are checked with our CLI only');
      }
      for (const args of population) conntrackOk('-I', ...args);
      if (labelsViaTool) {
        conntrackOk('-I', ...labelKey, '-t', '3014', '--label-add', 'l1,l64');
      }
      ns.exec('node', ['-e', traffic]);
    });

    afterAll(() => {
      ns?.delete();
      if (labelDir) rmSync(labelDir, { recursive: true, force: true });
    });

    it('creates entries (labels, mark, zone, status, state, reply tuple) that conntrack-tools sees', async () => {
      if (!labelsViaTool) {
        // Without conntrack-tools' label names, make the labelled entry ourselves.
        const r = await cli('create', '--netns', ns.name, ...labelKey, '-t', '3014', '-l', '1,64');
        expect(r.code, r.err).toBe(0);
      }
      const key = ['-p', 'tcp', '-s', '10.9.0.1', '-d', '10.9.0.2', '--sport', '1', '--dport', '2'];
      const r = await cli(
        'create',
        '--netns',
        ns.name,
        ...key,
        '-t',
        '3100',
        '--mark',
        '0x33',
        '--label',
        '2,127',
        '--zone',
        '4',
        '--status',
        'ASSURED,SEEN_REPLY',
        '--state',
        'ESTABLISHED',
      );
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe('');
      const seen = tool(key, 4);
      expect(seen).toBeDefined();
      expect(seen!.mark).toBe(0x33);
      expect(seen!.zone).toBe(4);
      expect(seen!.state).toBe('ESTABLISHED');
      expect(seen!.assured).toBe(true);
      expect(seen!.unreplied).toBe(false);
      expect(seen!.timeout).toBeGreaterThan(3095);
      if (labelsViaTool) expect(seen!.labels).toEqual(['l2', 'l127']);

      // A reply tuple of our own (as after DNAT), and ICMPv6.
      const nat = await cli(
        'create',
        '--netns',
        ns.name,
        '-p',
        'udp',
        '-s',
        '10.9.1.1',
        '-d',
        '10.9.1.2',
        '--sport',
        '1',
        '--dport',
        '2',
        '--reply-src',
        '10.9.1.3',
        '--reply-sport',
        '22',
        '-t',
        '3101',
      );
      expect(nat.code, nat.err).toBe(0);
      const natSeen = tool([
        '-p',
        'udp',
        '-s',
        '10.9.1.1',
        '-d',
        '10.9.1.2',
        '--sport',
        '1',
        '--dport',
        '2',
      ]);
      expect(natSeen?.reply).toMatchObject({
        src: '10.9.1.3',
        dst: '10.9.1.1',
        sport: 22,
        dport: 1,
      });
      const icmp = await cli(
        'create',
        '--netns',
        ns.name,
        '-p',
        'icmpv6',
        '-s',
        '2001:db8:9::1',
        '-d',
        '2001:db8:9::2',
        '--icmp-type',
        '128',
        '--icmp-code',
        '0',
        '--icmp-id',
        '4242',
        '-t',
        '3102',
      );
      expect(icmp.code, icmp.err).toBe(0);
      const ext = parseExtended(
        conntrackOk('-L', '-f', 'ipv6', '-p', 'icmpv6', '-s', '2001:db8:9::1', '-o', 'extended,id'),
      );
      expect(ext).toHaveLength(1);
      expect(ext[0]!.orig).toEqual({ type: 128, code: 0, icmpId: 4242 });
      expect(ext[0]!.reply).toEqual({ type: 129, code: 0, icmpId: 4242 });

      // Creating it again: the kernel's EEXIST, exit 1.
      const again = await cli('create', '--netns', ns.name, ...key, '-t', '5', '-w', '4');
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/EEXIST/);
    });

    it('lists every entry with every field as conntrack -L -o xml (and -o extended) shows it', async () => {
      const mine = await ours();
      const xml = theirs();
      const ext = parseExtended(conntrackOk('-L', '-o', 'extended,id'));
      expect(xml.length).toBeGreaterThanOrEqual(population.length + 5);
      expect(ids(mine)).toEqual(xml.map((f) => f.id).sort((a, b) => a - b));
      const byId = new Map(mine.map((f) => [f.id!, f]));
      const extById = new Map(ext.map((e) => [e.id, e]));
      const differences: string[] = [];
      const check = (id: number, what: string, a: unknown, b: unknown) => {
        if (a !== b)
          differences.push(`id ${id} ${what}: ours ${String(a)}, conntrack ${String(b)}`);
      };
      for (const x of xml) {
        const f = byId.get(x.id)!;
        const e = extById.get(x.id)!;
        check(x.id, 'family', f.family, x.orig.l3 === 2 ? 'ipv4' : 'ipv6');
        for (const dir of ['orig', 'reply'] as const) {
          const o: TupleJson = f[dir];
          const t = x[dir];
          check(x.id, `${dir}.src`, o.src, t.src);
          check(x.id, `${dir}.dst`, o.dst, t.dst);
          check(x.id, `${dir}.proto`, o.proto, t.proto);
          // conntrack-tools prints ports for DCCP even when the kernel tracks it
          // generically (no ports in the tuple): it prints 0 then.
          const portless = o.proto === 33 && o.srcPort === undefined;
          check(x.id, `${dir}.srcPort`, portless ? 0 : o.srcPort, t.sport);
          check(x.id, `${dir}.dstPort`, portless ? 0 : o.dstPort, t.dport);
          check(x.id, `${dir}.zone`, o.zone, t.zone);
          const c = f[dir === 'orig' ? 'countersOrig' : 'countersReply'];
          check(x.id, `${dir}.packets`, c?.packets, t.packets?.toString());
          check(x.id, `${dir}.bytes`, c?.bytes, t.bytes?.toString());
          // -o xml has no ICMP type/code/id: -o extended has them.
          const icmp = e[dir];
          check(x.id, `${dir}.icmpType`, o.icmpType, icmp.type);
          check(x.id, `${dir}.icmpCode`, o.icmpCode, icmp.code);
          check(
            x.id,
            `${dir}.icmpId`,
            o.icmpId,
            o.proto === 1 || o.proto === 58 ? icmp.icmpId : undefined,
          );
        }
        if (f.tcp) check(x.id, 'tcp state', f.tcp.state, x.state);
        else if (f.sctp) {
          // libnetfilter_conntrack's XML prints the SCTP state number with the
          // TCP state names; -o extended names it right.
          check(x.id, 'sctp state (xml)', TCP_STATES[f.sctp.stateNumber], x.state);
          check(x.id, 'sctp state (extended)', f.sctp.state, e.state);
        } else check(x.id, 'state', f.dccp?.state, x.state);
        if (Math.abs((f.timeout ?? -100) - (x.timeout ?? 100)) > 2) {
          differences.push(`id ${x.id} timeout: ours ${f.timeout}, conntrack ${x.timeout}`);
        }
        check(x.id, 'mark', f.mark, x.mark);
        check(x.id, 'zone', f.zone, x.zone);
        check(x.id, 'use', f.use, x.use);
        check(x.id, 'secmark', f.secmark, x.secmark);
        check(x.id, 'assured', f.statusFlags.includes('ASSURED'), x.assured);
        check(x.id, 'unreplied', !f.statusFlags.includes('SEEN_REPLY'), x.unreplied);
        check(x.id, 'timestampStart', f.timestampStart, x.start?.toString());
        check(x.id, 'timestampStop', f.timestampStop, x.stop?.toString());
        check(x.id, 'helper', f.helper?.name, x.helper);
        if (labelsViaTool) {
          check(
            x.id,
            'labels',
            (f.labels?.bits ?? []).join(','),
            (x.labels ?? []).map((l) => Number(l.slice(1))).join(','),
          );
        }
      }
      expect(differences).toEqual([]);
      // The parsers really read what the comparison relies on.
      expect(xml.every((x) => x.start !== undefined && x.orig.packets !== undefined)).toBe(true);
      expect(xml.some((x) => x.zone !== undefined && x.state !== undefined)).toBe(true);
      if (labelsViaTool) expect(xml.some((x) => (x.labels?.length ?? 0) > 1)).toBe(true);
      expect(ext.filter((e) => e.orig.icmpId !== undefined).length).toBeGreaterThanOrEqual(3);

      // The variety is really there.
      const protos = new Set(mine.map((f) => f.orig.protoName ?? String(f.orig.proto)));
      for (const p of ['tcp', 'udp', 'udplite', 'icmp', 'icmpv6', 'sctp', 'gre', 'dccp', '50']) {
        expect(protos, p).toContain(p);
      }
      const states = new Set(mine.flatMap((f) => (f.tcp ? [f.tcp.state] : [])));
      for (const s of [
        'SYN_SENT',
        'SYN_RECV',
        'ESTABLISHED',
        'FIN_WAIT',
        'CLOSE_WAIT',
        'LAST_ACK',
        'TIME_WAIT',
        'CLOSE',
      ]) {
        expect(states, s).toContain(s);
      }
      expect(mine.some((f) => f.family === 'ipv6')).toBe(true);
      expect(mine.some((f) => (f.labels?.bits.length ?? 0) > 0)).toBe(true);
      expect(mine.some((f) => f.zone !== undefined)).toBe(true);
      const real = mine.find((f) => f.orig.dstPort === 8080 && f.orig.src === '127.0.0.1');
      expect(real?.tcp?.state).toBe('TIME_WAIT');
      expect(BigInt(real?.countersOrig?.packets ?? '0')).toBeGreaterThan(0n);
      expect(real?.statusFlags).toContain('SEEN_REPLY');
      const udp6 = mine.find((f) => f.orig.dstPort === 9999);
      expect(udp6?.statusFlags).toContain('SEEN_REPLY');
      const sctp = mine.find((f) => f.orig.srcPort === 7000);
      // conntrack-tools sends --orig-vtag with htonl applied twice: the kernel stores 1 << 24.
      expect(sctp?.sctp).toMatchObject({
        state: 'ESTABLISHED',
        vtagOrig: 1 << 24,
        vtagReply: 2 << 24,
      });
    });

    it('prints a readable table with the same entries', async () => {
      const r = await cli('list', '--netns', ns.name);
      expect(r.code, r.err).toBe(0);
      const lines = r.out.trimEnd().split('\n');
      expect(lines[0]).toMatch(
        /^PROTO\s+STATE\s+ORIGINAL\s+REPLY\s+FLAGS\s+MARK\s+ZONE\s+TIMEOUT\s+PACKETS\s+BYTES\s+LABELS\s+ID$/,
      );
      expect(lines.length - 1).toBe((await ours()).length);
      expect(r.out).toMatch(
        /tcp\s+SYN_SENT\s+10\.1\.0\.1:1001 -> 10\.1\.0\.2:80\s+10\.1\.0\.2:80 -> 10\.1\.0\.1:1001/,
      );
      expect(r.out).toMatch(/icmp\s+-\s+10\.1\.0\.1 -> 10\.1\.0\.9 type=8 code=0 id=77/);
      expect(r.out).toMatch(/\[2001:db8:1::1\]:2001 -> \[2001:db8:1::2\]:80/);
    });

    const filters: [string[], string[]][] = [
      [
        ['-p', 'tcp'],
        ['-p', 'tcp'],
      ],
      [
        ['-p', 'udp'],
        ['-p', 'udp'],
      ],
      [
        ['-p', 'icmp'],
        ['-p', 'icmp'],
      ],
      [
        ['-p', 'icmpv6'],
        ['-p', 'icmpv6'],
      ],
      [
        ['-p', 'sctp'],
        ['-p', 'sctp'],
      ],
      [
        ['-p', '50'],
        ['-p', '50'],
      ],
      [
        ['--src', '10.1.0.1'],
        ['-s', '10.1.0.1'],
      ],
      [
        ['-d', '2001:db8:1::2'],
        ['-d', '2001:db8:1::2'],
      ],
      [
        ['--reply-src', '10.1.0.5'],
        ['--reply-src', '10.1.0.5'],
      ],
      [
        ['-p', 'tcp', '--dport', '80'],
        ['-p', 'tcp', '--dport', '80'],
      ],
      [
        ['-p', 'udp', '--sport', '5001'],
        ['-p', 'udp', '--sport', '5001'],
      ],
      [
        ['-p', 'icmp', '--icmp-type', '13'],
        ['-p', 'icmp', '--icmp-type', '13'],
      ],
      [
        ['--mark', '16'],
        ['-m', '16'],
      ],
      [
        ['--mark', '0x10/0xf0'],
        ['-m', '0x10/0xf0'],
      ],
      [
        ['--mark', '7'],
        ['--mark', '7'],
      ],
      [
        ['--status', 'ASSURED'],
        ['-u', 'ASSURED'],
      ],
      [
        ['--status', 'seen_reply'],
        ['-u', 'SEEN_REPLY'],
      ],
      [
        ['-f', 'ipv6'],
        ['-f', 'ipv6'],
      ],
      [
        ['-f', 'ipv4'],
        ['-f', 'ipv4'],
      ],
      [
        ['--zone', '5'],
        ['-w', '5'],
      ],
      [
        ['--zone', '9'],
        ['--zone', '9'],
      ],
      [
        ['--state', 'ESTABLISHED'],
        ['-p', 'tcp', '--state', 'ESTABLISHED'],
      ],
      [
        ['-p', 'tcp', '--state', 'TIME_WAIT'],
        ['-p', 'tcp', '--state', 'TIME_WAIT'],
      ],
      [
        ['-f', 'ipv6', '-p', 'tcp'],
        ['-f', 'ipv6', '-p', 'tcp'],
      ],
    ];
    for (const [mine, tools] of filters) {
      it(`list ${mine.join(' ')} selects what conntrack -L ${tools.join(' ')} selects`, async () => {
        const expected = theirIds(...tools);
        expect(expected.length, 'a filter that matches nothing proves little').toBeGreaterThan(0);
        expect(ids(await ours(...mine))).toEqual(expected);
      });
    }

    it('list -l selects what conntrack -L -l selects', async () => {
      if (!labelsViaTool) return;
      const expected = theirIds('-l', 'l1');
      expect(expected.length).toBe(1);
      expect(ids(await ours('-l', '1'))).toEqual(expected);
      expect(ids(await ours('--label', '2,127'))).toEqual(theirIds('-l', 'l2,l127'));
    });

    it('gets one entry (zone as part of the key), as list shows it', async () => {
      const r = await cli('get', '--netns', ns.name, '--json', ...tcpKey);
      expect(r.code, r.err).toBe(0);
      const got = JSON.parse(r.out) as FlowJson;
      const listed = (await ours(...tcpKey.slice(0, 2), '-s', '10.1.0.1', '--sport', '1001')).find(
        (f) => f.id === got.id,
      );
      expect(listed).toBeDefined();
      // The kernel holds a reference while it answers a get: use is one more.
      expect(got.use).toBe(listed!.use! + 1);
      expect({ ...got, timeout: 0, use: 0 }).toEqual({ ...listed, timeout: 0, use: 0 });
      expect(tool(tcpKey)?.id).toBe(got.id);

      const zoned = await cli('get', '--netns', ns.name, ...zonedKey, '--zone', '5');
      expect(zoned.code, zoned.err).toBe(0);
      expect(zoned.out).toMatch(/tcp\s+CLOSE\s+10\.1\.0\.1:1004 -> 10\.1\.0\.4:22/);
      // Without its zone the entry is not found: exit 1, message on stderr.
      const unzoned = await cli('get', '--netns', ns.name, ...zonedKey);
      expect(unzoned.code).toBe(1);
      expect(unzoned.err).toMatch(/no such entry/);
      expect(unzoned.out).toBe('');
    });

    it('exits 1 with a message for a missing entry and 2 for bad arguments', async () => {
      const missing = [
        '-p',
        'tcp',
        '-s',
        '10.99.0.1',
        '-d',
        '10.99.0.2',
        '--sport',
        '1',
        '--dport',
        '2',
      ];
      for (const sub of ['get', 'delete']) {
        const r = await cli(sub, '--netns', ns.name, ...missing);
        expect(r.code, sub).toBe(1);
        expect(r.err).toMatch(new RegExp(`conntrack ${sub}: no such entry \\(ENOENT\\)`));
      }
      const u = await cli('update', '--netns', ns.name, ...missing, '--mark', '1');
      expect(u.code).toBe(1);
      expect(u.err).toMatch(/ENOENT/);
      for (const argv of [
        ['list', '-p', 'bogus'],
        ['list', '-s', '10.0.0.1', '-d', '::1'],
        ['get', '-p', 'tcp', '-s', '10.0.0.1'],
        ['update', ...udpKey],
        ['delete', '--all-matching'],
        ['flush', '--mark', 'x'],
      ]) {
        const r = await cli(...argv, '--netns', ns.name);
        expect(r.code, argv.join(' ')).toBe(2);
        expect(r.err).toMatch(/^portcullis: .+\nTry 'portcullis --help'\.\n$/);
        expect(r.err).not.toMatch(/\bat .+\.ts:\d+/);
      }
    });

    it('updates the mark (with a mask), timeout, status and TCP state', async () => {
      expect(tool(udpKey)?.mark).toBe(0x10);
      let r = await cli('update', '--netns', ns.name, ...udpKey, '--mark', '0x5/0xf');
      expect(r.code, r.err).toBe(0);
      expect(tool(udpKey)?.mark).toBe(0x15); // (0x10 & ~0xf) ^ 0x5
      r = await cli('update', '--netns', ns.name, ...udpKey, '--mark', '0x1');
      expect(r.code, r.err).toBe(0);
      expect(tool(udpKey)?.mark).toBe(1);
      r = await cli('update', '--netns', ns.name, ...udpKey, '-t', '500');
      expect(r.code, r.err).toBe(0);
      expect(Math.abs(tool(udpKey)!.timeout! - 500)).toBeLessThanOrEqual(2);
      expect(tool(udpKey)?.assured).toBe(false);
      r = await cli('update', '--netns', ns.name, ...udpKey, '--status', 'ASSURED');
      expect(r.code, r.err).toBe(0);
      expect(tool(udpKey)?.assured).toBe(true);

      // Status flags are added, so a SEEN_REPLY entry can be made ASSURED (a
      // status that clears SEEN_REPLY would be refused with EBUSY).
      const seenKey = [
        '-p',
        'udp',
        '-s',
        '10.1.0.6',
        '-d',
        '10.1.0.5',
        '--sport',
        '5001',
        '--dport',
        '53',
      ];
      expect(tool(seenKey)).toMatchObject({ assured: false, unreplied: false });
      r = await cli('update', '--netns', ns.name, ...seenKey, '--status', 'assured');
      expect(r.code, r.err).toBe(0);
      expect(tool(seenKey)).toMatchObject({ assured: true, unreplied: false });

      r = await cli('update', '--netns', ns.name, ...tcpKey, '--state', 'ESTABLISHED');
      expect(r.code, r.err).toBe(0);
      expect(tool(tcpKey)?.state).toBe('ESTABLISHED');

      // A zoned entry needs its zone.
      r = await cli('update', '--netns', ns.name, ...zonedKey, '--mark', '9');
      expect(r.code).toBe(1);
      r = await cli('update', '--netns', ns.name, ...zonedKey, '-w', '5', '--mark', '9');
      expect(r.code, r.err).toBe(0);
      expect(tool(zonedKey, 5)?.mark).toBe(9);
    });

    it('updates labels: set, add, delete', async () => {
      const labels = async () =>
        (await ours('-p', 'udp', '-s', '10.1.0.7')).map((f) => f.labels?.bits ?? [])[0];
      expect(await labels()).toEqual([1, 64]);
      let r = await cli('update', '--netns', ns.name, ...labelKey, '--label-add', '3');
      expect(r.code, r.err).toBe(0);
      expect(await labels()).toEqual([1, 3, 64]);
      if (labelsViaTool) expect(tool(labelKey)?.labels).toEqual(['l1', 'l3', 'l64']);
      r = await cli(
        'update',
        '--netns',
        ns.name,
        ...labelKey,
        '--label-del',
        '1',
        '--label-add',
        '100',
      );
      expect(r.code, r.err).toBe(0);
      expect(await labels()).toEqual([3, 64, 100]);
      r = await cli('update', '--netns', ns.name, ...labelKey, '--label', '7');
      expect(r.code, r.err).toBe(0);
      expect(await labels()).toEqual([7]);
      if (labelsViaTool) expect(tool(labelKey)?.labels).toEqual(['l7']);
    });

    it('deletes one entry, then every entry matching a filter', async () => {
      expect(tool(tcpKey)).toBeDefined();
      let r = await cli('delete', '--netns', ns.name, ...tcpKey);
      expect(r.code, r.err).toBe(0);
      expect(tool(tcpKey)).toBeUndefined();

      r = await cli('delete', '--netns', ns.name, ...zonedKey);
      expect(r.code).toBe(1); // zone missing from the key
      r = await cli('delete', '--netns', ns.name, ...zonedKey, '--zone', '5');
      expect(r.code, r.err).toBe(0);
      expect(tool(zonedKey, 5)).toBeUndefined();

      const marked = theirIds('-m', '7');
      expect(marked.length).toBeGreaterThanOrEqual(3);
      const before = theirIds().length;
      r = await cli('delete', '--netns', ns.name, '--all-matching', '--mark', '7');
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe(`${marked.length} entries deleted\n`);
      expect(theirIds('-m', '7')).toEqual([]);
      expect(theirIds().length).toBe(before - marked.length);

      const icmp = theirIds('-p', 'icmp');
      r = await cli('delete', '--netns', ns.name, '--all-matching', '-p', 'icmp', '--json');
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out)).toEqual({ deleted: icmp.length });
      expect(theirIds('-p', 'icmp')).toEqual([]);
    });

    it('flushes one family, then by mark, then everything', async () => {
      const v4 = theirIds('-f', 'ipv4');
      expect(theirIds('-f', 'ipv6').length).toBeGreaterThan(0);
      let r = await cli('flush', '--netns', ns.name, '-f', 'ipv6');
      expect(r.code, r.err).toBe(0);
      expect(theirIds('-f', 'ipv6')).toEqual([]);
      expect(theirIds('-f', 'ipv4')).toEqual(v4);

      const marked = theirIds('-m', '0x11');
      expect(marked.length).toBeGreaterThan(0);
      r = await cli('flush', '--netns', ns.name, '--mark', '0x11');
      expect(r.code, r.err).toBe(0);
      expect(theirIds('-m', '0x11')).toEqual([]);
      expect(theirIds().length).toBe(v4.length - marked.length);

      r = await cli('flush', '--netns', ns.name);
      expect(r.code, r.err).toBe(0);
      expect(theirIds()).toEqual([]);
      expect((await cli('count', '--netns', ns.name)).out).toBe('0\n');
    });

    it('reports labels the kernel would not store (no connlabel user in the netns)', async () => {
      const bare = new TestNetns('pcl-ctcli-bare');
      try {
        const key = [
          '-p',
          'udp',
          '-s',
          '10.2.0.1',
          '-d',
          '10.2.0.2',
          '--sport',
          '1',
          '--dport',
          '2',
        ];
        const c = await cli('create', '--netns', bare.name, ...key, '-t', '60', '--label', '1');
        expect(c.code).toBe(1);
        expect(c.err).toMatch(/did not store the labels; .*connlabel/);
        const u = await cli('update', '--netns', bare.name, ...key, '--label-add', '1');
        expect(u.code).toBe(1);
        expect(u.err).toMatch(/ENOSPC .*connlabel/);
      } finally {
        bare.delete();
      }
    });
  },
);
