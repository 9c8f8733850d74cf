import { statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { encodeFrame } from '../../../helper/protocol/framing.js';
import { afterEach, describe, expect, it } from 'vitest';
import { IpcClient } from '../../../helper/protocol/client.js';
import { IpcError, ServiceError } from '../../../helper/protocol/errors.js';
import { PROTOCOL_VERSION } from '../../../helper/protocol/messages.js';
import { makeHistoryEntry } from '../../support/fake-helper-service.js';
import {
  TOKEN,
  errorCode,
  startHarness,
  until,
  type Harness,
  type RawClient,
} from '../../support/ipc-harness.js';
import { startFlooder, type FloodMode, type Flooder } from '../../support/ipc-flooder.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

async function rejection(p: Promise<unknown>): Promise<IpcError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IpcError);
  return error as IpcError;
}

describe('IpcServer requests', () => {
  it('answers typed requests and passes the peer to the service', async () => {
    h = await startHarness();
    const c = await h.client();
    expect(c.server.protocol).toEqual(PROTOCOL_VERSION);
    expect(c.server.pid).toBe(process.pid);
    const rule = await c.call('rules.add', {
      action: 'deny',
      match: { host: '*.tracker.example', port: { from: 443, to: 443 } },
      duration: { kind: 'forever' },
      note: 'no trackers',
    });
    expect(rule).toMatchObject({ id: 'r1', action: 'deny', enabled: true, note: 'no trackers' });
    const listed = await c.call('rules.list');
    expect(listed.total).toBe(1);
    expect(listed.rules[0]!.match.host).toBe('*.tracker.example');
    const state = await c.call('state.get');
    expect(state.rules).toBe(1);
    const add = h.service.calls.find((x) => x.method === 'rules.add')!;
    expect(add.uid).toBe(process.getuid!());
    // Defaults are applied before the service sees params.
    expect(h.service.calls.find((x) => x.method === 'rules.list')!.params).toEqual({
      offset: 0,
      limit: 1000,
    });
  });

  it('passes service errors through by code and hides unexpected ones as internal', async () => {
    h = await startHarness();
    const c = await h.client();
    const missing = await rejection(c.call('rules.remove', { id: 'nope' }));
    expect(missing.code).toBe('not-found');
    expect(missing.message).toMatch(/no rule nope/);
    h.service.failNext = new Error('disk on fire at /secret/path');
    const internal = await rejection(c.call('stats.get'));
    expect(internal.code).toBe('internal');
    expect(internal.message).not.toMatch(/secret/);
    expect(h.logs.some((l) => l.event === 'service-error' && /disk on fire/.test(l.message))).toBe(
      true,
    );
    h.service.failNext = new ServiceError('conflict', 'rule exists');
    expect((await rejection(c.call('stats.get'))).code).toBe('conflict');
    // A result that breaks its schema is a helper bug: internal, and logged.
    h.service.corruptResult = true;
    expect((await rejection(c.call('state.get'))).code).toBe('internal');
    expect(h.logs.some((l) => /invalid result/.test(l.message))).toBe(true);
    h.service.corruptResult = false;
    // The connection survives all of these.
    expect((await c.call('settings.get')).defaultAction).toBe('deny');
  });

  it('rejects invalid params and unknown methods with error responses', async () => {
    h = await startHarness();
    const raw = await h.raw();
    raw.hello();
    await raw.waitFor((f) => f['type'] === 'hello');
    raw.send({ type: 'request', id: 5, method: 'rules.add', params: { action: 'maybe' } });
    const bad = await raw.waitFor((f) => f['id'] === 5);
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid-params' } });
    expect((bad['error'] as { message: string }).message).toMatch(/rules\.add/);
    raw.send({ type: 'request', id: 6, method: 'rules.frobnicate', params: {} });
    expect(await raw.waitFor((f) => f['id'] === 6)).toMatchObject({
      ok: false,
      error: { code: 'unknown-method' },
    });
    raw.send({ type: 'request', id: 7, method: 'constructor' });
    expect(await raw.waitFor((f) => f['id'] === 7)).toMatchObject({
      error: { code: 'unknown-method' },
    });
    raw.send({ type: 'request', id: 8, method: 'stats.get' });
    expect(await raw.waitFor((f) => f['id'] === 8)).toMatchObject({ ok: true });
    expect(h.service.calls.map((x) => x.method)).toEqual(['stats.get']);
  });

  it('refuses a result larger than a frame with result-too-large', async () => {
    h = await startHarness({ maxFrameBytes: 64 * 1024, chunkTargetBytes: 16 * 1024 });
    for (let i = 0; i < 400; i++) h.service.history.push(makeHistoryEntry(i));
    const c = await h.client();
    const e = await rejection(c.call('history.query', { limit: 400 }));
    expect(e.code).toBe('result-too-large');
    const page = await c.call('history.query', { limit: 20 });
    expect(page.entries).toHaveLength(20);
    expect(page.more).toBe(true);
    expect(page.entries[0]!.seq).toBe(399);
  });
});

