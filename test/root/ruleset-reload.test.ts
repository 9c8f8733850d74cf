/**
 * The helper next to a distribution's own ruleset (a `table inet filter` with a drop
 * policy on input and an established/related accept, as firewalld and ufw leave them),
 * and a reload of that ruleset that flushes everything first, as `firewall-cmd --reload`
 * and `ufw reload` do: the helper must notice, put its rules back, say so in its log and
 * state, and leave the distribution's table alone. On this machine's kernel the helper
 * uses iptables-nft, on stock kernels (test/vm/) the nft table; the flush removes both.
 * Everything runs in namespaces this file creates and deletes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import { readQueueStats } from '../../helper/nfqueue/stats.js';
import { helperArgs, HelperProcess, removeHelperRules } from '../support/helper-process.js';
import { InterceptionRules } from '../support/interception.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { echoServer, tcpExchange, vethPair, type Peer } from '../support/tcp-peers.js';
import { sleep } from '../support/udp-agent.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping the ruleset reload tests: ${skip}`);

const QUEUE = 29;
const PORT = 8095;

/** What a distribution firewall leaves: input dropped unless established or loopback. */
const DISTRIBUTION_RULESET = `table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
  }
  chain output {
    type filter hook output priority filter; policy accept;
  }
}
`;

describe.skipIf(skip)("the helper and a distribution's ruleset", () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  let echo: Peer | undefined;
  let rules: InterceptionRules;
  let dir: string;
  let helper: HelperProcess | undefined;

  const queued = async (): Promise<number> =>
    (await readQueueStats({ netns: client.name })).find((s) => s.queue === QUEUE)?.lastId ?? 0;

  beforeAll(async () => {
    client = new TestNetns('pcl-rld');
    server = new TestNetns('pcl-rlds');
    addr = vethPair(client, server);
    rules = new InterceptionRules(client);
    echo = await echoServer(server, addr.b, PORT);
    client.exec('nft', ['-f', '-'], DISTRIBUTION_RULESET);
    dir = mkdtempSync(join(tmpdir(), 'pcl-reload-'));
  }, 120_000);

  afterAll(async () => {
    if (helper) await helper.stop();
    echo?.stop();
    if (client) await removeHelperRules(client.name).catch(() => undefined);
    client?.delete();
    server?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a reload that flushes the ruleset: the helper restores its rules, says so, and keeps deciding', async () => {
    const socket = join(dir, 'run', 'helper.sock');
    helper = new HelperProcess(
      helperArgs({ netns: client.name, queue: QUEUE, socket, stateDir: join(dir, 'state') }),
    );
    await helper.ready();
    const installed = rules.lines();
    expect(rules.outboundHooks()).toBe(1);
    // Both firewalls at once: ours decides, theirs lets the replies in.
    expect((await tcpExchange(client, addr.b, PORT)).ok).toBe(true);
    expect(await queued()).toBe(1);

    // firewalld's reload: one transaction that flushes everything and loads its own.
    client.exec('nft', ['-f', '-'], `flush ruleset\n${DISTRIBUTION_RULESET}`);
    // The rules come back, and the helper says so (its line may follow the rules by a moment).
    const restoredLine =
      / warn interceptor: rules were changed by somebody else \(a ruleset reload\?\): restored /;
    const end = Date.now() + 10_000;
    while (
      JSON.stringify(rules.lines()) !== JSON.stringify(installed) ||
      !helper.lines.some((l) => restoredLine.test(l))
    ) {
      if (Date.now() > end) {
        throw new Error(
          `rules not restored:\n${rules.lines().join('\n')}\n${helper.lines.join('\n')}`,
        );
      }
      await sleep(50);
    }
    expect(client.exec('nft', ['list', 'table', 'inet', 'filter'])).toContain('policy drop');
    // Interception is back: the next connection is queued and decided (a slow kernel may
    // queue a retransmitted SYN as well).
    const before = await queued();
    expect((await tcpExchange(client, addr.b, PORT)).ok).toBe(true);
    expect(await queued()).toBeGreaterThan(before);
    const token = readFileSync(join(dir, 'run', 'token'), 'utf8').trim();
    const ipc = await IpcClient.connect({ path: socket, token, build: 'reload-test' });
    try {
      expect((await ipc.call('state.get', {})).rulesRestored).toBe(1);
    } finally {
      await ipc.close();
    }

    // Our own changes are not taken for somebody else's: a stop removes ours for good.
    expect(await helper.stop()).toEqual({ code: 0, signal: null });
    helper = undefined;
    await sleep(500);
    expect(rules.lines()).toEqual([]);
    expect(client.exec('nft', ['list', 'table', 'inet', 'filter'])).toContain('policy drop');
  }, 60_000);
});
