/**
 * The daemon's attribution start: eBPF records when they open, sock_diag + /proc when they
 * are refused or turned off (one warning, and the state says why), over a real socket of
 * this process and real sock_diag + /proc.
 */
import { createSocket, type Socket } from 'node:dgram';
import * as v from 'valibot';
import { afterEach, describe, expect, it } from 'vitest';
import {
  openAttribution,
  type AttributionOptions,
  type DaemonAttribution,
} from '../../../helper/daemon/attribution.js';
import { createLogger } from '../../../helper/daemon/log.js';
import type { ConnectionTuple } from '../../../helper/daemon/ports.js';
import { AttributionState } from '../../../helper/protocol/model.js';
import { ownerRecord, RecordedOwners } from '../../support/recorded-owners.js';

const opened: DaemonAttribution[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const a of opened.splice(0)) a.close();
  for (const s of sockets.splice(0)) s.close();
});

/** Opens with a journal-format logger whose lines are kept. */
async function start(options: AttributionOptions) {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l.trimEnd()), journal: true });
  const a = await openAttribution({ ...options, log });
  opened.push(a);
  return { a, lines };
}

/** A real UDP socket of this process, connected to 127.0.0.1:9. */
async function udpTuple(): Promise<ConnectionTuple> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => s.connect(9, '127.0.0.1', () => resolve()));
  const sport = s.address().port;
  return { family: 'ipv4', protocol: 17, src: '127.0.0.1', sport, dst: '127.0.0.1', dport: 9 };
}

const EPERM = 'eBPF unavailable: BPF_PROG_LOAD: Operation not permitted (EPERM)';

describe('openAttribution', () => {
  it('BPF refused (the opener throws): one warning, procfs with the reason, /proc still names owners', async () => {
    const { a, lines } = await start({
      openKernelOwners: () => {
        throw new Error(EPERM);
      },
    });
    expect(a.state).toEqual({ mode: 'procfs', reason: EPERM });
    expect(v.safeParse(AttributionState, a.state).success).toBe(true);
    const warnings = lines.filter((l) => l.startsWith('<4>'));
    expect(warnings).toEqual([
      `<4>warn attribution: falling back to sock_diag + /proc (${EPERM}); programs that exit before their first packet is read may go unnamed`,
    ]);
    const t = await udpTuple();
    await expect(a.adapter.attribute(t)).resolves.toMatchObject({
      uid: process.getuid!(),
      process: { pid: process.pid },
    });
  });

  it('a source that opened in procfs mode (no BTF, no cgroup v2): closed, its reason reported', async () => {
    const source = new RecordedOwners({ mode: 'procfs', reason: 'eBPF unavailable: no BTF' });
    const { a, lines } = await start({ openKernelOwners: () => source });
    expect(source.closed).toBe(true);
    expect(a.state).toEqual({ mode: 'procfs', reason: 'eBPF unavailable: no BTF' });
    expect(lines.filter((l) => l.startsWith('<4>'))).toHaveLength(1);
  });

  it('--attribution procfs: the records are never opened; the state says it was turned off', async () => {
    let asked = 0;
    const { a, lines } = await start({
      attribution: 'procfs',
      openKernelOwners: () => {
        asked++;
        return new RecordedOwners();
      },
    });
    expect(asked).toBe(0);
    expect(a.state).toEqual({ mode: 'procfs', reason: 'turned off by --attribution procfs' });
    expect(lines.filter((l) => l.startsWith('<4>'))).toEqual([]);
  });

  it('records open: they name the owner first; closing the attribution closes them', async () => {
    const source = new RecordedOwners();
    const { a, lines } = await start({ openKernelOwners: () => source });
    expect(a.state).toEqual({ mode: 'ebpf' });
    expect(lines.some((l) => /^<6>info attribution: eBPF owner records first/.test(l))).toBe(true);
    const t = await udpTuple();
    source.record(
      { family: 'ipv4', protocol: 'udp', src: t.src, sport: t.sport!, dst: t.dst, dport: 9 },
      ownerRecord({ pid: 999_999_999, startTime: 5, comm: 'gone', exe: '/opt/gone', uid: 4321 }),
    );
    await expect(a.adapter.attribute(t)).resolves.toMatchObject({
      uid: 4321,
      process: { pid: 999_999_999, comm: 'gone', exe: '/opt/gone', cmdline: [] },
    });
    opened.splice(0).forEach((x) => x.close());
    expect(source.closed).toBe(true);
  });

  it('some programs refused: eBPF for the rest, the refusals named in a warning and the state', async () => {
    const source = new RecordedOwners({
      mode: 'ebpf',
      programs: { sendmsg4: 'attached', connect_tp: 'EPERM: lockdown' },
    });
    const { a, lines } = await start({ openKernelOwners: () => source });
    expect(a.state).toEqual({
      mode: 'ebpf',
      reason: 'programs refused: connect_tp: EPERM: lockdown',
    });
    expect(lines.filter((l) => l.startsWith('<4>'))).toHaveLength(1);
  });

  it('a reason longer than the state allows is cut, so the state stays valid', async () => {
    const { a } = await start({
      openKernelOwners: () => {
        throw new Error('x'.repeat(10_000));
      },
    });
    expect(v.safeParse(AttributionState, a.state).success).toBe(true);
    expect(
      v.safeParse(AttributionState, { mode: 'procfs', reason: 'x'.repeat(5000) }).success,
    ).toBe(false);
  });
});
