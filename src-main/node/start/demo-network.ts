/**
 * The network of `portcullis start --demo`: two network namespaces of its own
 * joined by a veth pair in 198.18.0.0/15 (RFC 2544's range for tests), and a
 * resolv.conf for the guarded one (ip netns exec mounts /etc/netns/NAME/resolv.conf
 * over /etc/resolv.conf). Nothing of this machine's network is changed; delete()
 * removes all of it.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEMO_SUBNET = '198.18.42';

function ip(args: readonly string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`ip: ${r.error.message} (is iproute2 installed?)`);
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

export class DemoNetwork {
  /** The guarded namespace (where the programs and the helper's rules are). */
  readonly name: string;
  /** The namespace of the servers the programs talk to. */
  readonly peer: string;
  readonly address = `${DEMO_SUBNET}.1`;
  readonly peerAddress = `${DEMO_SUBNET}.2`;
  /** The peer's DNS server: an address of its own, so that lookups do not show up as the web server's. */
  readonly dnsAddress = `${DEMO_SUBNET}.53`;
  private readonly made: string[] = [];
  private etcDir: string | null = null;
  private createdEtcNetns = false;

  constructor(suffix = randomBytes(3).toString('hex')) {
    this.name = `portcullis-demo-${suffix}`;
    this.peer = `portcullis-demo-${suffix}-peer`;
    try {
      this.create(suffix);
    } catch (error) {
      this.delete();
      throw error;
    }
  }

  private create(suffix: string): void {
    for (const ns of [this.name, this.peer]) {
      ip(['netns', 'add', ns]);
      this.made.push(ns);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // Interface names: at most 15 bytes.
    const [a, b] = [`pcd${suffix}a`, `pcd${suffix}b`];
    ip(['-n', this.name, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', this.peer]);
    ip(['-n', this.name, 'addr', 'add', `${this.address}/24`, 'dev', a]);
    ip(['-n', this.peer, 'addr', 'add', `${this.peerAddress}/24`, 'dev', b]);
    ip(['-n', this.peer, 'addr', 'add', `${this.dnsAddress}/24`, 'dev', b]);
    ip(['-n', this.name, 'link', 'set', a, 'up']);
    ip(['-n', this.peer, 'link', 'set', b, 'up']);
    // Every other address leads to the peer too (it answers only its own).
    ip(['-n', this.name, 'route', 'add', 'default', 'via', this.peerAddress]);
    this.createdEtcNetns = !existsSync('/etc/netns');
    this.etcDir = join('/etc/netns', this.name);
    mkdirSync(this.etcDir, { recursive: true });
    writeFileSync(join(this.etcDir, 'resolv.conf'), `nameserver ${this.dnsAddress}\n`);
  }

  /** `ip netns exec NS` + argv. */
  exec(ns: string, argv: readonly string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', ns, ...argv]];
  }

  /** The pids still inside either namespace (ip netns pids). */
  pids(): number[] {
    const out: number[] = [];
    for (const ns of this.made) {
      const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
      for (const line of r.stdout?.split('\n') ?? [])
        if (/^\d+$/u.test(line)) out.push(Number(line));
    }
    return out;
  }

  /** Removes the namespaces and the resolv.conf; idempotent. Errors are returned, not thrown. */
  delete(): string[] {
    const errors: string[] = [];
    for (const ns of this.made.splice(0).reverse()) {
      const r = spawnSync('ip', ['netns', 'delete', ns], { encoding: 'utf8' });
      if (r.status !== 0) errors.push(`ip netns delete ${ns}: ${r.stderr?.trim()}`);
    }
    if (this.etcDir !== null) {
      rmSync(this.etcDir, { recursive: true, force: true });
      this.etcDir = null;
      if (this.createdEtcNetns && readdirSync('/etc/netns').length === 0) rmdirSync('/etc/netns');
    }
    return errors;
  }
}
