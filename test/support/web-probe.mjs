// A local attacker against the web host (`portcullis ui --web`), run by
// test/root/web-secrets.test.ts as another user (setpriv) or as the host's own
// user, inside the test's network namespace. Plain JavaScript: it runs under
// node without the test's TypeScript loader.
//
//   node web-probe.mjs scan PORT WS_MODULE        read every /proc/*/cmdline and
//                                                  environ it can, try every
//                                                  token-like string found
//   node web-probe.mjs try PORT WS_MODULE FILE     try the strings of a JSON list
//   node web-probe.mjs hold PORT WS_MODULE TCP WS  keep TCP idle connections and WS
//                                                  WebSocket upgrades (forged
//                                                  Origin, no cookie) open, opening
//                                                  a new one for each that closes;
//                                                  "report" on stdin prints counts
//
// scan and try print one JSON line: {readable, candidates, successes}.
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';

const [mode, portText, wsModule, ...rest] = process.argv.slice(2);
const port = Number(portText);
const { default: WebSocket } = await import(wsModule);
const origin = `http://127.0.0.1:${port}`;
const cookieName = `portcullis-session-${port}`;

/** Every NUL-separated string of every cmdline and environ this user can read. */
function scanProc() {
  const readable = { cmdline: 0, environ: 0 };
  const strings = new Set();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/u.test(p))) {
    for (const file of ['cmdline', 'environ']) {
      let text;
      try {
        text = readFileSync(`/proc/${pid}/${file}`, 'latin1');
      } catch {
        continue;
      }
      if (text.length === 0) continue;
      readable[file]++;
      for (const part of text.split('\0')) if (part) strings.add(part);
    }
  }
  return { readable, strings };
}

/** Token-like pieces: runs of base64url characters, and every `name=value` value. */
function candidatesOf(strings) {
  const found = new Set();
  for (const s of strings) {
    for (const m of s.matchAll(/[A-Za-z0-9_-]{16,512}/gu)) found.add(m[0]);
    for (const m of s.matchAll(/[#?&;=]([A-Za-z0-9_.~%-]{8,512})/gu)) {
      try {
        found.add(decodeURIComponent(m[1]));
      } catch {
        found.add(m[1]);
      }
    }
  }
  return [...found];
}

function http(method, path, headers, body) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', (e) => resolve({ status: 0, body: e.code ?? e.message }));
    req.end(body);
  });
}

/**
 * A WebSocket with a forged Origin, `cookie` as the session cookie and `hello`
 * as the first message; on `ready`, tries to take control. Resolves with what
 * happened.
 */
function websocket(cookie, hello) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      origin,
      headers: { Cookie: `${cookieName}=${cookie}` },
    });
    const done = (outcome) => {
      ws.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(() => done('no answer'), 10_000);
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      done(`HTTP ${res.statusCode}`);
    });
    ws.on('open', () => ws.send(JSON.stringify(hello)));
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.type === 'ready') {
        // Admitted: try the two changes that would open the firewall (a rule that
        // allows everything, allow as the default).
        ws.send(
          JSON.stringify({
            type: 'invoke',
            id: 1,
            channel: 'addRule',
            arg: { action: 'allow', match: {}, duration: { kind: 'forever' }, note: 'probe' },
          }),
        );
        ws.send(
          JSON.stringify({
            type: 'invoke',
            id: 2,
            channel: 'setSettings',
            arg: { defaultAction: 'allow' },
          }),
        );
      } else if (m.type === 'result' && m.id === 2) {
        clearTimeout(timer);
        done('ready');
      }
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve(`closed ${code}`);
    });
  });
}

/** Every way a string could open the door; returns the ones that did. */
async function tryAll(candidates) {
  const successes = [];
  const outcomes = {};
  const note = (how, outcome) => {
    const key = `${how}: ${outcome}`;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  };
  for (const c of candidates) {
    const json = { Origin: origin, 'Content-Type': 'application/json' };
    const exchange = await http('POST', '/session', json, JSON.stringify({ code: c }));
    note('exchange', exchange.status);
    if (exchange.status === 200) successes.push({ candidate: c, how: 'exchange' });
    const check = await http('GET', '/session', { Cookie: `${cookieName}=${c}` });
    note('cookie', check.status);
    if (check.status === 204) successes.push({ candidate: c, how: 'cookie' });
    for (const hello of [
      { type: 'hello', session: c },
      { type: 'hello', token: c },
    ]) {
      const outcome = await websocket(c, hello);
      note(`hello ${Object.keys(hello)[1]}`, outcome);
      if (outcome === 'ready')
        successes.push({ candidate: c, how: `hello ${Object.keys(hello)[1]}` });
    }
  }
  return { successes, outcomes };
}

async function hold(tcpCount, wsCount) {
  const counts = { tcpOpened: 0, tcpClosedByPeer: 0, wsOpened: 0, wsRefused: 0, wsEnded: 0 };
  let stopping = false;
  const again = (open) => setTimeout(() => stopping || open(), 250);
  // Counted once a first round has settled: every connection opened, every
  // upgrade answered (opened, refused or failed).
  const tcp = () => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => counts.tcpOpened++);
    s.on('error', () => undefined);
    s.on('close', () => {
      counts.tcpClosedByPeer++;
      again(tcp);
    });
  };
  const ws = () => {
    const w = new WebSocket(`ws://127.0.0.1:${port}/ws`, { origin });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      counts.wsEnded++;
      again(ws);
    };
    w.on('error', () => undefined);
    w.on('open', () => counts.wsOpened++);
    // With this listener, ws leaves the refused request to us (no 'close').
    w.on('unexpected-response', (req) => {
      counts.wsRefused++;
      req.destroy();
      end();
    });
    w.on('close', end);
  };
  for (let i = 0; i < tcpCount; i++) tcp();
  for (let i = 0; i < wsCount; i++) ws();
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (text) => {
    if (text.includes('report')) process.stdout.write(`${JSON.stringify(counts)}\n`);
  });
  process.stdin.on('end', () => {
    stopping = true;
    process.exit(0);
  });
}

if (mode === 'scan') {
  const { readable, strings } = scanProc();
  const candidates = candidatesOf(strings);
  const { successes, outcomes } = await tryAll(candidates);
  process.stdout.write(`${JSON.stringify({ readable, candidates, successes, outcomes })}\n`);
} else if (mode === 'try') {
  const candidates = JSON.parse(readFileSync(rest[0], 'utf8'));
  const { successes, outcomes } = await tryAll(candidates);
  process.stdout.write(`${JSON.stringify({ candidates, successes, outcomes })}\n`);
} else if (mode === 'hold') {
  await hold(Number(rest[0]), Number(rest[1]));
} else {
  process.stderr.write(`web-probe: unknown mode ${mode}\n`);
  process.exit(2);
}
