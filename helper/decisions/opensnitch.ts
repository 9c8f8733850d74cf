/**
 * Converts OpenSnitch rules (one JSON file per rule, as opensnitchd keeps them in its
 * rules directory) into our rules document (STATEDIR/rules.json, docs/rules.md).
 *
 * What maps: operators `simple`, `network`, `range` and `list` (an AND of the others)
 * over process.path, dest.ip, dest.host, dest.port, dest.network, user.id and protocol;
 * the operand `true` (match everything); `regexp` when the pattern is a plain literal
 * (optionally anchored) or a `*.`-style host suffix; actions allow/deny/reject;
 * durations always/until restart/Ns/Nm/Nh; enabled.
 *
 * Nothing is dropped silently: a rule that cannot be represented is returned in
 * `skipped` with the reason, and a converted rule whose meaning changed (a reject
 * that becomes a deny, an unanchored regexp that becomes an exact match, ...) carries
 * `notes`. docs/rules.md lists the semantic differences that apply to every rule
 * (OpenSnitch's name order against our specificity order).
 */
import * as v from 'valibot';
import type { Duration, Protocol, Rule, RuleMatch } from '../protocol/model.js';
import { ruleFromInput } from '../protocol/rules.js';
import { compileMatch } from './matcher.js';
import { RULES_VERSION, RulesDocument } from './rules-document.js';

/** An OpenSnitch operator (daemon/rule/operator.go). */
export interface OpenSnitchOperator {
  type: string;
  operand: string;
  data?: string;
  sensitive?: boolean;
  list?: OpenSnitchOperator[] | null;
}

/** An OpenSnitch rule file (daemon/rule/rule.go). */
export interface OpenSnitchRule {
  name: string;
  enabled?: boolean;
  precedence?: boolean;
  action: string;
  duration?: string;
  created?: string;
  operator: OpenSnitchOperator;
}

export interface ConvertedRule {
  /** The OpenSnitch rule name (and file, when read from a directory). */
  source: string;
  rule: Rule;
  /** Where the converted rule does not mean exactly what the original did. */
  notes: string[];
}

export interface SkippedRule {
  source: string;
  reason: string;
}

export interface ConversionResult {
  document: RulesDocument;
  converted: ConvertedRule[];
  skipped: SkippedRule[];
}

export interface ConvertOptions {
  /** Time for rules without a usable `created` and for the expiry of timed rules (epoch ms). */
  now?: number;
}

/** A rule that cannot be represented; carries the reason for the report. */
class Unsupported extends Error {}

const OperatorSchema: v.GenericSchema<OpenSnitchOperator> = v.object({
  type: v.string(),
  operand: v.string(),
  data: v.optional(v.string()),
  sensitive: v.optional(v.boolean()),
  list: v.optional(v.nullable(v.array(v.lazy(() => OperatorSchema)))),
});

const RuleFileSchema = v.object({
  name: v.pipe(v.string(), v.minLength(1)),
  enabled: v.optional(v.boolean()),
  precedence: v.optional(v.boolean()),
  action: v.string(),
  duration: v.optional(v.string()),
  created: v.optional(v.string()),
  operator: OperatorSchema,
});

/** Parses one rule file's text; throws Unsupported with a readable reason. */
export function parseOpenSnitchRule(text: string): OpenSnitchRule {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Unsupported(`not JSON: ${(error as Error).message}`);
  }
  const parsed = v.safeParse(RuleFileSchema, json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join('.') ?? '';
    throw new Unsupported(`not an OpenSnitch rule: ${path ? `${path}: ` : ''}${issue.message}`);
  }
  return parsed.output;
}

const REGEXP_META = /[\\^$.|?*+()[\]{}]/u;

/**
 * The literal a regexp stands for, when it is one: `^/usr/bin/curl$`,
 * `^www\.example\.com$`, `/usr/bin/curl`. Null when it uses any operator.
 */
