/**
 * What the running kernel offers, found without the product's own detection, so that
 * tests can state what they expect on every kernel they run on (this machine's, and the
 * stock distribution kernels in test/vm/).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { release } from 'node:os';

/** The kernel's build configuration (/proc/config.gz or /boot/config-RELEASE), or null. */
export function kernelConfig(): Map<string, string> | null {
  let text: string | null = null;
  if (existsSync('/proc/config.gz')) text = gunzipSync(readFileSync('/proc/config.gz')).toString();
  else if (existsSync(`/boot/config-${release()}`)) {
    text = readFileSync(`/boot/config-${release()}`, 'utf8');
  }
  if (text === null) return null;
  const options = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/u.exec(line);
    if (m) options.set(m[1]!, m[2]!);
  }
  return options;
}

/** Whether a kernel option is built in or a module. */
export function kernelHas(option: string): boolean {
  const v = kernelConfig()?.get(option);
  return v === 'y' || v === 'm';
}

/**
 * Whether the kernel takes an nft `queue` rule in a hooked base chain, tried in the
 * namespace `netns` (the test's own) and removed at once. The config is the first answer
 * (a kernel without CONFIG_NFT_QUEUE cannot); the rule itself the second (a module that
 * will not load).
 */
export function kernelHasNftQueue(netns: string): boolean {
  const config = kernelConfig();
  if (config && !['y', 'm'].includes(config.get('CONFIG_NFT_QUEUE') ?? '')) return false;
  const script = [
    'table inet pcl_oracle {',
    '  chain out {',
    '    type filter hook output priority 0;',
    '    meta l4proto udp udp dport 9 queue num 3 bypass',
    '  }',
    '}',
    '',
  ].join('\n');
  const add = spawnSync('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], { input: script });
  if (add.status !== 0) return false;
  spawnSync('ip', ['netns', 'exec', netns, 'nft', 'delete', 'table', 'inet', 'pcl_oracle']);
  return true;
}
