/**
 * electron-builder.yml against electron-builder's own schema (its
 * validateConfiguration, offline), and the choices issue 8 asks for.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..', '..');
const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): unknown };
const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
  validateConfiguration(config: unknown, logger: unknown): Promise<void>;
};
const { DebugLogger } = require('builder-util/out/DebugLogger') as {
  DebugLogger: new (enabled: boolean) => unknown;
};

interface Target {
  target: string;
  arch: string[];
}
interface BuilderConfig {
  appId: string;
  executableName: string;
  npmRebuild: boolean;
  asarUnpack: string[];
  extraResources: { from: string; to: string }[];
  linux: { target: Target[]; category: string; desktop: { entry: Record<string, string> } };
  deb: { depends: string[]; afterInstall: string; afterRemove: string; fpm: string[] };
}
const config = yaml.load(readFileSync(join(root, 'electron-builder.yml'), 'utf8')) as BuilderConfig;

describe('electron-builder.yml', () => {
  it("passes electron-builder's schema", async () => {
    await expect(validateConfiguration(config, new DebugLogger(false))).resolves.toBeUndefined();
    await expect(
      validateConfiguration({ ...config, linux: { notAnOption: 1 } }, new DebugLogger(false)),
    ).rejects.toThrow(/Invalid configuration/);
  });

  it('AppImage and deb for x64; Network;Security; no rebuild of the N-API addon', () => {
    expect(config.linux.target).toEqual([
      { target: 'AppImage', arch: ['x64'] },
      { target: 'deb', arch: ['x64'] },
    ]);
    expect(config.linux.desktop.entry['Categories']).toBe('Network;Security;');
    expect(config.npmRebuild).toBe(false);
    expect(config.asarUnpack).toContain('**/*.node');
  });

  it('every target architecture is the one the shipped addon was built for', () => {
    // extraResources copies the host's build of the addon into every package, and
    // npmRebuild is off: a package for another architecture would carry machine code its
    // CPU cannot run. The ELF header's e_machine says what the build is.
    const addon = config.extraResources.find((r) => r.from.endsWith('.node'))!.from;
    const elf = readFileSync(join(root, addon));
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    const machine = elf.readUInt16LE(18);
    const arch = ({ 0x3e: 'x64', 0xb7: 'arm64' } as Record<number, string>)[machine];
    expect(arch, `addon e_machine 0x${machine.toString(16)}`).toBeDefined();
    for (const t of config.linux.target) expect(t.arch, t.target).toEqual([arch]);
  });

  it('ships the helper tree and the addon as extra resources where the launcher looks', () => {
    const to = Object.fromEntries(config.extraResources.map((r) => [r.to, r.from]));
    expect(to).toMatchObject({
      // A copy of dist/helper: what extraResources names stays out of app.asar.
      'helper/dist/helper': 'dist/helper-tree',
      'helper/bin/portcullis.js': 'bin/portcullis.js',
      'helper/package.json': 'dist/helper-package.json',
      'helper/native/build/Release/portcullis_native.node':
        'native/build/Release/portcullis_native.node',
    });
  });

  it('deb: depends on what the helper runs, carries the unit, policy, wrapper and scripts', () => {
    expect(config.deb.depends).toEqual(
      expect.arrayContaining(['iptables', 'conntrack', 'iproute2', 'pkexec | policykit-1']),
    );
    const files = config.deb.fpm.filter((e) => !e.startsWith('-')).map((e) => e.split('='));
    for (const [src] of files) {
      expect(() => readFileSync(join(root, src as string)), src).not.toThrow();
    }
    expect(files.map(([, dest]) => dest)).toEqual(
      expect.arrayContaining([
        '/usr/lib/systemd/system/portcullis-helper.service',
        '/usr/share/polkit-1/actions/org.portcullis.helper.policy',
        '/usr/lib/portcullis/portcullis-helper',
      ]),
    );
    // The wrapper is what the policy's exec.path and the launcher name.
    const policy = readFileSync(
      join(root, 'packaging/polkit/org.portcullis.helper.policy'),
      'utf8',
    );
    expect(policy).toContain(
      '<annotate key="org.freedesktop.policykit.exec.path">/usr/lib/portcullis/portcullis-helper</annotate>',
    );
    const wrapper = readFileSync(join(root, 'packaging/portcullis-helper'), 'utf8');
    expect(wrapper).toContain(
      `exec /opt/Portcullis/${config.executableName} /opt/Portcullis/resources/helper/bin/portcullis.js helper "$@"`,
    );
  });

  it('maintainer scripts: valid sh, and no service start without a running systemd', async () => {
    const { spawnSync } = await import('node:child_process');
    for (const f of [
      config.deb.afterInstall,
      config.deb.afterRemove,
      'packaging/deb/before-remove',
    ]) {
      const r = spawnSync('sh', ['-n', join(root, f)], { encoding: 'utf8' });
      expect(r.stderr, f).toBe('');
      const text = readFileSync(join(root, f), 'utf8');
      // Every start/stop/daemon-reload sits behind the sd_booted test.
      for (const line of text.split('\n').filter((l) => /deb-systemd-invoke|systemctl/.test(l))) {
        const before = text.slice(0, text.indexOf(line));
        expect(before.lastIndexOf('[ -d /run/systemd/system ]'), `${f}: ${line}`).toBeGreaterThan(
          before.lastIndexOf('\nfi'),
        );
      }
    }
  });
});

describe('packaging/systemd/portcullis-helper.service', () => {
  const unit = readFileSync(join(root, 'packaging/systemd/portcullis-helper.service'), 'utf8');
  const values = (key: string): string[] =>
    unit
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1));

  it('runs the wrapper as root with only the capabilities docs/packaging.md explains', () => {
    expect(values('ExecStart')[0]).toMatch(/^\/usr\/lib\/portcullis\/portcullis-helper /);
    expect(values('User')).toEqual([]);
    // In the access group: its files are root:portcullis without CAP_CHOWN.
    expect(values('Group')).toEqual(['portcullis']);
    expect(values('CapabilityBoundingSet')).toEqual([
      'CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_PTRACE CAP_DAC_READ_SEARCH',
    ]);
    expect(values('AmbientCapabilities')).toEqual(['']);
  });

  it('has the protections docs/packaging.md names', () => {
    expect(values('ProtectSystem')).toEqual(['strict']);
    expect(values('ReadWritePaths')).toContain('/var/lib/portcullis');
    expect(values('RuntimeDirectory')).toEqual(['portcullis']);
    expect(values('StateDirectory')).toEqual(['portcullis']);
    expect(values('Restart')).toEqual(['on-failure']);
    expect(values('NoNewPrivileges')).toEqual(['true']);
    expect(values('MemoryDenyWriteExecute')).toEqual([]); // V8's JIT
    // CAP_SYS_PTRACE may read every process, so `invisible` hides none from attribution.
    expect(values('ProtectProc')).toEqual(['invisible']);
    expect(values('ProcSubset')).toEqual([]); // attribution reads /proc/net
    expect(values('PrivateMounts')).toEqual(['true']);
    expect(values('IPAddressDeny')).toEqual(['any']);
  });
});
