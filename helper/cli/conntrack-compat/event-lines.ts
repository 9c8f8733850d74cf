/**
 * `-E [expect]`: the line an event prints: the entry's text form after
 * `[NEW]`/`[UPDATE]`/`[DESTROY]`, with ` [USERSPACE] portid=N` when a
 * netlink request caused the event (the requester's port id); or its
 * `-o save`, `-o xml` or `--json` form.
 */
import { decodeFlow } from '../../conntrack/decode.js';
import { eventTypeOf } from '../../conntrack/events.js';
import { decodeExpectationEvent } from '../../conntrack/expect-decode.js';
import { flowMatcher } from '../../conntrack/filter.js';
import type { Flow } from '../../conntrack/types.js';
import type { NetlinkMessage } from '../../netlink/message.js';
import type { CompatArgs } from './args.js';
import { listFilter } from './filter.js';
import { expectationJsonLine, flowEventJson } from './format-json.js';
import { formatCompatSave } from './format-save.js';
import {
  expectClockPrefix,
  formatCompatExpectation,
  formatCompatFlow,
  wallClockPrefix,
  type FormatOptions,
} from './format-text.js';
import {
  XML_EXPECT_HEADER,
  XML_HEADER,
  formatCompatExpectationXml,
  formatCompatXml,
} from './format-xml.js';
import { formatOptions } from './output.js';

/** ct_save_snprintf() names the event by the command that would replay it. */
const SAVE_EVENT_PREFIX = { new: '-A', update: '-U', destroy: '-D' } as const;

const EVENT_TAGS = { new: '    [NEW] ', update: ' [UPDATE] ', destroy: '[DESTROY] ' } as const;

export class EventLines {
  /** -o xml: whether the header went out (before the first event). */
  xmlStarted = false;
  private readonly expect: boolean;
  private readonly matches: (flow: Flow) => boolean;
  private readonly format: FormatOptions;
  /** -o xml,timestamp: the <when> block instead of the clock prefix. */
  private readonly when: boolean;

  constructor(private readonly a: CompatArgs) {
    this.expect = a.table === 'expect';
    this.matches = flowMatcher(listFilter(a));
    this.format = formatOptions(a);
    this.when = a.output.has('timestamp');
  }

  /** The line for a message, without the newline; undefined when it is not shown. */
  of(msg: NetlinkMessage): string | undefined {
    const line = this.expect ? this.expectationLine(msg) : this.flowLine(msg);
    if (line === undefined || this.a.json) return line;
    return this.decorate(line, msg);
  }

  private xmlStart(): string {
    if (this.xmlStarted) return '';
    this.xmlStarted = true;
    return this.expect ? XML_EXPECT_HEADER : XML_HEADER;
  }

  private expectationLine(msg: NetlinkMessage): string | undefined {
    const a = this.a;
    const ev = decodeExpectationEvent(msg);
    if (!ev) return undefined;
    if (a.family !== undefined && ev.expectation.family !== a.family) return undefined;
    return a.json
      ? expectationJsonLine(ev.expectation, ev.type).trimEnd()
      : a.output.has('xml')
        ? this.xmlStart() + formatCompatExpectationXml(ev.expectation, ev.type, this.when)
        : EVENT_TAGS[ev.type] + formatCompatExpectation(ev.expectation);
  }

  private flowLine(msg: NetlinkMessage): string | undefined {
    const a = this.a;
    const type = eventTypeOf(msg);
    if (type === undefined) return undefined;
    const flow = decodeFlow(msg);
    if (!this.matches(flow)) return undefined;
    // conntrack-tools' filter needs the attribute: destroy events carry no mark when it is 0.
    if (a.mark !== undefined && flow.mark === undefined) return undefined;
    return a.json
      ? flowEventJson(type, flow)
      : a.output.has('save')
        ? formatCompatSave(flow, SAVE_EVENT_PREFIX[type])
        : a.output.has('xml')
          ? this.xmlStart() +
            formatCompatXml(flow, type, a.output.has('ktimestamp'), undefined, this.when)
          : EVENT_TAGS[type] + formatCompatFlow(flow, this.format);
  }

  /** The clock before a text line (-o timestamp), the requester after a conntrack event. */
  private decorate(line: string, msg: NetlinkMessage): string {
    const output = this.a.output;
    // ct_save_snprintf() lines go without the clock, as in 1.4.7 (-o save,timestamp is refused anyway).
    if (output.has('timestamp') && !output.has('save') && !output.has('xml')) {
      line = (this.expect ? expectClockPrefix() : wallClockPrefix()) + line;
    }
    // conntrack-tools does this for conntrack events only.
    if (msg.portId !== 0 && !this.expect) line += ` [USERSPACE] portid=${msg.portId}`;
    return line;
  }
}
