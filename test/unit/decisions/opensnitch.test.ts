import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../../helper/cli.js';
import { readOpenSnitchDir } from '../../../helper/cli/rules-convert.js';
import { ruleMatches } from '../../../helper/decisions/matcher.js';
import {
  convertOpenSnitchRules,
  regexpLiteral,
  type OpenSnitchOperator,
} from '../../../helper/decisions/opensnitch.js';
import { RuleSet } from '../../../helper/decisions/ruleset.js';
import { RulesDocument } from '../../../helper/decisions/rules-document.js';
import type { ConnectionRequest } from '../../../helper/protocol/model.js';

/** Six rules as peer-opensnitch/lib/gen-rules.py writes them (one per kind) + the allow rule. */
const FIXTURES = join(import.meta.dirname, 'fixtures', 'opensnitch');
const NOW = Date.parse('2026-06-01T00:00:00Z');

function request(over: Partial<ConnectionRequest> = {}): ConnectionRequest {
  return {
    time: NOW,
    direction: 'outbound',
    family: 'ipv4',
    protocol: 'tcp',
    protocolNumber: 6,
    src: '198.18.77.1',
    dst: '198.18.77.2',
    sport: 40000,
    dport: 9400,
    icmpType: null,
    icmpCode: null,
    inIfindex: null,
    outIfindex: 2,
    host: null,
    uid: 0,
    process: null,
    ...over,
  };
}

function one(operator: OpenSnitchOperator, extra: Record<string, unknown> = {}) {
  const text = JSON.stringify({
    created: '2026-01-01T00:00:00.123456789+00:00',
    name: 'r',
    enabled: true,
    precedence: false,
    action: 'allow',
    duration: 'always',
    operator,
    ...extra,
  });
  return convertOpenSnitchRules([{ source: 'r.json', text }], { now: NOW });
}

const simple = (operand: string, data: string): OpenSnitchOperator => ({
  type: 'simple',
  operand,
  sensitive: false,
  data,
  list: [],
});

describe('convertOpenSnitchRules: the harness rules', () => {
  const result = convertOpenSnitchRules(readOpenSnitchDir(FIXTURES), { now: NOW });
  const byName = new Map(result.converted.map((c) => [c.source, c]));

  it('converts every kind but the regexp prefix, which is reported', () => {
    expect(result.converted.map((c) => c.source)).toEqual([
      'bench-nomatch-00000.json',
      'bench-nomatch-00001.json',
      'bench-nomatch-00002.json',
      'bench-nomatch-00004.json',
      'bench-nomatch-00005.json',
      'zzz-bench-allow-server.json',
    ]);
    expect(result.skipped).toEqual([
      {
        source: 'bench-nomatch-00003.json',
        reason: expect.stringContaining("regexp '^/opt/nomatch-3/.*$' on process.path") as string,
      },
    ]);
    expect(v.is(RulesDocument, result.document)).toBe(true);
    expect(result.document.rules).toHaveLength(6);
  });

  it('maps each operator to the equivalent match', () => {
    const m = (n: string) => byName.get(`${n}.json`)!.rule.match;
    expect(m('bench-nomatch-00000')).toEqual({ exe: '/usr/bin/nomatch-0', direction: 'outbound' });
    expect(m('bench-nomatch-00001')).toEqual({ address: '198.19.0.1', direction: 'outbound' });
    expect(m('bench-nomatch-00002')).toEqual({
      port: { from: 20002, to: 20002 },
      direction: 'outbound',
    });
    expect(m('bench-nomatch-00004')).toEqual({
      exe: '/usr/bin/nomatch-4',
      port: { from: 443, to: 443 },
      direction: 'outbound',
    });
    expect(m('bench-nomatch-00005')).toEqual({ address: '198.19.5.0/24', direction: 'outbound' });
    const allow = byName.get('zzz-bench-allow-server.json')!.rule;
    expect(allow).toMatchObject({
      id: 'os-zzz-bench-allow-server',
      action: 'allow',
      enabled: true,
      duration: { kind: 'forever' },
      created: Date.parse('2026-01-01T00:00:00Z'),
      expires: null,
      note: 'opensnitch: zzz-bench-allow-server',
      hits: 0,
    });
  });

  it('decides the harness flows as OpenSnitch does: only the allow rule matches', () => {
    const set = new RuleSet();
    for (const r of result.document.rules) set.add(r);
    const found = set.lookup(request(), NOW);
    expect(found?.id).toBe('os-zzz-bench-allow-server');
    const deny = result.document.rules.find((r) => r.id === 'os-bench-nomatch-00002')!;
    expect(ruleMatches(deny.match, request({ dport: 20002 }))).toBe(true);
  });
});

