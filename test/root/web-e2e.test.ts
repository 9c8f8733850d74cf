/**
 * End to end through the UI: a real `portcullis helper --netns NS` child, the
 * web host (`portcullis ui --web`'s startUi, in this process) bridged to its
 * socket, and Debian's Chromium (playwright-core) on the web host's URL.
 * Programs in the client namespace resolve a name with a test DNS server in
 * the peer namespace and connect over a veth pair; the person's clicks in the
 * page decide. Saves a screenshot of each view under docs/screenshots/.
 *
 * Only the namespaces, temp dirs and children this file creates are touched;
 * children are stopped by PID, the browser by browser.close().
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import { requestLink } from '../../src-main/node/ui-links.js';
import type { RunningUi } from '../../src-main/node/web-cli.js';
import { DnsServer } from '../support/dns-server.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import type { Peer } from '../support/tcp-peers.js';
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
if (skip) console.warn(`skipping web end-to-end tests: ${skip}`);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHOTS = join(ROOT, 'docs', 'screenshots');
const QUEUE = 19;
const PORTS = [8080, 8081, 8082, 8083, 8084];
const HOST = 'app.web-e2e.test';
const PROMPT_TIMEOUT_S = 60;
/** The programs' icon: a test .desktop entry for this node names it (see beforeAll). */
const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">' +
  '<path d="M16 2 29 9.5v13L16 30 3 22.5v-13z" fill="#3c873a"/>' +
  '<text x="16" y="21" font-size="12" text-anchor="middle" fill="#fff">js</text></svg>\n';

