// CT_DUMP_CMD for ../shared/bench: lists the whole conntrack table of the
// current network namespace (both families), decoding every entry into a
// Flow, and prints dump_secs=X and the entry count as the last line.
import { Conntrack } from '../helper/conntrack/client.js';

const ct = Conntrack.open();
const t0 = process.hrtime.bigint();
let labelled = 0;
const n = await ct.forEach((flow) => {
  // Touch what the C anchor reads, so that nothing is optimised away.
  if (flow.labels) labelled++;
});
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
ct.close();
process.stderr.write(`labelled=${labelled}\n`);
process.stdout.write(`dump_secs=${secs.toFixed(4)}\n${n}\n`);