describe('convertOpenSnitchRules: operators, actions, durations', () => {
  it('converts dest.host, user.id, protocol, network and range', () => {
    const r = one({
      type: 'list',
      operand: 'list',
      data: '',
      list: [
        simple('dest.host', 'WWW.Example.com.'),
        simple('user.id', '1000'),
        simple('protocol', 'TCP'),
        { type: 'range', operand: 'dest.port', data: '8000-8080' },
      ],
    });
    expect(r.skipped).toEqual([]);
    expect(r.converted[0]!.rule.match).toEqual({
      host: 'www.example.com',
      uid: 1000,
      protocol: 'tcp',
      port: { from: 8000, to: 8080 },
      direction: 'outbound',
    });
    const net = one({ type: 'network', operand: 'dest.network', data: '10.0.0.0/8' });
    expect(net.converted[0]!.rule.match.address).toBe('10.0.0.0/8');
  });

  it('treats the operand true as match-all', () => {
    const r = one(simple('true', ''));
    expect(r.converted[0]!.rule.match).toEqual({ direction: 'outbound' });
  });

  it('converts literal and anchored regexps, with a note when the meaning narrows', () => {
    const anchored = one({ type: 'regexp', operand: 'process.path', data: '^/usr/bin/curl$' });
    expect(anchored.converted[0]!.rule.match.exe).toBe('/usr/bin/curl');
    expect(anchored.converted[0]!.notes).toEqual([]);
    const host = one({ type: 'regexp', operand: 'dest.host', data: '^www\\.example\\.com$' });
    expect(host.converted[0]!.rule.match.host).toBe('www.example.com');
    const suffix = one({ type: 'regexp', operand: 'dest.host', data: '^.*\\.example\\.com$' });
    expect(suffix.converted[0]!.rule.match.host).toBe('*.example.com');
    const loose = one({ type: 'regexp', operand: 'dest.ip', data: '192\\.0\\.2\\.1' });
    expect(loose.converted[0]!.rule.match.address).toBe('192.0.2.1');
    expect(loose.converted[0]!.notes[0]).toMatch(/unanchored regexp/u);
  });

  it('reports what cannot be represented, per rule', () => {
    const cases: [OpenSnitchOperator, RegExp][] = [
      [{ type: 'regexp', operand: 'dest.host', data: '^(www|api)\\.x\\.com$' }, /not a literal/u],
      [simple('process.command', 'curl -s'), /operand 'process.command'/u],
      [simple('protocol', 'tcp6'), /address family/u],
      [simple('dest.port', 'https'), /not a port/u],
      [simple('process.path', 'curl'), /not absolute/u],
      [{ type: 'lists', operand: 'lists.domains', data: '/etc/x' }, /lists operator/u],
      [
        {
          type: 'list',
          operand: 'list',
          list: [simple('dest.port', '1'), simple('dest.port', '2')],
        },
        /both/u,
      ],
      [simple('dest.ip', 'not-an-ip'), /./u],
    ];
    for (const [op, reason] of cases) {
      const r = one(op);
      expect(r.converted, JSON.stringify(op)).toEqual([]);
      expect(r.skipped[0]!.reason).toMatch(reason);
    }
    expect(one(simple('true', ''), { duration: 'once' }).skipped[0]!.reason).toMatch(/once/u);
    expect(one(simple('true', ''), { duration: 'until restart' }).skipped[0]!.reason).toMatch(
      /session/u,
    );
    expect(one(simple('true', ''), { action: 'ask' }).skipped[0]!.reason).toMatch(/action/u);
    const bad = convertOpenSnitchRules([
      { source: 'a.json', text: '{' },
      { source: 'b.json', text: '{"name":"b"}' },
    ]);
    expect(bad.skipped.map((s) => s.source)).toEqual(['a.json', 'b.json']);
  });

  it('maps reject to deny, timed durations to minutes from now, disabled stays disabled', () => {
    const r = one(simple('dest.port', '53'), { action: 'reject', duration: '30s', enabled: false });
    const c = r.converted[0]!;
    expect(c.rule).toMatchObject({
      action: 'deny',
      enabled: false,
      duration: { kind: 'minutes', minutes: 1 },
      created: NOW,
      expires: NOW + 60_000,
    });
    // Reject is our deny's default; OpenSnitch's deny drops silently, as denyWith 'drop'.
    expect(c.rule.denyWith).toBeUndefined();
    expect(c.notes.join(' ')).toMatch(/rounded/u);
    expect(one(simple('dest.port', '53'), { action: 'deny' }).converted[0]!.rule).toMatchObject({
      action: 'deny',
      denyWith: 'drop',
    });
    expect(one(simple('dest.port', '53'), { duration: '12h' }).converted[0]!.rule.duration).toEqual(
      { kind: 'minutes', minutes: 720 },
    );
  });

  it('gives unique, valid ids', () => {
    const text = (name: string) =>
      JSON.stringify({ name, action: 'allow', operator: simple('dest.port', '1') });
    const r = convertOpenSnitchRules([
      { source: '1', text: text('a b') },
      { source: '2', text: text('a/b') },
    ]);
    expect(r.document.rules.map((x) => x.id)).toEqual(['os-a-b', 'os-a-b-2']);
  });
});