describe.skipIf(skip)('the UI through the web host, against the real helper', () => {
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
  /** The one-time link the page was opened with. */
  let link: string;
  let foreign: Server | undefined;
  const savedEnv: Record<string, string | undefined> = {};

  function run(port: number, options: { hold?: boolean; timeoutMs?: number } = {}): Peer {
    const p = resolvingClient(client, addr.b, HOST, port, {
      timeoutMs: 60_000,
      ...options,
    });
    programs.push(p);
    return p;
  }

  const view = (name: string): Promise<void> => showView(page, name);

  async function shot(name: string): Promise<void> {
    await sleep(300);
    await page.screenshot({ path: join(SHOTS, `${name}.png`) });
  }

  /** The prompt card for a port. */
  function card(port: number) {
    return page.getByRole('listitem').filter({ hasText: `${port} / tcp` });
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    client = new TestNetns('pcl-wec');
    server = new TestNetns('pcl-wes');
    addr = vethPair(client, server);
    for (const port of PORTS) echoes.push(await echoServer(server, addr.b, port));
    dns = new DnsServer(server, [addr.b], { [HOST]: { A: [[addr.b, 300]] } });
    await dns.ready();
    dir = mkdtempSync(join(tmpdir(), 'pcl-web-e2e-'));
    socket = join(dir, 'run', 'helper.sock');
    tokenFile = join(dir, 'run', 'token');
    helper = new HelperProcess([
      ...helperArgs({ netns: client.name, queue: QUEUE, socket, stateDir: join(dir, 'state') }),
      ...promptingArgs(PROMPT_TIMEOUT_S),
    ]);
    await helper.ready();
    // DNS is decided too: a remembered rule lets the lookups through.
    const c = await IpcClient.connect({
      path: socket,
      token: readFileSync(tokenFile, 'utf8').trim(),
    });
    await c.call('rules.add', {
      action: 'allow',
      match: { protocol: 'udp', port: { from: 53, to: 53 } },
      duration: { kind: 'forever' },
      note: 'DNS',
    });
    await c.close();

    delete process.env['PORTCULLIS_TOKEN'];
    // The web host resolves program icons from the user's XDG directories: point them at
    // a tree with one entry for the node binary the test programs run (nothing else).
    const xdg = join(dir, 'xdg');
    mkdirSync(join(xdg, 'applications'), { recursive: true });
    mkdirSync(join(xdg, 'icons', 'hicolor', 'scalable', 'apps'), { recursive: true });
    writeFileSync(
      join(xdg, 'applications', 'portcullis-e2e-node.desktop'),
      `[Desktop Entry]\nType=Application\nName=Node\nExec=${realpathSync(process.execPath)} %F\nIcon=portcullis-e2e-node\n`,
    );
    writeFileSync(
      join(xdg, 'icons', 'hicolor', 'scalable', 'apps', 'portcullis-e2e-node.svg'),
      ICON_SVG,
    );
    for (const k of ['XDG_DATA_HOME', 'XDG_DATA_DIRS', 'XDG_CONFIG_HOME'])
      savedEnv[k] = process.env[k];
    process.env['XDG_DATA_HOME'] = xdg;
    process.env['XDG_DATA_DIRS'] = xdg;
    process.env['XDG_CONFIG_HOME'] = join(dir, 'config');
    ui = await startTestUi(socket, tokenFile);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    link = ui.host.issueUrl(null);
    await page.goto(link);
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 20_000 });
  }, 240_000);

  afterAll(async () => {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await browser?.close();
    await ui?.stop();
    await new Promise<void>((resolve) => (foreign ? foreign.close(() => resolve()) : resolve()));
    for (const p of programs) p.stop();
    await helper?.stop();
    for (const e of echoes) e.stop();
    dns?.stop();
    if (client) await removeHelperRules(client.name);
    client?.delete();
    server?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('the one-time code left the address bar', () => {
    expect(page.url()).toBe(`${ui!.host.origin}/`);
  });

  it('a queued connection appears as a prompt; Allow lets it connect; the flow is in Connections; kill ends it', async () => {
    const p = run(8080, { hold: true });
    await p.next('resolved', 30_000);
    await view('Prompts');
    await card(8080).waitFor({ timeout: 30_000 });
    await expect(card(8080).textContent()).resolves.toContain(HOST);
    // The program's icon, from its .desktop entry: an SVG data: URL in an <img> that the
    // browser decoded under the page's CSP.
    const icon = card(8080).locator('img[alt="node icon"]');
    await icon.waitFor({ timeout: 10_000 });
    expect(await icon.getAttribute('src')).toMatch(/^data:image\/svg\+xml;base64,/);
    await expect
      .poll(() => icon.evaluate((e) => (e as unknown as { naturalWidth: number }).naturalWidth), {
        timeout: 5000,
      })
      .toBeGreaterThan(0);
    // Its parent chain, compactly: this test's node process started it.
    await expect(card(8080).getByTestId('prompt-via').textContent()).resolves.toMatch(
      /^node( ← |$)/,
    );
    await shot('prompts');
    await card(8080).getByRole('button', { name: 'Allow' }).click();
    await p.next('connected', 30_000);
    await p.next('echoed', 30_000);

    await view('Connections');
    const row = page
      .getByRole('grid', { name: 'Connections' })
      .getByRole('row')
      .filter({ hasText: '8080' });
    await row.first().waitFor({ timeout: 30_000 });
    await row.first().locator('img[alt="node icon"]').waitFor({ timeout: 10_000 });
    await shot('connections');
    await row.first().click();
    await expect(page.locator('aside').textContent()).resolves.toContain(
      `Started bynode (pid ${process.pid}, `,
    );
    // Escape closes the details pane; a click opens it again.
    await page.keyboard.press('Escape');
    await page.locator('aside').waitFor({ state: 'detached', timeout: 10_000 });
    await row.first().click();
    await page.getByRole('button', { name: 'Kill connection' }).click();
    const end = await p.next('end', 30_000);
    expect(end).toMatchObject({ ok: false });
    await expect.poll(() => row.count(), { timeout: 30_000 }).toBe(0);
  }, 120_000);

  it('Deny makes the connection fail', async () => {
    const p = run(8081, { timeoutMs: 8000 });
    await view('Prompts');
    await card(8081).waitFor({ timeout: 30_000 });
    await card(8081).getByRole('button', { name: 'Deny', exact: true }).click();
    const end = await p.next('end', 30_000);
    // Refused at once (a TCP reset from the helper's rules), not left to time out.
    expect(end).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
    expect(p.events.some((e) => e.ev === 'connected')).toBe(false);
    // No new prompt, and one history row for the attempt (the card leaves with the answer).
    await expect.poll(() => card(8081).count(), { timeout: 10_000 }).toBe(0);
    const c = await IpcClient.connect({
      path: socket,
      token: readFileSync(tokenFile, 'utf8').trim(),
    });
    const { entries } = await c.call('history.query', { limit: 50 });
    await c.close();
    expect(entries.filter((e) => e.request.dport === 8081)).toHaveLength(1);
  }, 90_000);

  it('a rule made from the prompt is listed in Rules and applies to the next connection', async () => {
    const first = run(8082);
    await view('Prompts');
    await card(8082).waitFor({ timeout: 30_000 });
    await card(8082).getByRole('combobox').selectOption('forever');
    await card(8082).getByRole('button', { name: 'Allow' }).click();
    expect(await first.next('end', 30_000)).toMatchObject({ ok: true });

    await view('Rules');
    const ruleRow = page.locator('tr[data-rule]').filter({ hasText: '8082' });
    await ruleRow.first().waitFor({ timeout: 20_000 });
    await shot('rules');

    const next = run(8082);
    const connected = await next.next('connected', 30_000);
    expect(await next.next('end', 30_000)).toMatchObject({ ok: true });
    // Decided by the rule, without a prompt.
    const c = await IpcClient.connect({
      path: socket,
      token: readFileSync(tokenFile, 'utf8').trim(),
    });
    const { entries } = await c.call('history.query', { limit: 20 });
    await c.close();
    const ruleId = await ruleRow.first().getAttribute('data-rule');
    expect(entries.find((e) => e.request.sport === connected.sport)).toMatchObject({
      action: 'allow',
      reason: 'rule',
      ruleId,
    });
    await view('Prompts');
    expect(await card(8082).count()).toBe(0);
  }, 90_000);

  it('the Activity and Settings views render against the helper', async () => {
    await view('Activity');
    // The history says what happened in words: the connection the 8082 rule let through
    // names that rule by what it matches, not by its id.
    const decided = page.locator('.history tbody tr').filter({ hasText: '8082' });
    await expect
      .poll(() => decided.allTextContents(), { timeout: 10_000 })
      .toContainEqual(expect.stringMatching(/Allowed.*Rule: .*port 8082/));
    expect((await decided.allTextContents()).join(' ')).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
    await shot('activity');
    await view('Settings');
    // The helper turned conntrack accounting on in its namespace, and says so.
    await expect(
      page.locator('[data-testid=conntrack-accounting]').textContent(),
    ).resolves.toContain(
      'byte and packet counters on, flow start times on (turned on by the helper',
    );
    // Which path names programs: eBPF where the kernel allows it, else the flagged fallback.
    const attribution = await page.locator('[data-testid=attribution]').textContent();
    expect(attribution).toMatch(/^\s*(eBPF: owners recorded|\/proc \+ sock_diag fallback)/);
    expect(await page.locator('[data-testid=attribution-fallback]').count()).toBe(
      attribution!.includes('fallback') ? 1 : 0,
    );
    await shot('settings');
  }, 30_000);

  it('a reload keeps the session, so does the used link in its tab; elsewhere it and a wrong code are refused', async () => {
    await page.reload();
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 20_000 });
    // The used link again in the same tab: its session still serves it.
    await page.goto('about:blank');
    await page.goto(link);
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 20_000 });
    expect(page.url()).toBe(`${ui!.host.origin}/`);
    const other = await browser!.newPage();
    for (const url of [link, `${ui!.host.origin}/#code=wrong`]) {
      await other.goto(url);
      await other
        .getByRole('alert')
        .filter({ hasText: /refused this link/ })
        .waitFor({ timeout: 20_000 });
    }
    await other.close();
  }, 60_000);

  it('a tab without a session says which command gives a link; the link pasted into that tab opens the UI', async () => {
    const other = await browser!.newPage();
    // A bookmark, or the address without its fragment, in a tab that never had a session.
    await other.goto(`${ui!.host.origin}/`);
    const alert = other.getByRole('alert');
    await alert.waitFor({ timeout: 20_000 });
    await expect(alert.textContent()).resolves.toContain('portcullis ui link');
    // What `portcullis ui link` prints, from the running UI's link socket.
    const fresh = await requestLink(ui!.host.port);
    expect(fresh.startsWith(`${ui!.host.origin}/#code=`)).toBe(true);
    // Pasted into the same tab: only the fragment changes, and the page starts again with it.
    await other.goto(fresh);
    await other
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 20_000 });
    expect(other.url()).toBe(`${ui!.host.origin}/`);
    await other.close();
  }, 60_000);

  it('the web host refuses a foreign Origin', async () => {
    const other = await browser!.newPage();

    // A page of another origin (another port) tries the WebSocket.
    foreign = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>foreign</title>');
    });
    await new Promise<void>((resolve) => foreign!.listen(0, '127.0.0.1', resolve));
    const port = (foreign.address() as AddressInfo).port;
    await other.goto(`http://127.0.0.1:${port}/`);
    const outcome = await other.evaluate(
      (url) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve('open');
          ws.onclose = (e) => resolve(`closed ${e.code}`);
        }),
      `ws://127.0.0.1:${ui!.host.port}/ws`,
    );
    expect(outcome).toBe('closed 1006');
    await other.close();
  }, 60_000);

  it('a closed tab stops counting as a GUI: the next connection gets the no-GUI policy at once; a new tab brings prompts back', async () => {
    const noGui = (): number =>
      helper!.lines.filter((l) => l.includes('no GUI: no-GUI policy')).length;
    const before = noGui();
    await page.close();
    // The web host lets go of the prompts a few seconds after the last page left.
    await expect.poll(noGui, { timeout: 30_000 }).toBeGreaterThan(before);
    const p = run(8083, { timeoutMs: 20_000 });
    const connected = await p.next('connected', 30_000);
    expect(await p.next('end', 30_000)).toMatchObject({ ok: true });
    const c = await IpcClient.connect({
      path: socket,
      token: readFileSync(tokenFile, 'utf8').trim(),
    });
    const { entries } = await c.call('history.query', { limit: 20 });
    await c.close();
    // --no-gui-policy allow, without waiting the 60 s prompt timeout for nobody.
    expect(entries.find((e) => e.request.sport === connected.sport)).toMatchObject({
      action: 'allow',
      reason: 'no-gui',
    });

    // A new tab (a fresh link): the helper asks again.
    page = await browser!.newPage();
    await page.goto(ui!.host.issueUrl(null));
    await page
      .locator('footer.statusbar[data-connection="connected"]')
      .waitFor({ timeout: 20_000 });
    const asked = run(8083, { hold: true });
    await view('Prompts');
    await card(8083).waitFor({ timeout: 30_000 });
    await card(8083).getByRole('button', { name: 'Allow' }).click();
    await asked.next('connected', 30_000);
  }, 120_000);

  it('Deny silently in a prompt: the program is not told (it times out), and the rule says so', async () => {
    const p = run(8084, { timeoutMs: 4000 });
    await view('Prompts');
    await card(8084).waitFor({ timeout: 30_000 });
    await card(8084).getByRole('combobox').selectOption('forever');
    await card(8084).getByRole('button', { name: 'Deny silently' }).click();
    // Dropped: no reset, no ICMP error; the program gives up on its own timeout.
    expect(await p.next('end', 30_000)).toMatchObject({ ok: false, error: 'ETIMEDOUT' });
    await view('Rules');
    const ruleRow = page.locator('tr[data-rule]').filter({ hasText: '8084' });
    await ruleRow.first().waitFor({ timeout: 20_000 });
    await expect(ruleRow.first().textContent()).resolves.toContain('deny silently');
    const c = await IpcClient.connect({
      path: socket,
      token: readFileSync(tokenFile, 'utf8').trim(),
    });
    const { rules } = await c.call('rules.list', {});
    await c.close();
    const id = await ruleRow.first().getAttribute('data-rule');
    expect(rules.find((r) => r.id === id)).toMatchObject({ action: 'deny', denyWith: 'drop' });
  }, 90_000);
});
