/**
 * The helper's domain model: what is decided, remembered and shown.
 *
 * These valibot schemas are the single source of truth for the shapes that
 * cross the IPC socket (helper <-> Electron main <-> renderer) and that are
 * persisted (rules, history). Types are inferred from them, so the wire
 * validation and the code can never drift apart. Only plain JSON values are
 * used (no bigint, no Date) so that a frame is JSON.stringify/parse-safe.
 */
import * as v from 'valibot';

const MAX_TEXT = 4096;
const MAX_LIST = 256;

export const Text = v.pipe(v.string(), v.maxLength(MAX_TEXT));
export const Port = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535));
export const Uint32 = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(0xffffffff));
/** A non-negative safe integer (counters, ids, byte counts). */
export const Count = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(0),
  v.maxValue(Number.MAX_SAFE_INTEGER),
);
/** Milliseconds since the Unix epoch. */
export const EpochMs = Count;

/** An IPv4 or IPv6 address in the form helper/common/ip.ts prints. */
export const Address = v.pipe(v.string(), v.maxLength(45), v.regex(/^[0-9a-fA-F:.]+$/u));

export const Family = v.picklist(['ipv4', 'ipv6']);
export type Family = v.InferOutput<typeof Family>;

export const Protocol = v.picklist([
  'tcp',
  'udp',
  'udplite',
  'icmp',
  'icmpv6',
  'sctp',
  'dccp',
  'gre',
  'other',
]);
export type Protocol = v.InferOutput<typeof Protocol>;

export const Direction = v.picklist(['outbound', 'inbound']);
export type Direction = v.InferOutput<typeof Direction>;

export const Action = v.picklist(['allow', 'deny']);
export type Action = v.InferOutput<typeof Action>;

/**
 * How a deny answers an outbound connection: "reject" (the default) refuses it, so
 * the program fails at once (TCP reset, ICMP administratively prohibited); "drop"
 * discards it silently, and the program waits for its own timeout.
 */
export const DenyWith = v.picklist(['reject', 'drop']);
export type DenyWith = v.InferOutput<typeof DenyWith>;

/** Longest parent chain a ProcessInfo carries (nearest first). */
export const MAX_ANCESTORS = 16;

/** One process in the parent chain of a connection's process. */
export const ProcessAncestor = v.object({
  pid: Count,
  /** Executable path; null when it is not known (unreadable, or exited unrecorded). */
  exe: v.nullable(Text),
  comm: Text,
});
export type ProcessAncestor = v.InferOutput<typeof ProcessAncestor>;

/** Who owns the socket of a connection: the eBPF owner records, else /proc and sock_diag. */
export const ProcessInfo = v.object({
  pid: Count,
  ppid: v.nullable(Count),
  /** Process start time in clock ticks since boot: (pid, startTime) survives pid reuse. */
  startTime: Count,
  comm: Text,
  /** Executable path; null when /proc/PID/exe is unreadable (kernel threads, races). */
  exe: v.nullable(Text),
  cmdline: v.pipe(v.array(Text), v.maxLength(MAX_LIST)),
  uid: Uint32,
  gid: v.nullable(Uint32),
  user: v.nullable(Text),
  /** systemd unit (system or user), e.g. "cups.service" or "app-firefox-1234.scope". */
  unit: v.nullable(Text),
  /** Container id (docker, podman, containerd, cri-o) when the cgroup names one. */
  container: v.nullable(Text),
  /** Sandboxed app id (flatpak or snap) when there is one. */
  appId: v.nullable(Text),
  /**
   * Optional (protocol 1.4): the parent chain, nearest first (parent, grandparent...),
   * as far as it is known, at most MAX_ANCESTORS.
   */
  ancestors: v.optional(v.pipe(v.array(ProcessAncestor), v.maxLength(MAX_ANCESTORS))),
});
export type ProcessInfo = v.InferOutput<typeof ProcessInfo>;

/**
 * One new connection waiting for (or given) a decision: built from the first
 * queued packet, its socket's owner and the DNS name of the remote end.
 */
export const ConnectionRequest = v.object({
  time: EpochMs,
  direction: Direction,
  family: Family,
  protocol: Protocol,
  /** IP protocol number, kept for protocol "other". */
  protocolNumber: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(255)),
  src: Address,
  dst: Address,
  /** Ports for TCP/UDP/UDP-Lite/SCTP/DCCP, null otherwise. */
  sport: v.nullable(Port),
  dport: v.nullable(Port),
  /** ICMP/ICMPv6 type and code, null otherwise. */
  icmpType: v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(255))),
  icmpCode: v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(255))),
  inIfindex: v.nullable(Uint32),
  outIfindex: v.nullable(Uint32),
  /** The remote end's name from DNS snooping (the name the application asked for). */
  host: v.nullable(Text),
  /** The socket owner's uid from sock_diag, even when the process is gone. */
  uid: v.nullable(Uint32),
  process: v.nullable(ProcessInfo),
});
export type ConnectionRequest = v.InferOutput<typeof ConnectionRequest>;

