/**
 * conntrack-tools 1.4.7's getopt_long table: the command options, the
 * generic long options (plus Portcullis' --json and --netns) and the short
 * option letters. The protocol options are in proto-extensions.ts.
 */
type ArgKind = 'none' | 'required' | 'optional';

export interface LongOption {
  name: string;
  arg: ArgKind;
  /** A command letter, a generic option, a protocol option, or one of ours. */
  key: string;
}

export const COMMAND_OPTIONS: LongOption[] = [
  { name: 'dump', arg: 'optional', key: 'L' },
  { name: 'create', arg: 'optional', key: 'I' },
  { name: 'add', arg: 'optional', key: 'A' },
  { name: 'delete', arg: 'optional', key: 'D' },
  { name: 'update', arg: 'optional', key: 'U' },
  { name: 'get', arg: 'optional', key: 'G' },
  { name: 'flush', arg: 'optional', key: 'F' },
  { name: 'event', arg: 'optional', key: 'E' },
  { name: 'counter', arg: 'optional', key: 'C' },
  { name: 'stats', arg: 'none', key: 'S' },
  { name: 'version', arg: 'none', key: 'V' },
  { name: 'help', arg: 'none', key: 'h' },
];

export const GENERIC_LONG: LongOption[] = [
  { name: 'orig-src', arg: 'required', key: 'src' },
  { name: 'src', arg: 'required', key: 'src' },
  { name: 'orig-dst', arg: 'required', key: 'dst' },
  { name: 'dst', arg: 'required', key: 'dst' },
  { name: 'reply-src', arg: 'required', key: 'reply-src' },
  { name: 'reply-dst', arg: 'required', key: 'reply-dst' },
  { name: 'protonum', arg: 'required', key: 'protonum' },
  { name: 'timeout', arg: 'required', key: 'timeout' },
  { name: 'status', arg: 'required', key: 'status' },
  { name: 'zero', arg: 'none', key: 'zero' },
  { name: 'event-mask', arg: 'required', key: 'event-mask' },
  { name: 'tuple-src', arg: 'required', key: 'tuple-src' },
  { name: 'tuple-dst', arg: 'required', key: 'tuple-dst' },
  { name: 'mask-src', arg: 'required', key: 'mask-src' },
  { name: 'mask-dst', arg: 'required', key: 'mask-dst' },
  { name: 'nat-range', arg: 'required', key: 'nat-range' },
  { name: 'mark', arg: 'required', key: 'mark' },
  { name: 'secmark', arg: 'required', key: 'secmark' },
  { name: 'id', arg: 'optional', key: 'id' },
  { name: 'family', arg: 'required', key: 'family' },
  { name: 'src-nat', arg: 'optional', key: 'src-nat' },
  { name: 'dst-nat', arg: 'optional', key: 'dst-nat' },
  { name: 'output', arg: 'required', key: 'output' },
  { name: 'buffer-size', arg: 'required', key: 'buffer-size' },
  { name: 'any-nat', arg: 'optional', key: 'any-nat' },
  { name: 'zone', arg: 'required', key: 'zone' },
  { name: 'label', arg: 'required', key: 'label' },
  { name: 'label-add', arg: 'required', key: 'label-add' },
  { name: 'label-del', arg: 'optional', key: 'label-del' },
  { name: 'orig-zone', arg: 'required', key: 'orig-zone' },
  { name: 'reply-zone', arg: 'required', key: 'reply-zone' },
  // Portcullis additions.
  { name: 'json', arg: 'none', key: 'json' },
  { name: 'netns', arg: 'required', key: 'netns' },
];

/** getopt_str ":LIUDGEFAhVs:d:r:q:p:t:u:e:a:z[:]:{:}:m:i:f:o:n::g::c:b:C::Sj::w:l:<:>::(:):" */
export const SHORT: Record<string, { key: string; arg: ArgKind }> = {
  L: { key: 'L', arg: 'none' },
  I: { key: 'I', arg: 'none' },
  U: { key: 'U', arg: 'none' },
  D: { key: 'D', arg: 'none' },
  G: { key: 'G', arg: 'none' },
  E: { key: 'E', arg: 'none' },
  F: { key: 'F', arg: 'none' },
  A: { key: 'A', arg: 'none' },
  h: { key: 'h', arg: 'none' },
  V: { key: 'V', arg: 'none' },
  C: { key: 'C', arg: 'optional' },
  S: { key: 'S', arg: 'none' },
  s: { key: 'src', arg: 'required' },
  d: { key: 'dst', arg: 'required' },
  r: { key: 'reply-src', arg: 'required' },
  q: { key: 'reply-dst', arg: 'required' },
  p: { key: 'protonum', arg: 'required' },
  t: { key: 'timeout', arg: 'required' },
  u: { key: 'status', arg: 'required' },
  e: { key: 'event-mask', arg: 'required' },
  a: { key: 'nat-range', arg: 'required' },
  z: { key: 'zero', arg: 'none' },
  m: { key: 'mark', arg: 'required' },
  i: { key: 'id', arg: 'required' },
  f: { key: 'family', arg: 'required' },
  o: { key: 'output', arg: 'required' },
  n: { key: 'src-nat', arg: 'optional' },
  g: { key: 'dst-nat', arg: 'optional' },
  c: { key: 'secmark', arg: 'required' },
  b: { key: 'buffer-size', arg: 'required' },
  j: { key: 'any-nat', arg: 'optional' },
  w: { key: 'zone', arg: 'required' },
  l: { key: 'label', arg: 'required' },
};

/** getopt_long's match: the exact name, else a prefix that means one option. */
export function matchLong(name: string, options: readonly LongOption[]): LongOption | undefined {
  const exact = options.find((o) => o.name === name);
  if (exact) return exact;
  const prefixed = options.filter((o) => o.name.startsWith(name));
  const keys = new Set(prefixed.map((o) => `${o.key}/${o.arg}`));
  return keys.size === 1 ? prefixed[0] : undefined;
}

/**
 * Whether a word is a conntrack-tools command (-L, -Dp, --dump, -R...): what
 * tells `portcullis conntrack WORD -L` (1.4.7 ignores the stray WORD) from a
 * mistyped subcommand (`portcullis conntrack lsit -p tcp`).
 */
export function namesCompatCommand(word: string): boolean {
  if (word.startsWith('--')) {
    const name = word.slice(2).split('=')[0]!;
    if (name === 'load-file') return true;
    return name.length > 0 && COMMAND_OPTIONS.some((o) => o === matchLong(name, COMMAND_OPTIONS));
  }
  return /^-[LIUDGEFACSVhR]/.test(word);
}
