/**
 * The UI while the helper is down, in Debian's Chromium through the web host: a banner
 * says whether new connections are blocked or pass unasked, and it tells the truth (a real
 * program's connection is tried each time); the flow table says it is stale; Settings
 * shows no invented values. The helper runs in a namespace this file creates and is
 * started, killed (SIGKILL) and stopped (SIGTERM) by PID.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningUi } from '../../src-main/node/web-cli.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../support/chromium.js';
import { showView, startTestUi } from '../support/web-ui.js';
import { helperArgs, HelperProcess, removeHelperRules } from '../support/helper-process.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { echoServer, tcpExchange, vethPair, type Peer } from '../support/tcp-peers.js';

function missing(): string | undefined {
  return (
    firewallTestsUnavailable() ??
    (existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed`)
  );
}
const skip = missing();
if (skip) console.warn(`skipping the helper-down UI tests: ${skip}`);

const QUEUE = 23;
const PORT = 8090;

describe.skipIf(skip)('the UI while the helper is down', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  let echo: Peer | undefined;
  let dir: string;
  let socket: string;
  let helper: HelperProcess | undefined;
  let ui: RunningUi | undefined;
  let browser: Browser | undefined;
  let page: Page;

  async function startHelper(extra: string[] = []): Promise<void> {
    helper = new HelperProcess([
      ...helperArgs({ netns: client.name, queue: QUEUE, socket, stateDir: join(dir, 'state') }),
      // Nobody answers prompts here: the no-GUI policy lets connections through.
      ...['--no-gui-policy', 'allow', '--default-action', 'allow'],
      ...extra,
    ]);
    await helper.ready();
    await banner().waitFor({ state: 'detached', timeout: 30_000 });
  }

  function banner() {
    return page.getByTestId('helper-down');
  }

  const view = (name: string): Promise<void> => showView(page, name);

  /** Whether a real program in the namespace can connect now. */
  async function connects(): Promise<boolean> {
    return (await tcpExchange(client, addr.b, PORT, { count: 1, timeoutMs: 2500 })).ok === true;
  }

  beforeAll(async () => {
    client = new TestNetns('pcl-hdc');
    server = new TestNetns('pcl-hds');
    addr = vethPair(client, server);
    echo = await echoServer(server, addr.b, PORT);
    dir = mkdtempSync(join(tmpdir(), 'pcl-helper-down-'));
    socket = join(dir, 'run', 'helper.sock');
    ui = await startTestUi(socket, join(dir, 'run', 'token'));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(ui.host.issueUrl(null));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await ui?.stop();
    await helper?.stop();
    echo?.stop();
    if (client) await removeHelperRules(client.name);
    client?.delete();
    server?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('before any helper: the fail policy is unknown, and Settings invents no values', async () => {
    await banner().waitFor({ timeout: 20_000 });
    expect(await banner().getAttribute('data-tone')).toBe('unknown');
    await view('Settings');
    await page.getByTestId('settings-unknown').waitFor({ timeout: 10_000 });
    expect(await page.locator('input[name=defaultAction]:checked').count()).toBe(0);
  }, 60_000);

  it('a fail-open helper killed: "pass unasked", and a program does connect; the flows are marked stale', async () => {
    await startHelper();
    await view('Connections');
    expect(await page.getByTestId('flows-stale').count()).toBe(0);
    helper!.signal('SIGKILL');
    await helper!.exited;
    await banner().waitFor({ timeout: 20_000 });
    expect(await banner().getAttribute('data-tone')).toBe('open');
    await expect(banner().textContent()).resolves.toContain('pass unasked (fail-open)');
    await page.getByTestId('flows-stale').waitFor({ timeout: 10_000 });
    expect(await connects()).toBe(true);
    await view('Settings');
    await page.getByTestId('settings-stale').waitFor({ timeout: 10_000 });
  }, 90_000);

  it('a fail-closed helper killed: "blocked", and a program cannot connect', async () => {
    await startHelper(['--fail-closed']);
    helper!.signal('SIGKILL');
    await helper!.exited;
    await banner().waitFor({ timeout: 20_000 });
    expect(await banner().getAttribute('data-tone')).toBe('blocked');
    await expect(banner().textContent()).resolves.toContain('blocked (fail-closed)');
    expect(await connects()).toBe(false);
  }, 90_000);

  it('a helper stopped cleanly: its rules are gone and new connections are not checked', async () => {
    await startHelper(['--fail-closed']);
    const exit = await helper!.stop();
    expect(exit.code).toBe(0);
    await banner().waitFor({ timeout: 20_000 });
    await expect(banner().textContent()).resolves.toContain('removed its firewall rules');
    expect(await connects()).toBe(true);
  }, 90_000);
});