export const PortRange = v.pipe(
  v.object({ from: Port, to: Port }),
  v.check((r) => r.from <= r.to, 'port range: from must not exceed to'),
);
export type PortRange = v.InferOutput<typeof PortRange>;

/**
 * What a rule matches: every field present must match (AND); an absent field
 * matches anything. Specificity is the number of present fields, with finer
 * values (exact host over wildcard, longer prefix, narrower port range)
 * breaking ties; see docs/rules.md for the precedence.
 */
export const RuleMatch = v.object({
  /** Absolute executable path. */
  exe: v.optional(Text),
  /** Flatpak/snap app id (matches instead of exe for sandboxed apps). */
  appId: v.optional(Text),
  /** systemd unit name. */
  unit: v.optional(Text),
  uid: v.optional(Uint32),
  /** "example.com" (exact) or "*.example.com" (any subdomain, not the apex). */
  host: v.optional(v.pipe(v.string(), v.maxLength(255))),
  /** An address or a CIDR: "192.0.2.1", "198.18.0.0/15", "2001:db8::/32". */
  address: v.optional(
    v.pipe(v.string(), v.maxLength(49), v.regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/u)),
  ),
  port: v.optional(PortRange),
  protocol: v.optional(Protocol),
  direction: v.optional(Direction),
});
export type RuleMatch = v.InferOutput<typeof RuleMatch>;

/**
 * How long a decision lasts. "once" is a decision for the held connection(s)
 * only and is never stored as a rule; "process" lasts until the process that
 * asked exits; "session" until the helper restarts; "seconds" (a short trial,
 * at most a day, kept in memory only) and "minutes" until the deadline;
 * "forever" is persisted.
 */
export const Duration = v.variant('kind', [
  v.object({ kind: v.literal('once') }),
  v.object({ kind: v.literal('process'), pid: Count, startTime: Count }),
  v.object({ kind: v.literal('session') }),
  v.object({
    kind: v.literal('seconds'),
    seconds: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(86400)),
  }),
  v.object({
    kind: v.literal('minutes'),
    minutes: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(525600)),
  }),
  v.object({ kind: v.literal('forever') }),
]);
export type Duration = v.InferOutput<typeof Duration>;

export const RuleId = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(64),
  v.regex(/^[A-Za-z0-9_-]+$/u),
);

export const Rule = v.object({
  id: RuleId,
  enabled: v.boolean(),
  action: Action,
  /** Deny rules only; absent is "reject" (rules.json files from before it stay valid). */
  denyWith: v.optional(DenyWith),
  match: RuleMatch,
  duration: Duration,
  created: EpochMs,
  /** When a "seconds" or "minutes" rule lapses; null for the others. */
  expires: v.nullable(EpochMs),
  note: v.optional(Text),
  hits: Count,
  lastHit: v.nullable(EpochMs),
});
export type Rule = v.InferOutput<typeof Rule>;

/** A rule as a client submits it: the helper assigns id, created, hits. */
export const RuleInput = v.object({
  enabled: v.optional(v.boolean()),
  action: Action,
  /** Kept for deny rules when "drop"; ignored for allow. */
  denyWith: v.optional(DenyWith),
  match: RuleMatch,
  duration: Duration,
  note: v.optional(Text),
});
export type RuleInput = v.InferOutput<typeof RuleInput>;

/** Why a verdict was given. */
export const VerdictReason = v.picklist([
  'rule', // a stored rule matched
  'prompt', // a person answered
  'default', // nobody answered before the prompt timeout
  'no-gui', // no GUI connected: the no-GUI policy
  'deadline', // the packet's deadline passed (should not happen; counted)
  'error', // attribution or matching failed: the default action
]);
export type VerdictReason = v.InferOutput<typeof VerdictReason>;

/** A pending question to the person: one per app and destination. */
export const Prompt = v.object({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  created: EpochMs,
  /** When the default action is given if nobody answers. */
  deadline: EpochMs,
  defaultAction: Action,
  request: ConnectionRequest,
  /** Connections held under this prompt (a burst from one app is one prompt). */
  held: Count,
});
export type Prompt = v.InferOutput<typeof Prompt>;

/**
 * Which destination a remembered answer covers (docs/rules.md): "destination" the
 * host exactly (the address without a name), "domain" every name under the
 * host's registrable domain (`*.example.com`), "address" the remote IP; these
 * three keep the port and protocol too. "port" any destination on this port,
 * "any" any destination.
 */
export const AnswerScope = v.picklist(['destination', 'domain', 'address', 'port', 'any']);
export type AnswerScope = v.InferOutput<typeof AnswerScope>;

