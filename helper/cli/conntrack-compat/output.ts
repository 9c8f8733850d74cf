/** Printing entries in the form the command line asked for (text, -o extended/xml/save, --json). */
import type { Flow } from '../../conntrack/types.js';
import type { CliIo } from '../command.js';
import { flowJsonLine } from '../conntrack-json.js';
import type { CompatArgs } from './args.js';
import { formatCompatSave } from './format-save.js';
import { formatCompatFlow, type FormatOptions } from './format-text.js';
import { XML_HEADER, formatCompatXml } from './format-xml.js';

/** The text form's options; labels are named once the label map is loaded, except for -D (as 1.4.7). */
export function formatOptions(a: CompatArgs): FormatOptions {
  return {
    extended: a.output.has('extended'),
    id: a.output.has('id'),
    ktimestamp: a.output.has('ktimestamp'),
    ...(a.labelMap && a.command !== 'D' ? { labelNames: a.labelMap.names } : {}),
  };
}

/** Entries go out in chunks of about 64 KiB, and at flush(). */
export class Output {
  private chunk = '';
  /** -o xml: whether the XML header went out (-L and -G print it before the first entry). */
  xmlStarted = false;
  constructor(
    private readonly io: CliIo,
    private readonly a: CompatArgs,
    private readonly xmlHeader = false,
  ) {}
  /** `savePrefix`: the command a `-o save` line starts with (-A, or -D for what -D deleted). */
  flow(f: Flow, savePrefix = '-A'): void {
    const xml = this.a.output.has('xml') && !this.a.json;
    if (xml && this.xmlHeader && !this.xmlStarted) {
      this.chunk += XML_HEADER;
      this.xmlStarted = true;
    }
    this.chunk += this.a.json
      ? flowJsonLine(f)
      : (this.a.output.has('save')
          ? formatCompatSave(f, savePrefix)
          : xml
            ? formatCompatXml(f, undefined, this.a.output.has('ktimestamp'))
            : formatCompatFlow(f, formatOptions(this.a))) + '\n';
    if (this.chunk.length >= 65536) this.flush();
  }
  /** -L: the closing tag, when the header went out. */
  endXml(): void {
    if (this.xmlStarted) this.chunk += '</conntrack>\n';
  }
  flush(): void {
    if (this.chunk) this.io.stdout(this.chunk);
    this.chunk = '';
  }
}
