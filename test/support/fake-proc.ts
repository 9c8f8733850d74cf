// A /proc tree on disk for unit tests of the attribution readers: the files
// and links they read, with the formats the kernel writes.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeProcess {
  pid: number;
  comm?: string;
  ppid?: number;
  startTime?: number;
  uid?: number;
  gid?: number;
  euid?: number;
  cmdline?: string[];
  /** Target of the exe link; null: no link (a kernel thread). */
  exe?: string | null;
  cgroup?: string;
  /** fd number -> link target ("socket:[123]", "/dev/null"...). */
  fds?: Record<number, string>;
  /** Contents of root/.flatpak-info. */
  flatpakInfo?: string;
}

export class FakeProc {
  readonly dir: string;
  readonly root: string;
  readonly passwd: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'pcl-proc-'));
    this.root = join(this.dir, 'proc');
    this.passwd = join(this.dir, 'passwd');
    mkdirSync(this.root);
    writeFileSync(
      this.passwd,
      'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n',
    );
    mkdirSync(join(this.root, 'self'));
  }

  add(p: FakeProcess): void {
    const d = join(this.root, String(p.pid));
    rmSync(d, { recursive: true, force: true });
    mkdirSync(join(d, 'fd'), { recursive: true });
    this.writeStat(p.pid, p);
    const uid = p.uid ?? 0;
    const gid = p.gid ?? 0;
    const euid = p.euid ?? uid;
    writeFileSync(
      join(d, 'status'),
      `Name:\t${p.comm ?? 'proc'}\nPid:\t${p.pid}\nPPid:\t${p.ppid ?? 1}\nUid:\t${uid}\t${euid}\t${euid}\t${euid}\nGid:\t${gid}\t${gid}\t${gid}\t${gid}\n`,
    );
    writeFileSync(join(d, 'cmdline'), (p.cmdline ?? []).map((a) => `${a}\0`).join(''));
    writeFileSync(join(d, 'cgroup'), p.cgroup ?? '0::/\n');
    if (p.exe !== null) symlinkSync(p.exe ?? '/usr/bin/proc', join(d, 'exe'));
    for (const [fd, target] of Object.entries(p.fds ?? {})) symlinkSync(target, join(d, 'fd', fd));
    if (p.flatpakInfo !== undefined) {
      mkdirSync(join(d, 'root'));
      writeFileSync(join(d, 'root', '.flatpak-info'), p.flatpakInfo);
    }
  }

  writeStat(pid: number, p: Pick<FakeProcess, 'comm' | 'ppid' | 'startTime'>): void {
    const rest = ['S', String(p.ppid ?? 1), ...Array.from({ length: 17 }, () => '0')];
    writeFileSync(
      join(this.root, String(pid), 'stat'),
      `${pid} (${p.comm ?? 'proc'}) ${rest.join(' ')} ${p.startTime ?? 100} 0 0\n`,
    );
  }

  addFd(pid: number, fd: number, target: string): void {
    symlinkSync(target, join(this.root, String(pid), 'fd', String(fd)));
  }

  remove(pid: number): void {
    rmSync(join(this.root, String(pid)), { recursive: true, force: true });
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
