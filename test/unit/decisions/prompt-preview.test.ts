/**
 * The prompt card's "Remembers: ..." preview and the rule the helper saves
 * for the same answer are one thing: the UI's preview (src-main/common, what
 * PromptCard.vue renders) against a real PromptBroker over a real RuleStore.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PromptBroker, RuleStore } from '../../../helper/decisions/index.js';
import type { AnswerScope } from '../../../helper/protocol/model.js';
import { describeMatch, matchForScope } from '../../../src-main/common/matching.js';
import { ManualClock, proc, req } from './fixtures.js';

let dir: string;
let store: RuleStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-preview-'));
  store = await RuleStore.open({ dir, clock: new ManualClock() });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An ssh login from 198.51.100.7 to this host's 192.168.1.10:22. */
const inbound = req({
  direction: 'inbound',
  src: '198.51.100.7',
  sport: 51000,
  dst: '192.168.1.10',
  dport: 22,
  host: null,
  inIfindex: 2,
  outIfindex: null,
  process: proc({ comm: 'sshd', exe: '/usr/sbin/sshd', cmdline: ['sshd'], uid: 0 }),
  uid: 0,
});

describe('an inbound prompt: the preview is the rule the answer saves', () => {
  it.each(['destination', 'port', 'any'] as const)('scope %s', async (scope: AnswerScope) => {
    const broker = new PromptBroker({
      rules: store,
      guiConnected: true,
      clock: new ManualClock(),
      settings: { defaultAction: 'deny', promptTimeoutSeconds: 30, noGuiPolicy: 'deny' },
    });
    broker.ask(inbound);
    const [prompt] = broker.pending();
    const preview = matchForScope(prompt!.request, scope);
    const { rule } = broker.answer({
      promptId: prompt!.id,
      action: 'allow',
      duration: { kind: 'forever' },
      scope,
    });
    expect(rule!.match).toEqual(preview);
    expect(describeMatch(rule!.match)).toBe(describeMatch(preview));
    broker.close();
  });

  it('names the remote side and keeps the uid', () => {
    const preview = describeMatch(matchForScope(inbound, 'destination'));
    expect(preview).toBe('/usr/sbin/sshd uid 0 from 198.51.100.7 port 22 tcp');
  });
});
