/** What the parser knows between one option and the next. */
import type { Family } from '../../conntrack/types.js';
import type { CompatArgs, CompatCommand, CompatTable } from './args.js';
import { CompatUsageError } from './errors.js';
import type { ArgvCursor } from './getopt.js';
import type { LabelMap } from './label-map.js';
import type { ProtoExt } from './proto-extensions.js';

/** How the parser gets the label map (once, when an option first needs it). */
export interface CompatParseOptions {
  /** conntrack-tools' labelmap_init(): the map, or undefined when it cannot be read. */
  loadLabelMap?: () => LabelMap | undefined;
  /** Where a warning goes at once (`-a`: 1.4.7 warns and ignores it). */
  warn?: (text: string) => void;
}

export class ParseState {
  readonly r: CompatArgs = {
    command: 'L',
    table: 'conntrack',
    options: new Set(),
    protoOptions: new Set(),
    orig: {},
    reply: {},
    expTuple: {},
    expMask: {},
    output: new Set(),
    json: false,
  };
  command: CompatCommand | undefined;
  table: CompatTable = 'conntrack';
  /** The extension of the last -p, whose options the words after it may use. */
  ext: ProtoExt | undefined;
  /** The family the addresses and -f given so far agree on. */
  family: Family | undefined;

  constructor(
    readonly cursor: ArgvCursor,
    private readonly parseOptions: CompatParseOptions,
  ) {}

  setFamily(f: Family): void {
    if (this.family !== undefined && this.family !== f) {
      throw new CompatUsageError('mismatched address family');
    }
    this.family = f;
  }

  warn(text: string): void {
    this.parseOptions.warn?.(text);
  }

  labelMapInit(): void {
    if (this.r.labelMapLoaded) return;
    this.r.labelMapLoaded = true;
    const map = this.parseOptions.loadLabelMap?.();
    if (map) this.r.labelMap = map;
  }

  /** parse_label_get_max() + parse_label(): comma-separated names, each known. */
  parseLabels(text: string): number[] {
    return text.split(',').map((name) => {
      const bit = this.r.labelMap?.bits.get(name);
      if (bit === undefined) throw new CompatUsageError(`unknown label '${name}'`);
      return bit;
    });
  }
}
