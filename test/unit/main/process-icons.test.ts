// Process icons (src-main/node/process-icons/) against a real temporary XDG tree:
// desktop files in two applications/ dirs and snap's, hicolor with 32x32, 48x48 and
// scalable icons (no index.theme: discovered), a theme with an index.theme that inherits
// hicolor, pixmaps, absolute Icon= paths, and hostile files (huge, FIFO, device, not an
// image, odd lines, NUL bytes).
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  execProgram,
  parseDesktopEntry,
} from '../../../src-main/node/process-icons/desktop-entry.js';
import { sniffImage } from '../../../src-main/node/process-icons/icon-files.js';
import {
  IconResolver,
  type IconResolverOptions,
} from '../../../src-main/node/process-icons/icon-resolver.js';
import { searchPathsFromEnv } from '../../../src-main/node/process-icons/search-paths.js';
import { solidPng } from '../../support/png.js';

let t: string;
const PNG32 = solidPng(32, [1, 2, 3]);
const PNG48 = solidPng(48, [4, 5, 6]);
const SVG = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>\n';

function put(rel: string, content: string | Buffer): string {
  const path = join(t, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}

function desktop(dir: string, id: string, lines: string[]): void {
  put(join(dir, id), `${lines.join('\n')}\n`);
}

function dataUrl(mime: string, content: string | Buffer): string {
  return `data:${mime};base64,${Buffer.from(content).toString('base64')}`;
}

function resolver(extra: IconResolverOptions = {}): IconResolver {
  return new IconResolver({
    applicationDirs: [
      join(t, 'home/applications'),
      join(t, 'share/applications'),
      join(t, 'snap/applications'),
    ],
    iconDirs: [join(t, 'home/icons'), join(t, 'share/icons')],
    pixmapDirs: [join(t, 'share/pixmaps')],
    pathDirs: [join(t, 'bin')],
    themes: [],
    ...extra,
  });
}

beforeAll(() => {
  t = mkdtempSync(join(tmpdir(), 'pcl-icons-'));
  const S = 'share/applications';
  // An absolute Exec with arguments; icons at 32, 48 and scalable: the 32 px PNG wins.
  desktop(S, 'myapp.desktop', [
    '[Desktop Entry]',
    'Type=Application',
    'Name=My App',
    'Exec=/opt/myapp/bin/myapp --flag %U',
    'Icon=myapp',
  ]);
  put('share/icons/hicolor/48x48/apps/myapp.png', PNG48);
  put('share/icons/hicolor/32x32/apps/myapp.png', PNG32);
  put('share/icons/hicolor/scalable/apps/myapp.svg', SVG);

  // Exec= by name through PATH, a symlink to the real binary; only a scalable SVG.
  put('opt/vector/vectorapp-real', '#!/bin/sh\n');
  chmodSync(join(t, 'opt/vector/vectorapp-real'), 0o755);
  mkdirSync(join(t, 'bin'), { recursive: true });
  symlinkSync(join(t, 'opt/vector/vectorapp-real'), join(t, 'bin/vectorapp'));
  desktop(S, 'vector.desktop', ['[Desktop Entry]', 'Exec=vectorapp %F', 'Icon=vectorapp']);
  put('share/icons/hicolor/scalable/apps/vectorapp.svg', SVG);

  // env VAR=... before the program; Icon= with an extension, found in pixmaps only.
  desktop(S, 'pix.desktop', [
    '[Desktop Entry]',
    'Exec=env FOO=1 BAR="a b" /usr/bin/pixapp',
    'Icon=pixapp.png',
  ]);
  put('share/pixmaps/pixapp.png', PNG32);

  // An absolute Icon= path.
  desktop(S, 'abs.desktop', ['[Desktop Entry]', 'Exec=absapp', `Icon=${join(t, 'art/abs.svg')}`]);
  put('art/abs.svg', SVG);

  // An icon name nobody has.
  desktop(S, 'missing.desktop', ['[Desktop Entry]', 'Exec=missingapp', 'Icon=no-such-icon']);

  // A huge 32 px PNG: refused; the 48 px one is used instead. And one with only a huge file.
  desktop(S, 'huge.desktop', ['[Desktop Entry]', 'Exec=hugeapp', 'Icon=hugeapp']);
  put(
    'share/icons/hicolor/32x32/apps/hugeapp.png',
    Buffer.concat([PNG32, Buffer.alloc(300 * 1024)]),
  );
  put('share/icons/hicolor/48x48/apps/hugeapp.png', PNG48);
  desktop(S, 'onlyhuge.desktop', ['[Desktop Entry]', 'Exec=onlyhuge', 'Icon=onlyhuge']);
  put('share/icons/hicolor/32x32/apps/onlyhuge.svg', `${SVG}<!--${'x'.repeat(300 * 1024)}-->`);

  // Hostile Icon= paths: a FIFO (must not hang), a device, a page that is no image.
  mkdirSync(join(t, 'art'), { recursive: true });
  execFileSync('mkfifo', [join(t, 'art/fifo.png')]);
  symlinkSync('/dev/zero', join(t, 'art/zero.png'));
  put('art/page.svg', '<html><script>alert(1)</script></html>');
  desktop(S, 'fifo.desktop', [
    '[Desktop Entry]',
    'Exec=fifoapp',
    `Icon=${join(t, 'art/fifo.png')}`,
  ]);
  desktop(S, 'zero.desktop', [
    '[Desktop Entry]',
    'Exec=zeroapp',
    `Icon=${join(t, 'art/zero.png')}`,
  ]);
  desktop(S, 'page.desktop', [
    '[Desktop Entry]',
    'Exec=pageapp',
    `Icon=${join(t, 'art/page.svg')}`,
  ]);

  // A malicious file with odd lines: only the first [Desktop Entry]'s first plain keys count.
  put(
    join(S, 'evil.desktop'),
    [
      'garbage line without an equals sign',
      'Icon=before-any-group',
      '[Desktop Entry',
      '=no key',
      '[Desktop Action evil]',
      `Icon=${join(t, 'art/abs.svg')}`,
      '[Desktop Entry]',
      '   Exec = "/opt/evil app/bin/evilapp" --x %F   ',
      'Icon[de]=evilapp',
      'Icon=../../../../etc/passwd',
      'Icon=evilapp',
      `Key With Spaces=${'y'.repeat(70_000 / 2)}`,
      '[Desktop Entry]',
      'Icon=evilapp',
    ].join('\n'),
  );
  put('share/icons/hicolor/32x32/apps/evilapp.png', PNG32);
  put(join(S, 'nul.desktop'), '[Desktop Entry]\nExec=nulapp\nIcon=myapp\n\0\n');
  put(join(S, 'link.desktop'), '[Desktop Entry]\nType=Link\nExec=linkapp\nIcon=myapp\n');
  put(join(S, 'hidden.desktop'), '[Desktop Entry]\nHidden=true\nExec=hiddenapp\nIcon=myapp\n');

  // StartupWMClass, and the file name (reverse-DNS: its last part).
  desktop(S, 'wm.desktop', [
    '[Desktop Entry]',
    'Exec=/opt/launcher.sh',
    'StartupWMClass=WmThing',
    'Icon=myapp',
  ]);
  desktop(S, 'org.example.Filey.desktop', [
    '[Desktop Entry]',
    'Exec=launch-filey',
    'Icon=vectorapp',
  ]);

  // Flatpak: matched by app id; its Exec (flatpak run) never matches /usr/bin/flatpak.
  desktop('share/applications', 'org.flat.App.desktop', [
    '[Desktop Entry]',
    'Exec=/usr/bin/flatpak run --branch=stable --command=app org.flat.App',
    'X-Flatpak=org.flat.App',
    'Icon=org.flat.App',
  ]);
  put('share/icons/hicolor/32x32/apps/org.flat.App.png', PNG32);

  // Snap: SNAP_APP.desktop in snapd's directory with an absolute icon.
  desktop('snap/applications', 'snappy_snappy.desktop', [
    '[Desktop Entry]',
    'X-SnapInstanceName=snappy',
    'Exec=env BAMF_DESKTOP_FILE_HINT=/x /snap/bin/snappy %U',
    `Icon=${join(t, 'art/abs.svg')}`,
  ]);

  // The user's copy of an id hides the system's.
  desktop('home/applications', 'override.desktop', [
    '[Desktop Entry]',
    'Exec=overapp',
    'Icon=vectorapp',
  ]);
  desktop(S, 'override.desktop', ['[Desktop Entry]', 'Exec=overapp', 'Icon=myapp']);

  // A theme with an index.theme (breeze-style dirs) inheriting hicolor.
  put(
    'share/icons/MyTheme/index.theme',
    [
      '[Icon Theme]',
      'Name=My Theme',
      'Inherits=hicolor',
      'Directories=apps/32,actions/32',
      '[apps/32]',
      'Size=32',
      'Context=Applications',
      'Type=Fixed',
      '[actions/32]',
      'Size=32',
      'Context=Actions',
    ].join('\n'),
  );
  put('share/icons/MyTheme/apps/32/myapp.png', PNG48); // the theme's version of myapp
  put('share/icons/MyTheme/actions/32/vectorapp.png', PNG48); // not an app directory
});

afterAll(() => rmSync(t, { recursive: true, force: true }));

describe('IconResolver', () => {
  it('finds the entry by Exec and prefers a 32 px PNG over 48 px and scalable', async () => {
    const icon = await resolver().resolve('/opt/myapp/bin/myapp', null);
    expect(icon).toEqual({ mime: 'image/png', dataUrl: dataUrl('image/png', PNG32) });
  });

  it('resolves Exec= through PATH and symlinks; a scalable SVG', async () => {
    const icon = await resolver().resolve(join(t, 'opt/vector/vectorapp-real'), null);
    expect(icon).toEqual({ mime: 'image/svg+xml', dataUrl: dataUrl('image/svg+xml', SVG) });
  });

  it('skips env VAR=... and falls back to pixmaps; an absolute Icon= path', async () => {
    const r = resolver();
    expect((await r.resolve('/usr/bin/pixapp'))?.dataUrl).toBe(dataUrl('image/png', PNG32));
    expect((await r.resolve('/somewhere/absapp'))?.dataUrl).toBe(dataUrl('image/svg+xml', SVG));
    // A binary replaced while running: /proc/PID/exe says "(deleted)".
    expect((await r.resolve('/usr/bin/pixapp (deleted)'))?.mime).toBe('image/png');
  });

  it('no icon: null; an unknown program: null', async () => {
    const r = resolver();
    expect(await r.resolve('/usr/bin/missingapp')).toBeNull();
    expect(await r.resolve('/usr/bin/nobody-knows-me')).toBeNull();
    expect(await r.resolve('relative/path')).toBeNull();
    expect(await r.resolve('/bad\0path')).toBeNull();
  });

  it('refuses an icon file over the size cap: the next candidate, or nothing', async () => {
    const r = resolver();
    expect((await r.resolve('/usr/bin/hugeapp'))?.dataUrl).toBe(dataUrl('image/png', PNG48));
    expect(await r.resolve('/usr/bin/onlyhuge')).toBeNull();
  });

  it('a FIFO, a device and a page that is not an image give no icon (and do not hang)', async () => {
    const r = resolver();
    expect(await r.resolve('/usr/bin/fifoapp')).toBeNull();
    expect(await r.resolve('/usr/bin/zeroapp')).toBeNull();
    expect(await r.resolve('/usr/bin/pageapp')).toBeNull();
  }, 5000);

  it('a malicious desktop file: odd lines skipped, a path-like Icon= refused', async () => {
    const r = resolver();
    // The first Icon= of the real group is "../../../../etc/passwd": not a name, no icon
    // (evilapp.png exists: a parser that took a later Icon= would find it).
    const text = readFileSync(join(t, 'share/applications/evil.desktop'), 'utf8');
    expect(parseDesktopEntry(text)).toMatchObject({
      exec: '"/opt/evil app/bin/evilapp" --x %F',
      icon: '../../../../etc/passwd',
    });
    expect(await r.resolve('/opt/evil app/bin/evilapp')).toBeNull();
    // Files with NUL bytes, Type=Link and Hidden=true are not entries at all.
    expect(await r.resolve('/usr/bin/nulapp')).toBeNull();
    expect(await r.resolve('/usr/bin/linkapp')).toBeNull();
    expect(await r.resolve('/usr/bin/hiddenapp')).toBeNull();
  });

  it('matches StartupWMClass and the file name', async () => {
    const r = resolver();
    expect((await r.resolve('/usr/lib/wmthing'))?.dataUrl).toBe(dataUrl('image/png', PNG32));
    expect((await r.resolve('/usr/bin/filey'))?.mime).toBe('image/svg+xml');
  });

  it('flatpak and snap apps by app id; the flatpak command itself matches no launcher', async () => {
    const r = resolver();
    expect((await r.resolve('/app/bin/app', 'org.flat.App'))?.mime).toBe('image/png');
    expect(await r.resolve('/usr/bin/flatpak', null)).toBeNull();
    expect((await r.resolve('/snap/snappy/12/bin/snappy', 'snappy'))?.mime).toBe('image/svg+xml');
    // A bad app id is ignored, not used as a path.
    expect(await r.resolve('/app/bin/app', '../../x')).toBeNull();
  });

  it("the user's applications/ hides the system's entry of the same id", async () => {
    expect((await resolver().resolve('/usr/bin/overapp'))?.mime).toBe('image/svg+xml');
  });

  it('the current theme first (its Applications directories only), then hicolor', async () => {
    const r = resolver({ themes: ['MyTheme'] });
    expect((await r.resolve('/opt/myapp/bin/myapp'))?.dataUrl).toBe(dataUrl('image/png', PNG48));
    // vectorapp is in MyTheme's actions/: not an app icon; hicolor's SVG is used.
    expect((await r.resolve(join(t, 'bin/vectorapp')))?.mime).toBe('image/svg+xml');
  });

  it('caches per executable, bounded, and forgets "no icon" after the TTL', async () => {
    let now = 0;
    const r = resolver({ maxCacheEntries: 2, ttlMs: 1000, now: () => now });
    const [a, b] = await Promise.all([r.resolve('/usr/bin/pixapp'), r.resolve('/usr/bin/pixapp')]);
    expect(a).toEqual(b);
    // Cached: the file can go.
    const moved = join(t, 'share/pixmaps/pixapp.png');
    unlinkSync(moved);
    try {
      expect(await r.resolve('/usr/bin/pixapp')).toEqual(a);
    } finally {
      writeFileSync(moved, PNG32);
    }
    expect(await r.resolve('/usr/bin/lateapp')).toBeNull();
    desktop('share/applications', 'late.desktop', [
      '[Desktop Entry]',
      'Exec=lateapp',
      'Icon=myapp',
    ]);
    try {
      expect(await r.resolve('/usr/bin/lateapp')).toBeNull(); // still within the TTL
      now = 1500;
      expect((await r.resolve('/usr/bin/lateapp'))?.mime).toBe('image/png');
    } finally {
      unlinkSync(join(t, 'share/applications/late.desktop'));
    }
    await r.resolve('/usr/bin/absapp');
    expect(r.cacheSize).toBe(2);
  });

  it('bounds the cached bytes', async () => {
    const one = (await resolver().resolve('/somewhere/absapp'))!.dataUrl.length;
    // Room for two of these SVG data: URLs, not three.
    const r = resolver({ maxCacheBytes: Math.floor(one * 2.5) });
    await r.resolve('/somewhere/absapp');
    await r.resolve('/usr/bin/filey');
    expect(r.cacheSize).toBe(2);
    await r.resolve(join(t, 'bin/vectorapp'));
    expect(r.cacheSize).toBe(2);
    // One larger than the whole budget is answered but not kept.
    const tiny = resolver({ maxCacheBytes: one - 1 });
    expect(await tiny.resolve('/somewhere/absapp')).not.toBeNull();
    expect(tiny.cacheSize).toBe(0);
  });
});

describe('desktop entry parsing', () => {
  it('reads the first [Desktop Entry] group, unescaping values', () => {
    expect(
      parseDesktopEntry(
        '[Desktop Entry]\nExec=a\\sb\nIcon=x\nIcon=y\n[Desktop Entry]\nTryExec=z\n',
      ),
    ).toEqual({
      exec: 'a b',
      tryExec: null,
      icon: 'x',
      wmClass: null,
      flatpak: null,
      snap: null,
    });
    expect(parseDesktopEntry('Icon=x\n')).toBeNull();
  });

  it('takes the program from Exec= as the spec quotes it', () => {
    expect(execProgram('"/opt/my app/run" --x %U')).toBe('/opt/my app/run');
    expect(execProgram('env A=1 B="x y" -u C prog %f')).toBe('prog');
    expect(execProgram('sh -c "a b"')).toBe('sh');
    expect(execProgram('"/opt/q\\"d" x')).toBe('/opt/q"d');
    expect(execProgram('env A=1 prog')).toBe('prog');
    expect(execProgram('%U')).toBeNull();
    expect(execProgram('   ')).toBeNull();
    expect(execProgram('"unbalanced')).toBe('unbalanced');
  });

  it('recognises images by content', () => {
    expect(sniffImage(PNG32)).toBe('image/png');
    expect(sniffImage(Buffer.from(SVG))).toBe('image/svg+xml');
    expect(sniffImage(Buffer.from('\uFEFF<svg>'))).toBe('image/svg+xml');
    expect(sniffImage(Buffer.from('<html><svg></svg></html>'))).toBe('image/svg+xml');
    expect(sniffImage(Buffer.from('GIF89a'))).toBeNull();
    expect(sniffImage(Buffer.from('<svg\0>'))).toBeNull();
  });

  it('the XDG search paths, with flatpak and snap exports', () => {
    const p = searchPathsFromEnv(
      { XDG_DATA_HOME: '/h/data', XDG_DATA_DIRS: '/a:relative:/b' },
      '/h',
    );
    expect(p.applicationDirs).toEqual([
      '/h/data/applications',
      '/h/.local/share/flatpak/exports/share/applications',
      '/var/lib/flatpak/exports/share/applications',
      '/a/applications',
      '/b/applications',
      '/var/lib/snapd/desktop/applications',
    ]);
    expect(p.iconDirs[0]).toBe('/h/.icons');
    expect(p.iconDirs).toContain('/b/icons');
    expect(p.pixmapDirs).toEqual(['/a/pixmaps', '/b/pixmaps', '/usr/share/pixmaps']);
    expect(searchPathsFromEnv({}, '/h').applicationDirs).toContain('/usr/share/applications');
  });
});
