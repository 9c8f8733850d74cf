/**
 * The Rules and Settings views follow the helper, in Debian's Chromium through the web
 * host: a rule removed from the command line (another client) leaves the open Rules view
 * without a reload, and a command-line option that overrides a saved setting is shown
 * next to it. The helper runs in a namespace this file creates and is started and
 * stopped by PID.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import type { RunningUi } from '../../src-main/node/web-cli.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../support/chromium.js';
import { showView, startTestUi } from '../support/web-ui.js';
import { helperArgs, HelperProcess, removeHelperRules } from '../support/helper-process.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';

function missing(): string | undefined {
  return (
    firewallTestsUnavailable() ??
    (existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed`)
  );
}
const skip = missing();
if (skip) console.warn(`skipping the live rules UI tests: ${skip}`);

const QUEUE = 24;

describe.skipIf(skip)('the Rules and Settings views follow the helper', () => {
  let ns: TestNetns;
  let dir: string;
  let socket: string;
  let helper: HelperProcess | undefined;
  let ui: RunningUi | undefined;
  let browser: Browser | undefined;
  let page: Page;

  async function startHelper(extra: string[] = []): Promise<void> {
    helper = new HelperProcess([
      ...helperArgs({ netns: ns.name, queue: QUEUE, socket, stateDir: join(dir, 'state') }),
      ...['--no-gui-policy', 'allow', '--default-action', 'allow'],
      ...extra,
    ]);
    await helper.ready();
  }

  /** The command line's client (what `portcullis rules remove` uses). */
  async function cli(): Promise<IpcClient> {
    const token = readFileSync(join(dir, 'run', 'token'), 'utf8').trim();
    return IpcClient.connect({ path: socket, token, build: 'rules-live-ui-test' });
  }

  const view = (name: string): Promise<void> => showView(page, name);

  beforeAll(async () => {
    ns = new TestNetns('pcl-rlu');
    dir = mkdtempSync(join(tmpdir(), 'pcl-rules-ui-'));
    socket = join(dir, 'run', 'helper.sock');
    await startHelper();
    ui = await startTestUi(socket, join(dir, 'run', 'token'));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(ui.host.issueUrl(null));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await ui?.stop();
    await helper?.stop();
    if (ns) await removeHelperRules(ns.name);
    ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('a rule added and then removed from the command line appears and disappears in the open Rules view', async () => {
    await view('Rules');
    const c = await cli();
    const rule = await c.call('rules.add', {
      action: 'deny',
      match: { host: 'live.example.test' },
      duration: { kind: 'forever' },
      note: 'added from the command line',
    });
    const row = page.getByRole('button', { name: `Delete rule ${rule.id}` });
    await row.waitFor({ timeout: 20_000 });
    await c.call('rules.remove', { id: rule.id });
    await row.waitFor({ state: 'detached', timeout: 20_000 });
    await c.close();
  }, 60_000);

  it('Settings shows a setting overridden by a command-line option, with the saved value', async () => {
    const c = await cli();
    await c.call('settings.set', { failOpen: true });
    await c.close();
    await helper!.stop();
    await startHelper(['--fail-closed']);
    await view('Settings');
    await page.getByTestId('settings-overridden').waitFor({ timeout: 30_000 });
    // Next to the setting it overrides.
    const note = page.locator('fieldset', { hasText: 'When the helper is gone or overloaded' });
    await expect(note.getByTestId('overridden-failOpen').textContent()).resolves.toContain(
      "Set by --fail-closed at the helper's start; saved value: open.",
    );
    expect(await page.locator('input[name=failOpen]:checked').getAttribute('value')).toBe('false');
  }, 90_000);
});
