// CT_EVENTS_CMD for ../shared/bench: follows conntrack NEW and DESTROY events
// in the current network namespace with the library's defaults, decoding
// every event, and prints `summary new=X destroy=Y enobufs=Z` on SIGTERM.
import { ConntrackEvents } from '../helper/conntrack/events.js';

const events = ConntrackEvents.open({ events: ['new', 'destroy'] });
let created = 0;
let destroyed = 0;
let enobufs = 0;
events.onEvent((e) => {
  if (e.type === 'new') created++;
  else if (e.type === 'destroy') destroyed++;
});
events.onLost(() => {
  enobufs++;
});
events.onError((error) => process.stderr.write(`error: ${error.message}\n`));

function finish(): void {
  events.close();
  process.stdout.write(`summary new=${created} destroy=${destroyed} enobufs=${enobufs}\n`);
  process.exit(0);
}
process.on('SIGTERM', finish);
process.on('SIGINT', finish);
