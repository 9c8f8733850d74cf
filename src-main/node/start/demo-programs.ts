/**
 * The programs of `portcullis start --demo`: each a loop, in the guarded
 * namespace, that makes a connection every few seconds, so that prompts keep
 * coming: curl to a web page by name, python3 to an API port by name, bash's
 * /dev/tcp to an echo port by address, and a node UDP sender.
 */
import { spawnSync } from 'node:child_process';
import { DEMO_PORTS } from './demo-peer.js';

export interface DemoProgram {
  /** What the user sees in the prompts. */
  label: string;
  /** The binary it needs (skipped with a note when missing). */
  needs: string;
  argv: string[];
}

export function demoPrograms(peer: string, node: string): DemoProgram[] {
  const curl = `while :; do curl -s -m 40 -o /dev/null http://www.demo.test/; sleep 5; done`;
  const python = [
    'import socket, time',
    'while True:',
    '    try:',
    `        socket.create_connection(("api.demo.test", ${DEMO_PORTS.api}), 40).close()`,
    '    except OSError:',
    '        pass',
    '    time.sleep(6)',
  ].join('\n');
  const tcp =
    `while :; do timeout 40 bash -c 'exec 3<>/dev/tcp/${peer}/${DEMO_PORTS.echo}; ` +
    `echo hello >&3; head -c 6 <&3' >/dev/null 2>&1; sleep 7; done`;
  const udp =
    `const s = require('dgram').createSocket('udp4');` +
    `const send = () => s.send('ping', ${DEMO_PORTS.udp}, '${peer}', () => {});` +
    `send(); setInterval(send, 8000);`;
  return [
    { label: `curl http://www.demo.test/`, needs: 'curl', argv: ['bash', '-c', curl] },
    {
      label: `python3 to api.demo.test:${DEMO_PORTS.api}`,
      needs: 'python3',
      argv: ['python3', '-c', python],
    },
    {
      label: `bash /dev/tcp to ${peer}:${DEMO_PORTS.echo}`,
      needs: 'bash',
      argv: ['bash', '-c', tcp],
    },
    {
      label: `node UDP to ${peer}:${DEMO_PORTS.udp}`,
      needs: node,
      argv: [node, '-e', udp],
    },
  ];
}

/** The binary is on `path` (or, given as a path, exists). */
export function haveBinary(name: string, path: string): boolean {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], {
    stdio: 'ignore',
    env: { PATH: path },
  });
  return r.status === 0;
}

/** `setpriv` prefix that runs a program as uid:gid without supplementary groups. */
export function asUser(uid: number, gid: number, argv: readonly string[]): string[] {
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', ...argv];
}
