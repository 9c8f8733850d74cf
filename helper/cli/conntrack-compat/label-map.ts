/** connlabel.conf, the file that names the conntrack label bits (-l, --label-*, -o labels). */
import { readFileSync } from 'node:fs';
import type { CliIo } from '../command.js';
import { strtoul } from './c-numbers.js';

/** Where conntrack-tools (libnetfilter_conntrack) reads label names. */
const CONNLABEL_CONF = '/etc/xtables/connlabel.conf';

/** A connlabel.conf: label names to bits, and the name printed for each bit. */
export interface LabelMap {
  bits: ReadonlyMap<string, number>;
  names: ReadonlyMap<number, string>;
}

/**
 * libnetfilter_conntrack's reading of connlabel.conf: lines starting with
 * '#' are skipped; otherwise a strtoul (base 0) bit number, then the name
 * (the rest of the line, trimmed). The first name of a bit is the one printed;
 * a name given twice keeps its first bit.
 */
export function parseLabelMap(text: string): LabelMap {
  const bits = new Map<string, number>();
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const { value, end } = strtoul(line);
    if (end === 0) continue;
    const name = line.slice(end).trim();
    if (!name || bits.has(name)) continue;
    bits.set(name, value);
    if (!names.has(value)) names.set(value, name);
  }
  return { bits, names };
}

/** labelmap_init(): reads connlabel.conf, or says why not as perror() does. */
export function labelMapLoader(io: CliIo): () => LabelMap | undefined {
  return () => {
    try {
      return parseLabelMap(readFileSync(CONNLABEL_CONF, 'utf8'));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === 'ENOENT'
          ? 'No such file or directory'
          : code === 'EACCES'
            ? 'Permission denied'
            : code === 'EISDIR'
              ? 'Is a directory'
              : String(code);
      io.stderr(`nfct_labelmap_new: ${reason}\n`);
      return undefined;
    }
  };
}