export function regexpLiteral(
  pattern: string,
): { literal: string; anchored: boolean; insensitive: boolean } | null {
  let p = pattern;
  let insensitive = false;
  if (p.startsWith('(?i)')) {
    insensitive = true;
    p = p.slice(4);
  }
  const start = p.startsWith('^');
  const end = p.endsWith('$') && !p.endsWith('\\$');
  if (start) p = p.slice(1);
  if (end) p = p.slice(0, -1);
  let literal = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '\\') {
      const next = p[i + 1];
      // Only an escaped punctuation character is a literal (\d, \w, \b... are classes).
      if (next === undefined || !/[\\^$.|?*+()[\]{}/-]/u.test(next)) return null;
      literal += next;
      i++;
    } else if (REGEXP_META.test(c)) {
      return null;
    } else {
      literal += c;
    }
  }
  if (literal === '') return null;
  return { literal, anchored: start && end, insensitive };
}

/** `^(.*\.)?example\.com$`-free subset: `^.*\.example\.com$` → `*.example.com`. */
function regexpHostSuffix(pattern: string): string | null {
  const m = /^\^\.\*\\\.(.+)\$$/u.exec(pattern) ?? /^\^\.\+\\\.(.+)\$$/u.exec(pattern);
  if (!m) return null;
  const rest = regexpLiteral(`^${m[1] as string}$`);
  return rest?.anchored ? `*.${rest.literal}` : null;
}

const PROTOCOLS: Record<string, Protocol> = {
  tcp: 'tcp',
  udp: 'udp',
  udplite: 'udplite',
  icmp: 'icmp',
  icmpv6: 'icmpv6',
  sctp: 'sctp',
  dccp: 'dccp',
};

function port(text: string): number {
  if (!/^\d{1,5}$/u.test(text.trim())) throw new Unsupported(`dest.port '${text}' is not a port`);
  const n = Number(text.trim());
  if (n > 65535) throw new Unsupported(`dest.port '${text}' is not a port`);
  return n;
}

type Field = keyof RuleMatch;

/** Adds one field to a match; the same field twice with different values never matches. */
function put<K extends Field>(match: RuleMatch, key: K, value: NonNullable<RuleMatch[K]>): void {
  const had = match[key];
  if (had !== undefined && JSON.stringify(had) !== JSON.stringify(value)) {
    throw new Unsupported(
      `list requires ${key} to be both ${JSON.stringify(had)} and ${JSON.stringify(value)}`,
    );
  }
  match[key] = value;
}

/** Sets the field an operand names to a literal value. */
function literalField(
  match: RuleMatch,
  operand: string,
  data: string,
  sensitive: boolean,
  notes: string[],
): void {
  switch (operand) {
    case 'process.path':
      if (!data.startsWith('/')) throw new Unsupported(`process.path '${data}' is not absolute`);
      if (!sensitive && data !== data.toLowerCase()) {
        notes.push('process.path compared case-sensitively (OpenSnitch: case-insensitive)');
      }
      put(match, 'exe', data);
      return;
    case 'dest.ip':
      put(match, 'address', data.trim());
      return;
    case 'dest.network':
      put(match, 'address', data.trim());
      return;
    case 'dest.host':
      put(match, 'host', data.trim().toLowerCase().replace(/\.$/u, ''));
      return;
    case 'dest.port':
      put(match, 'port', { from: port(data), to: port(data) });
      return;
    case 'user.id': {
      const t = data.trim();
      if (!/^\d{1,10}$/u.test(t) || Number(t) > 0xffffffff) {
        throw new Unsupported(`user.id '${data}' is not a uid`);
      }
      put(match, 'uid', Number(t));
      return;
    }
    case 'protocol': {
      const p = data.trim().toLowerCase();
      const mapped = PROTOCOLS[p];
      if (mapped === undefined) {
        throw new Unsupported(
          p === 'tcp6' || p === 'udp6'
            ? `protocol '${p}' (IPv6 only): a rule cannot restrict the address family`
            : `protocol '${data}' is not supported`,
        );
      }
      put(match, 'protocol', mapped);
      return;
    }
    default:
      throw new Unsupported(`operand '${operand}' has no equivalent`);
  }
}

