import { describe, expect, it } from 'vitest';
import { HELPER_DEFAULTS, parseHelperArgs } from '../../../helper/cli/helper-args.js';

describe('portcullis helper arguments', () => {
  it('defaults: queue 7, allow, 30 s, no-GUI policy follows the default action, fail-open', () => {
    expect(parseHelperArgs([])).toEqual({
      help: false,
      socket: HELPER_DEFAULTS.socket,
      queue: 7,
      defaultAction: 'allow',
      promptTimeoutSeconds: 30,
      noGuiPolicy: 'allow',
      failClosed: false,
      inbound: false,
      stateDir: '/var/lib/portcullis',
      logLevel: 'info',
      allowUids: [],
      tokenStdin: false,
      noConntrackAccounting: false,
      jit: 'full',
      attribution: 'auto',
      explicit: [],
    });
    expect(parseHelperArgs(['--default-action', 'deny']).noGuiPolicy).toBe('deny');
  });

  it('every option', () => {
    expect(
      parseHelperArgs([
        '--socket=/tmp/s.sock',
        '--netns',
        'blue',
        '-q',
        '0x10',
        '--default-action',
        'deny',
        '--prompt-timeout',
        '5',
        '--no-gui-policy',
        'allow',
        '--fail-closed',
        '--inbound',
        '--state-dir',
        '/tmp/st',
        '--log-level',
        'debug',
        '--allow-uid',
        '1000',
        '--allow-uid=0',
        '--allow-uid',
        '1001',
        '--token-stdin',
        '--no-conntrack-accounting',
        '--jit',
        'baseline',
        '--attribution',
        'procfs',
      ]),
    ).toEqual({
      help: false,
      socket: '/tmp/s.sock',
      netns: 'blue',
      queue: 16,
      defaultAction: 'deny',
      promptTimeoutSeconds: 5,
      noGuiPolicy: 'allow',
      failClosed: true,
      inbound: true,
      stateDir: '/tmp/st',
      logLevel: 'debug',
      allowUids: [1000, 1001],
      tokenStdin: true,
      noConntrackAccounting: true,
      jit: 'baseline',
      attribution: 'procfs',
      explicit: [
        'defaultAction',
        'promptTimeoutSeconds',
        'noGuiPolicy',
        'failOpen',
        'interceptInbound',
      ],
    });
  });

  it.each([
    [['--queue', '65536'], /out of range/],
    [['--queue', 'x'], /not a number/],
    [['--default-action', 'maybe'], /not allow or deny/],
    [['--no-gui-policy', 'drop'], /not allow or deny/],
    [['--prompt-timeout', '0'], /1\.\.600/],
    [['--prompt-timeout', '601'], /out of range/],
    [['--netns', '../x'], /not a namespace name/],
    [['--state-dir', 'rel'], /absolute/],
    [['--log-level', 'loud'], /log-level/],
    [['--jit', 'turbo'], /--jit: 'turbo' is not full or baseline/],
    [['--attribution', 'ebpf'], /--attribution: 'ebpf' is not auto or procfs/],
    [['--jit'], /--jit <value>' argument missing/],
    [['--inbound', '--inbound'], /twice/],
    [['--bogus'], /bogus/],
    [['--allow-uid', 'me'], /not a number/],
    [['--token-stdin', '--token-stdin'], /twice/],
    [['--parent-pid', '0'], /not a process/],
    [['--parent-pid', 'me'], /not a number/],
    [['--parent-pid', '4194305'], /out of range/],
    [['--parent-pid', '1', '--parent-pid', '2'], /twice/],
    [['--parent-start-time', '5'], /needs --parent-pid/],
    [['--parent-pid', '1', '--parent-start-time', '5s'], /not a number/],
    [['extra'], /.+/],
  ])('%j is refused', (argv, message) => {
    expect(() => parseHelperArgs(argv)).toThrow(
      expect.objectContaining({ name: 'CliUsageError', message: expect.stringMatching(message) }),
    );
  });

  it('the launcher and service words: --owner-uid, --token-file, --access-group', () => {
    const a = parseHelperArgs([
      '--token-file',
      '/dev/stdin',
      '--owner-uid',
      '1000',
      '--access-group',
      'portcullis',
    ]);
    expect(a.tokenFile).toBe('/dev/stdin');
    expect(a.allowUids).toEqual([1000]);
    expect(a.accessGroup).toBe('portcullis');
    expect(() => parseHelperArgs(['--token-file', 'rel/token'])).toThrow(/absolute path/);
    expect(() => parseHelperArgs(['--token-file', '/t', '--token-stdin'])).toThrow(/one of them/);
    expect(() => parseHelperArgs(['--access-group', 'Bad Name'])).toThrow(/not a group name/);
    expect(() => parseHelperArgs(['--owner-uid'])).toThrow(/--owner-uid/);
  });

  it("the app's lifeline: --parent-pid with its start time", () => {
    const a = parseHelperArgs(['--parent-pid', '4321', '--parent-start-time', '987654']);
    expect(a.parentPid).toBe(4321);
    expect(a.parentStartTime).toBe('987654');
    expect(parseHelperArgs(['--parent-pid', '9'])).not.toHaveProperty('parentStartTime');
    expect(parseHelperArgs([])).not.toHaveProperty('parentPid');
  });
});
