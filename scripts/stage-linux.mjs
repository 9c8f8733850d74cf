#!/usr/bin/env node
// Offline packaging for tests: electron-builder `--linux dir` with a
// stand-in Electron (the real binary cannot be downloaded on these machines),
// then a .deb built from that staging with `dpkg-deb --build --root-owner-group`,
// holding what electron-builder's deb target would add around it: the real
// systemd unit, polkit policy, helper wrapper, sysusers file and maintainer
// scripts (rendered from the same templates), a desktop entry and icons.
//
//   node scripts/stage-linux.mjs [OUT]      (default OUT: release/stage)
//
// Produces OUT/builder/linux-unpacked/ and OUT/portcullis_VERSION_amd64.deb.
// With internet, `npm run dist` builds the real AppImage and .deb instead.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'release', 'stage'));
const require = createRequire(import.meta.url);
// electron-builder's own YAML parser, to read the one config both paths share.
const yaml = require('js-yaml');
const config = yaml.load(readFileSync(join(root, 'electron-builder.yml'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.error?.message ?? `status ${r.status}`})`,
    );
  }
}

// 1. What the app is made of must be built.
const needed = {
  'dist/helper/cli.js': ['npx', ['tsc', '-p', 'tsconfig.node.json']],
  'dist/src-main/electron-main/main.js': ['npx', ['tsc', '-p', 'tsconfig.node.json']],
  'dist/preload/preload.js': ['npx', ['tsc', '-p', 'tsconfig.preload.json']],
  'native/build/Release/portcullis_native.node': ['npm', ['run', '--silent', 'build:native']],
  'native/build/Release/portcullis_bpf.node': ['npm', ['run', '--silent', 'build:native']],
};
for (const [file, [cmd, args]] of Object.entries(needed)) {
  if (!existsSync(join(root, file))) run(cmd, args);
}
// Outputs of sources moved out of the product must not be packed.
run('node', ['scripts/prune-dist.mjs']);
run('node', ['scripts/helper-package.mjs']);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// 2. The stand-in: an executable named `electron`. In Node mode it is Node, so
// the staged helper really runs; as an app it explains itself.
const electronDist = join(out, 'electron-dist');
mkdirSync(electronDist);
writeFileSync(
  join(electronDist, 'electron'),
  `#!/bin/sh
# Stand-in for the Electron binary, which cannot be downloaded on this machine.
if [ "$ELECTRON_RUN_AS_NODE" = 1 ]; then exec node "$@"; fi
echo "portcullis: test build without the Electron binary (see docs/packaging.md)" >&2
exit 1
`,
  { mode: 0o755 },
);

// 3. electron-builder, offline. Never with hard links: builder-util turns them on
// when it sees VITEST (our tests run this script), and then rewriting the app's
// package.json into app.asar would rewrite the repository's own package.json.
const builderEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')),
);
builderEnv.USE_HARD_LINKS = 'false';
run(
  join(root, 'node_modules', '.bin', 'electron-builder'),
  [
    '--linux',
    'dir',
    '--x64',
    '--publish',
    'never',
    `-c.electronDist=${electronDist}`,
    `-c.electronVersion=${config.electronVersion}`,
    `-c.directories.output=${join(out, 'builder')}`,
  ],
  { env: builderEnv },
);
const unpacked = join(out, 'builder', 'linux-unpacked');

// 4. The .deb tree.
const product = config.productName;
const exe = config.executableName;
const deb = join(out, 'deb');
const put = (dest, content, mode = 0o644) => {
  const p = join(deb, dest);
  mkdirSync(dirname(p), { recursive: true });
  if (typeof content === 'string' || Buffer.isBuffer(content)) writeFileSync(p, content);
  else copyFileSync(content.from, p);
  chmodSync(p, mode);
};
cpSync(unpacked, join(deb, 'opt', product), { recursive: true });

// The files electron-builder passes to fpm (`deb.fpm` "src=dest" entries).
for (const entry of config.deb.fpm) {
  if (entry.startsWith('-')) continue;
  const [src, dest] = entry.split('=');
  const mode = statSync(join(root, src)).mode & 0o111 ? 0o755 : 0o644;
  put(dest, { from: join(root, src) }, mode);
}
const entry = config.linux.desktop.entry;
put(
  `usr/share/applications/${exe}.desktop`,
  [
    '[Desktop Entry]',
    `Name=${entry.Name}`,
    `GenericName=${entry.GenericName}`,
    `Comment=${entry.Comment}`,
    `Exec=/opt/${product}/${exe} %U`,
    'Terminal=false',
    'Type=Application',
    `Icon=${exe}`,
    `StartupWMClass=${entry.StartupWMClass}`,
    `Categories=${entry.Categories}`,
    `Keywords=${entry.Keywords}`,
    '',
  ].join('\n'),
);
for (const icon of readdirSync(join(root, 'build', 'icons'))) {
  const size = icon.replace(/\.png$/, '');
  put(`usr/share/icons/hicolor/${size}/apps/${exe}.png`, {
    from: join(root, 'build', 'icons', icon),
  });
}
const docDir = `usr/share/doc/${pkg.name}`;
put(
  `${docDir}/copyright`,
  `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ${product}
Source: ${pkg.homepage}

Files: *
Copyright: 2026 the Portcullis developers
License: GPL-2+
 On Debian systems, the full text of the GNU General Public License version 2
 can be found in the file /usr/share/common-licenses/GPL-2.
`,
);
const date = new Date(0).toUTCString().replace('GMT', '+0000');
put(
  `${docDir}/changelog.gz`,
  gzipSync(
    `${pkg.name} (${pkg.version}) unstable; urgency=medium\n\n  * Test package built by scripts/stage-linux.mjs.\n\n -- ${config.linux.maintainer}  ${date}\n`,
    { level: 9 },
  ),
);

// Directories 0755, files as set above (copies from the staging keep their modes).
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) {
      chmodSync(p, 0o755);
      walk(p);
    } else if (name.endsWith('.node')) {
      // A shared object: not executable, and without its symbol table (lintian).
      run('strip', ['--strip-unneeded', p]);
      chmodSync(p, 0o644);
    } else chmodSync(p, st.mode & 0o111 ? 0o755 : 0o644);
  }
};
walk(deb);

// Maintainer scripts: the same templates and macros as electron-builder's fpm target.
const macros = { executable: exe, sanitizedProductName: product, productFilename: product };
const render = (file) =>
  readFileSync(join(root, file), 'utf8').replace(/\${([a-zA-Z]+)}/g, (m, name) => {
    if (!(name in macros)) throw new Error(`${file}: macro ${name} is not defined`);
    return macros[name];
  });
const md5 = [];
const hashAll = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) hashAll(p);
    else
      md5.push(`${createHash('md5').update(readFileSync(p)).digest('hex')}  ${relative(deb, p)}`);
  }
};
hashAll(deb);
let installedKiB = 0;
const size = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) size(p);
    else installedKiB += Math.ceil(st.size / 1024);
  }
};
size(deb);
// Extended description: lines of at most 80 columns, each starting with a space.
const description = config.linux.description
  .replace(/\s+/g, ' ')
  .trim()
  .replace(/(.{1,78})(?: |$)/g, ' $1\n')
  .trimEnd();
put(
  'DEBIAN/control',
  [
    `Package: ${pkg.name}`,
    `Version: ${pkg.version}`,
    'Architecture: amd64',
    `Maintainer: ${config.linux.maintainer}`,
    `Installed-Size: ${installedKiB}`,
    `Depends: ${config.deb.depends.join(', ')}`,
    `Recommends: ${config.deb.recommends.join(', ')}`,
    'Section: net',
    'Priority: optional',
    `Homepage: ${pkg.homepage}`,
    `Description: ${config.linux.synopsis}`,
    description,
    '',
  ].join('\n'),
);
put('DEBIAN/md5sums', md5.join('\n') + '\n');
put('DEBIAN/postinst', render(config.deb.afterInstall), 0o755);
put('DEBIAN/postrm', render(config.deb.afterRemove), 0o755);
const prerm = config.deb.fpm.find((e) => e.startsWith('--before-remove=')).split('=')[1];
put('DEBIAN/prerm', render(prerm), 0o755);

// 5. The package.
const debFile = join(out, `${pkg.name}_${pkg.version}_amd64.deb`);
run('dpkg-deb', ['--build', '--root-owner-group', deb, debFile], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
console.log(`stage-linux: ${relative(root, unpacked)} and ${relative(root, debFile)}`);
