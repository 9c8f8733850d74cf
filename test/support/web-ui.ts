/**
 * The web UI as the end-to-end tests drive it: `portcullis ui --web`'s startUi in this
 * process, against a helper's socket, and the page's view switcher.
 */
import type { Page } from 'playwright-core';
import { startUi, type RunningUi } from '../../src-main/node/web-cli.js';

/**
 * The web host on a free port for the helper at `socket`, reading its token from
 * `tokenFile` (never from the environment, which a test run may carry), quiet.
 */
export function startTestUi(socket: string, tokenFile: string): Promise<RunningUi> {
  delete process.env['PORTCULLIS_TOKEN'];
  return startUi(
    { web: true, port: 0, socket, tokenFile, open: false, help: false },
    () => undefined,
  );
}

/** Opens one of the UI's views by its navigation button. */
export async function showView(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name }).click();
}
