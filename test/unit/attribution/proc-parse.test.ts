import { describe, expect, it } from 'vitest';
import {
  cgroupPath,
  parseCgroup,
  parseCmdline,
  parseFlatpakInfo,
  parsePasswd,
  parseStat,
  parseStatus,
  socketInode,
} from '../../../helper/attribution/proc-parse.js';

const ID = '3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899';

describe('/proc/PID/stat', () => {
  it('reads pid, comm, state, ppid and the start time (field 22)', () => {
    const line =
      '4242 (Web Content) S 4100 4100 4100 0 -1 4194560 123 0 0 0 5 3 0 0 20 0 27 0 987654 2500000000 30000 18446744073709551615 1 1 0 0 0 0 0 16781312 1073745144 0 0 0 17 1 0 0 0 0 0\n';
    expect(parseStat(line)).toEqual({
      pid: 4242,
      comm: 'Web Content',
      state: 'S',
      ppid: 4100,
      startTime: 987654,
    });
  });

  it('takes comm up to the last parenthesis (a comm can hold ") (")', () => {
    const stat = parseStat('7 (a) (b c) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0\n');
    expect(stat).toMatchObject({ comm: 'a) (b c', state: 'R', ppid: 1, startTime: 55 });
  });

  it('rejects truncated or garbled lines', () => {
    expect(parseStat('')).toBeUndefined();
    expect(parseStat('12 (x) S 1 2 3')).toBeUndefined();
    expect(parseStat('x (y) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55')).toBeUndefined();
    expect(parseStat('12 (x S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55')).toBeUndefined();
  });
});

describe('/proc/PID/status', () => {
  it('takes the real and effective uid and gid', () => {
    const text =
      'Name:\tsudo\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t9\nPid:\t9\nPPid:\t1\nUid:\t1000\t0\t0\t0\nGid:\t1000\t0\t0\t0\nGroups:\t27 1000\n';
    expect(parseStatus(text)).toEqual({ uid: 1000, euid: 0, gid: 1000, egid: 0 });
    expect(parseStatus('Name:\tx\n')).toBeUndefined();
    expect(parseStatus('Uid:\tx\ty\nGid:\t1\t1\n')).toBeUndefined();
  });
});

describe('/proc/PID/cmdline and fd links', () => {
  it('splits argv at NULs, keeping empty arguments', () => {
    expect(parseCmdline('/usr/bin/curl\0-s\0\0https://example.org\0')).toEqual([
      '/usr/bin/curl',
      '-s',
      '',
      'https://example.org',
    ]);
    expect(parseCmdline('')).toEqual([]);
    // setproctitle() style: one string with spaces.
    expect(parseCmdline('postgres: writer process   ')).toEqual(['postgres: writer process   ']);
  });

  it('reads socket inodes from link targets only', () => {
    expect(socketInode('socket:[123456]')).toBe(123456);
    expect(socketInode('pipe:[123456]')).toBeUndefined();
    expect(socketInode('/dev/null')).toBeUndefined();
    expect(socketInode('socket:[]')).toBeUndefined();
    expect(socketInode('socket:[12x]')).toBeUndefined();
  });
});

describe('/etc/passwd', () => {
  it('maps uids to names; the first entry of a uid wins; junk lines are skipped', () => {
    const names = parsePasswd(
      [
        'root:x:0:0:root:/root:/bin/bash',
        '# comment',
        '',
        'toor:x:0:0::/root:/bin/sh',
        'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
        'broken:x:abc:1::/:/bin/sh',
        'short:x:5',
        '+nisuser::::::',
        'alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash',
      ].join('\n'),
    );
    expect([...names]).toEqual([
      [0, 'root'],
      [65534, 'nobody'],
      [1000, 'alice'],
    ]);
  });
});