function addOperator(match: RuleMatch, op: OpenSnitchOperator, notes: string[]): void {
  const data = op.data ?? '';
  const sensitive = op.sensitive ?? false;
  switch (op.type) {
    case 'simple':
      if (op.operand === 'true') return; // OpenSnitch's "always matches"
      literalField(match, op.operand, data, sensitive, notes);
      return;
    case 'network':
      if (op.operand !== 'dest.network' && op.operand !== 'dest.ip') {
        throw new Unsupported(`network operator on '${op.operand}'`);
      }
      if (!data.includes('/')) throw new Unsupported(`dest.network '${data}' is not a CIDR`);
      put(match, 'address', data.trim());
      return;
    case 'range': {
      if (op.operand !== 'dest.port') throw new Unsupported(`range operator on '${op.operand}'`);
      const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/u.exec(data);
      if (!m) throw new Unsupported(`dest.port range '${data}' is not FROM-TO`);
      const from = port(m[1] as string);
      const to = port(m[2] as string);
      if (from > to) throw new Unsupported(`dest.port range '${data}' is reversed`);
      put(match, 'port', { from, to });
      return;
    }
    case 'list': {
      const list = op.list ?? [];
      if (list.length === 0) throw new Unsupported('empty list operator');
      for (const sub of list) addOperator(match, sub, notes);
      return;
    }
    case 'regexp': {
      if (op.operand === 'dest.host') {
        const suffix = regexpHostSuffix(data);
        if (suffix) {
          put(match, 'host', suffix.toLowerCase());
          notes.push(`regexp '${data}' converted to host '${suffix}'`);
          return;
        }
      }
      const lit = regexpLiteral(data);
      if (!lit) {
        throw new Unsupported(
          `regexp '${data}' on ${op.operand} is not a literal (our rules match exact values only)`,
        );
      }
      literalField(match, op.operand, lit.literal, sensitive && !lit.insensitive, notes);
      if (!lit.anchored) {
        notes.push(
          `unanchored regexp '${data}' matched as exactly '${lit.literal}' (OpenSnitch: contains)`,
        );
      }
      return;
    }
    case 'lists':
      throw new Unsupported(`lists operator (block lists from '${data}') has no equivalent`);
    default:
      throw new Unsupported(`operator type '${op.type}' is not supported`);
  }
}

/** OpenSnitch durations: always, once, until restart, 30s, 5m, 1h, 24h... */
function duration(text: string | undefined, notes: string[]): Duration {
  const d = (text ?? 'always').trim().toLowerCase();
  if (d === 'always') return { kind: 'forever' };
  if (d === 'until restart') return { kind: 'session' };
  if (d === 'once') throw new Unsupported("duration 'once' applies to one connection, not a rule");
  const m = /^(\d+)\s*(s|m|h)$/u.exec(d);
  if (!m) throw new Unsupported(`duration '${text ?? ''}' is not supported`);
  const n = Number(m[1]);
  const unit = m[2] as 's' | 'm' | 'h';
  const exact = unit === 's' ? n / 60 : unit === 'm' ? n : n * 60;
  const minutes = Math.min(525600, Math.max(1, Math.ceil(exact)));
  if (minutes !== exact) notes.push(`duration '${text ?? ''}' rounded to ${minutes} min`);
  return { kind: 'minutes', minutes };
}

/** RFC 3339 with any number of fractional digits (Go writes nanoseconds). */
function parseTime(text: string | undefined): number | null {
  if (!text) return null;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/u.exec(text.trim());
  if (!m) return null;
  const frac = (m[2] ?? '.0').slice(0, 4).padEnd(4, '0');
  const t = Date.parse(`${m[1] as string}${frac}${m[3] as string}`);
  return Number.isFinite(t) && t >= 0 ? t : null;
}