describe('IpcServer robustness against its own callers', () => {
  it('turns a throwing flowsSnapshot into an internal error and a throwing callback into a log line', async () => {
    h = await startHarness({
      onClientsChanged: () => {
        throw new Error('daemon callback broke');
      },
    });
    h.service.flowsSnapshot = () => {
      throw new Error('mirror not ready');
    };
    const c = await h.client();
    const e = await rejection(c.call('subscribe', { topics: ['flows', 'stats'] }));
    expect(e.code).toBe('internal');
    expect(h.logs.some((l) => /mirror not ready/.test(l.message))).toBe(true);
    expect(h.logs.some((l) => l.event === 'callback-error')).toBe(true);
    // No half subscription was left behind, and the connection still works.
    expect(h.server.subscriberCount('flows')).toBe(0);
    expect(await c.call('subscribe', { topics: ['stats'] })).toEqual({ topics: ['stats'] });
  });
});

describe('IpcServer flows subscription', () => {
  it('awaits prepareFlows before the snapshot, and a failing one leaves no subscription', async () => {
    h = await startHarness();
    const order: string[] = [];
    let release: () => void = () => undefined;
    const snapshot = h.service.flowsSnapshot.bind(h.service);
    h.service.flowsSnapshot = () => {
      order.push('snapshot');
      return snapshot();
    };
    h.service.prepareFlows = () => {
      order.push('prepare');
      return new Promise<void>((r) => (release = r));
    };
    const c = await h.client();
    let answered = false;
    const sub = c.call('subscribe', { topics: ['flows'] }).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 50));
    // Still preparing: no snapshot taken, not subscribed, not answered.
    expect(order).toEqual(['prepare']);
    expect(h.server.subscriberCount('flows')).toBe(0);
    expect(answered).toBe(false);
    release();
    expect(await sub).toEqual({ topics: ['flows'] });
    expect(order).toEqual(['prepare', 'snapshot']);
    expect(h.server.subscriberCount('flows')).toBe(1);

    const d = await h.client();
    h.service.prepareFlows = () => Promise.reject(new Error('conntrack unavailable'));
    const e = await rejection(d.call('subscribe', { topics: ['flows', 'stats'] }));
    expect(e.code).toBe('internal');
    expect(h.server.subscriberCount('flows')).toBe(1);
    expect(h.server.subscriberCount('stats')).toBe(0);
  });
});