/**
 * Whom a remembered answer covers: "app" this app (app id or executable) run by
 * this user, "user" any app of this uid, "anyone" any app of any user.
 */
export const AnswerWho = v.picklist(['app', 'user', 'anyone']);
export type AnswerWho = v.InferOutput<typeof AnswerWho>;

export const PromptAnswer = v.object({
  promptId: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  action: Action,
  /** With "deny": "drop" denies silently instead of refusing (the default). */
  denyWith: v.optional(DenyWith),
  duration: Duration,
  scope: AnswerScope,
  /** Whom the rule covers; absent is "app" (answers from before it keep their meaning). */
  who: v.optional(AnswerWho),
  /** Overrides the match derived from scope (an edited rule in the prompt). */
  match: v.optional(RuleMatch),
});
export type PromptAnswer = v.InferOutput<typeof PromptAnswer>;

/** One decided connection, as the history keeps it. */
export const HistoryEntry = v.object({
  seq: Count,
  request: ConnectionRequest,
  action: Action,
  reason: VerdictReason,
  ruleId: v.nullable(RuleId),
  decidedAt: EpochMs,
  /** Conntrack counters and end time, filled in when the flow ends (if accounting is on). */
  ended: v.nullable(EpochMs),
  bytesOut: v.nullable(Count),
  bytesIn: v.nullable(Count),
  packetsOut: v.nullable(Count),
  packetsIn: v.nullable(Count),
});
export type HistoryEntry = v.InferOutput<typeof HistoryEntry>;

/** A conntrack entry as the UI's Connections table shows it. */
export const Flow = v.object({
  /** Conntrack id (CTA_ID). */
  id: Uint32,
  family: Family,
  protocol: Protocol,
  protocolNumber: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(255)),
  src: Address,
  dst: Address,
  sport: v.nullable(Port),
  dport: v.nullable(Port),
  /** Reply direction, which differs from the swapped original under NAT. */
  replySrc: Address,
  replyDst: Address,
  replySport: v.nullable(Port),
  replyDport: v.nullable(Port),
  /** TCP/SCTP/DCCP state name ("ESTABLISHED"), null for stateless protocols. */
  state: v.nullable(v.pipe(v.string(), v.maxLength(32))),
  /** Status flag names ("ASSURED", "SEEN_REPLY", "SRC_NAT"...). */
  status: v.pipe(v.array(v.pipe(v.string(), v.maxLength(32))), v.maxLength(32)),
  mark: Uint32,
  zone: v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535))),
  labels: v.pipe(
    v.array(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(127))),
    v.maxLength(128),
  ),
  timeout: v.nullable(Uint32),
  /** Start time (epoch ms) when conntrack timestamps are on. */
  start: v.nullable(EpochMs),
  bytesOut: v.nullable(Count),
  bytesIn: v.nullable(Count),
  packetsOut: v.nullable(Count),
  packetsIn: v.nullable(Count),
  host: v.nullable(Text),
  process: v.nullable(ProcessInfo),
});
export type Flow = v.InferOutput<typeof Flow>;

/**
 * What a kill did. The conntrack entry is deleted even when a local socket cannot be
 * destroyed; `socketError` says why (a kernel without SOCK_DESTROY: EOPNOTSUPP).
 */
export const KillResult = v.object({
  /** False: the entry was gone already. */
  conntrackDeleted: v.boolean(),
  /** Local sockets destroyed; null when none was tried (not TCP) or destroying failed. */
  socketsDestroyed: v.nullable(Uint32),
  socketError: v.optional(v.string()),
});
export type KillResult = v.InferOutput<typeof KillResult>;

export const NoGuiPolicy = v.picklist(['allow', 'deny']);

export const Settings = v.object({
  /** The answer when a prompt times out. */
  defaultAction: Action,
  promptTimeoutSeconds: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(600)),
  /** The answer when no GUI is connected to ask. */
  noGuiPolicy: NoGuiPolicy,
  /** Fail-open (queue-bypass + FAIL_OPEN) or fail-closed when the helper is gone or overloaded. */
  failOpen: v.boolean(),
  interceptOutbound: v.boolean(),
  interceptInbound: v.boolean(),
});
export type Settings = v.InferOutput<typeof Settings>;

export const SettingsField = v.picklist([
  'defaultAction',
  'promptTimeoutSeconds',
  'noGuiPolicy',
  'failOpen',
  'interceptOutbound',
  'interceptInbound',
]);

/**
 * Why the helper runs with settings other than the saved ones: settings.json could not
 * be used (damaged, missing, unreadable). It stays until settings are saved again.
 */