/** A rule id from the name: [A-Za-z0-9_-], at most 64, unique within `taken`. */
function ruleId(name: string, taken: Set<string>): string {
  const base =
    `os-${name}`
      .replace(/[^A-Za-z0-9_-]+/gu, '-')
      .replace(/-+/gu, '-')
      .slice(0, 56) || 'os-rule';
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  taken.add(id);
  return id;
}

/**
 * Converts one parsed rule. Throws Unsupported (caught by convertOpenSnitchRules)
 * when it cannot be represented.
 */
function convertOne(
  os: OpenSnitchRule,
  now: number,
  taken: Set<string>,
): { rule: Rule; notes: string[] } {
  const notes: string[] = [];
  let action: Rule['action'];
  // OpenSnitch's deny drops silently and its reject refuses, as ours do.
  let denyWith: Rule['denyWith'];
  switch (os.action.toLowerCase()) {
    case 'allow':
      action = 'allow';
      break;
    case 'deny':
      action = 'deny';
      denyWith = 'drop';
      break;
    case 'reject':
      action = 'deny';
      break;
    default:
      throw new Unsupported(`action '${os.action}' is not supported`);
  }
  const dur = duration(os.duration, notes);
  // OpenSnitch intercepts outbound connections only.
  const match: RuleMatch = {};
  addOperator(match, os.operator, notes);
  match.direction = 'outbound';
  try {
    compileMatch(match);
  } catch (error) {
    throw new Unsupported((error as Error).message);
  }
  if (os.precedence) {
    notes.push('precedence flag ignored: the most specific matching rule wins (docs/rules.md)');
  }
  const parsedCreated = parseTime(os.created);
  // A timed rule runs from the conversion: its original start has long passed.
  const created = dur.kind === 'minutes' ? now : (parsedCreated ?? now);
  const input = {
    enabled: os.enabled ?? true,
    action,
    ...(denyWith ? { denyWith } : {}),
    match,
    duration: dur,
    note: `opensnitch: ${os.name}`.slice(0, 200),
  };
  return { rule: ruleFromInput(input, ruleId(os.name, taken), created), notes };
}

/** An input: the rule file's name (for the report) and its text. */
export interface OpenSnitchSource {
  source: string;
  text: string;
}

/**
 * Converts rule files, in OpenSnitch's order (by name). Session rules ('until
 * restart') are converted but, like ours, not kept in rules.json: they are reported.
 */
export function convertOpenSnitchRules(
  sources: readonly OpenSnitchSource[],
  options: ConvertOptions = {},
): ConversionResult {
  const now = options.now ?? Date.now();
  const taken = new Set<string>();
  const converted: ConvertedRule[] = [];
  const skipped: SkippedRule[] = [];
  const parsed: { source: string; rule: OpenSnitchRule }[] = [];
  for (const s of sources) {
    try {
      parsed.push({ source: s.source, rule: parseOpenSnitchRule(s.text) });
    } catch (error) {
      if (!(error instanceof Unsupported)) throw error;
      skipped.push({ source: s.source, reason: error.message });
    }
  }
  parsed.sort((a, b) => (a.rule.name < b.rule.name ? -1 : a.rule.name > b.rule.name ? 1 : 0));
  for (const { source, rule } of parsed) {
    try {
      const out = convertOne(rule, now, taken);
      if (out.rule.duration.kind === 'session') {
        skipped.push({
          source,
          reason: "duration 'until restart' is a session rule, which rules.json does not keep",
        });
        continue;
      }
      converted.push({ source, ...out });
    } catch (error) {
      if (!(error instanceof Unsupported)) throw error;
      skipped.push({ source, reason: error.message });
    }
  }
  const document = v.parse(RulesDocument, {
    version: RULES_VERSION,
    rules: converted.map((c) => c.rule),
  });
  return { document, converted, skipped };
}