describe('IpcServer authentication', () => {
  it('refuses a wrong token and stays up for the right one', async () => {
    h = await startHarness();
    const e = await IpcClient.connect({ path: h.path, token: 'wrong' }).then(
      () => undefined,
      (x: unknown) => x as IpcError,
    );
    expect(e?.code).toBe('bad-token');
    const ok = await h.client();
    expect((await ok.call('stats.get')).allowed).toBe(1);
  });

  it('refuses a peer whose uid is not allowed (SO_PEERCRED) before reading anything', async () => {
    h = await startHarness({ allowedUids: [process.getuid!() + 4242] });
    const e = await IpcClient.connect({ path: h.path, token: TOKEN }).then(
      () => undefined,
      (x: unknown) => x as IpcError,
    );
    expect(e?.code).toBe('forbidden');
    expect(e?.message).toMatch(new RegExp(`uid ${process.getuid!()}`));
    expect(h.server.metrics.refused).toBe(1);
    expect(h.service.calls).toHaveLength(0);
  });

  it('answers another protocol major with a clear error and the helper version, then closes', async () => {
    h = await startHarness();
    const raw = await h.raw();
    // A future Hello whose shape this version does not know.
    raw.send({
      type: 'hello',
      protocol: { major: PROTOCOL_VERSION.major + 1, minor: 3 },
      auth: {},
    });
    const err = await raw.waitFor(errorCode('protocol-mismatch'));
    expect(err['fatal']).toBe(true);
    expect(err['protocol']).toEqual(PROTOCOL_VERSION);
    const { major, minor } = PROTOCOL_VERSION;
    expect((err['error'] as { message: string }).message).toContain(
      `client speaks protocol ${major + 1}.3, this helper speaks ${major}.${minor}`,
    );
    await raw.closedPromise;
    const c = await h.client();
    await c.call('stats.get');
  });

  it('refuses requests before Hello and closes a connection that never says Hello', async () => {
    h = await startHarness({ handshakeTimeoutMs: 200 });
    const raw = await h.raw();
    raw.send({ type: 'request', id: 1, method: 'rules.list' });
    await raw.waitFor(errorCode('unauthenticated'));
    await raw.waitFor(errorCode('handshake-timeout'));
    await raw.closedPromise;
    expect(h.service.calls).toHaveLength(0);
  });

  it('counts authenticated clients and tells the daemon', async () => {
    const counts: number[] = [];
    h = await startHarness({ onClientsChanged: (n) => void counts.push(n) });
    const a = await h.client();
    const b = await h.client();
    expect(h.server.clientCount).toBe(2);
    await a.close();
    await b.close();
    const deadline = Date.now() + 2000;
    while (h.server.clientCount > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(counts).toEqual([1, 2, 1, 0]);
  });

  it('tells the daemon when subscriptions change (the GUI presence for prompts)', async () => {
    const seen: number[] = [];
    h = await startHarness({
      onSubscriptionsChanged: () => void seen.push(h!.server.subscriberCount('prompts')),
    });
    const a = await h.client();
    await a.call('subscribe', { topics: ['prompts'] });
    await a.call('subscribe', { topics: ['stats'] });
    await a.call('unsubscribe', { topics: ['prompts'] });
    await a.call('subscribe', { topics: ['prompts'] });
    await a.close();
    const deadline = Date.now() + 2000;
    while (h.server.clientCount > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual([1, 1, 0, 1, 0]);
  });
});

describe('IpcServer abuse', () => {
  it('answers garbage and oversized frames with errors, closes after repeats, and stays up', async () => {
    h = await startHarness({ maxFrameBytes: 4096, chunkTargetBytes: 1024, maxStrikes: 4 });
    const raw = await h.raw();
    raw.hello();
    await raw.waitFor((f) => f['type'] === 'hello');
    raw.sendBytes(Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b])); // "{{{"
    await raw.waitFor(errorCode('bad-frame'));
    const huge = Buffer.alloc(4 + 100_000, 0x20);
    huge.writeUInt32BE(100_000, 0);
    raw.sendBytes(huge);
    const tooLarge = await raw.waitFor(errorCode('frame-too-large'));
    expect(tooLarge['fatal']).toBe(false);
    // After the skipped body the stream is in sync again.
    raw.send({ type: 'request', id: 1, method: 'stats.get' });
    expect(await raw.waitFor((f) => f['id'] === 1)).toMatchObject({ ok: true });
    for (let i = 0; i < 4; i++) raw.send({ type: 'nonsense', i });
    await raw.waitFor(errorCode('too-many-errors'));
    await raw.closedPromise;
    const c = await h.client();
    expect((await c.call('stats.get')).denied).toBe(2);
  });

  it('reads only small frames before Hello, full-size ones after', async () => {
    h = await startHarness();
    const raw = await h.raw();
    raw.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      build: 'x'.repeat(20_000),
      token: TOKEN,
    });
    const early = await raw.waitFor(errorCode('frame-too-large'));
    expect((early['error'] as { message: string }).message).toMatch(/16384-byte limit/);
    raw.hello();
    await raw.waitFor((f) => f['type'] === 'hello');
    const rules = Array.from({ length: 400 }, (_, i) => ({
      action: 'allow',
      match: { host: `host-${i}.example.org`, port: { from: i, to: i } },
      duration: { kind: 'forever' },
    }));
    raw.send({ type: 'request', id: 1, method: 'rules.import', params: { rules, mode: 'merge' } });
    expect(await raw.waitFor((f) => f['id'] === 1)).toMatchObject({
      ok: true,
      result: { added: 400 },
    });
  });

  it('limits authenticated clients', async () => {
    h = await startHarness({ maxClients: 2 });
    await h.client();
    await h.client();
    const e = await IpcClient.connect({ path: h.path, token: TOKEN }).then(
      () => undefined,
      (x: unknown) => x as IpcError,
    );
    expect(e?.code).toBe('forbidden');
    expect(e?.message).toMatch(/too many clients \(2 authenticated\)/);
  });
});

