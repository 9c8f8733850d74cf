import { afterEach, describe, expect, it } from 'vitest';
import { nativeCandidates } from '../../../helper/native/load.js';

describe('native addon loader', () => {
  const saved = process.env['PORTCULLIS_NATIVE'];
  afterEach(() => {
    if (saved === undefined) delete process.env['PORTCULLIS_NATIVE'];
    else process.env['PORTCULLIS_NATIVE'] = saved;
  });

  it('tries an explicit override first, then the source and compiled trees', () => {
    process.env['PORTCULLIS_NATIVE'] = '/opt/x/portcullis_native.node';
    const list = nativeCandidates();
    expect(list[0]).toBe('/opt/x/portcullis_native.node');
    expect(list.some((p) => p.endsWith('native/build/Release/portcullis_native.node'))).toBe(true);
  });

  it('looks for the BPF addon beside the overridden main addon, then in the trees', () => {
    process.env['PORTCULLIS_NATIVE'] = '/opt/x/portcullis_native.node';
    const list = nativeCandidates('portcullis_bpf.node');
    expect(list[0]).toBe('/opt/x/portcullis_bpf.node');
    expect(list.every((p) => p.endsWith('/portcullis_bpf.node'))).toBe(true);
  });
});
