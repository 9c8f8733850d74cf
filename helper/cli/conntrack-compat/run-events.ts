/**
 * `-E [expect]`: follows events until SIGINT or SIGTERM, then prints the
 * summary conntrack-tools prints and exits 0.
 */
import { ConntrackEvents } from '../../conntrack/events.js';
import type { CliIo } from '../command.js';
import type { CompatArgs } from './args.js';
import { COMPAT_PREFIX } from './errors.js';
import { EventLines } from './event-lines.js';
import { filterInit } from './filter.js';

/** The event subscription -E asks for (-e, -b, --netns), with -b's notice. */
function openEvents(a: CompatArgs, io: CliIo): ConntrackEvents {
  const kinds = a.eventMask ? [...a.eventMask] : (['new', 'update', 'destroy'] as const);
  const expect = a.table === 'expect';
  const events = ConntrackEvents.open({
    events: expect ? [] : kinds,
    ...(expect ? { expectations: kinds } : {}),
    ...(a.netns !== undefined ? { netns: a.netns } : {}),
    ...(a.bufferSize !== undefined ? { rcvbuf: Math.max(a.bufferSize, 1) } : {}),
  });
  if (a.bufferSize !== undefined) {
    // The kernel doubles SO_RCVBUF(FORCE) and conntrack-tools reports what it reads back.
    io.stderr(`NOTICE: Netlink socket buffer size has been set to ${a.bufferSize * 2} bytes.\n`);
  }
  if (!expect) {
    try {
      filterInit(a);
    } catch (error) {
      events.close();
      throw error;
    }
  }
  return events;
}

export async function runCompatEvents(a: CompatArgs, io: CliIo): Promise<number> {
  const expect = a.table === 'expect';
  const events = openEvents(a, io);
  const lines = new EventLines(a);
  let shown = 0;
  events.connection.onNotification((msg) => {
    try {
      const line = lines.of(msg);
      if (line === undefined) return;
      shown++;
      io.stdout(line + '\n');
    } catch (error) {
      io.stderr(
        `portcullis conntrack: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    }
  });
  events.onLost(() => {
    io.stderr('WARNING: We have hit ENOBUFS! We are losing events.\n');
  });
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      events.close();
      if (lines.xmlStarted) io.stdout(expect ? '</expect>\n' : '</conntrack>\n');
      io.stderr(
        `${COMPAT_PREFIX}${shown} ${expect ? 'expectation' : 'flow'} events have been shown.\n`,
      );
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
