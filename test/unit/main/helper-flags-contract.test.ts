/**
 * The launcher and the systemd unit start `portcullis helper` with command
 * lines built elsewhere (src-main, packaging/): the helper must accept them.
 * Before this test, the unit passed flags the helper did not have yet.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseHelperArgs } from '../../../helper/cli/helper-args.js';
import { helperModeArgs } from '../../../src-main/node/elevation.js';

describe('helper command lines built by the launcher and the unit', () => {
  it("the launcher's helper-mode arguments parse, with the token source, owner and parent kept", () => {
    for (const token of ['stdin', { file: '/run/user/1000/portcullis-x/token' }] as const) {
      const argv = helperModeArgs({
        token,
        ownerUid: 1000,
        socketPath: '/run/portcullis/helper.sock',
        parent: { pid: 4321, startTime: '987654' },
      });
      expect(argv[0]).toBe('helper');
      const args = parseHelperArgs(argv.slice(1));
      if (token === 'stdin') expect(args.tokenStdin).toBe(true);
      else expect(args.tokenFile).toBe(token.file);
      expect(args.allowUids).toEqual([1000]);
      expect(args.socket).toBe('/run/portcullis/helper.sock');
      expect(args.parentPid).toBe(4321);
      expect(args.parentStartTime).toBe('987654');
    }
  });

  it("the systemd unit's ExecStart arguments parse (service mode with the access group)", () => {
    const unit = readFileSync('packaging/systemd/portcullis-helper.service', 'utf8');
    const exec = /^ExecStart=(\S+)\s+(.*)$/mu.exec(unit);
    expect(exec, 'ExecStart line').not.toBeNull();
    const args = parseHelperArgs(exec![2]!.trim().split(/\s+/u));
    expect(args.accessGroup).toBe('portcullis');
    expect(args.socket).toBe('/run/portcullis/helper.sock');
    expect(args.stateDir).toBe('/var/lib/portcullis');
  });
});