/** A Hello with a wrong token from a peer that then neither reads nor
 * closes; resolves once the helper has answered `bad-token`. */
function sendBadToken(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ path, allowHalfOpen: true });
    s.on('error', reject);
    s.on('connect', () =>
      s.write(encodeFrame({ type: 'hello', protocol: PROTOCOL_VERSION, build: 'x', token: 'no' })),
    );
    s.on('data', (d: Buffer) => {
      if (d.includes('bad-token')) {
        s.pause();
        resolve(s);
      }
    });
  });
}

/** Connects, asks for stats and closes, `times` times in a row; the errors. */
async function connectRepeatedly(path: string, times: number): Promise<string[]> {
  const failures: string[] = [];
  for (let i = 0; i < times; i++) {
    try {
      const c = await IpcClient.connect({ path, token: TOKEN, build: 'real-client' });
      await c.call('stats.get');
      await c.close();
    } catch (error) {
      const e = error as IpcError;
      failures.push(`${i}: ${e.code}: ${e.message}`);
    }
  }
  return failures;
}

describe('IpcServer handshake floods', () => {
  let flooder: Flooder | undefined;
  afterEach(async () => {
    await flooder?.stop();
    flooder = undefined;
  });

  it.each<FloodMode>(['silent', 'partial', 'bad-token'])(
    'a process of the same uid without the token (%s, reopening each connection) never locks the real client out',
    async (mode) => {
      h = await startHarness();
      const server = h.server;
      flooder = startFlooder({ path: h.path, count: 64, mode });
      await flooder.ready;
      if (mode === 'bad-token') {
        await until(() => h!.logs.some((l) => /token does not match/.test(l.message)));
      } else {
        // It holds the handshakes the server keeps (all of them, before the fix).
        await until(() => server.metrics.connections >= 16, 10_000, 'the flood');
      }
      const failures = await connectRepeatedly(h.path, 60);
      const opened = await flooder.stop();
      flooder = undefined;
      expect(failures).toEqual([]);
      expect(opened).toBeGreaterThan(64); // it did reopen what was closed
    },
    30_000,
  );

  it('handshakes never take the place of an authenticated client', async () => {
    h = await startHarness({ maxClients: 2 });
    const silent: RawClient[] = [];
    for (let i = 0; i < 8; i++) silent.push(await h.raw());
    await until(() => h!.server.metrics.connections + h!.server.metrics.refused >= 8);
    const a = await h.client();
    const b = await h.client();
    await a.call('stats.get');
    await b.call('stats.get');
    expect(h.server.clientCount).toBe(2);
    expect(silent.some((r) => r.closed)).toBe(false);
  });

  it("drops a uid's oldest handshake when it has too many, and keeps the newer ones", async () => {
    h = await startHarness({ maxHandshakesPerUid: 3 });
    const raws: RawClient[] = [];
    for (let i = 0; i < 3; i++) raws.push(await h.raw());
    await until(() => h!.server.metrics.handshakes === 3);
    raws.push(await h.raw());
    const err = await raws[0]!.waitFor(errorCode('handshake-timeout'));
    expect((err['error'] as { message: string }).message).toMatch(/dropped: uid \d+ has more/);
    await raws[0]!.closedPromise;
    expect(h.server.metrics.handshakes).toBe(3);
    expect(h.server.metrics.handshakesDropped).toBe(1);
    expect(raws.slice(1).some((r) => r.closed)).toBe(false);
    expect(h.logs.filter((l) => l.event === 'handshake-dropped')).toHaveLength(1);
    // A newer one still completes its Hello.
    raws[3]!.hello();
    await raws[3]!.waitFor((f) => f['type'] === 'hello');
  });

  it('a Hello already sent survives a burst of handshakes behind it (read before counted)', async () => {
    h = await startHarness({ maxHandshakesPerUid: 2 });
    // All connect in this turn: the server accepts the real client first and
    // six more behind it in one burst, before it reads any of them.
    const real = IpcClient.connect({ path: h.path, token: TOKEN });
    const burst: Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const s = connect(h.path);
      s.on('error', () => undefined);
      burst.push(s);
    }
    const c = await real;
    await c.call('stats.get');
    await until(() => h!.server.metrics.handshakesDropped === 4);
    expect(h.server.metrics.handshakes).toBe(2);
    await c.close();
    for (const s of burst) s.destroy();
  });

  it('a wrong token keeps counting while its socket lingers, and is logged once per uid', async () => {
    h = await startHarness({ maxHandshakesPerUid: 2 });
    const bad: Socket[] = [];
    for (let i = 0; i < 3; i++) bad.push(await sendBadToken(h.path));
    // The peers keep their end open, so the server's sockets linger for
    // their last frame: still counted, the oldest is dropped for the third.
    await until(() => h!.server.metrics.handshakesDropped === 1);
    expect(h.server.metrics.badTokens).toBe(3);
    expect(h.server.metrics.handshakes).toBe(2);
    expect(h.logs.filter((l) => l.event === 'bad-token')).toHaveLength(1);
    expect(h.logs.filter((l) => /token does not match/.test(l.message))).toHaveLength(1);
    const c = await h.client();
    await c.call('stats.get');
    for (const s of bad) s.destroy();
  });
});

