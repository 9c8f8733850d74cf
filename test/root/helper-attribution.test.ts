/**
 * The real `portcullis helper` and its attribution paths: eBPF owner records by default,
 * sock_diag + /proc when BPF is refused (the helper run without CAP_BPF, CAP_SYS_ADMIN
 * and CAP_PERFMON) or turned off (--attribution procfs). A short-lived UDP sender whose
 * packet waits in the queue until it has exited (the helper is stopped with SIGSTOP
 * meanwhile) is named by the records only. Everything runs in namespaces this file
 * creates; only the children it starts are signalled, by PID.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import type { HistoryEntry } from '../../helper/protocol/index.js';
import { helperArgs, HelperProcess, removeHelperRules } from '../support/helper-process.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { vethPair } from '../support/tcp-peers.js';
import { sleep } from '../support/udp-agent.js';

function missing(): string | undefined {
  const root = firewallTestsUnavailable();
  if (root) return root;
  for (const bin of ['setpriv', 'nsenter']) {
    if (spawnSync(bin, ['--version']).error) return `${bin} (util-linux) is not installed`;
  }
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping helper attribution root tests: ${skip}`);

const QUEUE = 19;
/** Nobody listens there: the datagram only has to be decided. */
const DISCARD = 9;
/** Per test: the VM kernels run under QEMU without KVM, many times slower. */
const SLOW = 180_000;
/** The capabilities BPF needs; the helper keeps CAP_NET_ADMIN and the rest. */
const NO_BPF = ['setpriv', '--bounding-set', '-bpf,-sys_admin,-perfmon', '--'];

async function until<T>(
  what: string,
  get: () => Promise<T | undefined>,
  log: () => string[] = () => [],
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${log().join('\n')}`);
    await sleep(50);
  }
}

describe.skipIf(skip)('portcullis helper attribution (child process, two namespaces)', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  let dir: string;
  const helpers: HelperProcess[] = [];
  const ipc: IpcClient[] = [];

  beforeAll(() => {
    client = new TestNetns('pcl-hat');
    server = new TestNetns('pcl-hats');
    addr = vethPair(client, server);
  });
  afterEach(async () => {
    for (const c of ipc.splice(0)) await c.close();
    for (const h of helpers.splice(0)) {
      h.signal('SIGCONT');
      await h.stop();
    }
    await removeHelperRules(client.name);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterAll(() => {
    client?.delete();
    server?.delete();
  });

  /** A helper for the client namespace; `wrap` runs it inside the namespace instead of --netns. */
  async function startHelper(extra: string[], wrap?: string[]) {
    dir = mkdtempSync(join(tmpdir(), 'pcl-hat-'));
    const socket = join(dir, 'run', 'helper.sock');
    const where = { netns: client.name, queue: QUEUE, socket, stateDir: join(dir, 'state') };
    const args = wrap ? helperArgs(where).slice(2) : helperArgs(where);
    const h = new HelperProcess([...args, ...extra], undefined, wrap);
    helpers.push(h);
    await h.ready(120_000);
    const token = readFileSync(join(dir, 'run', 'token'), 'utf8').trim();
    const c = await IpcClient.connect({ path: socket, token, build: 'attribution-test' });
    ipc.push(c);
    return { h, c };
  }

  /**
   * One datagram from a process that exits right after sending it, while the helper is
   * stopped: its packet is read from the queue after the process and its socket are
   * gone. Resolves with the sender's pid and the decision the helper recorded.
   */
  async function goneSender(h: HelperProcess, c: IpcClient) {
    h.signal('SIGSTOP');
    const code = `const s = require('node:dgram').createSocket('udp4');
      s.send('x', ${DISCARD}, '${addr.b}', (e) => process.exit(e ? 1 : 0));`;
    const sender = spawn('ip', ['netns', 'exec', client.name, process.execPath, '-e', code], {
      stdio: 'ignore',
    });
    const pid = sender.pid!;
    const status = await new Promise((resolve) => sender.once('exit', resolve));
    expect(status).toBe(0);
    h.signal('SIGCONT');
    const entry = await until(
      'the decision',
      async () => {
        const { entries } = await c.call('history.query', { limit: 50, text: addr.b });
        return entries.find((e: HistoryEntry) => e.request.dport === DISCARD);
      },
      () => h.lines,
    );
    return { pid, entry };
  }

  it(
    'by default: eBPF in the state, and a sender gone before its packet was read is named',
    async () => {
      const { h, c } = await startHelper([]);
      const state = await c.call('state.get', {});
      expect(state.attribution?.mode).toBe('ebpf');
      expect(h.lines.some((l) => / info attribution: eBPF owner records first/.test(l))).toBe(true);

      const { pid, entry } = await goneSender(h, c);
      expect(entry.request.uid).toBe(0);
      expect(entry.request.process).toMatchObject({
        pid,
        exe: realpathSync(process.execPath),
        comm: 'node',
        uid: 0,
      });
      // Its parent chain: this test's process first (ip netns exec became the sender).
      expect(entry.request.process?.ancestors?.[0]).toMatchObject({ pid: process.pid });
    },
    SLOW,
  );

  it(
    '--attribution procfs: said in the log and the state; that sender goes unnamed',
    async () => {
      const { h, c } = await startHelper(['--attribution', 'procfs']);
      const state = await c.call('state.get', {});
      expect(state.attribution).toEqual({
        mode: 'procfs',
        reason: 'turned off by --attribution procfs',
      });
      expect(h.lines.some((l) => / info attribution: sock_diag \+ \/proc only/.test(l))).toBe(true);

      const { entry } = await goneSender(h, c);
      expect(entry.request.process).toBeNull();
    },
    SLOW,
  );

  it(
    'BPF refused (no CAP_BPF/CAP_SYS_ADMIN): it starts, warns once why, and reports procfs',
    async () => {
      // nsenter, not `ip netns exec`, which mounts a sysfs of its own over the cgroup mounts.
      const enter = ['nsenter', `--net=/run/netns/${client.name}`];
      const { h, c } = await startHelper([], [...enter, ...NO_BPF]);
      const state = await c.call('state.get', {});
      expect(state.attribution?.mode).toBe('procfs');
      expect(state.attribution?.reason).toMatch(/EPERM|not permitted/i);
      const warnings = h.lines.filter((l) => / warn attribution: /.test(l));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /warn attribution: falling back to sock_diag \+ \/proc \(.*(EPERM|not permitted).*\)/i,
      );
    },
    SLOW,
  );
});
