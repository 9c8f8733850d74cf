// A stand-in FW_DAEMON_CMD for the OpenSnitch peer harness (bench/peer-opensnitch.sh
// --loop-only): the helper's Interceptor alone (rules, queue, verdict loop with the
// policy-only decider and its log), without the flow table (conntrack event mirror)
// and the stats sampler that `portcullis helper` adds. Measures what the verdict loop
// costs by itself. Queue from $FW_QUEUE; SIGTERM/SIGINT removes the rules and exits.
import { PolicyFallbackDecider } from '../helper/daemon/fallback-decider.js';
import { Interceptor } from '../helper/daemon/interceptor.js';
import { createLogger } from '../helper/daemon/log.js';

const log = createLogger({ level: 'info' });
const interceptor = new Interceptor({
  queue: Number(process.env['FW_QUEUE'] ?? '0'),
  policy: { defaultAction: 'allow', decisionTimeoutMs: 31_000, failClosed: false, inbound: false },
  decider: new PolicyFallbackDecider('allow'),
  log,
  onFatal: (e) => {
    log.error('peer-interceptor', e.message);
    process.exitCode = 1;
    void interceptor.stop();
  },
});
await interceptor.start();
const stop = (): void => {
  void interceptor.stop().then(() => {
    log.info('peer-interceptor', 'stopped', { ...interceptor.counters, reasons: undefined });
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