describe('IpcServer handshake bounds across uids', () => {
  it('past the bound for all uids, the uid with the most handshakes loses its oldest', async () => {
    // The peer uid comes from this queue, one per accepted connection.
    const uids: number[] = [];
    h = await startHarness({
      maxHandshakesPerUid: 3,
      maxHandshakes: 4,
      allowedUids: [1001, 1002],
      peerCredentials: () => ({ pid: 1, uid: uids.shift()!, gid: 1, groups: [] }),
    });
    const open = async (uid: number): Promise<RawClient> => {
      uids.push(uid);
      const before = h!.server.metrics.handshakes + h!.server.metrics.handshakesDropped;
      const r = await h!.raw();
      await until(
        () => h!.server.metrics.handshakes + h!.server.metrics.handshakesDropped > before,
      );
      return r;
    };
    const a = [await open(1001), await open(1001), await open(1001)];
    const b = [await open(1002)];
    b.push(await open(1002));
    await a[0]!.waitFor(errorCode('handshake-timeout'));
    await until(() => h!.server.metrics.handshakes === 4);
    expect(a.slice(1).some((r) => r.closed)).toBe(false);
    expect(b.some((r) => r.closed)).toBe(false);
  });
});

describe('IpcServer lifecycle', () => {
  it('creates the directory 0750 and the socket 0660, and close() tells clients and removes it', async () => {
    h = await startHarness();
    expect(statSync(h.path.replace(/\/helper\.sock$/, '')).mode & 0o7777).toBe(0o750);
    expect(statSync(h.path).mode & 0o7777).toBe(0o660);
    expect(statSync(h.path).isSocket()).toBe(true);
    const c = await h.client();
    const closed = new Promise<IpcError | null>((resolve) => c.onClose(resolve));
    await h.server.close();
    expect((await closed)?.code).toBe('shutting-down');
    expect(() => statSync(h!.path)).toThrow(/ENOENT/);
    await expect(c.call('stats.get')).rejects.toMatchObject({ code: 'shutting-down' });
  });
});
