/** Prompts and requests for renderer tests. */
import type { ConnectionRequest, Prompt } from '../../../src-main/common/api.js';

export function request(overrides: Partial<ConnectionRequest> = {}): ConnectionRequest {
  return {
    time: 1_000,
    direction: 'outbound',
    family: 'ipv4',
    protocol: 'tcp',
    protocolNumber: 6,
    src: '192.168.1.10',
    dst: '203.0.113.5',
    sport: 40000,
    dport: 443,
    icmpType: null,
    icmpCode: null,
    inIfindex: null,
    outIfindex: 2,
    host: 'example.com',
    uid: 1000,
    process: {
      pid: 4242,
      ppid: 1,
      startTime: 777,
      comm: 'curl',
      exe: '/usr/bin/curl',
      cmdline: ['curl', 'https://example.com'],
      uid: 1000,
      gid: 1000,
      user: 'alice',
      unit: null,
      container: null,
      appId: null,
    },
    ...overrides,
  };
}

export function prompt(id: string, created: number, overrides: Partial<Prompt> = {}): Prompt {
  return {
    id,
    created,
    deadline: created + 30_000,
    defaultAction: 'deny',
    request: request(),
    held: 1,
    ...overrides,
  };
}
