import { describe, expect, it } from 'vitest';
import {
  DecisionsError,
  compileMatch,
  normalizeHost,
  ruleMatches,
} from '../../../helper/decisions/index.js';
import type { ConnectionRequest, RuleMatch } from '../../../helper/protocol/model.js';
import { proc, req } from './fixtures.js';

type Case = [name: string, match: RuleMatch, request: ConnectionRequest, expected: boolean];

const cases: Case[] = [
  ['empty match matches anything', {}, req(), true],
  ['exe equal', { exe: '/usr/bin/curl' }, req(), true],
  ['exe differs', { exe: '/usr/bin/wget' }, req(), false],
  ['exe needs a process', { exe: '/usr/bin/curl' }, req({ process: null }), false],
  [
    'appId equal',
    { appId: 'org.mozilla.firefox' },
    req({ process: proc({ appId: 'org.mozilla.firefox' }) }),
    true,
  ],
  ['appId absent on request', { appId: 'org.mozilla.firefox' }, req(), false],
  ['unit equal', { unit: 'app-curl.scope' }, req(), true],
  ['unit differs', { unit: 'cups.service' }, req(), false],
  ['uid from the socket owner', { uid: 1000 }, req({ process: null }), true],
  ['uid: socket owner first', { uid: 1000 }, req({ uid: 1000, process: proc({ uid: 0 }) }), true],
  [
    'uid: process uid when the socket owner is unknown',
    { uid: 0 },
    req({ uid: null, process: proc({ uid: 0 }) }),
    true,
  ],
  ['uid differs', { uid: 0 }, req(), false],
  ['uid unknown', { uid: 1000 }, req({ uid: null, process: null }), false],
  ['host exact', { host: 'www.api.example.com' }, req(), true],
  ['host exact, case-insensitive', { host: 'WWW.Api.Example.COM' }, req(), true],
  ['host exact, trailing dot in rule', { host: 'www.api.example.com.' }, req(), true],
  [
    'host exact, trailing dot in request',
    { host: 'www.api.example.com' },
    req({ host: 'WWW.api.example.com.' }),
    true,
  ],
  ['host exact differs', { host: 'api.example.com' }, req(), false],
  ['host unknown', { host: 'www.api.example.com' }, req({ host: null }), false],
  ['wildcard: subdomain', { host: '*.example.com' }, req(), true],
  ['wildcard: direct subdomain', { host: '*.example.com' }, req({ host: 'a.example.com' }), true],
  ['wildcard: not the apex', { host: '*.example.com' }, req({ host: 'example.com' }), false],
  [
    'wildcard: not a suffix of a label',
    { host: '*.example.com' },
    req({ host: 'badexample.com' }),
    false,
  ],
  [
    'wildcard: case and trailing dot',
    { host: '*.EXAMPLE.com.' },
    req({ host: 'X.Example.Com.' }),
    true,
  ],
  ['address exact v4', { address: '192.0.2.10' }, req(), true],
  ['address differs', { address: '192.0.2.11' }, req(), false],
  ['CIDR v4 /24', { address: '192.0.2.0/24' }, req(), true],
  ['CIDR v4 /15 (bit boundary)', { address: '198.18.0.0/15' }, req({ dst: '198.19.255.1' }), true],
  ['CIDR v4 /15 outside', { address: '198.18.0.0/15' }, req({ dst: '198.20.0.1' }), false],
  ['CIDR v4 /0', { address: '0.0.0.0/0' }, req(), true],
  ['CIDR v4 host bits ignored', { address: '192.0.2.77/24' }, req(), true],
  [
    'v4 rule never matches v6',
    { address: '0.0.0.0/0' },
    req({ family: 'ipv6', dst: '2001:db8::1' }),
    false,
  ],
  [
    'CIDR v6 /32',
    { address: '2001:db8::/32' },
    req({ family: 'ipv6', dst: '2001:db8:1::5' }),
    true,
  ],
  [
    'CIDR v6 /33 outside',
    { address: '2001:db8::/33' },
    req({ family: 'ipv6', dst: '2001:db8:8000::5' }),
    false,
  ],
  ['v6 exact', { address: '2001:db8::1' }, req({ family: 'ipv6', dst: '2001:DB8:0::1' }), true],
  [
    'IPv4-mapped request matches a v4 rule',
    { address: '192.0.2.0/24' },
    req({ family: 'ipv6', dst: '::ffff:192.0.2.10' }),
    true,
  ],
  [
    'inbound: address is the remote (src)',
    { address: '203.0.113.9' },
    req({ direction: 'inbound', src: '203.0.113.9', dst: '10.0.0.2', dport: 22 }),
    true,
  ],
  [
    'inbound: the local address does not count',
    { address: '10.0.0.2' },
    req({ direction: 'inbound', src: '203.0.113.9', dst: '10.0.0.2', dport: 22 }),
    false,
  ],
  ['port single', { port: { from: 443, to: 443 } }, req(), true],
  ['port range', { port: { from: 400, to: 500 } }, req(), true],
  ['port outside', { port: { from: 80, to: 80 } }, req(), false],
  ['port: source port is not matched', { port: { from: 40000, to: 40000 } }, req(), false],
  [
    'port: inbound matches the local port (dport)',
    { port: { from: 22, to: 22 } },
    req({ direction: 'inbound', src: '203.0.113.9', dst: '10.0.0.2', sport: 51000, dport: 22 }),
    true,
  ],
  [
    'port: none on ICMP',
    { port: { from: 0, to: 65535 } },
    req({ protocol: 'icmp', protocolNumber: 1, sport: null, dport: null }),
    false,
  ],
  ['protocol', { protocol: 'tcp' }, req(), true],
  ['protocol differs', { protocol: 'udp' }, req(), false],
  ['direction', { direction: 'outbound' }, req(), true],
  ['direction differs', { direction: 'inbound' }, req(), false],
  [
    'all fields (AND)',
    {
      exe: '/usr/bin/curl',
      uid: 1000,
      unit: 'app-curl.scope',
      host: '*.example.com',
      address: '192.0.2.0/24',
      port: { from: 443, to: 443 },
      protocol: 'tcp',
      direction: 'outbound',
    },
    req(),
    true,
  ],
  [
    'all fields, one wrong',
    {
      exe: '/usr/bin/curl',
      uid: 1000,
      host: '*.example.com',
      address: '192.0.2.0/24',
      port: { from: 443, to: 443 },
      protocol: 'udp',
    },
    req(),
    false,
  ],
];

