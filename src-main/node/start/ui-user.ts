/**
 * Who the UI of `portcullis start` runs as, and with which environment. Run via sudo
 * (or pkexec) the UI runs as the user who asked, never as root: the browser and
 * Electron are theirs, and the helper lets them in with --allow-uid. Their desktop
 * session (display, D-Bus) is found from what sudo kept and from /run/user/UID.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface UiUser {
  uid: number;
  gid: number;
  name: string;
  home: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function id(text: string | undefined): number | null {
  if (text === undefined || !/^\d{1,10}$/u.test(text)) return null;
  const n = Number(text);
  return n > 0 && n < 0xffffffff ? n : null;
}

/** The account of a uid from the passwd database (getent: NSS included). */
export function lookupUser(uid: number): UiUser | null {
  const r = spawnSync('getent', ['passwd', String(uid)], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const [name, , , gid, , home] = r.stdout.trim().split(':');
  const g = id(gid);
  if (name === undefined || home === undefined || g === null) return null;
  return { uid, gid: g, name, home };
}

/**
 * The user who ran `sudo` or `pkexec`, or null (root itself: the UI stays root).
 * `lookup` is the passwd lookup (a test seam).
 */
export function invokingUser(
  env: Env,
  lookup: (uid: number) => UiUser | null = lookupUser,
): UiUser | null {
  const uid = id(env['SUDO_UID']) ?? id(env['PKEXEC_UID']);
  if (uid === null) return null;
  const found = lookup(uid);
  if (found) return found;
  // sudo names the user even where the passwd lookup fails.
  const gid = id(env['SUDO_GID']);
  if (gid === null) return null;
  return { uid, gid, name: env['SUDO_USER'] ?? String(uid), home: '/' };
}

const KEPT = ['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'TERM', 'DISPLAY', 'XAUTHORITY'];

/**
 * The UI's environment as `user`: their home and names, their session's runtime
 * dir, bus and display where they exist; never the helper's token.
 */
export function userEnv(
  user: UiUser,
  env: Env,
  exists: (path: string) => boolean = existsSync,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of KEPT) {
    const v = env[k];
    if (v !== undefined) out[k] = v;
  }
  Object.assign(out, { HOME: user.home, USER: user.name, LOGNAME: user.name });
  const runtime = `/run/user/${user.uid}`;
  if (exists(runtime)) {
    out['XDG_RUNTIME_DIR'] = runtime;
    const bus = join(runtime, 'bus');
    out['DBUS_SESSION_BUS_ADDRESS'] =
      env['DBUS_SESSION_BUS_ADDRESS'] ?? (exists(bus) ? `unix:path=${bus}` : '');
    if (out['DBUS_SESSION_BUS_ADDRESS'] === '') delete out['DBUS_SESSION_BUS_ADDRESS'];
    const wayland = env['WAYLAND_DISPLAY'] ?? 'wayland-0';
    if (exists(join(runtime, wayland))) out['WAYLAND_DISPLAY'] = wayland;
  }
  return out;
}

/** A desktop session to open a browser or a window in. */
export function hasDesktop(env: Env): boolean {
  return Boolean(env['DISPLAY'] || env['WAYLAND_DISPLAY']);
}