describe('regexpLiteral', () => {
  it('recognises literals only', () => {
    expect(regexpLiteral('^/usr/bin/curl$')).toEqual({
      literal: '/usr/bin/curl',
      anchored: true,
      insensitive: false,
    });
    expect(regexpLiteral('(?i)^a\\.b$')).toEqual({
      literal: 'a.b',
      anchored: true,
      insensitive: true,
    });
    expect(regexpLiteral('^/opt/x/.*$')).toBeNull();
    expect(regexpLiteral('a\\d')).toBeNull();
    expect(regexpLiteral('^$')).toBeNull();
  });
});

describe('portcullis rules convert-opensnitch', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  function capture() {
    const out: string[] = [];
    const err: string[] = [];
    return {
      io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) },
      out: () => out.join(''),
      err: () => err.join(''),
    };
  }

  it('writes the document to --out (0600) and reports skipped rules on stderr', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-osconv-'));
    const file = join(dir, 'state', 'rules.json');
    mkdirSync(join(dir, 'state'));
    const c = capture();
    expect(await main(['rules', 'convert-opensnitch', FIXTURES, '--out', file], c.io)).toBe(0);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as RulesDocument;
    expect(doc.version).toBe(1);
    expect(doc.rules).toHaveLength(6);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(c.err()).toMatch(/^skipped bench-nomatch-00003\.json: regexp/mu);
    expect(c.err()).toMatch(/converted 6 of 7 rule file\(s\), skipped 1; wrote /u);
    expect(c.out()).toBe('');
  });

  it('prints to stdout without --out; usage errors exit 2; a missing dir exits 1', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-osconv-'));
    writeFileSync(
      join(dir, 'a.json'),
      JSON.stringify({ name: 'a', action: 'deny', operator: simple('dest.port', '25') }),
    );
    const c = capture();
    expect(await main(['rules', 'convert-opensnitch', dir], c.io)).toBe(0);
    expect((JSON.parse(c.out()) as RulesDocument).rules[0]!.action).toBe('deny');
    expect(await main(['rules', 'convert-opensnitch'], capture().io)).toBe(2);
    expect(await main(['rules', 'convert-opensnitch', dir, '--bogus'], capture().io)).toBe(2);
    expect(await main(['rules', 'convert-opensnitch', join(dir, 'nope')], capture().io)).toBe(1);
    const help = capture();
    expect(await main(['rules', '--help'], help.io)).toBe(0);
    expect(help.out()).toMatch(/convert-opensnitch DIR/u);
  });
});
