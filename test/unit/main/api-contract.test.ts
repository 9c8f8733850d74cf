import { describe, expect, it } from 'vitest';
import {
  ApiError,
  channelName,
  INVOKE_CHANNELS,
  PUSH_CHANNELS,
  subscribeMethod,
  type PortcullisApi,
} from '../../../src-main/common/api.js';
import { describeMatch, matchForScope } from '../../../src-main/common/matching.js';
import { MemoryPortcullis } from '../../support/memory-api.js';
import { addressMatches, hostMatches, requestMatches } from '../../support/memory-matching.js';
import { request } from '../renderer/fixtures.js';

describe('PortcullisApi contract', () => {
  it('lists every channel once, with a prefixed name and a subscribe method', () => {
    expect(new Set(INVOKE_CHANNELS).size).toBe(INVOKE_CHANNELS.length);
    expect(INVOKE_CHANNELS).toContain('answerPrompt');
    expect(INVOKE_CHANNELS).toHaveLength(20);
    expect(channelName('killFlow')).toBe('portcullis:killFlow');
    expect(PUSH_CHANNELS.map(subscribeMethod)).toEqual([
      'onFlows',
      'onPrompts',
      'onVerdicts',
      'onStats',
      'onHelperStatus',
      'onRules',
    ]);
  });

  it('the in-memory API implements every operation and subscription', () => {
    const api: PortcullisApi = new MemoryPortcullis();
    for (const name of INVOKE_CHANNELS) expect(typeof api[name], name).toBe('function');
    for (const ch of PUSH_CHANNELS) expect(typeof api[subscribeMethod(ch)], ch).toBe('function');
  });

  it('errors carry a code', async () => {
    const api = new MemoryPortcullis();
    const err = await api.killFlow(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'not-found', name: 'NotFoundError' });
  });

  it('subscriptions start with a snapshot and stop on unsubscribe', () => {
    const api = new MemoryPortcullis();
    const seen: string[] = [];
    const stop = api.onFlows((e) => seen.push(e.kind));
    api.removeFlows([]);
    stop();
    api.removeFlows([]);
    expect(seen).toEqual(['snapshot', 'delta']);
  });
});

describe('rule matches', () => {
  const r = request();

  it('derives the remembered match from the answer scope', () => {
    expect(matchForScope(r, 'any')).toEqual({
      direction: 'outbound',
      exe: '/usr/bin/curl',
      uid: 1000,
    });
    expect(matchForScope(r, 'port')).toEqual({
      direction: 'outbound',
      exe: '/usr/bin/curl',
      uid: 1000,
      protocol: 'tcp',
      port: { from: 443, to: 443 },
    });
    expect(matchForScope(r, 'destination')).toMatchObject({ host: 'example.com' });
    expect(matchForScope({ ...r, host: null }, 'destination')).toMatchObject({
      address: '203.0.113.5',
    });
    const sandboxed = { ...r, process: { ...r.process!, appId: 'org.mozilla.firefox' } };
    expect(matchForScope(sandboxed, 'any')).toEqual({
      direction: 'outbound',
      appId: 'org.mozilla.firefox',
      uid: 1000,
    });
  });

  it('matches hosts, addresses and CIDRs as model.ts describes', () => {
    expect(hostMatches('example.com', 'Example.COM.')).toBe(true);
    expect(hostMatches('*.example.com', 'example.com')).toBe(false);
    expect(hostMatches('*.example.com', 'a.b.example.com')).toBe(true);
    expect(addressMatches('198.18.0.0/15', '198.19.255.1')).toBe(true);
    expect(addressMatches('198.18.0.0/15', '198.20.0.1')).toBe(false);
    expect(addressMatches('2001:db8::/32', '2001:db8:ffff::1')).toBe(true);
    expect(addressMatches('2001:db8::/32', '2001:db9::1')).toBe(false);
    expect(addressMatches('::1', '0:0:0:0:0:0:0:1')).toBe(true);
    expect(addressMatches('10.0.0.1', '::ffff:10.0.0.1')).toBe(false);
    expect(addressMatches('10.0.0.0/33', '10.0.0.1')).toBe(false);
  });

  it('requires every present field', () => {
    expect(requestMatches({}, r)).toBe(true);
    expect(requestMatches({ exe: '/usr/bin/curl', port: { from: 400, to: 500 } }, r)).toBe(true);
    expect(requestMatches({ exe: '/usr/bin/curl', protocol: 'udp' }, r)).toBe(false);
    expect(requestMatches({ uid: 1000, direction: 'inbound' }, r)).toBe(false);
    expect(requestMatches({ port: { from: 1, to: 2 } }, { ...r, dport: null })).toBe(false);
    expect(describeMatch({ exe: '/usr/bin/curl', port: { from: 1, to: 9 } })).toBe(
      '/usr/bin/curl any host ports 1-9',
    );
  });
});