describe('/proc/PID/cgroup', () => {
  const v2 = (path: string) => parseCgroup(`0::${path}\n`);

  it('system services and scopes', () => {
    expect(v2('/system.slice/nginx.service')).toMatchObject({
      systemdUnit: 'nginx.service',
      systemdUserUnit: null,
      container: null,
      app: null,
    });
    expect(v2('/init.scope')?.systemdUnit).toBe('init.scope');
    expect(v2('/system.slice/system-getty.slice/getty@tty1.service')?.systemdUnit).toBe(
      'getty@tty1.service',
    );
    expect(v2('/user.slice/user-1000.slice/session-3.scope')).toMatchObject({
      systemdUnit: 'session-3.scope',
      systemdUserUnit: null,
    });
    expect(v2('/')).toMatchObject({ path: '/', systemdUnit: null });
  });

  it('user units under user@UID.service', () => {
    expect(
      v2(
        '/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-org.gnome.Terminal-4242.scope',
      ),
    ).toMatchObject({
      systemdUnit: 'user@1000.service',
      systemdUserUnit: 'app-gnome-org.gnome.Terminal-4242.scope',
    });
    expect(
      v2('/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox@abc.service'),
    ).toMatchObject({ systemdUserUnit: 'app-firefox@abc.service' });
    expect(v2('/user.slice/user-1000.slice/user@1000.service/init.scope')?.systemdUserUnit).toBe(
      'init.scope',
    );
    expect(v2('/user.slice/user-1000.slice/user@1000.service')).toMatchObject({
      systemdUnit: 'user@1000.service',
      systemdUserUnit: null,
    });
  });

  it('containers: docker, podman (rootful and rootless), containerd, cri-o, kubepods, cgroupfs drivers', () => {
    expect(v2(`/system.slice/docker-${ID}.scope`)?.container).toEqual({
      runtime: 'docker',
      id: ID,
    });
    expect(v2(`/docker/${ID}`)?.container).toEqual({ runtime: 'docker', id: ID });
    expect(v2(`/machine.slice/libpod-${ID}.scope/container`)).toMatchObject({
      systemdUnit: `libpod-${ID}.scope`,
      container: { runtime: 'podman', id: ID },
    });
    expect(
      v2(`/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope/container`)
        ?.container,
    ).toEqual({ runtime: 'podman', id: ID });
    expect(v2(`/libpod_parent/libpod-${ID}`)?.container).toEqual({ runtime: 'podman', id: ID });
    expect(
      v2(
        `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/cri-containerd-${ID}.scope`,
      )?.container,
    ).toEqual({ runtime: 'containerd', id: ID });
    expect(v2(`/kubepods.slice/kubepods-pod1.slice/crio-${ID}.scope`)?.container).toEqual({
      runtime: 'cri-o',
      id: ID,
    });
    expect(v2(`/kubepods/besteffort/pod0f1e2d3c/${ID}`)?.container).toEqual({
      runtime: 'kubernetes',
      id: ID,
    });
    // The runtimes' monitors are outside the container.
    expect(v2(`/machine.slice/libpod-conmon-${ID}.scope`)?.container).toBeNull();
    expect(v2(`/kubepods.slice/crio-conmon-${ID}.scope`)?.container).toBeNull();
    // Not 64 hex digits.
    expect(v2('/system.slice/docker-abc.scope')?.container).toBeNull();
    expect(v2('/system.slice/docker.service')?.container).toBeNull();
  });

  it('snap and flatpak applications', () => {
    expect(
      v2('/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox.firefox-7d0f.scope'),
    ).toMatchObject({
      app: { kind: 'snap', id: 'firefox' },
      systemdUserUnit: 'snap.firefox.firefox-7d0f.scope',
    });
    expect(v2('/system.slice/snap.lxd.daemon.service')?.app).toEqual({ kind: 'snap', id: 'lxd' });
    expect(
      v2(
        '/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.mozilla.firefox-12345.scope',
      )?.app,
    ).toEqual({ kind: 'flatpak', id: 'org.mozilla.firefox' });
    expect(v2('/system.slice/snapd.service')?.app).toBeNull();
  });

  it('cgroup v1 and hybrid: the name=systemd hierarchy when v2 is the root', () => {
    const hybrid =
      '12:pids:/system.slice/cron.service\n2:cpu,cpuacct:/\n1:name=systemd:/system.slice/cron.service\n0::/\n';
    expect(cgroupPath(hybrid)).toBe('/system.slice/cron.service');
    expect(parseCgroup(hybrid)?.systemdUnit).toBe('cron.service');
    const v1 = '4:memory:/x\n1:name=systemd:/user.slice/user-0.slice/session-1.scope\n';
    expect(parseCgroup(v1)?.systemdUnit).toBe('session-1.scope');
    // This machine's shape: everything at the root.
    expect(parseCgroup('9:name=systemd:/\n4:memory:/process_api/ff01\n0::/\n')).toMatchObject({
      path: '/',
      systemdUnit: null,
    });
    expect(parseCgroup('garbage\n')).toBeUndefined();
  });
});

describe('/.flatpak-info', () => {
  it('reads [Application] name=, not other groups', () => {
    const text = [
      '[Application]',
      'name=org.gnome.Maps',
      'runtime=runtime/org.gnome.Platform/x86_64/45',
      '',
      '[Instance]',
      'instance-id=1234',
      'name=not-this',
    ].join('\n');
    expect(parseFlatpakInfo(text)).toBe('org.gnome.Maps');
    expect(parseFlatpakInfo('[Runtime]\nname=org.gnome.Platform\n')).toBeUndefined();
    expect(parseFlatpakInfo('# c\n[Application]\n name = org.x.Y \n')).toBe('org.x.Y');
    expect(parseFlatpakInfo('[Application]\nname=\n')).toBeUndefined();
  });
});
