// Socket options and frames Node cannot produce (SO_TIMESTAMP, SO_PRIORITY,
// raw 802.1Q frames), made by python3 inside a test's network namespace.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestNetns } from './netns.js';
import { sleep } from './udp-agent.js';

/** Why python3 helpers cannot run, or undefined. */
export function pythonUnavailable(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import socket; socket.AF_PACKET; socket.SO_PRIORITY']);
  if (r.error) return 'python3 is not installed';
  if (r.status !== 0) return 'python3 lacks AF_PACKET/SO_PRIORITY';
  return undefined;
}

function python(ns: TestNetns, script: string, args: string[]): string {
  return ns.exec('python3', ['-c', script, ...args]);
}

const SEND_WITH_PRIORITY = `
import socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, int(sys.argv[3]))
s.sendto(sys.argv[4].encode(), (sys.argv[1], int(sys.argv[2])))
`;

/** Sends one UDP datagram from a socket with SO_PRIORITY set (skb->priority). */
export function sendWithPriority(
  ns: TestNetns,
  host: string,
  port: number,
  priority: number,
  text: string,
): void {
  python(ns, SEND_WITH_PRIORITY, [host, String(port), String(priority), text]);
}

const SEND_VLAN_FRAME = `
import socket, struct, sys
ifname, dst, src, vid, prio, saddr, daddr, dport, text = sys.argv[1:10]
data = text.encode()
udp = struct.pack('!HHHH', 40000, int(dport), 8 + len(data), 0) + data
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(saddr), socket.inet_aton(daddr))
c = sum(struct.unpack('!10H', ip))
c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
ip = ip[:10] + struct.pack('!H', ~c & 0xffff) + ip[12:]
tci = (int(prio) << 13) | int(vid)
frame = (bytes.fromhex(dst.replace(':', '')) + bytes.fromhex(src.replace(':', '')) +
         struct.pack('!HHH', 0x8100, tci, 0x0800) + ip + udp)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
s.send(frame)
`;

/** Sends one 802.1Q-tagged Ethernet frame carrying an IPv4/UDP datagram out of `ifname`. */
export function sendVlanFrame(
  ns: TestNetns,
  o: {
    ifname: string;
    dstMac: string;
    srcMac: string;
    vlanId: number;
    vlanPriority: number;
    src: string;
    dst: string;
    dport: number;
    text: string;
  },
): void {
  python(ns, SEND_VLAN_FRAME, [
    o.ifname,
    o.dstMac,
    o.srcMac,
    String(o.vlanId),
    String(o.vlanPriority),
    o.src,
    o.dst,
    String(o.dport),
    o.text,
  ]);
}

const RECEIVE_WITH_TIMESTAMP = `
import json, socket, struct, sys
SO_TIMESTAMP = 29  # SO_TIMESTAMP_OLD: struct timeval (not exported by Python's socket module)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
print(json.dumps({'ev': 'ready'}), flush=True)
while True:
    data, anc, flags, src = s.recvmsg(4096, socket.CMSG_SPACE(16))
    out = {'ev': 'recv', 'data': data.decode()}
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP:
            out['sec'], out['usec'] = struct.unpack('qq', cdata[:16])
    print(json.dumps(out), flush=True)
`;

export interface TimestampedDatagram {
  data: string;
  sec?: number;
  usec?: number;
}

/** A UDP socket with SO_TIMESTAMP: it reports each datagram with the receive
 * timestamp the kernel gave it (skb->tstamp). While it exists, the kernel
 * timestamps every incoming packet (the netstamp static key is global). */
export class TimestampReceiver {
  readonly received: TimestampedDatagram[] = [];
  private ready = false;
  private readonly proc: ChildProcessWithoutNullStreams;

  constructor(ns: TestNetns, host: string, port: number) {
    this.proc = spawn(
      'ip',
      ['netns', 'exec', ns.name, 'python3', '-c', RECEIVE_WITH_TIMESTAMP, host, String(port)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const o = JSON.parse(line) as { ev: string } & TimestampedDatagram;
      if (o.ev === 'ready') this.ready = true;
      else this.received.push({ data: o.data, sec: o.sec, usec: o.usec });
    });
    this.proc.stderr.on('data', (d) => console.error(`timestamp receiver: ${String(d)}`));
  }

  async whenReady(ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!this.ready) {
      if (Date.now() > end || this.proc.exitCode !== null)
        throw new Error('timestamp receiver did not start');
      await sleep(10);
    }
  }

  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }
}

const SEND_BURST = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(('%s%d' % (sys.argv[4], i)).encode(), (sys.argv[1], int(sys.argv[2])))
`;

/** Sends `count` UDP datagrams (`prefix0`, `prefix1`, ...) from one socket,
 * synchronously: the calling process, and so its event loop, waits until all
 * are sent (a verdict loop in this process then finds them queued together). */
export function sendBurst(
  ns: TestNetns,
  host: string,
  port: number,
  count: number,
  prefix: string,
): void {
  python(ns, SEND_BURST, [host, String(port), String(count), prefix]);
}
