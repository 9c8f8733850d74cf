/**
 * Prompts announced by the browser, in Debian's Chromium through the web host with the
 * real helper in a namespace this file creates: a page that may not notify offers a
 * button to allow it; a hidden page that may announces a real program's prompt, once.
 * Chromium's own Notification is used; an init script only records what it is given
 * and stands in for the tab being in the background (headless pages are never hidden).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningUi } from '../../src-main/node/web-cli.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../support/chromium.js';
import { showView, startTestUi } from '../support/web-ui.js';
import {
  helperArgs,
  HelperProcess,
  promptingArgs,
  removeHelperRules,
} from '../support/helper-process.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { echoServer, tcpExchange, vethPair, type Peer } from '../support/tcp-peers.js';

const skip =
  firewallTestsUnavailable() ?? (existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed`);
if (skip) console.warn(`skipping the browser notification tests: ${skip}`);

const QUEUE = 24;
const PORT = 8095;

/** Records each notification's title and body, and lets the test hide the page. */
const RECORDER = `
  window.__notices = [];
  window.__hidden = false;
  const Native = window.Notification;
  if (Native) {
    class Recorded extends Native {
      constructor(title, options) {
        super(title, options);
        window.__notices.push(title + ' | ' + ((options && options.body) || ''));
      }
    }
    Object.defineProperty(window, 'Notification', { value: Recorded, configurable: true });
  }
  Object.defineProperty(document, 'visibilityState', {
    configurable: true,
    get: () => (window.__hidden ? 'hidden' : 'visible'),
  });
`;

describe.skipIf(skip)('prompts announced by the browser', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  let echo: Peer | undefined;
  let dir: string;
  let helper: HelperProcess | undefined;
  let ui: RunningUi | undefined;
  let browser: Browser | undefined;

  async function open(granted: boolean): Promise<Page> {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    if (granted) await context.grantPermissions(['notifications'], { origin: ui!.host.origin });
    await context.addInitScript(RECORDER);
    const page = await context.newPage();
    await page.goto(ui!.host.issueUrl(null));
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 20_000 });
    return page;
  }

  beforeAll(async () => {
    client = new TestNetns('pcl-ntc');
    server = new TestNetns('pcl-nts');
    addr = vethPair(client, server);
    echo = await echoServer(server, addr.b, PORT);
    dir = mkdtempSync(join(tmpdir(), 'pcl-notices-'));
    const socket = join(dir, 'run', 'helper.sock');
    helper = new HelperProcess([
      ...helperArgs({ netns: client.name, queue: QUEUE, socket, stateDir: join(dir, 'state') }),
      ...promptingArgs(30),
    ]);
    await helper.ready();
    ui = await startTestUi(socket, join(dir, 'run', 'token'));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
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

  it('a page that may not notify yet offers to', async () => {
    const page = await open(false);
    await page.getByTestId('allow-notices').waitFor({ timeout: 10_000 });
    await page.context().close();
  }, 60_000);

  it('a hidden page that may notify announces a real prompt once', async () => {
    const page = await open(true);
    expect(await page.getByTestId('allow-notices').count()).toBe(0);
    await page.evaluate(() => {
      (globalThis as unknown as { __hidden: boolean }).__hidden = true;
    });
    const attempt = tcpExchange(client, addr.b, PORT, { count: 1, timeoutMs: 20_000 });
    await expect
      .poll(
        () => page.evaluate(() => (globalThis as unknown as { __notices: string[] }).__notices),
        {
          timeout: 20_000,
        },
      )
      .toEqual([expect.stringMatching(new RegExp(`wants to connect \\| ${addr.b}:${PORT}$`))]);
    // Answered in the page: the program connects, and nothing more is announced.
    await page.evaluate(() => {
      (globalThis as unknown as { __hidden: boolean }).__hidden = false;
    });
    await showView(page, 'Prompts');
    await page.getByRole('button', { name: 'Allow' }).first().click();
    expect((await attempt).ok).toBe(true);
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { __notices: string[] }).__notices.length,
      ),
    ).toBe(1);
    await page.context().close();
  }, 90_000);
});
