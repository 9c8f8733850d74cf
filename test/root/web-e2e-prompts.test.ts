/**
 * The prompt through the UI: a real `portcullis helper --netns NS` child, the
 * web host bridged to its socket and Debian's Chromium at 1280x800. Six real
 * programs wait at once: their six prompts fit in the window, each shows the
 * program's pid and (bounded) command line; a person answers one for
 * `*.domain` and 5 minutes, and the rule the helper saves is the one the card
 * previewed, letting a sibling name through without a prompt. Saves
 * docs/screenshots/prompts-many.png.
 *
 * Only the namespaces, temp dirs and children this file creates are touched;
 * children are stopped by PID, the browser by browser.close().
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import type { RunningUi } from '../../src-main/node/web-cli.js';
import { DnsServer } from '../support/dns-server.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import type { Peer, PeerEvent } from '../support/tcp-peers.js';
import { echoServer, vethPair } from '../support/tcp-peers.js';
import { sleep } from '../support/udp-agent.js';
import { resolvingClient } from '../support/resolving-client.js';
import {
  helperArgs,
  HelperProcess,
  promptingArgs,
  removeHelperRules,
} from '../support/helper-process.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../support/chromium.js';
import { showView, startTestUi } from '../support/web-ui.js';

function missing(): string | undefined {
  const firewall = firewallTestsUnavailable();
  if (firewall) return firewall;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed`;
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping web prompt end-to-end tests: ${skip}`);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHOTS = join(ROOT, 'docs', 'screenshots');
const QUEUE = 23;
const PORTS = [9001, 9002, 9003, 9004, 9005, 9006];
const DOMAIN = 'prompt-e2e.test';
const API = `api.${DOMAIN}`;
const CDN = `cdn.${DOMAIN}`;
const VIEWPORT = { width: 1280, height: 800 };

describe.skipIf(skip)('the prompt, in Chromium against the real helper', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  const echoes: Peer[] = [];
  const programs: Peer[] = [];
  let dns: DnsServer | undefined;
  let dir: string;
  let socket: string;
  let tokenFile: string;
  let helper: HelperProcess | undefined;
  let ui: RunningUi | undefined;
  let browser: Browser | undefined;
  let page: Page;

  function run(host: string, port: number, options: { hold?: boolean } = {}): Peer {
    const p = resolvingClient(client, addr.b, host, port, { timeoutMs: 60_000, ...options });
    programs.push(p);
    return p;
  }

  function card(port: number) {
    return page.getByRole('listitem').filter({ hasText: `${port} / tcp` });
  }

  async function call<T>(fn: (c: IpcClient) => Promise<T>): Promise<T> {
    const c = await IpcClient.connect({
      path: socket,
      token: readFileSync(tokenFile, 'utf8').trim(),
    });
    try {
      return await fn(c);
    } finally {
      await c.close();
    }
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    client = new TestNetns('pcl-wpc');
    server = new TestNetns('pcl-wps');
    addr = vethPair(client, server);
    for (const port of PORTS) echoes.push(await echoServer(server, addr.b, port));
    dns = new DnsServer(server, [addr.b], {
      [API]: { A: [[addr.b, 300]] },
      [CDN]: { A: [[addr.b, 300]] },
    });
    await dns.ready();
    dir = mkdtempSync(join(tmpdir(), 'pcl-web-prompts-'));
    socket = join(dir, 'run', 'helper.sock');
    tokenFile = join(dir, 'run', 'token');
    helper = new HelperProcess([
      ...helperArgs({ netns: client.name, queue: QUEUE, socket, stateDir: join(dir, 'state') }),
      ...promptingArgs(120),
    ]);
    await helper.ready();
    // DNS is decided too: a remembered rule lets the lookups through.
    await call((c) =>
      c.call('rules.add', {
        action: 'allow',
        match: { protocol: 'udp', port: { from: 53, to: 53 } },
        duration: { kind: 'forever' },
        note: 'DNS',
      }),
    );
    delete process.env['PORTCULLIS_TOKEN'];
    ui = await startTestUi(socket, tokenFile);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    const context = await browser.newContext({ viewport: VIEWPORT });
    page = await context.newPage();
    await page.goto(ui.host.issueUrl(null));
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 20_000 });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await ui?.stop();
    for (const p of programs) p.stop();
    await helper?.stop();
    for (const e of echoes) e.stop();
    dns?.stop();
    if (client) await removeHelperRules(client.name);
    client?.delete();
    server?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('six pending prompts fit in one 1280x800 window, each with pid and a bounded command line', async () => {
    const waiting = PORTS.map((port) => run(API, port, { hold: true }));
    const pids = await Promise.all(
      waiting.map(
        async (p) => ((await p.next('resolved', 30_000)) as PeerEvent & { pid: number }).pid,
      ),
    );
    await showView(page, 'Prompts');
    for (const port of PORTS) await card(port).waitFor({ timeout: 30_000 });
    await sleep(300); // the last card's layout settles (fonts, icon)
    await page.screenshot({ path: join(SHOTS, 'prompts-many.png') });
    for (const [i, port] of PORTS.entries()) {
      const box = await card(port).boundingBox();
      expect(box, `card ${port}`).not.toBeNull();
      expect(box!.y, `card ${port} top`).toBeGreaterThanOrEqual(0);
      expect(box!.y + box!.height, `card ${port} bottom`).toBeLessThanOrEqual(VIEWPORT.height);
      await expect(card(port).textContent()).resolves.toContain(`pid ${pids[i]}`);
    }
    // The program's command line (node -e <a long script>) stays on one line of its card.
    const cmd = card(PORTS[0]!).getByTestId('prompt-cmdline');
    await expect(cmd.getAttribute('title')).resolves.toContain('dns.promises.Resolver');
    const cmdBox = (await cmd.boundingBox())!;
    const cardBox = (await card(PORTS[0]!).boundingBox())!;
    expect(cmdBox.x + cmdBox.width).toBeLessThanOrEqual(cardBox.x + cardBox.width);
    expect(cmdBox.height).toBeLessThan(30);
  }, 120_000);

  it('a person picks *.domain and 5 minutes: the saved rule is the preview and lets a sibling name through', async () => {
    const port = PORTS[0]!;
    const c = card(port);
    await c.getByRole('button', { name: 'Options' }).click();
    await c.getByRole('radio', { name: `*.${DOMAIN}` }).check();
    await c.getByRole('combobox', { name: 'For' }).selectOption({ label: '5 minutes' });
    const preview = await c.locator('.preview').textContent();
    expect(preview).toContain(`to *.${DOMAIN} port ${port} tcp`);
    // Allow by keyboard, in the card's focus order: Allow, Deny, Deny silently, For.
    await c.getByRole('combobox', { name: 'For' }).focus();
    for (let i = 0; i < 3; i++) await page.keyboard.press('Shift+Tab');
    expect((await page.locator(':focus').textContent())?.trim()).toBe('Allow');
    await page.keyboard.press('Enter');
    await expect.poll(() => card(port).count(), { timeout: 10_000 }).toBe(0);

    const { rules } = await call((ipc) => ipc.call('rules.list', {}));
    const rule = rules.find((r) => r.match.host === `*.${DOMAIN}`);
    expect(rule).toMatchObject({
      action: 'allow',
      duration: { kind: 'minutes', minutes: 5 },
      match: { host: `*.${DOMAIN}`, port: { from: port, to: port }, protocol: 'tcp' },
    });
    expect(rule!.expires! - rule!.created).toBe(5 * 60_000);

    // Another name under the domain, same port: decided by that rule, no prompt.
    const sibling = run(CDN, port);
    const connected = await sibling.next('connected', 30_000);
    expect(await sibling.next('end', 30_000)).toMatchObject({ ok: true });
    const { entries } = await call((ipc) => ipc.call('history.query', { limit: 50 }));
    expect(entries.find((e) => e.request.sport === connected.sport)).toMatchObject({
      action: 'allow',
      reason: 'rule',
      ruleId: rule!.id,
      request: { host: CDN },
    });
  }, 120_000);
});
