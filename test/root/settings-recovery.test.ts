/**
 * A real `portcullis helper` (the compiled CLI) in a namespace this file creates, started
 * on a state directory whose settings.json says fail-closed but is damaged: the helper
 * must come up fail-closed (no queue-bypass in its rules), say why over IPC and in its
 * log, and keep the damaged file through the next settings.set. The namespace, temp dir
 * and child are this file's own; the child is stopped by PID.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import { helperArgs, HelperProcess, removeHelperRules } from '../support/helper-process.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping settings recovery tests: ${skip}`);

const QUEUE = 19;

describe.skipIf(skip)('portcullis helper with a damaged settings.json', () => {
  let ns: TestNetns;
  let dir: string;
  let stateDir: string;
  let helper: HelperProcess | undefined;
  let client: IpcClient | undefined;

  beforeAll(() => {
    ns = new TestNetns('pcl-set');
    dir = mkdtempSync(join(tmpdir(), 'pcl-settings-'));
    stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
  }, 180_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    if (helper?.running) await helper.stop();
    if (ns) {
      await removeHelperRules(ns.name).catch(() => undefined);
      ns.delete();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('starts fail-closed, says why, and settings.set keeps the damaged file', async () => {
    const saved = JSON.stringify(
      {
        version: 1,
        settings: {
          defaultAction: 'allow',
          promptTimeoutSeconds: 30,
          noGuiPolicy: 'allow',
          failOpen: false,
          interceptOutbound: true,
          interceptInbound: false,
        },
      },
      null,
      2,
    );
    // Torn in the middle, as a crash of a non-atomic writer or a bad disk leaves it.
    const damaged = Buffer.from(saved.slice(0, 90));
    writeFileSync(join(stateDir, 'settings.json'), damaged, { mode: 0o600 });

    const socket = join(dir, 'run', 'helper.sock');
    // No --fail-closed: the command line's default is fail-open.
    helper = new HelperProcess(helperArgs({ netns: ns.name, queue: QUEUE, socket, stateDir }));
    await helper.ready();

    const ours = ns
      .exec('iptables-nft', ['-S'])
      .split('\n')
      .filter((l) => l.includes('PORTCULLIS') && l.includes('NFQUEUE'));
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.filter((l) => l.includes('--queue-bypass'))).toEqual([]);

    const copies = readdirSync(stateDir).filter((n) => n.startsWith('settings.json.corrupt-'));
    expect(copies).toHaveLength(1);
    const copy = join(stateDir, copies[0]!);
    expect(readFileSync(copy).equals(damaged)).toBe(true);
    const logged = helper.lines.filter((l) => / error settings: /u.test(l));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain(`damagedPath=${copy}`);
    expect(logged[0]).toContain('failPolicy=closed');

    const token = readFileSync(join(dir, 'run', 'token'), 'utf8').trim();
    client = await IpcClient.connect({ path: socket, token, build: 'settings-test' });
    const state = await client.call('state.get', {});
    expect(state.settings).toMatchObject({
      failOpen: false,
      defaultAction: 'deny',
      noGuiPolicy: 'deny',
      interceptInbound: true,
    });
    expect(state.settingsRecovered).toMatchObject({
      from: 'defaults-strict',
      damagedPath: copy,
    });
    expect(state.settingsRecovered!.reason).toContain('settings.json');

    await client.call('settings.set', { promptTimeoutSeconds: 20 });
    expect(readFileSync(copy).equals(damaged)).toBe(true);
    const after = await client.call('state.get', {});
    expect(after.settingsRecovered).toBeUndefined();
    expect(after.settings).toMatchObject({ failOpen: false, promptTimeoutSeconds: 20 });
  }, 90_000);
});
