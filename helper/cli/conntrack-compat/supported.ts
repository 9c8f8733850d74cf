/** What the parser accepts but this version does not carry out: refused before anything runs. */
import type { CompatArgs } from './args.js';
import { NotSupported } from './errors.js';

export function checkSupported(a: CompatArgs): void {
  if (a.table === 'expect' && !['E', 'L', 'F', 'C', 'G', 'D', 'I'].includes(a.command)) {
    throw new NotSupported(`-${a.command} of the expect table is not supported yet`);
  }
  // Every -o is carried out, or (as in 1.4.7) has no effect where a command
  // ignores it (-o timestamp outside -E and the expect table, -o ktimestamp
  // with the expect table); -o xml,timestamp there adds <when>.
  if (a.table !== 'conntrack' && a.table !== 'expect' && a.command !== 'L') {
    throw new NotSupported(`the ${a.table} table is supported with -L only`);
  }
}
