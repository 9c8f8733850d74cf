/**
 * `portcullis ui link`: a new one-time link from the web host that is already
 * running, for a tab that lost its session (a bookmark, a new tab, a browser
 * restart). The running `ui --web` listens on a Unix socket in a directory only
 * its user can enter; whoever connects gets a link. A link in a command line or
 * a terminal is readable by every local user, so it carries a one-time code
 * that expires, like the printed one, never the session itself.
 */
import { lstatSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

/** How long a link asked for with `portcullis ui link` lives unused. */
export const LINK_CODE_TTL_MS = 5 * 60_000;

export class UiLinkError extends Error {}

/**
 * The directory of the running web hosts' link sockets: in $XDG_RUNTIME_DIR
 * (the user's own, 0700) when there is one, else /tmp/portcullis-ui-UID. Made
 * 0700 when missing; refused when it belongs to somebody else or others may
 * enter it (another user could then answer with a link of their own).
 */
export function linkDir(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? 0;
  const runtime = env['XDG_RUNTIME_DIR'];
  const dir = runtime ? join(runtime, 'portcullis') : `/tmp/portcullis-ui-${uid}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new UiLinkError(
      `${dir} must be a directory of uid ${uid} that only it may enter (mode 0700)`,
    );
  }
  return dir;
}

function socketName(port: number): string {
  return `ui-${port}.sock`;
}

/** Serves new links for the web host on `port` until closed. */
export async function serveLinks(
  port: number,
  issueUrl: (ttlMs: number) => string,
  dir: string = linkDir(),
): Promise<{ path: string; close(): Promise<void> }> {
  const path = join(dir, socketName(port));
  // A socket left by a web host that died on this port: nobody listens there.
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const server: Server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.end(`${issueUrl(LINK_CODE_TTL_MS)}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        // net.Server removes its socket file when it closes.
        server.close(() => resolve());
      }),
  };
}

/** Ports of the web hosts whose link sockets are in `dir`. */
export function runningPorts(dir: string): number[] {
  const ports: number[] = [];
  for (const name of readdirSync(dir)) {
    const m = /^ui-(\d+)\.sock$/u.exec(name);
    if (m) ports.push(Number(m[1]));
  }
  return ports.sort((a, b) => a - b);
}

/** Asks the running web host (the only one, or the one on `port`) for a new link. */
export async function requestLink(port: number | null, dir: string = linkDir()): Promise<string> {
  const ports = port === null ? runningPorts(dir) : [port];
  if (ports.length === 0) {
    throw new UiLinkError('no Portcullis UI is running for this user: start `portcullis ui --web`');
  }
  if (ports.length > 1) {
    throw new UiLinkError(`several UIs are running (ports ${ports.join(', ')}): add --port N`);
  }
  const path = join(dir, socketName(ports[0]!));
  return new Promise<string>((resolve, reject) => {
    let text = '';
    const socket = connect(path);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 4096) socket.destroy(new UiLinkError('the answer is too long'));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
          ? new UiLinkError(`no Portcullis UI is listening on port ${ports[0]!}`)
          : error,
      );
    });
    socket.on('end', () => {
      const url = text.trim();
      if (!/^http:\/\/127\.0\.0\.1:\d+\/#code=[\w-]+$/u.test(url)) {
        reject(new UiLinkError('the running UI gave no link'));
      } else {
        resolve(url);
      }
    });
  });
}
