/**
 * The offline packaging pipeline: electron-builder `--linux dir` with
 * a stand-in Electron, then the checks that need no installation: the staged
 * layout as the launcher resolves it, and lintian on the test .deb.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helperCommand } from '../../src-main/node/elevation.js';
import { resolveAppPaths, type RuntimeFacts } from '../../src-main/node/resources.js';
import { productEntries, reachableFrom } from '../support/product-modules.js';
import { packagingUnavailable, repoRoot, sh, stage, type Staging } from '../support/staging.js';

/** electron-builder's own asar reader (@electron/asar, a dependency of electron-builder). */
const asarPackage = createRequire(import.meta.url)('@electron/asar') as {
  listPackage(archive: string, options: { isPack: boolean }): string[];
  extractFile(archive: string, filename: string): Buffer;
};

const skip = packagingUnavailable(['dpkg-deb', 'lintian', 'strip']);
if (skip) console.log(`packaging-stage: skipped: ${skip}`);

describe.skipIf(skip !== undefined)('staged Linux build', () => {
  let s: Staging;
  let facts: RuntimeFacts;
  beforeAll(() => {
    s = stage();
    facts = {
      execPath: join(s.unpacked, 'portcullis'),
      resourcesPath: join(s.unpacked, 'resources'),
      isPackaged: true,
      isElectron: true,
      appImage: null,
      appRoot: join(s.unpacked, 'resources', 'app.asar'),
    };
  }, 120_000);
  afterAll(() => {
    if (s) rmSync(s.dir, { recursive: true, force: true });
  });

  it('puts the helper tree and the addon outside app.asar, where the launcher looks', () => {
    const paths = resolveAppPaths(facts);
    expect(paths.layout).toBe('packaged');
    for (const file of [
      paths.helperScript,
      paths.helperCli,
      paths.nativeAddon,
      join(paths.helperRoot, 'package.json'),
      join(paths.helperRoot, 'node_modules', 'valibot', 'package.json'),
      join(paths.helperRoot, 'node_modules', 'ws', 'package.json'),
      join(s.unpacked, 'resources', 'icons', '256x256.png'),
    ]) {
      expect(existsSync(file), file).toBe(true);
    }
    const helperPkg = JSON.parse(readFileSync(join(paths.helperRoot, 'package.json'), 'utf8'));
    expect(helperPkg).toMatchObject({ type: 'module', version: s.version });
  });

  it('app.asar holds main, the preload and package.json, of the helper only its wire protocol, no .node', () => {
    const asar = join(repoRoot, 'node_modules', '.bin', 'asar');
    const list = sh(asar, ['list', join(s.unpacked, 'resources', 'app.asar')]).stdout.split('\n');
    expect(list).toContain('/package.json');
    expect(list).toContain('/dist/src-main/electron-main/main.js');
    expect(list).toContain('/dist/preload/preload.js');
    expect(list.filter((f) => f.endsWith('.node'))).toEqual([]);
    const helper = list.filter((f) => f.startsWith('/dist/helper/') && f.endsWith('.js'));
    expect(
      helper.filter((f) => !/^\/dist\/helper\/(protocol\/|server\/handshakes\.js$)/u.test(f)),
    ).toEqual([]);
  });

  it("every module's relative imports resolve inside app.asar, so main can start", () => {
    const archive = join(s.unpacked, 'resources', 'app.asar');
    const files = new Set(asarPackage.listPackage(archive, { isPack: false }));
    const modules = [...files].filter((f) => f.endsWith('.js'));
    expect(modules).toContain('/dist/src-main/electron-main/main.js');
    const unresolved: string[] = [];
    for (const file of modules) {
      const text = asarPackage.extractFile(archive, file.slice(1)).toString('utf8');
      for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/gu)) {
        const target = posix.normalize(posix.join(posix.dirname(file), m[1]!));
        if (!files.has(target)) unresolved.push(`${file} -> ${m[1]}`);
      }
    }
    expect(unresolved).toEqual([]);
  });

  it('app.asar and the helper tree hold only product modules, no test/ or bench/ file', () => {
    const asar = join(repoRoot, 'node_modules', '.bin', 'asar');
    const asarFiles = sh(asar, ['list', join(s.unpacked, 'resources', 'app.asar')])
      .stdout.split('\n')
      .filter((f) => f.endsWith('.js'))
      .map((f) => f.slice(1));
    const helperDist = join(s.unpacked, 'resources', 'helper', 'dist');
    const helperFiles = readdirSync(helperDist, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.js'))
      .map((f) => `dist/${f}`);
    const packed = [...asarFiles, ...helperFiles];
    expect(packed.filter((f) => /^(dist\/)?(test|bench)\//u.test(f))).toEqual([]);
    // Each compiled module is built from a source an entry point of the product reaches.
    const product = reachableFrom(productEntries());
    const compiled = packed.filter((f) => /^dist\/(helper|src-main)\//u.test(f));
    expect(compiled.length).toBeGreaterThan(100);
    const notProduct = compiled
      .map((f) => f.slice('dist/'.length).replace(/\.js$/u, '.ts'))
      .filter((source) => !product.has(source));
    expect(notProduct).toEqual([]);
  });

  it('runs the staged helper with the launcher command line (app binary in Node mode)', () => {
    const paths = resolveAppPaths(facts);
    const version = helperCommand(facts, paths, ['--version']);
    expect(version.env).toEqual({ ELECTRON_RUN_AS_NODE: '1' });
    const r = sh(version.program, version.args, { ...process.env, ...version.env });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`portcullis ${s.version}\n`);
    // The addon loads from the helper tree (helper/native/load.ts candidates).
    const load = sh(
      version.program,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(join(paths.helperRoot, 'dist/helper/native/load.js'))});
         const { existsSync } = await import('node:fs');
         m.loadNativeBinding();
         console.log(m.nativeCandidates().find((p) => existsSync(p)));`,
      ],
      { ...process.env, ...version.env },
    );
    expect(load.stderr).toBe('');
    expect(load.stdout.trim()).toBe(paths.nativeAddon);
  });

  it('builds a .deb with the unit, policy, wrapper and maintainer scripts', () => {
    const files = sh('dpkg-deb', ['-c', s.deb]).stdout;
    for (const f of [
      './usr/lib/systemd/system/portcullis-helper.service',
      './usr/share/polkit-1/actions/org.portcullis.helper.policy',
      './usr/lib/portcullis/portcullis-helper',
      './usr/lib/sysusers.d/portcullis.conf',
      './usr/share/applications/portcullis.desktop',
      './opt/Portcullis/portcullis',
      './opt/Portcullis/resources/helper/native/build/Release/portcullis_native.node',
      './opt/Portcullis/resources/helper/native/build/Release/portcullis_bpf.node',
    ]) {
      expect(files).toContain(f);
    }
    const control = sh('dpkg-deb', ['-I', s.deb]).stdout;
    expect(control).toMatch(/postinst/);
    expect(control).toMatch(/prerm/);
    expect(control).toMatch(/postrm/);
    expect(control).toMatch(/Depends: .*iptables, conntrack, iproute2, pkexec \| policykit-1/);
    // The eBPF addon's library: recommended, the helper falls back to /proc without it.
    expect(control).toMatch(/Recommends: .*libbpf1/);
  });

  it('lintian: nothing left but the overrides explained in docs/packaging.md', () => {
    const r = sh('lintian', ['--show-overrides', '--tag-display-limit', '0', s.deb]);
    const lines = r.stdout.split('\n').filter((l) => /^[EWO]: /.test(l));
    const tags = new Map<string, number>();
    for (const l of lines) {
      const tag = l.split(' ').slice(0, 3).join(' ');
      tags.set(tag, (tags.get(tag) ?? 0) + 1);
    }
    console.log(`lintian: ${[...tags].map(([t, n]) => `${t} x${n}`).join('; ') || 'no findings'}`);
    expect(lines.filter((l) => /^[EW]: /.test(l))).toEqual([]);
    expect([...tags.keys()].sort()).toEqual([
      'O: portcullis: dir-or-file-in-opt',
      'O: portcullis: missing-dep-for-interpreter',
    ]);
  });
});
