// CT_POPULATE_CMD for ../shared/bench: creates $CT_N entries in the current
// network namespace with the same pattern as the anchor (bench/ct-populate):
// 75 % IPv4 127.1.0.0+i -> 127.0.0.1, 25 % IPv6 fd62:656e:6368::1:i ->
// fd62:656e:6368::1, TCP ESTABLISHED :443 / UDP :53 alternating, status
// ASSURED|SEEN_REPLY, timeout 3600 s, mark 0x10000|i, two labels on every 8th.
import { Conntrack, type CreateSpec } from '../helper/conntrack/client.js';

const n = Number(process.env['CT_N'] ?? process.argv[2] ?? '1000');
if (!Number.isInteger(n) || n < 0) {
  process.stderr.write('usage: CT_N=<entries> node dist/bench/ct-populate.js\n');
  process.exit(2);
}

function spec(i: number): CreateSpec {
  const v6 = i % 4 === 3;
  const udp = (i & 1) === 1;
  const src = v6
    ? `fd62:656e:6368:1::${((i >>> 16) & 0xffff).toString(16)}:${(i & 0xffff).toString(16)}`
    : `127.${1 + ((i >>> 16) & 0xff)}.${(i >>> 8) & 0xff}.${i & 0xff}`;
  const dst = v6 ? 'fd62:656e:6368::1' : '127.0.0.1';
  const s: CreateSpec = {
    orig: { src, dst, proto: udp ? 17 : 6, srcPort: 1024 + (i % 64000), dstPort: udp ? 53 : 443 },
    timeout: 3600,
    status: ['SEEN_REPLY', 'ASSURED'],
    mark: 0x10000 | (i & 0xffff),
  };
  if (!udp) s.tcpState = 'ESTABLISHED';
  if (i % 8 === 0) {
    const b = (i / 8) % 64;
    s.labels = [b, 64 + ((b * 7) % 64)];
  }
  return s;
}

const ct = Conntrack.open({
  maxInFlight: 1024,
  rcvbuf: 8 * 1024 * 1024,
  socket: { threaded: process.env['CT_THREADED'] === '1' },
});
function* specs(): Generator<CreateSpec> {
  for (let i = 0; i < n; i++) yield spec(i);
}
const t0 = process.hrtime.bigint();
const result = await ct.createMany(specs());
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
ct.close();
const errors = result.errors.length;
if (errors)
  process.stderr.write(
    `first error: index ${result.errors[0]!.index}: ${String(result.errors[0]!.error)}\n`,
  );
process.stdout.write(
  `secs=${secs.toFixed(4)} rate=${Math.round(n / secs)} created=${result.ok} errors=${errors}\n`,
);
process.exitCode = errors ? 1 : 0;
