/**
 * Short-lived senders for the eBPF owner tests: a python3 process that sends
 * or connects once, prints who it was and from which local port, and exits.
 * Run to completion (spawnSync), so the process is gone when the test looks.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export type SenderKind =
  | 'udp'
  | 'udp-connected'
  | 'udp-connected-dual'
  | 'udp-thread'
  | 'udp-dual'
  | 'tcp'
  | 'tcp-dual'
  | 'tcp-nonblock';

export interface SenderReport {
  pid: number;
  tid: number;
  /** /proc/self/stat field 22. */
  start: number;
  sport: number;
  uid: number;
}

export const PYTHON = '/usr/bin/python3';

const SENDER = `
import json, os, socket, sys, threading
kind, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
out = {}
def send():
    if kind in ('udp', 'udp-thread'):
        s = socket.socket(fam, socket.SOCK_DGRAM); s.sendto(b'x', (dst, port))
    elif kind == 'udp-dual':
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.sendto(b'x', ('::ffff:' + dst, port))
    elif kind == 'udp-connected-dual':
        # connect only: its send() would run the sendmsg4 hook (a v4-mapped
        # destination is handed to udp_sendmsg with an address)
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(('::ffff:' + dst, port))
    elif kind == 'tcp-dual':
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.connect(('::ffff:' + dst, port))
    elif kind == 'udp-connected':
        s = socket.socket(fam, socket.SOCK_DGRAM); s.connect((dst, port)); s.send(b'x')
    elif kind == 'tcp':
        s = socket.socket(fam, socket.SOCK_STREAM); s.connect((dst, port))
    elif kind == 'tcp-nonblock':
        s = socket.socket(fam, socket.SOCK_STREAM); s.setblocking(False)
        try: s.connect((dst, port))
        except BlockingIOError: pass
    out['sport'] = s.getsockname()[1]
    out['tid'] = threading.get_native_id()
if kind == 'udp-thread':
    t = threading.Thread(target=send); t.start(); t.join()
else:
    send()
stat = open('/proc/self/stat').read()
out.update(pid=os.getpid(), uid=os.getuid(), start=int(stat[stat.rindex(')') + 2:].split()[19]))
print(json.dumps(out))
`;

/** Runs one sender in the namespace (optionally through `prefix`, e.g.
 * setpriv or sh) and returns its report after it has exited. */
export function runSender(
  netns: string,
  kind: SenderKind,
  dst: string,
  port: number,
  prefix: string[] = [],
): SenderReport {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', netns, ...prefix, PYTHON, '-c', SENDER, kind, dst, String(port)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`sender ${kind} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as SenderReport;
}

/** Sends one UDP datagram from each of `count` fresh sockets (remote ports
 * 1..count), in one process: a flood of distinct flows. */
export function floodUdp(netns: string, dst: string, count: number): void {
  const code = `
import socket, sys
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b'', (sys.argv[1], 1 + i % 65000))
    s.close()
`;
  const r = spawnSync('ip', ['netns', 'exec', netns, PYTHON, '-c', code, dst, String(count)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`flood failed: ${r.stderr}`);
}

/** A TCP listener on [::]:port (IPv4 too) in the namespace, accepting and
 * closing; stop() ends it by pid. */
export function tcpListener(netns: string, port: number): { ready: Promise<void>; stop(): void } {
  const code = `
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::', int(sys.argv[1]))); s.listen(512)
print('ready', flush=True)
while True:
    c, _ = s.accept(); c.close()
`;
  const child: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', netns, PYTHON, '-c', code, String(port)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`listener exited ${code}`)));
  });
  return {
    ready,
    stop: () => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    },
  };
}
