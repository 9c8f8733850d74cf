// NFQ_LOOP_CMD for ../shared/bench: binds NFQUEUE $NFQ_QUEUE in the current
// network namespace, sets the queue length from $NFQ_MAXLEN when given, and
// accepts every packet with the library's defaults (batched verdicts, 8 MiB
// receive buffer, copy mode packet 0xffff). On SIGTERM/SIGINT it closes the
// queue and prints one summary line to stderr (the harness keeps the last one).
import { NfQueue } from '../helper/nfqueue/queue.js';

function envNumber(name: string, max: number, required: boolean): number | undefined {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') {
    if (!required) return undefined;
    process.stderr.write(`nfq-accept: ${name} is not set\n`);
    process.exit(2);
  }
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > max || (name === 'NFQ_MAXLEN' && n < 1)) {
    process.stderr.write(`nfq-accept: ${name}=${text} is not a number in range\n`);
    process.exit(2);
  }
  return n;
}

const queue = envNumber('NFQ_QUEUE', 0xffff, true)!;
const maxQueueLength = envNumber('NFQ_MAXLEN', 0xffffffff, false);

const q = await NfQueue.open({
  queue,
  ...(maxQueueLength !== undefined ? { maxQueueLength } : {}),
});
q.onPacket((p) => p.accept());
let lost = 0;
q.onError((e) => {
  if (e.code === 'LOST') lost++;
  else process.stderr.write(`nfq-accept: ${e.code}: ${e.message}\n`);
});

let stopping = false;
async function finish(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await q.close();
  const c = q.counters;
  process.stderr.write(
    `summary received=${c.received} accepted=${c.accepted} messages=${c.verdictMessages} ` +
      `batch_messages=${c.batchMessages} datagrams=${c.datagramsSent} enobufs=${c.enobufs} lost_reports=${lost}\n`,
  );
  process.exit(0);
}
process.on('SIGTERM', () => void finish());
process.on('SIGINT', () => void finish());