describe('ruleMatches', () => {
  it.each(cases)('%s', (_name, match, request, expected) => {
    expect(ruleMatches(match, request)).toBe(expected);
  });
});

describe('compileMatch', () => {
  it.each<[string, RuleMatch]>([
    ['bad address', { address: '300.1.1.1' }],
    ['v4 prefix too long', { address: '10.0.0.0/33' }],
    ['v6 prefix too long', { address: '2001:db8::/129' }],
    ['wildcard in the middle', { host: 'a.*.example.com' }],
    ['bare wildcard', { host: '*' }],
    ['empty host', { host: '' }],
    ['port range reversed', { port: { from: 10, to: 5 } }],
  ])('rejects %s with INVALID_RULE', (_name, match) => {
    expect(() => compileMatch(match)).toThrow(DecisionsError);
    try {
      compileMatch(match);
    } catch (e) {
      expect((e as DecisionsError).code).toBe('INVALID_RULE');
    }
  });

  it('ranks finer values higher', () => {
    const r = (m: RuleMatch) => compileMatch(m).rank;
    expect(r({ host: 'a.example.com' }).host).toBeGreaterThan(r({ host: '*.a.example.com' }).host);
    expect(r({ host: '*.a.example.com' }).host).toBeGreaterThan(r({ host: '*.example.com' }).host);
    expect(r({ address: '10.0.0.0/16' }).address).toBeGreaterThan(
      r({ address: '10.0.0.0/8' }).address,
    );
    expect(r({ address: '10.0.0.1' }).address).toBe(r({ address: '2001:db8::1' }).address);
    expect(r({ port: { from: 1, to: 2 } }).port).toBeGreaterThan(
      r({ port: { from: 1, to: 3 } }).port,
    );
    expect(r({ exe: '/x', uid: 1, protocol: 'tcp' }).fields).toBe(3);
  });

  it('normalizeHost lower-cases and drops one trailing dot', () => {
    expect(normalizeHost('WWW.Example.COM.')).toBe('www.example.com');
  });
});
