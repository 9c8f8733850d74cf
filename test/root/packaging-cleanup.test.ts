/**
 * The .deb's postrm firewall clean-up (packaging/deb/after-remove.tpl), run in
 * throw-away network namespaces: it removes Portcullis' chains, jumps and nft
 * table for iptables-nft and iptables-legacy, IPv4 and IPv6, and touches
 * nothing else, nor creates a legacy table where none existed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestNetns, rootTestsUnavailable } from '../support/netns.js';
import { repoRoot } from '../support/staging.js';

const skip = rootTestsUnavailable();
if (skip) console.log(`packaging-cleanup: skipped: ${skip}`);

const tpl = readFileSync(join(repoRoot, 'packaging', 'deb', 'after-remove.tpl'), 'utf8');
const cleanup = tpl.slice(
  tpl.indexOf('# BEGIN portcullis_cleanup_firewall'),
  tpl.indexOf('# END portcullis_cleanup_firewall'),
);

const namespaces: TestNetns[] = [];
afterEach(() => {
  for (const ns of namespaces.splice(0)) ns.delete();
});

function rules(ns: TestNetns, cmd: string): string {
  return ns.exec(cmd, ['-w', '-t', 'filter', '-S']);
}

describe.skipIf(skip !== undefined)('postrm firewall clean-up', () => {
  it('removes every PORTCULLIS chain and jump (also duplicated), keeps foreign rules', () => {
    const ns = new TestNetns('pcpkg');
    namespaces.push(ns);
    for (const cmd of ['iptables-nft', 'ip6tables-nft', 'iptables-legacy', 'ip6tables-legacy']) {
      ns.exec(
        `${cmd}-restore`,
        ['-w', '--noflush'],
        `*filter
:PORTCULLIS-OUT - [0:0]
:PORTCULLIS-IN - [0:0]
:PORTCULLIS - [0:0]
:FOREIGN - [0:0]
-A FOREIGN -j RETURN
-A OUTPUT -j PORTCULLIS-OUT
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -j PORTCULLIS-OUT
-A OUTPUT -j FOREIGN
-A INPUT -j PORTCULLIS-IN
-A PORTCULLIS-OUT -o lo -j RETURN
-A PORTCULLIS-OUT -p tcp -m conntrack --ctstate NEW -j NFQUEUE --queue-num 7 --queue-bypass
-A PORTCULLIS-IN -j PORTCULLIS
COMMIT
`,
      );
    }
    ns.exec(
      'nft',
      ['-f', '-'],
      'table inet portcullis { chain output { type filter hook output priority 0; }; }\ntable inet other { }\n',
    );
    ns.exec('sh', ['-c', `${cleanup}\nportcullis_cleanup_firewall`]);
    const tables = ns.exec('nft', ['list', 'tables']);
    expect(tables).toMatch(/^table inet other$/m);
    expect(tables).not.toMatch(/portcullis/);
    for (const cmd of ['iptables-nft', 'ip6tables-nft', 'iptables-legacy', 'ip6tables-legacy']) {
      expect(rules(ns, cmd), cmd).toBe(
        [
          '-P INPUT ACCEPT',
          '-P FORWARD ACCEPT',
          '-P OUTPUT ACCEPT',
          '-N FOREIGN',
          '-A OUTPUT -o lo -j ACCEPT',
          '-A OUTPUT -j FOREIGN',
          '-A FOREIGN -j RETURN',
          '',
        ].join('\n'),
      );
    }
  });

  it('creates no legacy table where there was none and is idempotent', () => {
    const ns = new TestNetns('pcpkg');
    namespaces.push(ns);
    const names = () =>
      ns.exec('cat', ['/proc/net/ip_tables_names']) +
      ns.exec('cat', ['/proc/net/ip6_tables_names']);
    expect(names()).toBe('');
    ns.exec('sh', ['-c', `${cleanup}\nportcullis_cleanup_firewall; portcullis_cleanup_firewall`]);
    expect(names()).toBe('');
    expect(rules(ns, 'iptables-nft')).toBe(
      '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n',
    );
  });
});
