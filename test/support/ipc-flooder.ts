// A process that floods the helper's socket with handshakes it never
// finishes: it holds `count` connections and reopens each one as soon as it
// closes (the attack on the server's connection limits). Plain CommonJS run
// with `node -e`, so it needs no build and can run as another uid (setpriv).
import { spawn, type ChildProcess } from 'node:child_process';

/** silent: says nothing; bad-token: a Hello with a wrong token; partial:
 * half a frame header, then nothing. */
export type FloodMode = 'silent' | 'bad-token' | 'partial';

const SCRIPT = String.raw`
const net = require('net');
const [path, count, mode] = process.argv.slice(1);
const frame = (o) => { const j = Buffer.from(JSON.stringify(o)); const h = Buffer.alloc(4); h.writeUInt32BE(j.length); return Buffer.concat([h, j]); };
const badHello = frame({ type: 'hello', protocol: { major: 1, minor: 0 }, build: 'flood', token: 'not-the-token' });
let stopping = false;
let opened = 0;
let live = 0;
let announced = false;
const open = () => {
  if (stopping) return;
  opened++;
  live++;
  const s = net.connect(path);
  s.on('connect', () => {
    if (mode === 'bad-token') s.write(badHello);
    else if (mode === 'partial') s.write(Buffer.from([0, 0]));
    if (!announced && opened >= Number(count)) { announced = true; process.stdout.write('ready\n'); }
  });
  s.on('data', () => undefined);
  s.on('error', () => undefined);
  s.on('close', () => { live--; setImmediate(open); });
};
for (let i = 0; i < Number(count); i++) open();
process.stdin.resume();
process.stdin.on('end', () => {
  stopping = true;
  process.stdout.write(JSON.stringify({ opened, live }) + '\n');
  process.exit(0);
});
`;

export interface Flooder {
  readonly child: ChildProcess;
  /** Resolves once it has opened its first `count` connections. */
  readonly ready: Promise<void>;
  /** Stops it; resolves with how many connections it opened in all. */
  stop(): Promise<number>;
}

export interface FloodOptions {
  path: string;
  count: number;
  mode: FloodMode;
  /** Run as this uid:gid with no supplementary groups (needs root and setpriv). */
  as?: { uid: number; gid: number };
}

export function startFlooder(o: FloodOptions): Flooder {
  const args = ['-e', SCRIPT, o.path, String(o.count), o.mode];
  const child = o.as
    ? spawn(
        'setpriv',
        [`--reuid=${o.as.uid}`, `--regid=${o.as.gid}`, '--clear-groups', process.execPath, ...args],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      )
    : spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const lines: ((line: string) => void)[] = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      for (const f of lines) f(line);
    }
  });
  // 'close': the process is gone and its last output has been read.
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  const ready = new Promise<void>((resolve, reject) => {
    lines.push((line) => {
      if (line === 'ready') resolve();
    });
    void exited.then((code) =>
      reject(new Error(`the flooder exited (${code}) before it was ready`)),
    );
  });
  ready.catch(() => undefined);
  return {
    child,
    ready,
    async stop() {
      let opened: number | undefined;
      lines.push((line) => {
        if (line.startsWith('{')) opened = (JSON.parse(line) as { opened: number }).opened;
      });
      child.stdin!.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(killer);
      if (code !== 0 || opened === undefined) throw new Error(`the flooder exited with ${code}`);
      return opened;
    },
  };
}