export const SettingsRecovery = v.object({
  /**
   * "last-good": the copy of the last saved settings; "defaults-strict": the stricter
   * value of every security setting; "partial": the readable fields of the file, the
   * stricter value for the others.
   */
  from: v.picklist(['last-good', 'defaults-strict', 'partial']),
  /** Where the damaged file was kept; null when there was none or it could not be copied. */
  damagedPath: v.nullable(Text),
  reason: Text,
  /** Fields not taken from the file (security fields: the stricter value). */
  fields: v.array(SettingsField),
  at: EpochMs,
});
export type SettingsRecovery = v.InferOutput<typeof SettingsRecovery>;

/**
 * Conntrack's byte/packet accounting (net.netfilter.nf_conntrack_acct) and flow
 * timestamps (nf_conntrack_timestamp) in the helper's network namespace: both
 * off by default, and without them a flow has no counters and no start time.
 */
export const ConntrackAccounting = v.object({
  /** nf_conntrack_acct is 1; null when it could not be read. */
  accounting: v.nullable(v.boolean()),
  /** nf_conntrack_timestamp is 1; null when it could not be read. */
  timestamps: v.nullable(v.boolean()),
  /** The helper turned at least one of them on at start, and sets it back at a clean stop. */
  enabledByHelper: v.boolean(),
  /** The helper was told to leave them alone (--no-conntrack-accounting). */
  optOut: v.boolean(),
});
export type ConntrackAccounting = v.InferOutput<typeof ConntrackAccounting>;

/**
 * How the helper names the program of a connection: 'ebpf' (records its programs in the
 * kernel made when the socket connected or sent, /proc for what they miss) or 'procfs'
 * (sock_diag + /proc only), with the reason eBPF is not in use.
 */
export const AttributionState = v.object({
  mode: v.picklist(['ebpf', 'procfs']),
  reason: v.optional(Text),
});
export type AttributionState = v.InferOutput<typeof AttributionState>;

/**
 * A setting given on the helper's command line that replaced a different saved value
 * at its start (protocol 1.5): `flag` as typed ("--fail-closed"), `saved` the value
 * settings.json holds. Gone once the setting is changed over IPC.
 */
export const SettingOverride = v.object({
  field: SettingsField,
  flag: Text,
  saved: v.union([v.string(), v.number(), v.boolean()]),
});
export type SettingOverride = v.InferOutput<typeof SettingOverride>;

export const HelperState = v.object({
  version: Text,
  pid: Count,
  startedAt: EpochMs,
  netns: v.nullable(Text),
  /** "nft", "iptables" (nft-compat) or "iptables-legacy". */
  firewallBackend: v.pipe(v.string(), v.maxLength(32)),
  queue: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535)),
  settings: Settings,
  clients: Count,
  pendingPrompts: Count,
  rules: Count,
  /** Optional: added in protocol 1.1 (a 1.0 helper does not send it). */
  conntrack: v.optional(ConntrackAccounting),
  /** Optional: present while the helper runs with recovered settings (settings.json was unusable). */
  settingsRecovered: v.optional(SettingsRecovery),
  /**
   * Optional (protocol 1.3): how often somebody else's ruleset change (a firewalld or
   * ufw reload, `nft flush ruleset`) removed our rules and the helper put them back.
   */
  rulesRestored: v.optional(Count),
  /** Optional (protocol 1.4): how connections are attributed (docs/attribution.md). */
  attribution: v.optional(AttributionState),
  /** Optional (protocol 1.5): settings the command line set over saved values at start. */
  settingsOverridden: v.optional(v.array(SettingOverride)),
});
export type HelperState = v.InferOutput<typeof HelperState>;

/** One CPU's conntrack counters (ctnetlink's per-CPU statistics, since boot). */
export const CpuConntrackStats = v.object({
  cpu: Count,
  found: Count,
  insert: Count,
  insertFailed: Count,
  drop: Count,
  earlyDrop: Count,
  invalid: Count,
  error: Count,
  searchRestart: Count,
});
export type CpuConntrackStats = v.InferOutput<typeof CpuConntrackStats>;

export const Stats = v.object({
  time: EpochMs,
  /** Connections decided, by outcome, since the helper started. */
  allowed: Count,
  denied: Count,
  prompted: Count,
  /** Kernel queue counters (/proc/net/netfilter/nfnetlink_queue). */
  queueDropped: Count,
  queueUserDropped: Count,
  queueTotal: Count,
  /** Conntrack table size and limit. */
  conntrackCount: Count,
  conntrackMax: Count,
  /** Sum of the per-CPU conntrack statistics that matter for a user. */
  conntrackInsertFailed: Count,
  conntrackDrop: Count,
  conntrackEarlyDrop: Count,
  /** The same counters per CPU (at most 1,024 CPUs; optional: older helpers send none). */
  conntrackCpus: v.optional(v.pipe(v.array(CpuConntrackStats), v.maxLength(1024))),
});
export type Stats = v.InferOutput<typeof Stats>;
